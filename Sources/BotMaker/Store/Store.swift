import Foundation
import GRDB

/// Why the store refused to open or to change.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The desired-state store: one SQLite file, migrated from `migrations/*.sql` (embedded in the binary).
/// WAL journal, a busy timeout so a writer holding the lock for a while only delays us, foreign keys on.
public struct Store: Sendable {
    /// How the store opens its file.
    public struct Options: Sendable {
        /// Read-only: for dry runs and `status`. Never migrates; refuses a database that needs it.
        public var readOnly = false
        /// How long to wait for another connection's lock before failing.
        public var busyTimeout: TimeInterval = 30
        public init(readOnly: Bool = false, busyTimeout: TimeInterval = 30) {
            self.readOnly = readOnly
            self.busyTimeout = busyTimeout
        }
    }

    public let path: String
    /// This database's identity (`store_identity.owner_id`), carried by its containers as `botmaker.owner`.
    public private(set) var ownerId: String = ""
    /// The file the store opened (device and inode), to notice when `path` stops naming it.
    public let openedFile: FileIdentity?
    let writer: any DatabaseWriter
    private let writes = WriteCounter()

    /// Write transactions this store has run since it was opened (migrations excluded).
    public var writeTransactions: Int { writes.value }

    /// Opens (and unless read-only, creates and migrates) the database at `path`.
    public static func open(path: String, options: Options = .init()) throws -> Store {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(options.busyTimeout)
        configuration.readonly = options.readOnly
        configuration.label = "botmaker.store"
        if options.readOnly && !FileManager.default.fileExists(atPath: path) {
            throw StoreError("no database at \(path); create it with `botmaker migrate`")
        }
        if !options.readOnly {
            // Not GRDB's `journalMode = .wal`: that creates and drops a table on every open, a write
            // that would wake every `data_version` poller and change the file on a no-op pass.
            configuration.prepareDatabase { db in
                if try String.fetchOne(db, sql: "PRAGMA journal_mode") != "wal" {
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                }
            }
        }
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw StoreError("cannot open database \(path): \(Self.describe(error))")
        }
        var store = Store(path: path, openedFile: FileIdentity(path: path), writer: queue)
        try store.checkSchema(migrating: !options.readOnly)
        do {
            store.ownerId = try queue.read { db in try String.fetchOne(db, sql: "SELECT owner_id FROM store_identity WHERE id = 1") } ?? ""
        } catch {
            throw StoreError("cannot read the identity of database \(path): \(Self.describe(error))")
        }
        return store
    }

    /// The identifiers of the migrations this binary knows, in order.
    public static var knownMigrations: [String] { embeddedMigrations.map(\.id) }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in embeddedMigrations {
            migrator.registerMigration(migration.id) { db in
                try db.execute(sql: migration.sql)
            }
        }
        return migrator
    }

    private func checkSchema(migrating: Bool) throws {
        let migrator = Self.migrator
        do {
            let (superseded, applied) = try writer.read { db in
                (try migrator.hasBeenSuperseded(db), try migrator.appliedIdentifiers(db))
            }
            if superseded {
                let unknown = applied.subtracting(Self.knownMigrations).sorted()
                throw StoreError(
                    "database \(path) has migrations this botmaker does not know (\(unknown.joined(separator: ", "))); "
                        + "it was written by a newer version and is left unchanged")
            }
            let pending = Self.knownMigrations.filter { !applied.contains($0) }
            if !pending.isEmpty {
                guard migrating else {
                    throw StoreError("database \(path) needs migrations \(pending.joined(separator: ", ")); run `botmaker migrate`")
                }
                try migrator.migrate(writer)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot migrate database \(path): \(Self.describe(error))")
        }
    }

    /// The applied migration identifiers, in order.
    public func appliedMigrations() throws -> [String] {
        try writer.read { db in try Self.migrator.appliedMigrations(db) }
    }

    static func describe(_ error: any Error) -> String {
        if let db = error as? DatabaseError {
            return db.message ?? "\(db.resultCode)"
        }
        return "\(error)"
    }

    /// Runs `body` in a read transaction.
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try writer.read(body)
    }

    /// Runs `body` in an immediate write transaction.
    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        writes.increment()
        return try writer.write(body)
    }

    /// Runs `body` in a read transaction without blocking the calling thread (for async code).
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await writer.read(body)
    }

    /// Runs `body` in a write transaction without blocking the calling thread: a database locked by
    /// another process delays only the task that writes, never the whole service.
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        writes.increment()
        return try await writer.write(body)
    }
}

