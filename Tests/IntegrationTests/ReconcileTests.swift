import BotMaker
import DockerEngine
import Foundation
import Logging
import Testing
import TestSupport

/// `botmaker reconcile` end to end: the real binary, a real SQLite file, the real engine.
@Suite(.enabled(if: TestDocker.shouldRun, "no Docker engine (set BOTMAKER_REQUIRE_DOCKER=1 to make this a failure)"))
struct ReconcileTests {
    func withDeployment(_ prefix: String, _ body: (Deployment, DockerClient) async throws -> Void) async throws {
        try await Deployment.withMigrated(prefix, body)
    }

    /// Collects this deployment's container events caused by `body`. Synchronised, not timed: the body starts
    /// once the daemon has accepted the subscription, and collection ends at the event of a marker container
    /// created after the body (the stream is ordered, so nothing the body caused can still be on its way).
    func events(of deployment: Deployment, client: DockerClient, during body: () async throws -> Void) async throws -> [String] {
        let seen = LockedBox<[String]>([])
        let marker = "marker-\(deployment.tag)"
        let (connected, connection) = AsyncStream.makeStream(of: Void.self)
        let filters = ["type": ["container"], "label": ["botmaker.instance=\(deployment.instance)"]]
        let listener = Task {
            for try await event in client.events(filters: filters, onConnect: { connection.yield() }) {
                let name = event.attributes["name"] ?? ""
                if name == marker { return }
                seen.update { $0.append("\(event.baseAction) \(name)") }
            }
        }
        for await _ in connected { break }
        try await body()
        let made = try await runProcess(["docker", "create", "--name", marker, "--label", "botmaker.instance=\(deployment.instance)",
                                         TestDocker.image])
        #expect(made.status == 0, "\(made.stderr)")
        _ = try await listener.valueCancellingWithTheWaiter
        _ = try await runProcess(["docker", "rm", "-f", marker])
        return seen.value
    }

