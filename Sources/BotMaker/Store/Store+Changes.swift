import Foundation
import GRDB

/// Bots changed since a revision (see `migrations/0003_work_queue.sql`).
public struct StoreChanges: Sendable, Equatable {
    /// Ids of rows inserted, updated or deleted after the revision asked for.
    public var botIds: [String]
    /// The store's revision now: ask for changes since this one next time.
    public var revision: Int64
    /// True when the store's revision went backwards (the file was replaced or restored): re-read everything.
    public var isReset: Bool
}

/// One bot's row and status, read together.
public struct BotState: Sendable {
    public var row: BotRow?
    public var status: BotStatus?
}

extension Store {
    /// The rows and tombstones newer than `revision`: two indexed range reads, whatever the fleet size.
    public func changes(since revision: Int64) async throws -> StoreChanges {
        try await read { db in
            let current = try Int64.fetchOne(db, sql: "SELECT revision FROM store_revision WHERE id = 1") ?? 0
            if current < revision { return StoreChanges(botIds: [], revision: current, isReset: true) }
            if current == revision { return StoreChanges(botIds: [], revision: current, isReset: false) }
            let rows = try Row.fetchAll(db, sql: """
                SELECT CAST(id AS BLOB) AS id FROM bots WHERE revision > ?
                UNION SELECT CAST(bot_id AS BLOB) AS id FROM bot_tombstones WHERE revision > ?
                """, arguments: [revision, revision])
            return StoreChanges(botIds: rows.map { BotRow(row: $0).id }, revision: current, isReset: false)
        }
    }

    /// The store's current revision.
    public func revision() async throws -> Int64 {
        try await read { db in try Int64.fetchOne(db, sql: "SELECT revision FROM store_revision WHERE id = 1") ?? 0 }
    }

    /// One bot's row and status in one read transaction (ids bound as bytes, as everywhere).
    public func botState(id: String) async throws -> BotState {
        try await read { db in
            let key = Data(id.utf8)
            let row = try Row.fetchOne(db, sql: Self.botsQuery + " WHERE id = CAST(? AS TEXT)", arguments: [key]).map(BotRow.init(row:))
            var status = try BotStatus.fetchOne(db, sql: "SELECT * FROM bot_status WHERE bot_id = CAST(? AS TEXT)", arguments: [key])
            status?.botId = id
            return BotState(row: row, status: status)
        }
    }
}