/// A file's identity (device and inode): equal for the same file whatever its name, different for a copy.
public struct FileIdentity: Sendable, Equatable, CustomStringConvertible {
    public var device: UInt64
    public var inode: UInt64

    /// The identity of the file `path` names now, or nil when it names nothing.
    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    public var description: String { "device \(device), inode \(inode)" }
}

extension Store {
    /// Nil while `path` still names the file this store opened; else why it does not (replaced, moved or deleted).
    public func pathProblem() -> String? {
        let absolute = SecretsManager.absolute(path)
        guard let now = FileIdentity(path: path) else { return "the database \(absolute) is gone (deleted or moved away)" }
        guard let opened = openedFile, now != opened else { return nil }
        return "the database path \(absolute) now names another file (\(now), opened \(opened)): replaced or restored"
    }
}

final class WriteCounter: @unchecked Sendable {
    private var count = 0
    private let lock = NSLock()
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// Everything a pass reads from the store, in one transaction.
public struct StoreSnapshot: Sendable {
    public var bots: [BotRow]
    public var statuses: [String: BotStatus]
    /// The store's revision as of this read: the changes after it are not in it.
    public var revision: Int64 = 0
    /// Ids of bots deleted (or renamed away) on purpose: their containers may be removed whatever their number.
    public var tombstones: Set<String> = []
    /// What the mass-removal guard holds back now, and since when (nil: nothing).
    public var removalGuard: String?
    public var removalGuardSince: Date?
    /// The newest approval of held removals (`botmaker approve-removals`), and the newest when the guard engaged.
    public var lastRemovalApproval: Int64 = 0
    public var removalGuardApproval: Int64 = 0
    /// The unowned containers the last resync reported (`name (bot-id …)`, comma-separated), or nil.
    public var unownedContainers: String?
}

extension Store {
    /// All bot rows and status rows, read in one transaction.
    public func snapshot() throws -> StoreSnapshot {
        try read(Self.readSnapshot)
    }

    /// All bot rows and status rows, read in one transaction.
    public func snapshot() async throws -> StoreSnapshot {
        try await read(Self.readSnapshot)
    }

    /// Writes status rows (for bots whose row still exists) and events, in one transaction.
    public func record(statuses: [BotStatus], events: [BotEvent]) throws {
        guard !statuses.isEmpty || !events.isEmpty else { return }
        try write { db in try Self.writeRecords(db, statuses: statuses, events: events) }
    }

    /// Writes status rows (for bots whose row still exists) and events, in one transaction.
    public func record(statuses: [BotStatus], events: [BotEvent]) async throws {
        guard !statuses.isEmpty || !events.isEmpty else { return }
        try await write { db in try Self.writeRecords(db, statuses: statuses, events: events) }
    }

    /// Text columns are read as BLOBs: SQLite text may hold NUL bytes, and reading it as a C string
    /// would silently cut `a\0../etc` down to the valid id `a`. As bytes, validation sees all of it.
    static let botsQuery = """
        SELECT CAST(id AS BLOB) AS id, CAST(image AS BLOB) AS image, CAST(environment AS BLOB) AS environment,
               CAST(command AS BLOB) AS command, CAST(desired_state AS BLOB) AS desired_state,
               CAST(restart_requested_at AS BLOB) AS restart_requested_at, generation, created_at, updated_at,
               CAST(mounts AS BLOB) AS mounts, CAST(ports AS BLOB) AS ports, CAST(health_cmd AS BLOB) AS health_cmd,
               health_interval_seconds, CAST(user AS BLOB) AS user, memory_bytes, cpus, pids_limit,
               CAST(security AS BLOB) AS security, CAST(network AS BLOB) AS network, CAST(pull_policy AS BLOB) AS pull_policy,
               CAST(update_strategy AS BLOB) AS update_strategy
        FROM bots
        """

