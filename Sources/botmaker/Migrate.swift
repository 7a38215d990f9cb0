import ArgumentParser
import BotMaker

extension Botmaker {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or upgrade the database, then report its schema version.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let store = try global.openStore(creating: true)
            let applied = try store.appliedMigrations()
            print("database \(store.path): schema \(applied.last ?? "empty") (\(applied.count) migration\(applied.count == 1 ? "" : "s") applied)")
        }
    }
}
