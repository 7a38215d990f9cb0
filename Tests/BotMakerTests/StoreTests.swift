@testable import BotMaker
import Foundation
import GRDB
import Testing
import TestSupport

@Suite struct StoreTests {
    @Test func freshDatabaseGetsEveryMigrationAndReopeningAppliesNothing() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("bots.db")
        do {
            let store = try Store.open(path: path)
            #expect(try store.appliedMigrations() == Store.knownMigrations)
            #expect(Store.knownMigrations == ["0001_init", "0002_recent_events", "0003_work_queue", "0004_database_identity", "0005_removal_guard", "0006_instance_claim", "0007_workloads", "0008_images", "0009_updates", "0010_swarm"])
            let mode = try await store.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
            #expect(mode == "wal")
            try store.addBot(id: "a", changes: BotChanges(image: "img:1"))
        }
        let before = try await fileChecksum(path)
        // Opening a current database writes nothing (regression: GRDB's WAL set-up wrote on every open).
        _ = try Store.open(path: path)
        _ = try Store.open(path: path)
        await #expect(try fileChecksum(path) == before)
        let walSize = (try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int ?? 0
        #expect(walSize == 0)
    }

    /// The SQL embedded in the binary is exactly `migrations/*.sql` (run scripts/embed-migrations after an edit).
    @Test func embeddedMigrationsMatchTheFiles() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(files.map { String($0.dropLast(4)) } == embeddedMigrations.map(\.id))
        for (file, migration) in zip(files, embeddedMigrations) {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            #expect(text == migration.sql, "\(file) differs from the embedded copy")
        }
    }

    @Test func databaseAtMigrationOneUpgradesWithRowsIntact() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("old.db")
        // Build a database as the first release left it.
        let queue = try DatabaseQueue(path: path)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("0001_init") { db in try db.execute(sql: embeddedMigrations[0].sql) }
        try migrator.migrate(queue)
        try queue.write { db in
            try db.execute(sql: "INSERT INTO bots (id, image, environment) VALUES ('keep', 'img:1', '[\"A=1\"]')")
            try db.execute(sql: "INSERT INTO bot_events (bot_id, action, result) VALUES ('keep', 'create', 'ok')")
        }
        try queue.close()
        let store = try Store.open(path: path)
        #expect(try store.appliedMigrations() == Store.knownMigrations)
        let row = try #require(try store.bot(id: "keep"))
        #expect(row.environment == #"["A=1"]"#)
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bot_recent_events") } == 1)
    }

    @Test func unknownLaterMigrationIsRefusedAndFileUnchanged() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("future.db")
        _ = try Store.open(path: path)
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('0099_from_the_future')") }
        try queue.close()
        let before = try await fileChecksum(path)
        #expect {
            _ = try Store.open(path: path)
        } throws: { error in
            "\(error)".contains("0099_from_the_future") && "\(error)".contains("newer version")
        }
        await #expect(try fileChecksum(path) == before)
    }

    @Test func readOnlyOpenRefusesAMissingOrOutdatedDatabase() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        #expect(throws: StoreError.self) { try Store.open(path: dir.file("none.db"), options: .init(readOnly: true)) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("none.db")))
    }

    /// The CHECK constraints refuse bad edits made with the plain sqlite3 shell.
    @Test(arguments: [
        "INSERT INTO bots (id, image) VALUES ('../etc', 'img')",
        "INSERT INTO bots (id, image) VALUES ('Bad_Id', 'img')",
        "INSERT INTO bots (id, image) VALUES ('-x', 'img')",
        "INSERT INTO bots (id, image) VALUES ('x-', 'img')",
        "INSERT INTO bots (id, image) VALUES ('\(String(repeating: "a", count: 64))', 'img')",
        "INSERT INTO bots (id, image) VALUES ('', 'img')",
        "INSERT INTO bots (id, image) VALUES (x'6162', 'img')",
        "INSERT INTO bots (id, image, desired_state) VALUES ('ok', 'img', 'paused')",
        "INSERT INTO bots (id, image, environment) VALUES ('ok', 'img', 'not json')",
        "INSERT INTO bots (id, image, environment) VALUES ('ok', 'img', '{\"A\":\"1\"}')",
        "INSERT INTO bots (id, image) VALUES ('ok', '   ')",
        "INSERT INTO bots (id, image, command) VALUES ('ok', 'img', '\"sh\"')",
    ])
    func sqliteShellRefusesBadRows(_ sql: String) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("bots.db")
        _ = try Store.open(path: path)
        let output = try await runProcess(["sqlite3", path, sql])
        #expect(output.status != 0)
        #expect(output.stderr.contains("CHECK constraint failed"), "\(output.stderr)")
        await #expect(try runProcess(["sqlite3", path, "SELECT count(*) FROM bots"]).stdout == "0\n")
    }

    @Test func acceptedUpdateBumpsGenerationAndUpdatedAt() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("bots.db")
        _ = try Store.open(path: path)
        try await runProcess(["sqlite3", path, "INSERT INTO bots (id, image, updated_at) VALUES ('a', 'img:1', '2020-01-01 00:00:00.000')"])
        try await runProcess(["sqlite3", path, "UPDATE bots SET environment = '[\"A=1\"]' WHERE id = 'a'"])
        let after = try await runProcess(["sqlite3", path, "SELECT generation, updated_at > '2020-01-01 00:00:00.000' FROM bots"]).stdout
        #expect(after == "2|1\n")
        // A no-op update of the spec does not bump the generation; a restart request does not either.
        try await runProcess(["sqlite3", path, "UPDATE bots SET environment = '[\"A=1\"]', restart_requested_at = datetime('now') WHERE id = 'a'"])
        await #expect(try runProcess(["sqlite3", path, "SELECT generation FROM bots"]).stdout == "2\n")
        try await runProcess(["sqlite3", path, "UPDATE bots SET desired_state = 'stopped' WHERE id = 'a'"])
        await #expect(try runProcess(["sqlite3", path, "SELECT generation FROM bots"]).stdout == "3\n")
    }

    @Test func deletingABotDeletesItsStatusButKeepsItsEvents() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Store.open(path: dir.file("bots.db"))
        try store.addBot(id: "a", changes: BotChanges(image: "img:1"))
        try store.record(statuses: [BotStatus(botId: "a")], events: [BotEvent(at: Date(), botId: "a", action: "create", result: "ok")])
        try store.deleteBot(id: "a")
        #expect(try store.snapshot().statuses.isEmpty)
        #expect(try store.recentEvents().count == 1)
        // A status for a bot deleted meanwhile is dropped, not an error.
        try store.record(statuses: [BotStatus(botId: "a")], events: [])
        #expect(try store.snapshot().statuses.isEmpty)
    }

    @Test func eventRetentionBoundsTheTable() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Store.open(path: dir.file("bots.db"))
        try store.write { db in
            for i in 0..<10_250 {
                try db.execute(sql: "INSERT INTO bot_events (bot_id, action, result) VALUES (?, 'x', 'ok')", arguments: ["b\(i % 7)"])
            }
        }
        let count = try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bot_events") ?? 0 }
        #expect(count <= 10_100)
        #expect(count >= 10_000)
    }

    /// A NUL byte inside a text value is kept, not cut off (regression: `a\0../etc` was read as `a`).
    @Test func hostileRowsKeepEveryByte() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("bots.db")
        let store = try Store.open(path: path)
        // A NUL inside the id gets past the GLOB check (SQLite stops at NUL); validation must see it.
        try await runProcess(["sqlite3", path, "INSERT INTO bots (id, image) VALUES (CAST(x'61002e2e2f657463' AS TEXT), CAST(x'780079' AS TEXT))"])
        try await runProcess(["sqlite3", path, "INSERT INTO bots (id, image, environment) VALUES ('ok', 'img', '[1, \"A\", null]')"])
        try await store.record(statuses: [BotStatus(botId: "a\u{0}../etc")], events: [])
        let snapshot = try await store.snapshot()
        let nul = try #require(snapshot.bots.first { $0.id.utf8.contains(0) })
        #expect(nul.id == "a\u{0}../etc")
        #expect(nul.image == "x\u{0}y")
        #expect(BotValidation.idProblem(nul.id) != nil)
        #expect(snapshot.statuses["a\u{0}../etc"] != nil)
        #expect(!snapshot.bots.contains { $0.id == "a" })
        for row in snapshot.bots {
            if case .valid = BotValidation.validate(row, secretsRoot: "/s") { Issue.record("\(row.id.debugDescription) should be invalid") }
        }
    }

    /// Every kind of edit, by the CLI or the sqlite3 shell, shows up as a change after the revision read before it;
    /// nothing else does.
    @Test func changesSinceARevisionAreExactlyTheEditedRows() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("bots.db")
        let store = try Store.open(path: path)
        for id in ["a", "b", "c", "d"] { try store.addBot(id: id, changes: BotChanges(image: "img:1")) }
        func sql(_ statement: String) async throws {
            let output = try await runProcess(["sqlite3", path, statement])
            #expect(output.status == 0, "\(output.stderr)")
        }
        var seen = try await store.revision()
        func changed() async throws -> [String] {
            let changes = try await store.changes(since: seen)
            #expect(!changes.isReset)
            seen = changes.revision
            return changes.botIds.sorted()
        }
        #expect(try await changed() == [])
        try await sql("UPDATE bots SET image = 'img:2' WHERE id = 'a'")
        #expect(try await changed() == ["a"])
        try await sql("DELETE FROM bots WHERE id = 'b'")
        #expect(try await changed() == ["b"])
        try await sql("UPDATE bots SET id = 'e' WHERE id = 'c'")
        #expect(try await changed() == ["c", "e"])
        try await sql("INSERT INTO bots (id, image) VALUES ('b', 'img:1')")
        #expect(try await changed() == ["b"])
        try store.requestRestart(id: "d")
        #expect(try await changed() == ["d"])
        // Regression (found by the benchmark): the row changed last, changed again, was not stamped.
        for state in ["stopped", "running", "stopped"] {
            try await sql("UPDATE bots SET desired_state = '\(state)' WHERE id = 'd'")
            #expect(try await changed() == ["d"])
        }
        // A hand-set revision does not hide an edit.
        try await sql("UPDATE bots SET restart_requested_at = 'x', revision = 1 WHERE id = 'a'")
        #expect(try await changed() == ["a"])
        // Writes to status and events are not changes of the desired state.
        try await store.record(statuses: [BotStatus(botId: "a")], events: [BotEvent(at: Date(), botId: "a", action: "x", result: "ok")])
        #expect(try await changed() == [])
        // A store whose revision went back (a replaced or restored file) says so.
        #expect(try await store.changes(since: seen + 100).isReset)
    }

    /// A database gets its identity at first migration; a copy of the file keeps it, another database has its own.
    @Test func identityIsMadeOnceAndTravelsWithTheFile() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let first = try Store.open(path: dir.file("a.db")).ownerId  // closed again at once: the copy below is whole
        #expect(first.count == 32 && first.allSatisfy(\.isHexDigit))
        #expect(try Store.open(path: dir.file("a.db")).ownerId == first)
        #expect(try await runProcess(["cp", dir.file("a.db"), dir.file("copy.db")]).status == 0)
        #expect(try Store.open(path: dir.file("copy.db"), options: .init(readOnly: true)).ownerId == first)
        #expect(try Store.open(path: dir.file("b.db")).ownerId != first)
    }
}
