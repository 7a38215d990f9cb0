import ArgumentParser
import BotMaker
import Foundation

extension Botmaker {
    struct Secrets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage a bot's secret files, mounted read-only at /run/secrets in its container.",
            discussion: "Values are read from standard input, never from arguments, and never printed.",
            subcommands: [SetSecret.self, ListSecrets.self, RemoveSecret.self])
    }
}

extension Botmaker.Secrets {
    struct SetSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Write a secret from standard input (e.g. `printf %s \"$TOKEN\" | botmaker secrets set bot1 API_TOKEN`).")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String
        @Argument(help: "Secret name: A-Z, a-z, 0-9 and _, up to 64 characters.") var name: String
        @Flag(help: "Store an empty value (refused otherwise: an empty standard input is usually a mistake).") var allowEmpty = false

        func run() async throws {
            let value = FileHandle.standardInput.readDataToEndOfFile()
            if value.isEmpty && !allowEmpty {
                throw CLIError("standard input was empty: no secret stored (pipe the value in, or pass --allow-empty to store an empty one)")
            }
            let store = try global.storeIfPresent()
            if let store { try global.checkRoots(store, record: false) }
            do {
                try global.secrets().set(botId: id, name: name, value: value)
            } catch {
                throw CLIError(error.message)
            }
            try global.markSecretsChanged(botId: id, store: store)
            print("secret \(name) set for bot \(id) (\(value.count) bytes)")
        }
    }

    struct ListSecrets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List a bot's secret names (never values).")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String

        func run() async throws {
            do {
                for name in try global.secrets().list(botId: id) { print(name) }
            } catch {
                throw CLIError(error.message)
            }
        }
    }

    struct RemoveSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one of a bot's secrets.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String
        @Argument(help: "Secret name.") var name: String

        func run() async throws {
            let store = try global.storeIfPresent()
            if let store { try global.checkRoots(store, record: false) }
            let removed: Bool
            do { removed = try global.secrets().remove(botId: id, name: name) } catch { throw CLIError(error.message) }
            guard removed else { throw CLIError("bot \(id) has no secret \(name)") }
            try global.markSecretsChanged(botId: id, store: store)
            print("secret \(name) removed from bot \(id)")
        }
    }
}

extension GlobalOptions {
    /// The database when there is one (secrets can be written before `migrate`).
    func storeIfPresent() throws -> Store? {
        guard FileManager.default.fileExists(atPath: databasePath) else { return nil }
        return try openStore()
    }

    /// Tells a running service that the bot's secrets changed: a bot whose environment reads one is looked at now.
    func markSecretsChanged(botId: String, store: Store?) throws {
        guard let store else { return }
        do { try store.touchBotsUsingSecrets(botId: botId) } catch { throw CLIError("the secret was written, but the database could not be told: \(error)") }
    }
}