    @Test(.timeLimit(.minutes(3))) func twentyBotsFromEmptyThenANoOpPass() async throws {
        try await withDeployment("twenty") { deployment, client in
            let names = (1...20).map { String(format: "b%02d", $0) }
            try await deployment.insertBots(names, env: #"["GREETING=hello","TOKEN_HINT=masked"]"#)
            #expect(try await deployment.botmaker(["secrets", "set", deployment.bot("b01"), "API_TOKEN"], stdin: "tok").status == 0)

            let first = try await deployment.botmaker(["reconcile"])
            #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
            #expect(first.stdout.contains("Plan: 20 to create"))
            #expect(first.stdout.contains("Applied: 20 succeeded, 0 failed."))
            #expect(!first.stdout.contains("hello") && !first.stdout.contains("masked,"), "env values must not be printed")

            let containers = try await deployment.containers(client)
            #expect(containers.count == 20)
            for name in names {
                let summary = try #require(containers["botmaker-\(deployment.bot(name))"])
                #expect(summary.state == "running")
                let inspect = try await client.inspectContainer(summary.id)
                #expect(inspect.config.labels["botmaker.managed"] == "true")
                #expect(inspect.config.labels["botmaker.bot-id"] == deployment.bot(name))
                #expect(inspect.config.env.contains("GREETING=hello"))
                #expect(TestDocker.binds(inspect.hostConfig.binds) == ["\(deployment.secretsDir)/\(deployment.bot(name)):/run/secrets:ro"])
            }
            #expect(try await runProcess(["docker", "exec", "botmaker-\(deployment.bot("b01"))", "cat", "/run/secrets/API_TOKEN"]).stdout == "tok")
            #expect(try await deployment.sqlite("SELECT count(*) FROM bot_status WHERE actual_state = 'running' AND last_error_code IS NULL") == "20")

            // The second pass changes nothing: same database bytes, no Docker events.
            let before = try await fileChecksum(deployment.db)
            var second = ProcessOutput(status: -1, stdout: "", stderr: "")
            let seen = try await events(of: deployment, client: client) {
                second = try await deployment.botmaker(["reconcile", "--detailed-exitcode"])
            }
            #expect(second.status == 0, "\(second.stdout)\n\(second.stderr)")
            #expect(second.stdout.contains("No changes. Containers match the desired state."))
            #expect(try await fileChecksum(deployment.db) == before)
            #expect(seen.isEmpty, "\(seen)")
            #expect(try await deployment.botmaker(["reconcile", "--dry-run", "--detailed-exitcode"]).status == 0)
        }
    }

    @Test(.timeLimit(.minutes(3))) func eachKindOfChangeTouchesOnlyItsBot() async throws {
        try await withDeployment("changes") { deployment, client in
            try await deployment.insertBots(["a", "b", "c", "d"])
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            let ids = try await deployment.containers(client).mapValues(\.id)

            try await deployment.sqlite("UPDATE bots SET environment = '[\"GREETING=bye\"]' WHERE id = '\(deployment.bot("a"))'")
            let recreate = try await deployment.botmaker(["reconcile"])
            #expect(recreate.stdout.contains("-/+ botmaker-\(deployment.bot("a"))"), "\(recreate.stdout)")
            #expect(recreate.stdout.contains("spec changed: environment"))
            var now = try await deployment.containers(client)
            #expect(now["botmaker-\(deployment.bot("a"))"]?.id != ids["botmaker-\(deployment.bot("a"))"])
            for other in ["b", "c", "d"] { #expect(now["botmaker-\(deployment.bot(other))"]?.id == ids["botmaker-\(deployment.bot(other))"]) }
            let env = try await client.inspectContainer("botmaker-\(deployment.bot("a"))").config.env
            #expect(env.contains("GREETING=bye"))

            try await deployment.sqlite("UPDATE bots SET desired_state = 'stopped' WHERE id = '\(deployment.bot("b"))'")
            try await deployment.sqlite("UPDATE bots SET desired_state = 'absent' WHERE id = '\(deployment.bot("c"))'")
            try await deployment.sqlite("DELETE FROM bots WHERE id = '\(deployment.bot("d"))'")
            let mixed = try await deployment.botmaker(["reconcile"])
            #expect(mixed.status == 0, "\(mixed.stdout)")
            #expect(mixed.stdout.contains("orphan: no row in bots"))
            now = try await deployment.containers(client)
            #expect(now["botmaker-\(deployment.bot("b"))"]?.state == "exited")
            #expect(now["botmaker-\(deployment.bot("c"))"] == nil)
            #expect(now["botmaker-\(deployment.bot("d"))"] == nil)
            #expect(now["botmaker-\(deployment.bot("a"))"]?.state == "running")
            #expect(try await deployment.status("c", "actual_state") == "absent")

            #expect(try await runProcess(["docker", "stop", "botmaker-\(deployment.bot("a"))"]).status == 0)
            let restart = try await deployment.botmaker(["reconcile"])
            #expect(restart.stdout.contains("~   botmaker-\(deployment.bot("a"))"), "\(restart.stdout)")
            #expect(try await deployment.containers(client)["botmaker-\(deployment.bot("a"))"]?.state == "running")
            #expect(try await deployment.botmaker(["reconcile"]).stdout.contains("No changes"))
        }
    }

    @Test(.timeLimit(.minutes(2))) func foreignContainerWithOurNameIsReportedNotTouched() async throws {
        try await withDeployment("collide") { deployment, client in
            let foreignId = try await TestDocker.runForeign(name: "botmaker-\(deployment.bot("x"))")
            try await deployment.insertBots(["x", "y"])
            let output = try await deployment.botmaker(["reconcile"])
            #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
            #expect(output.stdout.contains("! "))
            #expect(try await deployment.status("x", "last_error_code") == "ALREADY_EXISTS")
            #expect(try await deployment.status("y", "actual_state") == "running")
            let foreign = try await client.inspectContainer(foreignId)
            #expect(foreign.state.running)
            #expect(foreign.config.labels["botmaker.managed"] == nil)
            // Reported once, not re-written on every pass.
            let before = try await fileChecksum(deployment.db)
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            #expect(try await fileChecksum(deployment.db) == before)
        }
    }

    @Test(.timeLimit(.minutes(3))) func missingImageBacksOffThenConvergesWhenTheImageAppears() async throws {
        var tagged: String?
        try await withDeployment("noimage") { deployment, client in
            let missing = "botmaker-test/missing-\(deployment.tag):1"
            try await deployment.insertBots(["ok1", "ok2"])
            // `never`: no registry (none is reachable here); the image is expected to appear on the engine.
            try await deployment.sqlite("INSERT INTO bots (id, image, pull_policy) VALUES ('\(deployment.bot("ghost"))', '\(missing)', 'never')")
            let first = try await deployment.botmaker(["reconcile", "--backoff-base", "1", "--backoff-cap", "2"])
            #expect(first.status == 1, "a failed action makes the pass exit 1")
            #expect(try await deployment.status("ghost", "last_error_code") == "IMAGE_NOT_FOUND")
            #expect(try await deployment.status("ghost", "last_error_message").contains("pull_policy is never"))
            #expect(try await deployment.status("ghost", "failure_count") == "1")
            #expect(try await !deployment.status("ghost", "next_attempt_at").isEmpty)
            #expect(try await deployment.status("ok1", "actual_state") == "running")
            #expect(try await deployment.status("ok2", "actual_state") == "running")
            #expect(try await deployment.sqlite("SELECT count(*) FROM bot_events WHERE bot_id = '\(deployment.bot("ghost"))' AND result = 'error'") == "1")

            #expect(try await runProcess(["docker", "tag", TestDocker.image, missing]).status == 0)
            tagged = missing
            // Retried only once the backoff has passed; poll until it converges.
            let deadline = Date().addingTimeInterval(30)
            var converged = false
            while Date() < deadline && !converged {
                _ = try await deployment.botmaker(["reconcile", "--backoff-base", "1", "--backoff-cap", "2"])
                converged = try await deployment.status("ghost", "actual_state") == "running"
                if !converged { try await Task.sleep(for: .milliseconds(300)) }
            }
            #expect(converged)
            #expect(try await deployment.status("ghost", "last_error_code").isEmpty)
            #expect(try await deployment.status("ghost", "failure_count") == "0")
            #expect(try await deployment.status("ghost", "next_attempt_at").isEmpty)
        }
        // Once its container is gone (the engine refuses to untag the reference a container was created from).
        if let tagged { #expect(try await runProcess(["docker", "rmi", tagged]).status == 0) }
    }

    @Test(.timeLimit(.minutes(2))) func backoffMakesTheNextPassWaitInsteadOfCallingDocker() async throws {
        try await withDeployment("wait") { deployment, _ in
            try await deployment.sqlite("INSERT INTO bots (id, image) VALUES ('\(deployment.bot("ghost"))', 'botmaker-test/missing-\(deployment.tag):1')")
            #expect(try await deployment.botmaker(["reconcile", "--backoff-base", "60"]).status == 1)
            let waiting = try await deployment.botmaker(["reconcile", "--dry-run"])
            #expect(waiting.stdout.contains("…   botmaker-\(deployment.bot("ghost"))"), "\(waiting.stdout)")
            #expect(waiting.stdout.contains("1 waiting"))
            // Fixing the row (a new generation) retries at once.
            try await deployment.sqlite("UPDATE bots SET image = '\(TestDocker.image)' WHERE id = '\(deployment.bot("ghost"))'")
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            #expect(try await deployment.status("ghost", "actual_state") == "running")
        }
    }

    @Test(.timeLimit(.minutes(2))) func invalidRowIsRecordedAndOthersConverge() async throws {
        try await withDeployment("invalid") { deployment, _ in
            try await deployment.insertBots(["good"])
            try await deployment.sqlite("INSERT INTO bots (id, image, environment) VALUES ('\(deployment.bot("bad"))', '\(TestDocker.image)', '[\"FOO\"]')")
            let output = try await deployment.botmaker(["reconcile"])
            #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
            #expect(output.stdout.contains("!   botmaker-\(deployment.bot("bad"))"))
            #expect(try await deployment.status("bad", "last_error_code") == "INVALID_SPEC")
            #expect(try await deployment.status("bad", "last_error_message") == "environment: [0] must be KEY=VALUE (no '=' found)")
            #expect(try await deployment.status("good", "actual_state") == "running")
        }
    }

    @Test(.timeLimit(.minutes(2))) func dryRunChangesNothingAndReportsPendingChanges() async throws {
        try await withDeployment("dry") { deployment, client in
            try await deployment.insertBots(["a", "b"])
            let before = try await fileChecksum(deployment.db)
            var dry = ProcessOutput(status: -1, stdout: "", stderr: "")
            let seen = try await events(of: deployment, client: client) {
                dry = try await deployment.botmaker(["reconcile", "--dry-run", "--detailed-exitcode"])
            }
            #expect(dry.status == 2, "\(dry.stdout)\n\(dry.stderr)")
            #expect(dry.stdout.contains("+   botmaker-\(deployment.bot("a"))"))
            #expect(dry.stdout.contains("env: GREETING=***"))
            #expect(!dry.stdout.contains("hello"))
            #expect(seen.isEmpty, "\(seen)")
            #expect(try await fileChecksum(deployment.db) == before)
            let walSize = (try? FileManager.default.attributesOfItem(atPath: deployment.db + "-wal"))?[.size] as? Int ?? 0
            #expect(walSize == 0)
            #expect(try await deployment.containers(client).isEmpty)

            let json = try await deployment.botmaker(["reconcile", "--dry-run", "--json"])
            let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(document["format_version"] as? Int == 1)
            #expect(document["mode"] as? String == "plan")
            #expect(document["changes"] as? Bool == true)
            let actions = try #require(document["actions"] as? [[String: Any]])
            #expect(actions.map { $0["kind"] as? String } == ["create", "create"])
            #expect(actions.first?["environment_keys"] as? [String] == ["GREETING"])
            #expect(!json.stdout.contains("hello"))

            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            #expect(try await deployment.botmaker(["reconcile", "--dry-run", "--detailed-exitcode"]).status == 0)
        }
    }

    @Test(.timeLimit(.minutes(2))) func convergedPassMakesOneListCallAndNoWrites() async throws {
        try await withDeployment("quiet") { deployment, _ in
            try await deployment.insertBots(["a", "b", "c"])
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            let counter = RequestCounter()
            try await DockerClient.withClient(host: try DockerHost.fromEnvironment(), observer: counter.observer) { client in
                let store = try Store.open(path: deployment.db)
                let controller = Controller(
                    store: store, runtime: DockerService(client: client, instance: deployment.instance),
                    secrets: SecretsManager(root: deployment.secretsDir), logger: Logger(label: "test"))
                _ = try await client.apiVersion()  // negotiated once per process, not per resync
                counter.reset()
                let writes = store.writeTransactions
                let outcome = try await controller.reconcileOnce()
                #expect(outcome.view.plan.actions.isEmpty)
                #expect(outcome.view.plan.statusUpdates.isEmpty)
                #expect(outcome.reports.isEmpty)
                #expect(store.writeTransactions == writes)
                #expect(counter.snapshot == ["containers.list": 1])
            }
        }
    }

    @Test(.timeLimit(.minutes(2)), .disabled(if: TestDocker.isPodman,
                                              "not run on Podman: containers from before botmaker's labels only exist on Docker hosts"))
    func legacyContainerIsAdoptedOnlyWhenItMatches() async throws {
        try await withDeployment("legacy") { deployment, client in
            try await deployment.insertBots(["same", "diff", "soft"])
            try await deployment.sqlite("UPDATE bots SET network = 'bridge'")
            // "soft" matches image, environment and mounts but lacks this version's hardening: recreated, not adopted.
            for (name, env, hardened) in [("same", "GREETING=hello", true), ("diff", "GREETING=other", true), ("soft", "GREETING=hello", false)] {
                let id = deployment.bot(name)
                try FileManager.default.createDirectory(atPath: "\(deployment.secretsDir)/\(id)", withIntermediateDirectories: true)
                let hardening = hardened ? ["--pids-limit", "512", "--cap-drop", "NET_ADMIN", "--cap-drop", "NET_RAW"] : []
                let made = try await runProcess([
                    "docker", "create", "--name", "botmaker-\(id)", "--label", "botmaker.managed=true", "--label", "botmaker.bot-id=\(id)",
                    "--label", "botmaker.instance=\(deployment.instance)", "-e", env, "-v", "\(deployment.secretsDir)/\(id):/run/secrets:ro",
                ] + hardening + [TestDocker.image])
                #expect(made.status == 0, "\(made.stderr)")
            }
            let before = try await deployment.containers(client).mapValues(\.id)
            let output = try await deployment.botmaker(["reconcile"])
            #expect(output.status == 0, "\(output.stdout)")
            #expect(output.stdout.contains("~   botmaker-\(deployment.bot("same"))"))
            #expect(output.stdout.contains("-/+ botmaker-\(deployment.bot("diff"))"))
            #expect(output.stdout.contains("-/+ botmaker-\(deployment.bot("soft"))"))
            let after = try await deployment.containers(client)
            #expect(after["botmaker-\(deployment.bot("same"))"]?.id == before["botmaker-\(deployment.bot("same"))"])
            #expect(after["botmaker-\(deployment.bot("diff"))"]?.id != before["botmaker-\(deployment.bot("diff"))"])
            #expect(try await deployment.botmaker(["reconcile"]).stdout.contains("No changes"))
            #expect(try await deployment.status("same", "spec_hash").count == 64)
        }
    }

    @Test(.timeLimit(.minutes(3))) func crashLoopIsReportedNotFought() async throws {
        try await withDeployment("crash") { deployment, client in
            try await deployment.sqlite("INSERT INTO bots (id, image, command) VALUES ('\(deployment.bot("loop"))', '\(TestDocker.image)', '[\"sh\",\"-c\",\"exit 3\"]')")
            _ = try await deployment.botmaker(["reconcile"])
            let containerId = try #require(try await deployment.containers(client)["botmaker-\(deployment.bot("loop"))"]?.id)
            let deadline = Date().addingTimeInterval(90)  // Docker's restart backoff doubles; a loaded engine is slow too
            var code = ""
            while Date() < deadline && code != "CRASH_LOOP" {
                try await Task.sleep(for: .milliseconds(500))
                _ = try await deployment.botmaker(["reconcile"])
                code = try await deployment.status("loop", "last_error_code")
            }
            #expect(code == "CRASH_LOOP")
            #expect(try await deployment.status("loop", "last_error_message").contains("last exit code 3"))
            // Not fought: still the same container.
            #expect(try await deployment.containers(client)["botmaker-\(deployment.bot("loop"))"]?.id == containerId)
        }
    }

    @Test(.timeLimit(.minutes(2))) func restartRequestRestartsOnce() async throws {
        try await withDeployment("restart") { deployment, client in
            try await deployment.insertBots(["r"])
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            let name = "botmaker-\(deployment.bot("r"))"
            let started = try await client.inspectContainer(name).state.startedAt
            #expect(try await deployment.botmaker(["bot", "restart", deployment.bot("r")]).status == 0)
            let output = try await deployment.botmaker(["reconcile"])
            #expect(output.stdout.contains("restart: restart requested at"), "\(output.stdout)\(output.stderr)")
            #expect(try await client.inspectContainer(name).state.startedAt != started)
            #expect(try await deployment.botmaker(["reconcile"]).stdout.contains("No changes"))
        }
    }

    @Test(.timeLimit(.minutes(2))) func specHashIsStableAcrossProcesses() async throws {
        try await withDeployment("stable") { deployment, client in
            try await deployment.insertBots(["s"], env: #"["B=2","A=1","U=ünï ☃"]"#)
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            let label = try await client.inspectContainer("botmaker-\(deployment.bot("s"))").config.labels["botmaker.spec-hash"]
            let bots = try await Store.open(path: deployment.db, options: .init(readOnly: true)).snapshot().bots
            guard case .valid(let bot) = BotValidation.validate(bots[0], secretsRoot: SecretsManager(root: deployment.secretsDir).root) else {
                Issue.record("row should be valid")
                return
            }
            // Computed by the CLI process that created the container, and here in the test process.
            #expect(label == bot.config.specHash)
            for _ in 0..<3 { #expect(try await deployment.botmaker(["reconcile", "--dry-run", "--detailed-exitcode"]).status == 0) }
        }
    }

    /// Issue "never destroy a fleet", scenarios 1 and 2 and the staging copy: one database claims the instance on
    /// the engine; another database (a second one, a mistyped path after `migrate`, a copy of ours at another path)
    /// is refused before it changes anything. `--take-over` is deliberate: the taker adopts the holder's containers
    /// of its own rows only, the holder's other bots stay untouched (a row for one of them later gets
    /// OWNER_CONFLICT), and the former holder is refused in turn. A container labelled the way upstream BotMaker
    /// labels its bots (managed, a uuid bot-id, a hostname label, no owner) is reported as unowned and left alone.
    @Test(.timeLimit(.minutes(3))) func anInstanceHasOneOwnerAndTakeOverIsDeliberate() async throws {
        try await withDeployment("owners") { deployment, client in
            func at(_ path: String, _ arguments: [String]) async throws -> ProcessOutput {
                try await runProcess([botmakerBinary] + arguments + ["--db", path, "--secrets-dir", deployment.secretsDir, "--data-dir", deployment.dataDir,
                                                                      "--instance", deployment.instance])
            }
            try await deployment.insertBots(["twoa", "onlya"])
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            let upstreamName = "botmaker-\(deployment.bot("up"))"
            let upstream = try await runProcess([
                "docker", "run", "-d", "--name", upstreamName, "--label", "botmaker.managed=true",
                "--label", "botmaker.bot-id=5b0c1f7e-9a43-4f8e-b0a7-3c1d2e4f5a6b", "--label", "botmaker.bot-hostname=\(deployment.bot("up"))",
                "--label", "botmaker.instance=\(deployment.instance)", TestDocker.image,
            ])
            #expect(upstream.status == 0, "\(upstream.stderr)")
            let before = try await deployment.containers(client).mapValues(\.id)
            #expect(before.count == 3)

            // Refused: a second database, a mistyped path after migrate, a copy of ours at another path.
            let second = deployment.dir.file("second.db"), typo = deployment.dir.file("bots.db.typo"), staging = deployment.dir.file("staging.db")
            #expect(try await at(second, ["migrate"]).status == 0)
            #expect(try await at(typo, ["migrate"]).status == 0)
            #expect(try await runProcess(["cp", deployment.db, staging]).status == 0)
            let values = ["twob", "twoa"].map { "('\(deployment.bot($0))', '\(TestDocker.image)', '[\"GREETING=hello\"]')" }.joined(separator: ",")
            #expect(try await runProcess(["sqlite3", second, "INSERT INTO bots (id, image, environment) VALUES \(values)"]).status == 0)
            for path in [second, typo, staging] {
                for arguments in [["reconcile"], ["reconcile", "--dry-run"]] {
                    let refused = try await at(path, arguments)
                    #expect(refused.status == 1, "\(path) \(arguments): \(refused.stdout)")
                    #expect(refused.stderr.contains("is claimed by database \(deployment.db) on host"), "\(refused.stderr)")
                }
            }
            #expect(try await deployment.containers(client).mapValues(\.id) == before, "a refused database changed something")

            // Taken over deliberately: the second adopts the container of its row twoa (same spec: kept), creates twob,
            // and leaves onlya (not its bot) and the upstream container alone.
            let taken = try await at(second, ["reconcile", "--take-over"])
            #expect(taken.status == 0, "\(taken.stdout)\(taken.stderr)")
            #expect(taken.stderr.contains("adopted 1 of its containers"), "\(taken.stderr)")
            #expect(taken.stdout.contains("?   \(upstreamName)"), "\(taken.stdout)")
            let after = try await deployment.containers(client)
            for name in ["twoa", "onlya"] { #expect(after["botmaker-\(deployment.bot(name))"]?.id == before["botmaker-\(deployment.bot(name))"]) }
            #expect(after["botmaker-\(deployment.bot("twob"))"]?.state == "running")
            #expect(after[upstreamName]?.id == before[upstreamName] && after[upstreamName]?.state == "running")
            #expect(try await at(second, ["reconcile"]).stdout.contains("0 to remove"))
            #expect(try await at(second, ["status"]).stdout.contains("unowned (made by another botmaker, left alone): \(upstreamName)"))

            // A row for the former holder's other bot: its container is not ours.
            #expect(try await runProcess(["sqlite3", second, "INSERT INTO bots (id, image) VALUES ('\(deployment.bot("onlya"))', '\(TestDocker.image)')"]).status == 0)
            _ = try await at(second, ["reconcile"])
            let conflict = try await runProcess(["sqlite3", second, "SELECT last_error_code FROM bot_status WHERE bot_id = '\(deployment.bot("onlya"))'"])
            #expect(conflict.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "OWNER_CONFLICT")

            // The former holder is refused now.
            let former = try await deployment.botmaker(["reconcile"])
            #expect(former.status == 1 && former.stderr.contains("is claimed by database \(second)"), "\(former.stderr)")
            #expect(try await deployment.containers(client)["botmaker-\(deployment.bot("onlya"))"]?.id == before["botmaker-\(deployment.bot("onlya"))"])
        }
    }

    /// Issue "never destroy a fleet": a restored old backup of the same database (same identity, so its
    /// containers are its own) has lost rows without deleting them. The mass-removal guard removes nothing,
    /// says so (plan, exit code, `status`), and lets the batch through only when approved.
    @Test(.timeLimit(.minutes(3))) func aRestoredOldBackupRemovesNothingUntilApproved() async throws {
        try await withDeployment("guard") { deployment, client in
            let backup = deployment.dir.file("backup.db")
            #expect(try await runProcess(["cp", deployment.db, backup]).status == 0)  // the empty fleet, same identity
            let names = ["g1", "g2", "g3", "g4", "g5"]
            try await deployment.insertBots(names)
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            let before = try await deployment.containers(client).mapValues(\.id)
            #expect(before.count == 5)

            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: deployment.db + suffix) }
            #expect(try await runProcess(["cp", backup, deployment.db]).status == 0)
            let dry = try await deployment.botmaker(["reconcile", "--dry-run"])
            #expect(dry.stdout.contains("[REMOVAL_GUARD]") && dry.stderr.contains("REMOVAL_GUARD: 5 of 5"), "\(dry.stdout)\(dry.stderr)")
            let held = try await deployment.botmaker(["reconcile"])
            #expect(held.status == 1)
            #expect(held.stderr.contains("REMOVAL_GUARD: 5 of 5 containers"), "\(held.stderr)")
            #expect(try await deployment.botmaker(["status"]).stdout.contains("REMOVAL_GUARD since"))
            #expect(try await deployment.containers(client).mapValues(\.id) == before, "the guard removed something")

            let approve = try await deployment.botmaker(["approve-removals"])
            #expect(approve.status == 0, "\(approve.stderr)")
            let applied = try await deployment.botmaker(["reconcile"])
            #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
            #expect(try await deployment.containers(client).isEmpty)
            #expect(!(try await deployment.botmaker(["status"]).stdout.contains("REMOVAL_GUARD")))
        }
    }
}
