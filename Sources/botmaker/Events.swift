import ArgumentParser
import BotMaker
import Foundation

extension Botmaker {
    /// `botmaker events`: the history in `bot_events` (actions, results, error codes), newest last.
    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the bots' history (actions, results, error codes), newest last.",
            discussion: "Reads bot_events (the newest 10,000 events are kept). Messages never hold secret values.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Only this bot's events.") var id: String?
        @Option(help: ArgumentHelp("Only events from this long ago (30s, 10m, 2h, 1d) or since this UTC time (2026-11-29T10:00:00Z).", valueName: "duration|time"))
        var since: String?
        @Option(help: "At most the newest N events (default 100; 0: all).") var tail: Int = 100
        @Flag(name: [.short, .long], help: "Keep printing new events as they are recorded (Ctrl-C stops).") var follow = false
        @Flag(help: "One JSON object per line.") var json = false

        func validate() throws {
            guard tail >= 0 else { throw ValidationError("--tail must be 0 or more") }
            if let since, Self.parseSince(since, now: Date()) == nil {
                throw ValidationError("--since: \"\(since)\" is neither a duration (30s, 10m, 2h, 1d) nor a UTC time such as 2026-11-29T10:00:00Z")
            }
        }

        func run() async throws {
            let store = try global.openStore(readOnly: true)
            let from = since.flatMap { Self.parseSince($0, now: Date()) }
            var events = try store.events(botId: id, since: from, last: tail == 0 ? nil : tail)
            var lastId = try events.last?.id ?? (store.events(botId: nil, last: 1).last?.id ?? 0)
            while true {
                // Written at once (not buffered): a follower piped into another program shows each event as it comes.
                let text = events.map { (json ? Self.jsonLine($0) : Self.line($0)) + "\n" }.joined()
                if !text.isEmpty { FileHandle.standardOutput.write(Data(text.utf8)) }
                guard follow else { return }
                if let newest = events.last?.id { lastId = newest }
                try await Task.sleep(for: .milliseconds(250))
                events = try store.events(botId: id, afterId: lastId)
            }
        }

        /// `30s`, `10m`, `2h`, `1d` ago, or an ISO 8601 UTC time.
        static func parseSince(_ text: String, now: Date) -> Date? {
            let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
            if let unit = text.last.flatMap({ units[$0] }), let amount = Double(text.dropLast()), amount.isFinite, amount >= 0 {
                return now.addingTimeInterval(-amount * unit)
            }
            let formatter = ISO8601DateFormatter()
            if let date = formatter.date(from: text) { return date }
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.date(from: text)
        }

        static func line(_ event: BotEvent) -> String {
            let outcome = event.result == "ok" ? "ok" : "ERROR" + (event.errorCode.map { " \($0)" } ?? "")
            return "\(Status.format(event.at))  \(event.botId)  \(event.action)  \(outcome)" + (event.message.map { ": \($0)" } ?? "")
        }

        static func jsonLine(_ event: BotEvent) -> String {
            struct Line: Encodable {
                var id: Int64?
                var at: String
                var bot_id: String
                var action: String
                var result: String
                var error_code: String?
                var message: String?
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let line = Line(id: event.id, at: Status.format(event.at), bot_id: event.botId, action: event.action, result: event.result,
                            error_code: event.errorCode, message: event.message)
            return (try? encoder.encode(line)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
    }
}
