import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// Issue 11, OpenClaw-ready workloads, on the real engine with the gateway stand-in image (busybox httpd on 18789
/// as uid 1000, a HEALTHCHECK that fails while `/home/node/.openclaw/unhealthy` exists, a start marker in its state).
@Suite(.enabled(if: TestDocker.shouldRun, "no Docker engine (set BOTMAKER_REQUIRE_DOCKER=1 to make this a failure)"))
struct WorkloadTests {
    static let gateway = TestDocker.gatewayImage
    static let stateMount = #"[{"name":"state","target":"/home/node/.openclaw"}]"#

    func withDeployment(_ prefix: String, _ body: (Deployment, DockerClient) async throws -> Void) async throws {
        try await Deployment.withMigrated(prefix, body)
    }

    /// Inserts a gateway bot; `columns` are extra `name = value` SQL pairs.
    func insertGateway(_ deployment: Deployment, _ name: String, env: String = #"["A=1"]"#, _ columns: [String: String] = [:]) async throws {
        var all = ["id": "'\(deployment.bot(name))'", "image": "'\(Self.gateway)'", "environment": "'\(env)'"]
        all.merge(columns) { _, new in new }
        let keys = all.keys.sorted()
        try await deployment.sqlite("INSERT INTO bots (\(keys.joined(separator: ", "))) VALUES (\(keys.map { all[$0]! }.joined(separator: ", ")))")
    }

    func containerId(_ deployment: Deployment, _ client: DockerClient, _ name: String) async throws -> String? {
        try await deployment.containers(client)["botmaker-\(deployment.bot(name))"]?.id
    }

    func statePath(_ deployment: Deployment, _ name: String, _ file: String = "") -> String {
        "\(deployment.dataDir)/\(deployment.bot(name))/state" + (file.isEmpty ? "" : "/\(file)")
    }

    func exec(_ container: String, _ command: [String]) async throws -> ProcessOutput {
        try await runProcess(["docker", "exec", container] + command)
    }

    func reconcile(_ deployment: Deployment, _ extra: [String] = []) async throws -> ProcessOutput {
        let output = try await deployment.botmaker(["reconcile"] + extra)
        #expect(output.status == 0, "reconcile \(extra): \(output.stdout)\(output.stderr)")
        return output
    }

    // MARK: - State

