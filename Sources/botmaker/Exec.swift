import ArgumentParser
import BotMaker
import DockerEngine
import Foundation

extension Botmaker {
    /// `botmaker exec <id> -- CMD …`: a command in the bot's running container, with its exit code.
    struct Exec: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a command in a bot's running container and exit with its exit code.",
            discussion: """
                Example: botmaker exec mybot -- openclaw pairing approve telegram 123456
                Output is streamed as it comes (stdout to stdout, stderr to stderr); there is no terminal (TTY).
                Each exec is recorded in the bot's history (`botmaker events`) with the command's name only, never its arguments.
                """)

        @OptionGroup var global: GlobalOptions
        @Flag(name: [.short, .long], help: "Pass this process's stdin to the command (its end is the command's end of input).")
        var interactive = false
        @Argument(help: "The bot's id.") var id: String
        @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.") var command: [String] = []

        func validate() throws {
            guard !command.isEmpty else { throw ValidationError("give the command after --: botmaker exec \(id) -- CMD [ARGS…]") }
        }

        func run() async throws {
            let store = try global.openStore()
            let code = try await global.withOneHostEngine(store, command: "exec") { docker in
                let container = try await global.requireContainer(docker, store: store, botId: id)
                let program = URL(fileURLWithPath: command[0]).lastPathComponent
                let result: Result<Int, ContainerError>
                do throws(ContainerError) {
                    result = .success(try await docker.exec(botId: id, container: container, command: command, stdin: interactive ? Self.standardInput() : nil) { frame in
                        (frame.stream == .stderr ? FileHandle.standardError : FileHandle.standardOutput).write(Data(frame.bytes))
                    })
                } catch {
                    result = .failure(error)
                }
                let event = switch result {
                case .success(let code): BotEvent(at: Date(), botId: id, action: "exec", result: "ok", message: "\(program): exit code \(code)")
                case .failure(let error): BotEvent(at: Date(), botId: id, action: "exec", result: "error", errorCode: error.code.rawValue,
                                                   message: "\(program): \(error.message)")
                }
                // The command has run: a history that cannot be written is said, and its exit code still passed on.
                do { try await store.record(statuses: [], events: [event]) } catch {
                    FileHandle.standardError.write(Data("botmaker: cannot record the exec in the bot's history: \(error)\n".utf8))
                }
                return try result.mapError { CLIError("\($0.code.rawValue): \($0.message)") }.get()
            }
            if code != 0 { throw ExitCode(Int32(truncatingIfNeeded: code)) }
        }

        /// This process's stdin as chunks, read on a thread of its own (a blocking read must not hold a task's thread).
        static func standardInput() -> AsyncStream<[UInt8]> {
            AsyncStream { continuation in
                let thread = Thread {
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let count = read(0, &buffer, buffer.count)
                        if count <= 0 { break }
                        continuation.yield(Array(buffer[0..<count]))
                    }
                    continuation.finish()
                }
                thread.start()
            }
        }
    }
}
