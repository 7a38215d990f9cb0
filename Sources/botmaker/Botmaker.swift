import ArgumentParser
import Foundation

@main
struct Botmaker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "botmaker",
        abstract: "Keeps BotMaker's bot containers in line with the desired state in SQLite.",
        discussion: """
            Declare bots in the database (with `botmaker bot …` or the sqlite3 shell), then
            `botmaker reconcile` converges Docker once and `botmaker run` keeps it converged.
            Global options (--db, --docker-host, --secrets-dir, --data-dir, --instance, --log-level, --log-format) may come
            before or after the subcommand.
            """,
        version: "0.1.0",
        subcommands: [Migrate.self, BotCommand.self, Secrets.self, Reconcile.self, Run.self, Status.self, Events.self, Logs.self, Exec.self, ApproveRemovals.self,
                      Backup.self, Restore.self, Images.self, Rollout.self]
    )

    static func main() async {
        await main(GlobalOptions.placingGlobalOptions(Array(CommandLine.arguments.dropFirst()), root: Botmaker.self))
    }
}
