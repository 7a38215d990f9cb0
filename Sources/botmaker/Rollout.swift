import ArgumentParser
import BotMaker

extension Botmaker {
    /// `botmaker rollout resume`: goes on with rollouts paused after too many rolled-back updates.
    struct Rollout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Control fleet rollouts (updates paced by --max-parallel-updates).",
                                                        subcommands: [Resume.self])

        struct Resume: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Resume paused rollouts: the bots marked ROLLOUT_PAUSED are updated again (rolled-back bots stay held; `bot retry`).")

            @OptionGroup var global: GlobalOptions

            func run() async throws {
                let store = try global.openStore()
                let paused = try store.resumeRollouts()
                print(paused.isEmpty ? "no rollout is paused; earlier rollbacks no longer count toward a pause"
                                     : "resumed: \(paused.count) bot\(paused.count == 1 ? "" : "s") will be updated (\(paused.prefix(10).joined(separator: ", "))\(paused.count > 10 ? ", …" : ""))")
            }
        }
    }
}