    static func readSnapshot(_ db: Database) throws -> StoreSnapshot {
        let bots = try Row.fetchAll(db, sql: botsQuery + " ORDER BY id").map(BotRow.init(row:))
        var statuses = try BotStatus.fetchAll(db, sql: "SELECT * FROM bot_status ORDER BY rowid")
        let ids = try Row.fetchAll(db, sql: "SELECT CAST(bot_id AS BLOB) AS bot_id FROM bot_status ORDER BY rowid")
        for (index, row) in ids.enumerated() where index < statuses.count {
            statuses[index].botId = BotRow(row: row).botIdColumn
        }
        let revision = try Int64.fetchOne(db, sql: "SELECT revision FROM store_revision WHERE id = 1") ?? 0
        let tombstones = try Row.fetchAll(db, sql: "SELECT CAST(bot_id AS BLOB) AS id FROM bot_tombstones").map { BotRow(row: $0).id }
        let guardRow = try Row.fetchOne(db, sql: """
            SELECT removal_guard, removal_guard_since, removal_guard_approval, unowned_containers FROM fleet_status WHERE id = 1
            """)
        let approval = try Int64.fetchOne(db, sql: "SELECT max(id) FROM removal_approvals") ?? 0
        return StoreSnapshot(bots: bots, statuses: Dictionary(statuses.map { ($0.botId, $0) }, uniquingKeysWith: { a, _ in a }),
                             revision: revision, tombstones: Set(tombstones), removalGuard: guardRow?["removal_guard"],
                             removalGuardSince: guardRow?["removal_guard_since"], lastRemovalApproval: approval,
                             removalGuardApproval: guardRow?["removal_guard_approval"] ?? 0, unownedContainers: guardRow?["unowned_containers"])
    }

    /// Bot ids are bound as bytes and cast to TEXT: GRDB binds a String as a C string, which would cut
    /// an id at a NUL byte and touch another bot's row.
    static func writeRecords(_ db: Database, statuses: [BotStatus], events: [BotEvent], onlyIfMissing: Bool = false) throws {
        for status in statuses {
            let id = Data(status.botId.utf8)
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM bots WHERE id = CAST(? AS TEXT))", arguments: [id]) == true else {
                continue
            }
            let values = try status.databaseDictionary.filter { $0.key != "bot_id" }.sorted { $0.key < $1.key }
            let columns = values.map(\.key)
            try db.execute(
                sql: """
                    INSERT INTO bot_status (bot_id, \(columns.joined(separator: ", ")))
                    VALUES (CAST(? AS TEXT), \(Array(repeating: "?", count: columns.count).joined(separator: ", ")))
                    ON CONFLICT(bot_id) DO \(onlyIfMissing ? "NOTHING" : "UPDATE SET " + columns.map { "\($0) = excluded.\($0)" }.joined(separator: ", "))
                    """,
                arguments: StatementArguments([id.databaseValue] + values.map(\.value)))
        }
        for event in events {
            try db.execute(
                sql: "INSERT INTO bot_events (at, bot_id, action, result, error_code, message) VALUES (?, CAST(? AS TEXT), ?, ?, ?, ?)",
                arguments: [event.at, Data(event.botId.utf8), event.action, event.result, event.errorCode, event.message])
        }
    }

    /// `PRAGMA data_version` on the store's single connection: changes only when another connection commits.
    /// Runs outside a transaction: it is polled several times a second and needs none.
    public func dataVersion() async throws -> Int {
        try await writer.unsafeRead { db in try Int.fetchOne(db, sql: "PRAGMA data_version") ?? 0 }
    }

    /// The newest events, newest first.
    public func recentEvents(botId: String? = nil, limit: Int = 50) throws -> [BotEvent] {
        try read { db in
            var request = BotEvent.order(Column("id").desc).limit(limit)
            if let botId { request = request.filter(Column("bot_id") == botId) }
            return try request.fetchAll(db)
        }
    }
}
