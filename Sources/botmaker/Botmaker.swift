import ArgumentParser

@main
struct Botmaker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "botmaker",
        abstract: "Keeps BotMaker's bot containers in line with the desired state in SQLite.",
        discussion: """
            Declare bots in the database (with `botmaker bot …` or the sqlite3 shell), then
            `botmaker reconcile` converges Docker once and `botmaker run` keeps it converged.
            """,
        version: "0.1.0",
        subcommands: [Migrate.self, BotCommand.self, Secrets.self, Reconcile.self, Run.self, Status.self]
    )
}