    /// A file written in the state mount survives a recreate, stopped → running, absent → running and new botmaker
    /// processes; `bot purge` deletes it, and is refused while the bot has a container.
    @Test(.timeLimit(.minutes(3))) func stateSurvivesEverythingButAnExplicitPurge() async throws {
        try await withDeployment("state") { deployment, client in
            try await insertGateway(deployment, "s", ["mounts": "'\(Self.stateMount)'", "user": "'1000:1000'"])
            _ = try await reconcile(deployment)
            let keep = statePath(deployment, "s", "keep.txt")
            var info = stat()
            #expect(stat(statePath(deployment, "s"), &info) == 0)
            #expect(info.st_uid == 1000 && info.st_gid == 1000, "the state directory belongs to the bot's user")
            #expect(info.st_mode & 0o777 == 0o700)
            try await eventually(timeout: 20, "the gateway writes its start marker into the mount") {
                FileManager.default.fileExists(atPath: statePath(deployment, "s", "started"))
            }
            try "precious".write(toFile: keep, atomically: true, encoding: .utf8)
            let name = "botmaker-\(deployment.bot("s"))"

            let first = try await containerId(deployment, client, "s")
            try await deployment.sqlite("UPDATE bots SET environment = '[\"A=2\"]'")
            _ = try await reconcile(deployment)
            #expect(try await containerId(deployment, client, "s") != first, "an environment change recreates")
            #expect(try await exec(name, ["cat", "/home/node/.openclaw/keep.txt"]).stdout == "precious")

            for detour in ["stopped", "absent"] {
                try await deployment.sqlite("UPDATE bots SET desired_state = '\(detour)'")
                _ = try await reconcile(deployment)
                #expect(FileManager.default.fileExists(atPath: keep), "state survives \(detour)")
                try await deployment.sqlite("UPDATE bots SET desired_state = 'running'")
                _ = try await reconcile(deployment)
                #expect(try await exec(name, ["cat", "/home/node/.openclaw/keep.txt"]).stdout == "precious", "after \(detour) → running")
            }

            let refused = try await deployment.botmaker(["bot", "purge", deployment.bot("s")])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("is running"), "\(refused.stderr)")
            try await deployment.sqlite("UPDATE bots SET desired_state = 'absent'")
            _ = try await reconcile(deployment)
            #expect(try await containerId(deployment, client, "s") == nil)
            let purged = try await deployment.botmaker(["bot", "purge", deployment.bot("s")])
            #expect(purged.status == 0, "\(purged.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(deployment.dataDir)/\(deployment.bot("s"))"))
        }
    }

    /// The roots are recorded at first use: a run from elsewhere (other roots) is refused instead of starting bots on
    /// empty state, and `--move-roots` records new ones on purpose.
    @Test(.timeLimit(.minutes(2))) func otherRootsAreRefusedUnlessMovedOnPurpose() async throws {
        try await withDeployment("roots") { deployment, _ in
            try await insertGateway(deployment, "r", ["mounts": "'\(Self.stateMount)'"])
            _ = try await reconcile(deployment)
            let elsewhere = deployment.dir.file("elsewhere")
            let refused = try await runProcess([botmakerBinary, "reconcile", "--db", deployment.db, "--secrets-dir", deployment.secretsDir,
                                                "--data-dir", elsewhere, "--instance", deployment.instance])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("data root is \(deployment.dataDir)"), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: elsewhere), "nothing was made in the wrong place")
            try FileManager.default.moveItem(atPath: deployment.dataDir, toPath: elsewhere)
            let moved = try await runProcess([botmakerBinary, "reconcile", "--move-roots", "--db", deployment.db, "--secrets-dir",
                                              deployment.secretsDir, "--data-dir", elsewhere, "--instance", deployment.instance])
            #expect(moved.status == 0, "\(moved.stderr)")
            #expect(moved.stdout.contains("-/+"), "the bot's mount source changed: it is recreated on the moved state\n\(moved.stdout)")
            #expect(try await deployment.sqlite("SELECT path FROM host_roots WHERE kind = 'data'") == elsewhere)
        }
    }

    // MARK: - Ports

    /// Automatic host ports answer, differ between bots and stay the same across a recreate; a port held by a foreign
    /// listener is PORT_CONFLICT for that bot only.
    @Test(.timeLimit(.minutes(3))) func portsAreReachableStableAndNeverShared() async throws {
        try await withDeployment("ports") { deployment, client in
            try await insertGateway(deployment, "p1", ["ports": #"'["18789"]'"#])
            try await insertGateway(deployment, "p2", ["ports": #"'["18789"]'"#])
            let held = try HeldPort()
            defer { held.close() }
            try await insertGateway(deployment, "busy", ["ports": "'[\"\(held.port):18789\"]'"])
            let output = try await deployment.botmaker(["reconcile", "--port-range", "19500-19599"])
            #expect(output.status == 1, "the conflicting bot fails the run: \(output.stdout)")
            func hostPort(_ name: String) async throws -> Int? {
                let published = try await deployment.status(name, "published_ports")
                return published.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) }
            }
            let one = try #require(try await hostPort("p1"))
            let two = try #require(try await hostPort("p2"))
            #expect(one != two)
            #expect((19500...19599).contains(one) && (19500...19599).contains(two))
            #expect(try await deployment.status("p1", "published_ports") == "127.0.0.1:\(one)->18789/tcp")
            try await eventually(timeout: 20, "the gateways answer on their published ports") {
                let (a, b) = (try await httpGet(port: one, path: "/healthz"), try await httpGet(port: two, path: "/healthz"))
                return a.status == 200 && b.status == 200
            }
            #expect(try await deployment.status("busy", "last_error_code") == "PORT_CONFLICT")
            #expect(try await deployment.status("busy", "last_error_message").contains("address already in use"))
            #expect(try await deployment.sqlite("SELECT ports FROM bot_overview WHERE id = '\(deployment.bot("p1"))'") == "127.0.0.1:\(one)->18789/tcp")

            let before = try await containerId(deployment, client, "p1")
            try await deployment.sqlite("UPDATE bots SET environment = '[\"A=2\"]' WHERE id = '\(deployment.bot("p1"))'")
            _ = try await deployment.botmaker(["reconcile", "--port-range", "19500-19599"])
            #expect(try await containerId(deployment, client, "p1") != before)
            #expect(try await hostPort("p1") == one, "an automatic port is stable across a recreate")

            // Something else takes p1's port while p1 is away: the next start fails (PORT_CONFLICT), its automatic port is
            // forgotten, and the retry publishes on another one.
            try await deployment.sqlite("UPDATE bots SET desired_state = 'absent' WHERE id = '\(deployment.bot("p1"))'")
            _ = try await deployment.botmaker(["reconcile", "--port-range", "19500-19599"])
            let squatter = try HeldPort(port: one)
            defer { squatter.close() }
            try await deployment.sqlite("UPDATE bots SET desired_state = 'running' WHERE id = '\(deployment.bot("p1"))'")
            _ = try await deployment.botmaker(["reconcile", "--port-range", "19500-19599", "--backoff-base", "0.001"])
            #expect(try await deployment.status("p1", "last_error_code") == "PORT_CONFLICT")
            _ = try await deployment.botmaker(["reconcile", "--port-range", "19500-19599"])
            let moved = try #require(try await hostPort("p1"))
            #expect(moved != one && moved != two)
            #expect(try await deployment.status("p1", "actual_state") == "running")
        }
    }

    // MARK: - Health

    /// `reconcile --wait` returns 0 once healthy; an unhealthy bot is recorded UNHEALTHY (with the check's output),
    /// restarted by botmaker on the backoff schedule (counts, not times), healed once healthy, and `--wait` names it.
    @Test(.timeLimit(.minutes(4))) func unhealthyBotsAreRestartedWithBackoffAndWaitNamesThem() async throws {
        try await withDeployment("health") { deployment, _ in
            try await insertGateway(deployment, "h", ["mounts": "'\(Self.stateMount)'", "user": "'1000:1000'"])
            let waited = try await reconcile(deployment, ["--wait", "--wait-timeout", "60"])
            #expect(waited.stdout.contains("ready: 1 running bot"), "\(waited.stdout)")
            #expect(try await deployment.status("h", "health") == "healthy")

            try "".write(toFile: statePath(deployment, "h", "unhealthy"), atomically: true, encoding: .utf8)
            try await eventually(timeout: 20, "Docker sees the check fail") {
                try await runProcess(["docker", "inspect", "-f", "{{.State.Health.Status}}", "botmaker-\(deployment.bot("h"))"]).stdout.contains("unhealthy")
            }
            let failed = try await deployment.botmaker(["reconcile", "--wait", "--wait-timeout", "30"])
            #expect(failed.status == 1)
            #expect(failed.stderr.contains("\(deployment.bot("h")): unhealthy (last check: exit code 1: unhealthy marker present)"),
                    "--wait says why: \(failed.stdout)\(failed.stderr)")

            // The service, with a backoff of 4 s doubling: over 20 s at most 4 restarts (at about 0, 4, 12 s after the first
            // detection, plus detection delays); without backoff a check failing every 2 s would give about 8.
            let service = try ServiceProcess(arguments: deployment.commonArguments + ["--backoff-base", "4", "--resync-interval", "60"],
                                             logPath: deployment.dir.file("run.log"))
            defer { _ = Task { _ = try? await service.stop(signal: SIGKILL) } }
            try await eventually(timeout: 30, "UNHEALTHY is recorded") {
                try await deployment.status("h", "last_error_code") == "UNHEALTHY"
            }
            #expect(try await deployment.status("h", "last_error_message").contains("unhealthy marker present"),
                    "the last health check's output is shown")
            func restarts() async throws -> Int {
                Int(try await deployment.sqlite("SELECT count(*) FROM bot_events WHERE bot_id = '\(deployment.bot("h"))' AND action = 'restart' AND error_code = 'UNHEALTHY'")) ?? 0
            }
            let before = try await restarts()
            let failuresBefore = Int(try await deployment.status("h", "failure_count")) ?? 0
            let windowEnd = Date().addingTimeInterval(20)
            while Date() < windowEnd { try await Task.sleep(for: .milliseconds(500)) }  // an observation window: counting what happens in it
            let inWindow = try await restarts() - before
            #expect((1...4).contains(inWindow), "restarts in 20 s with a 4 s base doubling: \(inWindow) (a check failing every 2 s would give about 8)")
            #expect(Int(try await deployment.status("h", "failure_count")) ?? 0 > failuresBefore, "the failure count keeps growing: the backoff lengthens")
            try FileManager.default.removeItem(atPath: statePath(deployment, "h", "unhealthy"))
            try await eventually(timeout: 60, "healed once healthy") {
                let health = try await deployment.status("h", "health")
                let code = try await deployment.status("h", "last_error_code")
                return health == "healthy" && code.isEmpty
            }
            #expect(try await service.stop() == 0)
        }
    }

    // MARK: - Limits, hardening, network

    /// Inspect shows the limits and hardening; `strict` has a read-only root with a writable `/tmp`; bots on
    /// botmaker's network cannot reach each other while their published ports answer.
    @Test(.timeLimit(.minutes(3))) func limitsHardeningAndIsolationAreApplied() async throws {
        try await withDeployment("harden") { deployment, client in
            try await insertGateway(deployment, "std", ["memory_bytes": "268435456", "cpus": "0.5", "pids_limit": "100", "ports": #"'["18789"]'"#])
            try await insertGateway(deployment, "strict", ["security": "'strict'", "ports": #"'["18789"]'"#])
            _ = try await reconcile(deployment, ["--wait", "--wait-timeout", "60", "--port-range", "19100-19199"])
            let std = try await client.inspectContainer("botmaker-\(deployment.bot("std"))")
            #expect(std.hostConfig.memory == 268_435_456)
            #expect(std.hostConfig.nanoCpus == 500_000_000)
            #expect(std.hostConfig.pidsLimit == 100)
            #expect(std.hostConfig.securityOpt == ["no-new-privileges"])
            #expect(Set(std.hostConfig.capDrop ?? []) == ["NET_RAW", "NET_ADMIN"])
            #expect(std.hostConfig.logConfig == .init(type: "json-file", config: ["max-size": "10m", "max-file": "3"]))
            #expect(std.hostConfig.readonlyRootfs != true)
            let joined = try await runProcess(["docker", "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
                                               "botmaker-\(deployment.bot("std"))"])
            #expect(joined.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "botmaker")

            let strictName = "botmaker-\(deployment.bot("strict"))"
            let strict = try await client.inspectContainer(strictName)
            #expect(strict.hostConfig.capDrop == ["ALL"])
            #expect(strict.hostConfig.readonlyRootfs == true)
            #expect(strict.hostConfig.pidsLimit == 512, "the default pids limit")
            #expect(strict.hostConfig.tmpfs == ["/tmp": "rw,noexec,nosuid,size=64m"])
            #expect(try await exec(strictName, ["touch", "/rootfile"]).status != 0, "the root filesystem is read-only")
            #expect(try await exec(strictName, ["touch", "/tmp/scratch"]).status == 0, "/tmp is writable")

            let network = try #require(try await client.listNetworks(filters: ["name": ["botmaker"]]).first { $0.name == "botmaker" })
            #expect(network.labels["botmaker.managed"] == "true")
            #expect(network.options["com.docker.network.bridge.enable_icc"] == "false")
            let ipOfStrict = try await runProcess(["docker", "inspect", "-f", "{{.NetworkSettings.Networks.botmaker.IPAddress}}", strictName])
            let target = ipOfStrict.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!target.isEmpty)
            let reach = try await exec("botmaker-\(deployment.bot("std"))", ["timeout", "3", "wget", "-q", "-O", "-", "http://\(target):18789/healthz"])
            #expect(reach.status != 0, "one bot cannot reach another's gateway")
            let own = try await exec(strictName, ["wget", "-q", "-O", "-", "http://\(target):18789/healthz"])
            #expect(own.status == 0 && own.stdout.contains("ok"), "the check is real: the gateway answers its own address")
            for name in ["std", "strict"] {
                let published = try await deployment.status(name, "published_ports")
                let port = try #require(Int(published.split(separator: ":").last?.prefix { $0.isNumber } ?? ""))
                #expect(try await httpGet(port: port, path: "/healthz").status == 200, "the published port of \(name) answers")
            }
        }
    }

    // MARK: - Hostile rows

    /// Each hostile row is refused by a CHECK or recorded INVALID_SPEC; the good bot beside them converges.
    @Test(.timeLimit(.minutes(2))) func hostileRowsAreRefusedOrInvalidAndGoodBotsConverge() async throws {
        try await withDeployment("hostile") { deployment, client in
            try await deployment.insertBots(["good"])
            let checked: [(String, String)] = [
                ("security", "'privileged'"), ("network", "'host'"), ("user", "'root'"), ("pids_limit", "0"), ("memory_bytes", "1"),
                ("ports", "'not json'"), ("mounts", "'{}'"),
            ]
            for (index, (column, value)) in checked.enumerated() {
                let refused = try await runProcess(["sqlite3", deployment.db,
                                                    "INSERT INTO bots (id, image, \(column)) VALUES ('\(deployment.bot("c\(index)"))', 'img', \(value))"])
                #expect(refused.status != 0, "\(column) = \(value) is refused by a CHECK")
            }
            let invalid: [(String, String, String)] = [
                ("root", "mounts", #"[{"name":"state","target":"/"}]"#),
                ("proc", "mounts", #"[{"name":"state","target":"/proc/x"}]"#),
                ("dots", "mounts", #"[{"name":"state","target":"../x"}]"#),
                ("slash", "mounts", #"[{"name":"a/b","target":"/data"}]"#),
                ("secrets", "mounts", #"[{"name":"s","target":"/run/secrets/x"}]"#),
                ("big", "ports", #"["70000"]"#),
                ("word", "ports", #"["abc"]"#),
                ("twice", "ports", #"["19001:1","19001:2"]"#),
            ]
            for (name, column, value) in invalid {
                try await deployment.sqlite("INSERT INTO bots (id, image, \(column)) VALUES ('\(deployment.bot(name))', '\(TestDocker.image)', '\(value)')")
            }
            _ = try await deployment.botmaker(["reconcile"])
            for (name, column, _) in invalid {
                #expect(try await deployment.status(name, "last_error_code") == "INVALID_SPEC", "\(name)")
                #expect(try await deployment.status(name, "last_error_message").hasPrefix(column), "\(name): the message names the column")
            }
            #expect(try await deployment.containers(client)["botmaker-\(deployment.bot("good"))"]?.state == "running")
            #expect(try await deployment.containers(client).count == 1, "no hostile row got a container")
        }
    }

    // MARK: - Environment from secrets

    /// `@secret:` values reach the container and nothing else (plans, JSON, status, events, logs, the database);
    /// rotating the secret recreates exactly the bots that use it; a missing one is SECRETS_ERROR naming it.
    @Test(.timeLimit(.minutes(3))) func secretEnvironmentIsNeverShownAndRotationRecreatesItsUsers() async throws {
        try await withDeployment("secretenv") { deployment, client in
            let value = "s3cr3t-\(UUID().uuidString)"
            let rotated = "r0tated-\(UUID().uuidString)"
            try await deployment.insertBots(["user"], env: #"["TOKEN=@secret:api_key","LITERAL=@@secret:not_a_ref"]"#)
            try await deployment.insertBots(["other"])
            try await deployment.insertBots(["lost"], env: #"["TOKEN=@secret:missing_one"]"#)
            #expect(try await deployment.botmaker(["secrets", "set", deployment.bot("user"), "api_key"], stdin: value + "\n").status == 0)
            var outputs = [try await deployment.botmaker(["reconcile", "--dry-run"]), try await deployment.botmaker(["reconcile", "--log-level", "trace"]),
                           try await deployment.botmaker(["reconcile", "--json", "--dry-run"]), try await deployment.botmaker(["status"]),
                           try await deployment.botmaker(["bot", "ls", "--json"])]
            let env = try await exec("botmaker-\(deployment.bot("user"))", ["env"])
            #expect(env.stdout.contains("TOKEN=\(value)\n"), "the container gets the value (one trailing newline dropped)")
            #expect(env.stdout.contains("LITERAL=@secret:not_a_ref"), "@@secret: stands for a literal @secret:")
            #expect(try await deployment.status("lost", "last_error_code") == "SECRETS_ERROR")
            #expect(try await deployment.status("lost", "last_error_message").contains("missing_one"))

            let userBefore = try await containerId(deployment, client, "user")
            let otherBefore = try await containerId(deployment, client, "other")
            #expect(try await deployment.botmaker(["secrets", "set", deployment.bot("user"), "api_key"], stdin: rotated).status == 0)
            let dry = try await deployment.botmaker(["reconcile", "--dry-run"])
            #expect(dry.stdout.contains("-/+ botmaker-\(deployment.bot("user"))"), "\(dry.stdout)")
            #expect(dry.stdout.contains("environment from secrets"), "the cause names what changed, not the value")
            #expect(dry.stdout.contains("TOKEN=@secret:api_key"), "the plan shows where the value comes from")
            outputs += [dry, try await deployment.botmaker(["reconcile"])]
            #expect(try await containerId(deployment, client, "user") != userBefore, "the bot using the secret is recreated")
            #expect(try await containerId(deployment, client, "other") == otherBefore, "the other bot is untouched")
            #expect(try await exec("botmaker-\(deployment.bot("user"))", ["env"]).stdout.contains("TOKEN=\(rotated)"))

            let dump = try await runProcess(["sqlite3", deployment.db, ".dump"])
            for text in outputs.flatMap({ [$0.stdout, $0.stderr] }) + [dump.stdout] {
                #expect(!text.contains(value) && !text.contains(rotated), "a secret value leaked: \(text.prefix(300))")
            }
        }
    }

    // MARK: - The OpenClaw preset

    /// `bot add --preset openclaw` gives a gateway its port, state, user, memory, heap cap and a token from a secret.
    @Test(.timeLimit(.minutes(3))) func theOpenClawPresetMakesAReachableHealthyGateway() async throws {
        try await withDeployment("preset") { deployment, client in
            let id = deployment.bot("claw")
            // The stand-in image has no `node`: only its command differs from what the preset sets.
            let added = try await deployment.botmaker(["bot", "add", id, "--preset", "openclaw", "--image", Self.gateway, "--command", #"["/bin/gateway"]"#])
            #expect(added.status == 0, "\(added.stderr)")
            let token = try String(contentsOfFile: "\(deployment.secretsDir)/\(id)/gateway_token", encoding: .utf8)
            #expect(token.count == 64 && token.allSatisfy(\.isHexDigit))
            _ = try await reconcile(deployment, ["--wait", "--wait-timeout", "60", "--port-range", "19200-19299"])
            let name = "botmaker-\(id)"
            let inspect = try await client.inspectContainer(name)
            #expect(inspect.hostConfig.memory == 2 << 30)
            #expect(inspect.config.user == "1000:1000")
            let env = try await exec(name, ["env"]).stdout
            #expect(env.contains("OPENCLAW_GATEWAY_TOKEN=\(token)\n"))
            #expect(env.contains("NODE_OPTIONS=--max-old-space-size=1536"))
            #expect(env.contains("OPENCLAW_DISABLE_BONJOUR=1"))
            #expect(FileManager.default.fileExists(atPath: "\(deployment.dataDir)/\(id)/state/started"))
            for mount in ["state", "workspace", "config"] {
                #expect(FileManager.default.fileExists(atPath: "\(deployment.dataDir)/\(id)/\(mount)"), "\(mount) directory")
            }
            let published = try await deployment.status("claw", "published_ports")
            let port = try #require(Int(published.split(separator: ":").last?.prefix { $0.isNumber } ?? ""))
            #expect(try await httpGet(port: port, path: "/healthz").status == 200)
            let status = try await deployment.botmaker(["status"])
            #expect(status.stdout.contains("healthy"), "\(status.stdout)")
            #expect(status.stdout.contains(published), "\(status.stdout)")
            #expect(!status.stdout.contains(token))
        }
    }
}
