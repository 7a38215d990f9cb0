import ArgumentParser
import BotMaker

extension Botmaker {
    struct ApproveRemovals: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "approve-removals",
            abstract: "Let the removals held by the mass-removal guard go ahead, once.",
            discussion: """
                The guard holds removals when more than half of the instance's containers (and more than 3) would be
                removed although their bots were neither deleted nor set absent (a restored old backup, a wrong
                database). `botmaker status` shows what it holds. This records an approval in the database: a running
                service lets the held batch through at its next resync; `reconcile --allow-mass-removal` does the
                same for one run.
                """)

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let store = try global.openStore()
            guard let held = try store.removalGuard() else {
                print("the mass-removal guard holds nothing back; nothing to approve")
                return
            }
            try store.approveRemovals()
            print("approved: \(held.reason.prefix { $0 != ";" }); a running service removes them at its next resync")
        }
    }
}
