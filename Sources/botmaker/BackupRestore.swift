import ArgumentParser
import BotMaker
import Foundation

extension Botmaker {
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a consistent copy of the database, safe while the service runs.",
            discussion: """
                SQLite's online backup API, inside one read transaction: the copy is the whole database (WAL included)
                as it was when the backup began, whatever is written meanwhile. The copy keeps the database's
                identity, so a restore of it owns the same containers. Bots' state directories are not part of it
                (botmaker keeps none yet; secrets live in the secrets directory, back that up with your files).
                """)

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Where to write the copy.") var file: String
        @Flag(help: "Replace FILE if it exists.") var force = false

        func run() async throws {
            let store = try global.openStore(readOnly: true)
            if FileManager.default.fileExists(atPath: file) && !force {
                throw CLIError("\(file) exists; choose another name or pass --force")
            }
            do { try store.backup(to: file) } catch let error as StoreError { throw CLIError(error.message) }
            let summary = try Store.inspectBackup(path: file)
            print("backed up \(store.path) to \(file): \(summary.bots) bots, identity \(summary.ownerId ?? "none")")
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the database with a backup (refused while a service runs).",
            discussion: """
                Checks the backup first (intact, a schema this botmaker knows, the same identity as the database it
                replaces unless --allow-other-identity), keeps the replaced file as <db>.before-restore, then puts the
                backup in place. Containers whose bots are not in the restored file are removed by the next run,
                unless there are so many that the mass-removal guard holds them (see `botmaker status`).
                """)

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The backup to restore.") var file: String
        @Flag(help: "Restore a backup of another database (another identity): its containers, not this one's, become managed.")
        var allowOtherIdentity = false

        func run() async throws {
            let lock: ReconcilerLock
            do { lock = try ReconcilerLock.acquire(databasePath: global.databasePath) } catch {
                throw CLIError("\(error.message); stop it before restoring")
            }
            defer { withExtendedLifetime(lock) {} }
            let summary: BackupSummary
            do { summary = try Store.inspectBackup(path: file) } catch let error as StoreError { throw CLIError(error.message) }
            let path = global.databasePath
            let keep = path + ".before-restore"
            if FileManager.default.fileExists(atPath: path) {
                do {
                    let current = try Store.open(path: path)
                    if let backupOwner = summary.ownerId, backupOwner != current.ownerId, !allowOtherIdentity {
                        throw CLIError("\(file) is a backup of another database (identity \(backupOwner), this one is \(current.ownerId)); "
                                       + "pass --allow-other-identity if that is what you mean")
                    }
                    try current.checkpoint()
                } catch let error as StoreError {
                    throw CLIError(error.message)
                }
                try? FileManager.default.removeItem(atPath: keep)
                guard rename(path, keep) == 0 else { throw CLIError("cannot keep \(path) as \(keep): \(String(cString: strerror(errno)))") }
                for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            }
            let partial = path + ".restoring"
            try? FileManager.default.removeItem(atPath: partial)
            do {
                try FileManager.default.copyItem(atPath: file, toPath: partial)
            } catch {
                throw CLIError("cannot copy \(file): \(error.localizedDescription)")
            }
            guard rename(partial, path) == 0 else { throw CLIError("cannot put the backup in place: \(String(cString: strerror(errno)))") }
            print("restored \(file) to \(path): \(summary.bots) bots, identity \(summary.ownerId ?? "none")"
                  + (FileManager.default.fileExists(atPath: keep) ? "; the replaced database is kept as \(keep)" : ""))
        }
    }
}
