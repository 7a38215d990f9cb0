import ArgumentParser
import BotMaker
import Foundation

extension DesiredState: ExpressibleByArgument {}

extension Botmaker {
    struct BotCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bot",
            abstract: "Declare bots: add, change, remove, restart and list them.",
            discussion: "These edit the database only; `botmaker reconcile` or a running `botmaker run` makes Docker follow.",
            subcommands: [Add.self, Set.self, Remove.self, Restart.self, List.self])
    }
}

/// Spec options shared by `bot add` and `bot set`.
struct SpecOptions: ParsableArguments {
    @Option(help: "Image reference, e.g. ghcr.io/acme/openclaw:1.2 (must exist locally; botmaker never pulls).")
    var image: String?

    @Option(name: .customLong("env"), help: ArgumentHelp("Environment entry KEY=VALUE; repeat for more. On `set`, replaces the whole list.", valueName: "KEY=VALUE"))
    var environment: [String] = []

    @Option(help: ArgumentHelp("Command overriding the image's CMD, as a JSON array: '[\"sh\",\"-c\",\"…\"]'.", valueName: "json"))
    var command: String?

    @Option(help: "Desired state: running, stopped or absent.")
    var state: DesiredState?

    func changes(clearEnvironment: Bool = false, resetCommand: Bool = false) throws -> BotChanges {
        var changes = BotChanges(image: image, desiredState: state)
        if !environment.isEmpty { changes.environment = environment } else if clearEnvironment { changes.environment = [] }
        if let command {
            guard let data = command.data(using: .utf8), let arguments = try? JSONDecoder().decode([String].self, from: data) else {
                throw CLIError("--command must be a JSON array of strings, e.g. '[\"sh\",\"-c\",\"echo hi\"]'")
            }
            changes.command = .some(arguments)
        } else if resetCommand {
            changes.command = .some(nil)
        }
        return changes
    }
}

extension Botmaker.BotCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a bot (desired state running unless --state says otherwise).")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id: a DNS label (a-z, 0-9, -; 1 to 63 characters).") var id: String
        @OptionGroup var spec: SpecOptions

        func run() async throws {
            let store = try global.openStore()
            do {
                try store.addBot(id: id, changes: try spec.changes())
            } catch let error as StoreError {
                throw CLIError(error.message)
            }
            print("added bot \(id)")
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a bot's image, environment, command or desired state.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String
        @OptionGroup var spec: SpecOptions
        @Flag(help: "Remove every environment entry.") var clearEnv = false
        @Flag(help: "Go back to the image's own command.") var resetCommand = false

        func run() async throws {
            let store = try global.openStore()
            let changed: Bool
            do {
                changed = try store.updateBot(id: id, changes: try spec.changes(clearEnvironment: clearEnv, resetCommand: resetCommand))
            } catch let error as StoreError {
                throw CLIError(error.message)
            }
            print(changed ? "updated bot \(id)" : "bot \(id) unchanged")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Delete a bot's row; the next pass removes its container.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String

        func run() async throws {
            let store = try global.openStore()
            guard try store.deleteBot(id: id) else { throw CLIError("no bot \(id)") }
            print("removed bot \(id)")
        }
    }

    struct Restart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask for one restart of a running bot (sets restart_requested_at).")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String

        func run() async throws {
            let store = try global.openStore()
            do { try store.requestRestart(id: id) } catch let error as StoreError { throw CLIError(error.message) }
            print("restart requested for bot \(id)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List bots and their desired state.")

        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON (environment keys only, never values).") var json = false

        func run() async throws {
            let store = try global.openStore(readOnly: true)
            let bots = try store.listBots()
            if json {
                print(Output.json(bots.map(BotSummary.init)))
                return
            }
            if bots.isEmpty { print("no bots"); return }
            var rows = [["ID", "DESIRED", "ACTUAL", "IMAGE", "ENV KEYS", "GEN"]]
            for bot in bots.map(BotSummary.init) {
                rows.append([bot.id, bot.desiredState ?? "?", bot.actualState ?? "-", bot.image ?? "?",
                             bot.environmentKeys?.joined(separator: ",") ?? "(invalid)", String(bot.generation)])
            }
            print(Output.table(rows))
        }
    }
}

/// One bot as `bot ls --json` shows it.
struct BotSummary: Encodable {
    var id: String
    var image: String?
    var environmentKeys: [String]?
    var command: [String]?
    var desiredState: String?
    var actualState: String?
    var generation: Int64
    var restartRequestedAt: String?
    var createdAt: String?
    var updatedAt: String?

    init(_ listing: BotListing) {
        let row = listing.row
        id = row.id
        image = row.image
        if let data = row.environment?.data(using: .utf8), let entries = try? JSONDecoder().decode([String].self, from: data) {
            environmentKeys = entries.map(EnvironmentEntry.key)
        }
        if let data = row.command?.data(using: .utf8) { command = try? JSONDecoder().decode([String].self, from: data) }
        desiredState = row.desiredState
        actualState = listing.status?.actualState
        generation = row.generation
        restartRequestedAt = row.restartRequestedAt
        createdAt = row.createdAt
        updatedAt = row.updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, image, environmentKeys = "environment_keys", command, desiredState = "desired_state", actualState = "actual_state"
        case generation, restartRequestedAt = "restart_requested_at", createdAt = "created_at", updatedAt = "updated_at"
    }
}

enum Output {
    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    static func table(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
