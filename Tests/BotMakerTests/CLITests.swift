import Foundation
import Testing
import TestSupport

/// The `botmaker` executable end to end on a temp database (no Docker needed).
@Suite struct CLITests {
    struct Env {
        let dir: TemporaryDirectory
        var db: String { dir.file("bots.db") }
        func run(_ arguments: [String], stdin: String? = nil) async throws -> ProcessOutput {
            try await runProcess([botmakerBinary] + arguments + ["--db", db, "--secrets-dir", dir.file("secrets"), "--data-dir", dir.file("data")], stdin: stdin)
        }
    }

    func withEnv(_ body: (Env) async throws -> Void) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try await body(Env(dir: dir))
    }

    @Test func addSetListRemove() async throws {
        try await withEnv { env in
            await #expect(try env.run(["migrate"]).stdout.contains("schema 0010_swarm"))
            let add = try await env.run(["bot", "add", "alpha", "--image", "img:1", "--env", "A=1", "--env", "TOKEN=hunter2"])
            #expect(add.status == 0, "\(add.stderr)")
            await #expect(try env.run(["bot", "add", "beta", "--image", "img:2", "--state", "stopped", "--command", #"["sh","-c","sleep 1"]"#]).status == 0)
            await #expect(try env.run(["bot", "set", "alpha", "--image", "img:3", "--env", "B=2"]).status == 0)
            await #expect(try env.run(["bot", "restart", "alpha"]).status == 0)

            let text = try await env.run(["bot", "ls"])
            #expect(text.status == 0)
            #expect(text.stdout.contains("alpha"))
            #expect(text.stdout.contains("img:3"))
            #expect(!text.stdout.contains("hunter2"))

            let json = try await env.run(["bot", "ls", "--json"])
            let bots = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
            #expect(bots.map { $0["id"] as? String } == ["alpha", "beta"])
            #expect(bots[0]["environment_keys"] as? [String] == ["B"])
            #expect(bots[0]["generation"] as? Int == 2)
            #expect(bots[0]["restart_requested_at"] is String)
            #expect(bots[1]["desired_state"] as? String == "stopped")
            #expect(bots[1]["command"] as? [String] == ["sh", "-c", "sleep 1"])

            await #expect(try env.run(["bot", "rm", "beta"]).status == 0)
            await #expect(try env.run(["bot", "ls", "--json"]).stdout.contains("beta") == false)
        }
    }

    @Test(arguments: [
        (["bot", "add", "Bad_Id", "--image", "img"], "invalid bot id"),
        (["bot", "add", "ok", "--image", "Not Valid"], "invalid image"),
        (["bot", "add", "ok", "--image", "img", "--env", "NOEQUALS"], "invalid environment"),
        (["bot", "add", "ok"], "needs --image"),
        (["bot", "add", "ok", "--image", "img", "--state", "paused"], "paused"),
        (["bot", "set", "ghost", "--image", "img"], "no bot ghost"),
        (["bot", "set", "ghost"], "nothing to change"),
        (["bot", "rm", "ghost"], "no bot ghost"),
        (["bot", "restart", "ghost"], "no bot ghost"),
        (["bot", "add", "ok", "--image", "img", "--command", "sh -c x"], "--command must be a JSON array"),
        (["secrets", "set", "../etc", "X"], "invalid bot id"),
        (["secrets", "set", "ok", "a-b"], "secret names"),
        (["secrets", "rm", "ok", "NOPE"], "has no secret"),
    ])
    func errorsAreOneLineAndNonZero(_ arguments: [String], _ expected: String) async throws {
        try await withEnv { env in
            #expect(try await env.run(["migrate"]).status == 0)
            let output = try await env.run(arguments, stdin: "value")
            #expect(output.status != 0)
            #expect(output.stderr.contains(expected), "\(output.stderr)")
            // The first line says what is wrong (ArgumentParser may add a usage line after it).
            #expect(output.stderr.split(separator: "\n").first?.contains(expected) == true, "\(output.stderr)")
        }
    }

    @Test func duplicateAddIsRefused() async throws {
        try await withEnv { env in
            #expect(try await env.run(["migrate"]).status == 0)
            await #expect(try env.run(["bot", "add", "a", "--image", "img"]).status == 0)
            let again = try await env.run(["bot", "add", "a", "--image", "img"])
            #expect(again.status != 0)
            #expect(again.stderr.contains("already exists"))
        }
    }

    @Test func secretsComeFromStdinAndNeverShow() async throws {
        try await withEnv { env in
            let value = "sk-very-secret-\(uniqueSuffix())"
            let set = try await env.run(["secrets", "set", "alpha", "API_TOKEN"], stdin: value)
            #expect(set.status == 0, "\(set.stderr)")
            #expect(!set.stdout.contains(value) && !set.stderr.contains(value))
            #expect(try String(contentsOfFile: env.dir.file("secrets/alpha/API_TOKEN"), encoding: .utf8) == value)
            let list = try await env.run(["secrets", "ls", "alpha"])
            #expect(list.stdout == "API_TOKEN\n")
            await #expect(try env.run(["secrets", "rm", "alpha", "API_TOKEN"]).status == 0)
            await #expect(try env.run(["secrets", "ls", "alpha"]).stdout.isEmpty)
        }
    }

    @Test func everyCommandHasHelp() async throws {
        for command in [[], ["migrate"], ["bot"], ["bot", "add"], ["bot", "set"], ["bot", "rm"], ["bot", "restart"], ["bot", "ls"],
                        ["secrets"], ["secrets", "set"], ["secrets", "ls"], ["secrets", "rm"], ["reconcile"], ["status"], ["approve-removals"]] {
            let output = try await runProcess([botmakerBinary] + command + ["--help"])
            #expect(output.status == 0, "\(command)")
            #expect(output.stdout.contains("USAGE"), "\(command)")
        }
    }

    /// While another process holds a write transaction for 2 s, a CLI write waits and then succeeds.
    @Test func writesWaitForAnotherWriter() async throws {
        try await withEnv { env in
            await #expect(try env.run(["migrate"]).status == 0)
            let script = """
                import sqlite3, sys, time
                c = sqlite3.connect(sys.argv[1], isolation_level=None)
                c.execute("BEGIN IMMEDIATE")
                c.execute("INSERT INTO bots (id, image) VALUES ('holder', 'img')")
                print("locked", flush=True)
                time.sleep(2)
                c.execute("COMMIT")
                """
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            holder.arguments = ["python3", "-c", script, env.db]
            let pipe = Pipe()
            holder.standardOutput = pipe
            let exit = ProcessExit(holder)
            try holder.run()
            // Wait until the lock is taken.
            _ = pipe.fileHandleForReading.availableData
            // Started while the lock is held: without the busy timeout this fails with "database is locked".
            let add = try await env.run(["bot", "add", "waiter", "--image", "img"])
            #expect(await exit.wait() == 0)
            #expect(add.status == 0, "\(add.stderr)")
            let ids = try await env.run(["bot", "ls", "--json"]).stdout
            #expect(ids.contains("holder") && ids.contains("waiter"))
        }
    }

    /// Regression: `--resync-interval inf` or `1e20` trapped on a conversion; every duration option is checked.
    @Test(arguments: [
        ["run", "--resync-interval", "inf"], ["run", "--resync-interval", "1e20"], ["run", "--poll-interval", "nan"],
        ["run", "--shutdown-grace", "-1"], ["run", "--backoff-base", "inf"], ["reconcile", "--backoff-cap", "1e300"],
    ])
    func durationOptionsAreValidated(_ arguments: [String]) async throws {
        try await withEnv { env in
            let output = try await env.run(arguments)
            #expect(output.status == 64, "\(output.status) \(output.stderr)")
            #expect(output.stderr.contains(arguments[1]), "\(output.stderr)")
        }
    }

    /// Regression: a metrics port already in use logged a shutdown warning and exited 0, so a supervisor never restarted it.
    @Test(.timeLimit(.minutes(1))) func aServiceThatCannotServeItsMetricsExitsNonZero() async throws {
        try await withEnv { env in
            #expect(try await env.run(["migrate"]).status == 0)
            let held = try HeldPort()
            defer { held.close() }
            let service = try ServiceProcess(
                arguments: ["--db", env.db, "--secrets-dir", env.dir.file("secrets"), "--data-dir", env.dir.file("data"), "--metrics-addr", "127.0.0.1:\(held.port)",
                            "--docker-host", "unix://\(env.dir.file("no-engine.sock"))"],
                logPath: env.dir.file("run.log"))
            let status = await service.waitForExit(timeout: 45)
            #expect(status != nil && status != 0, "\(service.log)")
            #expect(service.log.lowercased().contains("address already in use"), "\(service.log)")
        }
    }

    /// Only `migrate` creates a database: a mistyped --db must never look like an empty fleet (and leaves no file).
    @Test(arguments: [["status"], ["bot", "add", "a", "--image", "img"], ["bot", "ls"], ["bot", "rm", "a"], ["reconcile", "--dry-run"],
                      ["reconcile"], ["run"]])
    func aMissingDatabaseIsRefusedByEveryCommandButMigrate(_ arguments: [String]) async throws {
        try await withEnv { env in
            let output = try await env.run(arguments + ["--docker-host", "unix://\(env.dir.file("no-engine.sock"))"])
            #expect(output.status == 1, "\(output.stderr)")
            #expect(output.stderr.contains("no database at \(env.db)"), "\(output.stderr)")
            #expect(!FileManager.default.fileExists(atPath: env.db))
            #expect(!FileManager.default.fileExists(atPath: env.db + ".lock"))
            #expect(try await env.run(["migrate"]).status == 0)
            #expect(FileManager.default.fileExists(atPath: env.db))
        }
    }

    /// Global options are accepted before the subcommand too, as in every comparable CLI.
    @Test func globalOptionsMayComeBeforeTheSubcommand() async throws {
        try await withEnv { env in
            let migrate = try await runProcess([botmakerBinary, "--db", env.db, "migrate"])
            #expect(migrate.status == 0, "\(migrate.stderr)")
            let add = try await runProcess([botmakerBinary, "--db=\(env.db)", "--log-level", "error", "bot", "add", "a", "--image", "img:1"])
            #expect(add.status == 0, "\(add.stderr)")
            let list = try await runProcess([botmakerBinary, "--db", env.db, "bot", "ls", "--json"])
            #expect(list.status == 0 && list.stdout.contains("\"id\" : \"a\""), "\(list.stdout)\(list.stderr)")
            #expect(try await runProcess([botmakerBinary, "--db", env.db, "status"]).status == 0)
        }
    }

    /// An empty standard input is refused unless `--allow-empty` says it is meant.
    @Test func anEmptySecretIsRefusedUnlessAllowed() async throws {
        try await withEnv { env in
            let empty = try await env.run(["secrets", "set", "alpha", "API_TOKEN"], stdin: "")
            #expect(empty.status != 0)
            #expect(empty.stderr.contains("--allow-empty"), "\(empty.stderr)")
            #expect(!FileManager.default.fileExists(atPath: env.dir.file("secrets/alpha/API_TOKEN")))
            #expect(try await env.run(["secrets", "set", "alpha", "API_TOKEN", "--allow-empty"], stdin: "").status == 0)
            #expect(try Data(contentsOf: URL(fileURLWithPath: env.dir.file("secrets/alpha/API_TOKEN"))).isEmpty)
        }
    }

    /// A backup taken during 200 concurrent edits (one transaction each) is intact and holds a prefix of them;
    /// restoring it keeps the replaced file; a backup of another database is refused unless asked for.
    @Test(.timeLimit(.minutes(2))) func backupDuringEditsRestoresAPrefix() async throws {
        try await withEnv { env in
            #expect(try await env.run(["migrate"]).status == 0)
            let script = """
                import sqlite3, sys
                c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
                for i in range(200):
                    c.execute("INSERT INTO bots (id, image) VALUES (?, 'img:1')", (f"e{i:03d}",))
                """
            let writer = Process()
            writer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            writer.arguments = ["python3", "-c", script, env.db]
            let done = ProcessExit(writer)
            try writer.run()
            try await eventually(timeout: 30, every: .milliseconds(5), "edits under way") {
                Int(try await runProcess(["sqlite3", env.db, "SELECT count(*) FROM bots"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 0
            }
            let backup = env.dir.file("backup.db")
            let made = try await env.run(["backup", backup])
            #expect(made.status == 0, "\(made.stderr)")
            #expect(await done.wait() == 0)
            #expect(try await runProcess(["sqlite3", backup, "PRAGMA integrity_check"]).stdout == "ok\n")
            let ids = try await runProcess(["sqlite3", backup, "SELECT id FROM bots ORDER BY id"]).stdout.split(separator: "\n").map(String.init)
            #expect(ids == (0..<ids.count).map { String(format: "e%03d", $0) }, "not a prefix: \(ids.count) rows")
            #expect(try await env.run(["backup", backup]).status != 0, "an existing file is not replaced without --force")

            let restored = try await env.run(["restore", backup])
            #expect(restored.status == 0, "\(restored.stderr)")
            #expect(try await runProcess(["sqlite3", env.db, "SELECT count(*) FROM bots"]).stdout == "\(ids.count)\n")
            #expect(try await runProcess(["sqlite3", env.db + ".before-restore", "SELECT count(*) FROM bots"]).stdout == "200\n")

            let stranger = env.dir.file("stranger.db")
            #expect(try await runProcess([botmakerBinary, "migrate", "--db", stranger]).status == 0)
            let refused = try await env.run(["restore", stranger])
            #expect(refused.status != 0 && refused.stderr.contains("another database"), "\(refused.stderr)")
            #expect(try await env.run(["restore", stranger, "--allow-other-identity"]).status == 0)
        }
    }

    @Test(.timeLimit(.minutes(1))) func restoreIsRefusedWhileAServiceRuns() async throws {
        try await withEnv { env in
            #expect(try await env.run(["migrate"]).status == 0)
            let backup = env.dir.file("backup.db")
            #expect(try await env.run(["backup", backup]).status == 0)
            let service = try ServiceProcess(
                arguments: ["--db", env.db, "--secrets-dir", env.dir.file("secrets"), "--data-dir", env.dir.file("data"), "--docker-host", "unix://\(env.dir.file("none.sock"))"],
                logPath: env.dir.file("run.log"))
            try await eventually("the service holds the lock") { service.log.contains("reconciler started") }
            let refused = try await env.run(["restore", backup])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("pid \(service.pid)") && refused.stderr.contains("stop it before restoring"), "\(refused.stderr)")
            #expect(try await service.stop() == 0)
            #expect(try await env.run(["restore", backup]).status == 0)
        }
    }
}

/// `botmaker events`: the history, filtered, newest last, and followed.
@Suite struct EventsCommandTests {
    @Test func historyIsFilteredAndFollowed() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let db = dir.file("bots.db")
        func botmaker(_ arguments: [String]) async throws -> ProcessOutput {
            try await runProcess([botmakerBinary] + arguments + ["--db", db])
        }
        func insert(_ values: String) async throws {
            let output = try await runProcess(["sqlite3", db, "INSERT INTO bot_events (at, bot_id, action, result, error_code, message) VALUES \(values)"])
            #expect(output.status == 0, "\(output.stderr)")
        }
        #expect(try await botmaker(["migrate"]).status == 0)
        try await insert("""
            (strftime('%Y-%m-%d %H:%M:%f', 'now', '-2 days'), 'alpha', 'create', 'ok', NULL, 'no container'),
            (strftime('%Y-%m-%d %H:%M:%f', 'now', '-5 minutes'), 'beta', 'start', 'error', 'START_FAILED', 'exec format error'),
            (strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 minutes'), 'alpha', 'stop', 'ok', NULL, 'desired stopped')
            """)
        let all = try await botmaker(["events"])
        #expect(all.status == 0, "\(all.stderr)")
        let lines = all.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.first?.contains("alpha  create  ok: no container") == true, "oldest first: \(all.stdout)")
        #expect(lines[1].contains("beta  start  ERROR START_FAILED: exec format error"))
        #expect(try await botmaker(["events", "alpha"]).stdout.split(separator: "\n").count == 2)
        #expect(try await botmaker(["events", "--tail", "1"]).stdout.contains("desired stopped"))
        #expect(try await botmaker(["events", "--since", "1h"]).stdout.split(separator: "\n").count == 2)
        #expect(try await botmaker(["events", "--since", "yesterday"]).status != 0)
        let json = try await botmaker(["events", "beta", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["error_code"] as? String == "START_FAILED" && object["bot_id"] as? String == "beta")

        // --follow prints what is recorded after it started.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: botmakerBinary)
        process.arguments = ["events", "--follow", "--json", "--tail", "0", "--db", db]
        let out = dir.file("follow.out")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        try await eventually(timeout: 20, "the follower printed the old events") {
            ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").count == 3
        }
        try await insert("(strftime('%Y-%m-%d %H:%M:%f', 'now'), 'gamma', 'create', 'ok', NULL, 'followed')")
        try await eventually(timeout: 20, "the new event followed") {
            ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("followed")
        }
        #expect(process.isRunning)
    }
}
