import ArgumentParser
import BotMaker
import DockerEngine
import Foundation

extension Botmaker {
    /// `botmaker logs <id>`: the bot's container logs, stdout to stdout and stderr to stderr.
    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a bot's container logs (stdout and stderr).",
            discussion: "With -f, keeps following across restarts and a recreate (a marker line says when the container changed).")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The bot's id.") var id: String
        @Flag(name: [.short, .long], help: "Keep printing new output (Ctrl-C stops).") var follow = false
        @Option(help: ArgumentHelp("Only output from this long ago (30s, 10m, 2h, 1d) or since this UTC time (2026-11-29T10:00:00Z).", valueName: "duration|time"))
        var since: String?
        @Option(help: "Only the last N lines.") var tail: Int?
        @Flag(help: "Start each line with the time the engine received it.") var timestamps = false

        func validate() throws {
            if let tail, tail < 0 { throw ValidationError("--tail must be 0 or more") }
            if let since, Events.parseSince(since, now: Date()) == nil {
                throw ValidationError("--since: \"\(since)\" is neither a duration (30s, 10m, 2h, 1d) nor a UTC time such as 2026-11-29T10:00:00Z")
            }
        }

        func run() async throws {
            let store = try global.openStore(readOnly: true)
            let options = DockerClient.LogOptions(follow: follow, since: since.flatMap { Events.parseSince($0, now: Date()) }, tail: tail,
                                                  timestamps: timestamps)
            try await global.withOneHostEngine(store, command: "logs") { docker in
                let container = try await global.requireContainer(docker, store: store, botId: id)
                do throws(ContainerError) {
                    try await docker.followLogs(botId: id, from: container, options, onFrame: { frame in
                        (frame.stream == .stderr ? FileHandle.standardError : FileHandle.standardOutput).write(Data(frame.bytes))
                    }, marker: { line in
                        FileHandle.standardOutput.write(Data((line + "\n").utf8))
                    })
                } catch {
                    throw CLIError("\(error.code.rawValue): \(error.message)")
                }
            }
        }
    }
}