extension Store {
    /// Sets `last_error_*` on every bot not already showing `code`, in one statement: an engine-wide error
    /// (the engine cannot be listed) must not overwrite anything else a worker records at the same time.
    public func recordFleetError(code: String, message: String, at: Date) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO bot_status (bot_id, last_error_code, last_error_message, last_error_at, last_reconciled_at)
                SELECT id, ?, ?, ?, ? FROM bots WHERE true
                ON CONFLICT(bot_id) DO UPDATE SET last_error_code = excluded.last_error_code,
                    last_error_message = excluded.last_error_message, last_error_at = excluded.last_error_at,
                    last_reconciled_at = excluded.last_reconciled_at
                WHERE bot_status.last_error_code IS NOT excluded.last_error_code
                """, arguments: [code, message, at, at])
        }
    }
}

extension Store {
    /// Writes status rows for bots that have none yet, in one transaction; a row that exists by then (a worker
    /// wrote it meanwhile) is left as it is.
    public func recordFirstSightings(_ statuses: [BotStatus]) async throws {
        guard !statuses.isEmpty else { return }
        try await write { db in try Self.writeRecords(db, statuses: statuses, events: [], onlyIfMissing: true) }
    }
}

extension Store {
    /// Records what the mass-removal guard holds back (nil: nothing), only when that changes.
    public func recordRemovalGuard(_ reason: String?, at: Date) async throws {
        try await write { db in
            if let reason {
                try db.execute(sql: """
                    UPDATE fleet_status SET removal_guard = ?, removal_guard_since = coalesce(removal_guard_since, ?),
                        removal_guard_approval = CASE WHEN removal_guard IS NULL
                            THEN (SELECT coalesce(max(id), 0) FROM removal_approvals) ELSE removal_guard_approval END
                    WHERE id = 1 AND removal_guard IS NOT ?
                    """, arguments: [reason, at, reason])
            } else {
                try db.execute(sql: "UPDATE fleet_status SET removal_guard = NULL, removal_guard_since = NULL WHERE id = 1 AND removal_guard IS NOT NULL")
            }
        }
    }

    /// Lets the removals the guard holds back through once (`botmaker approve-removals`).
    public func approveRemovals() throws {
        try write { db in try db.execute(sql: "INSERT INTO removal_approvals DEFAULT VALUES") }
    }

    /// What the guard holds back now, and since when.
    public func removalGuard() throws -> (reason: String, since: Date?)? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT removal_guard, removal_guard_since FROM fleet_status WHERE id = 1"),
                  let reason: String = row["removal_guard"] else { return nil }
            return (reason, row["removal_guard_since"])
        }
    }

    /// Whether `id` was deleted (or renamed away) on purpose.
    public func isTombstoned(_ id: String) async throws -> Bool {
        try await read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM bot_tombstones WHERE bot_id = CAST(? AS TEXT))",
                              arguments: [Data(id.utf8)]) ?? false
        }
    }
}

/// What a backup file holds, checked before a restore.
public struct BackupSummary: Sendable {
    public var ownerId: String?
    public var bots: Int
    public var migrations: [String]
}

extension Store {
    /// A consistent copy of the whole database at `destination`: SQLite's online backup, taken inside one
    /// read transaction (the WAL included), so writers go on and the copy is the state when it began. It is
    /// written beside `destination` under a temporary name and renamed, so a failed backup leaves nothing.
    public func backup(to destination: String) throws {
        let temporary = destination + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        do {
            let target = try DatabaseQueue(path: temporary)
            try writer.backup(to: target)
            try target.close()
            guard rename(temporary, destination) == 0 else { throw StoreError(String(cString: strerror(errno))) }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw StoreError("cannot back up \(path) to \(destination): \(Self.describe(error))")
        }
    }

    /// Checks a backup file without changing it: intact, written by a botmaker that knows no migration this one
    /// does not; returns its identity and size.
    public static func inspectBackup(path: String) throws -> BackupSummary {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError("no backup at \(path)") }
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db in
                let check = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                guard check == ["ok"] else { throw StoreError("\(path) is damaged: \(check.prefix(3).joined(separator: "; "))") }
                let applied = try migrator.appliedIdentifiers(db)
                let unknown = applied.subtracting(knownMigrations)
                guard unknown.isEmpty else {
                    throw StoreError("\(path) was written by a newer botmaker (migrations \(unknown.sorted().joined(separator: ", ")))")
                }
                guard try db.tableExists("bots") else { throw StoreError("\(path) is not a botmaker database") }
                let owner = try db.tableExists("store_identity")
                    ? try String.fetchOne(db, sql: "SELECT owner_id FROM store_identity WHERE id = 1") : nil
                return BackupSummary(ownerId: owner, bots: try Int.fetchOne(db, sql: "SELECT count(*) FROM bots") ?? 0,
                                     migrations: knownMigrations.filter(applied.contains))
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot read \(path): \(describe(error))")
        }
    }

    /// Moves everything into the main file (`PRAGMA wal_checkpoint(TRUNCATE)`), so it can be moved aside whole.
    public func checkpoint() throws {
        try writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }
}

extension Store {
    /// The containers taken over from another database (`--take-over`).
    public func adoptedContainers() throws -> Set<String> {
        try read { db in Set(try String.fetchAll(db, sql: "SELECT container_id FROM adopted_containers")) }
    }

    public func recordAdoptions(_ containerIds: [String], previousOwner: String) async throws {
        guard !containerIds.isEmpty else { return }
        try await write { db in
            for id in containerIds {
                try db.execute(sql: "INSERT OR IGNORE INTO adopted_containers (container_id, previous_owner) VALUES (?, ?)",
                               arguments: [id, previousOwner])
            }
        }
    }

    /// The database's path made absolute, as claims record it.
    public var absolutePath: String { SecretsManager.absolute(path) }
}

extension Store {
    /// Records the unowned containers a resync saw (nil: none).
    public func recordUnownedContainers(_ text: String?) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE fleet_status SET unowned_containers = ? WHERE id = 1", arguments: [text])
        }
    }

    /// The unowned containers the last resync saw, for `status`.
    public func unownedContainers() throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT unowned_containers FROM fleet_status WHERE id = 1") }
    }
}

extension Store {
    /// `bot_events` rows, oldest first: of one bot (or all), after an event id, at or after a time; with `last`, only the
    /// newest that many of those.
    public func events(botId: String? = nil, afterId: Int64? = nil, since: Date? = nil, last: Int? = nil) throws -> [BotEvent] {
        try read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let botId { conditions.append("bot_id = ?"); _ = arguments.append(contentsOf: [botId]) }
            if let afterId { conditions.append("id > ?"); _ = arguments.append(contentsOf: [afterId]) }
            if let since { conditions.append("at >= ?"); _ = arguments.append(contentsOf: [since]) }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let newest = "SELECT * FROM bot_events \(filter) ORDER BY id DESC" + (last.map { " LIMIT \($0)" } ?? "")
            return try BotEvent.fetchAll(db, sql: "SELECT * FROM (\(newest)) ORDER BY id", arguments: arguments)
        }
    }
}
