import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// Issue 13, health-gated updates, on the real engine with the gateway stand-in (healthy after its first check, 1 s
/// interval) and variants of it that are always unhealthy or exit at once.
@Suite(.enabled(if: TestDocker.shouldRun, "no Docker engine (set BOTMAKER_REQUIRE_DOCKER=1 to make this a failure)"))
struct UpdateTests {
    static let gateway = TestDocker.gatewayImage
    static let stateMount = #"[{"name":"state","target":"/home/node/.openclaw"}]"#

    /// Builds (once per engine) a variant of the gateway image with `lines` added to its Dockerfile.
    static func variant(_ name: String, _ lines: String) async throws -> String {
        let image = "botmaker-test/gateway-\(name):latest"
        if try await runProcess(["docker", "image", "inspect", image]).status == 0 { return image }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try "FROM \(gateway)\n\(lines)\n".write(toFile: dir.file("Dockerfile"), atomically: true, encoding: .utf8)
        let built = try await runProcess(["docker", "build", "-q", "-t", image, dir.path])
        guard built.status == 0 else { throw TestFailure("docker build \(image): \(built.stderr)") }
        return image
    }

    static func unhealthyImage() async throws -> String {
        try await variant("unhealthy", #"HEALTHCHECK --interval=1s --timeout=10s --retries=2 CMD ["/bin/false"]"#)
    }

    static func exitingImage() async throws -> String { try await variant("exits", #"CMD ["/bin/false"]"#) }

    func insertGateway(_ deployment: Deployment, _ name: String, image: String = Self.gateway, extra: String = "") async throws {
        try await deployment.sqlite("""
            INSERT INTO bots (id, image, environment, mounts, user\(extra.isEmpty ? "" : ", update_strategy"))
            VALUES ('\(deployment.bot(name))', '\(image)', '["A=1"]', '\(Self.stateMount)', '1000:1000'\(extra.isEmpty ? "" : ", '\(extra)'"))
            """)
    }

    func containers(_ deployment: Deployment, _ client: DockerClient) async throws -> [String: ContainerSummary] {
        try await deployment.containers(client)
    }

    func events(_ deployment: Deployment, _ name: String) async throws -> Int {
        Int(try await deployment.sqlite("SELECT count(*) FROM bot_events WHERE bot_id = '\(deployment.bot(name))' AND action = 'update'")) ?? -1
    }

    /// A bad update (health check fails, or the process exits at once) is rolled back to the same container, recorded
    /// UPDATE_ROLLED_BACK with the reason, leaves no `.previous`, and is not attempted again; a further change is.
    @Test(.timeLimit(.minutes(3))) func aBadUpdateIsRolledBackToTheSameContainerAndNotRetried() async throws {
        try await Deployment.withMigrated("rollback") { deployment, client in
            let unhealthy = try await Self.unhealthyImage()
            let exiting = try await Self.exitingImage()
            try await insertGateway(deployment, "u")
            try await insertGateway(deployment, "x")
            let first = try await deployment.botmaker(["reconcile", "--wait", "--port-range", "19600-19649"])
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            let before = try await containers(deployment, client).mapValues(\.id)
            try await deployment.sqlite("UPDATE bots SET image = '\(unhealthy)' WHERE id = '\(deployment.bot("u"))'")
            try await deployment.sqlite("UPDATE bots SET image = '\(exiting)' WHERE id = '\(deployment.bot("x"))'")
            let failed = try await deployment.botmaker(["reconcile", "--port-range", "19600-19649", "--max-parallel-updates", "2"])
            #expect(failed.status == 1)
            #expect(failed.stdout.contains("update: spec changed: image (rollback on failure)"), "\(failed.stdout)")
            #expect(failed.stdout.contains("FAILED UPDATE_ROLLED_BACK"), "\(failed.stdout)")
            let after = try await containers(deployment, client)
            let rows = try await deployment.sqlite("SELECT * FROM bot_status")
            let history = try await deployment.sqlite("SELECT bot_id, action, result, error_code, message FROM bot_events ORDER BY id")
            #expect(after.mapValues(\.id) == before, "the original containers (same IDs) run again: \(after.keys.sorted())\n\(failed.stdout)\n\(failed.stderr)\n\(rows)\n\(history)")
            #expect(after.values.allSatisfy { $0.state == "running" })
            #expect(after.keys.allSatisfy { !$0.hasSuffix(".previous") })
            #expect(try await deployment.status("u", "last_error_code") == "UPDATE_ROLLED_BACK")
            #expect(try await deployment.status("u", "last_error_message").contains("unhealthy; last check: exit code 1"))
            // The exit code, or (when Docker restarted it before the look and its `die` event has left the engine's last
            // 256 events, as in a busy suite) that it was restarted.
            let exited = try await deployment.status("x", "last_error_message")
            #expect(exited.contains("exit code 1") || exited.contains("exited and Docker restarted it"), "\(exited)")
            let overview = try await deployment.sqlite("SELECT actual_state FROM bot_overview WHERE id = '\(deployment.bot("u"))'")
            #expect(overview == "running (rolled back from generation 2)")
            #expect(try await deployment.botmaker(["status"]).stdout.contains("running (rolled back from generation 2)"))

            // Not attempted again: passes see the held target and leave the bot alone.
            let attempts = try await events(deployment, "u")
            for _ in 0..<2 {
                let again = try await deployment.botmaker(["reconcile", "--port-range", "19600-19649"])
                #expect(again.stdout.contains("update to generation 2 was rolled back"), "\(again.stdout)")
            }
            #expect(try await events(deployment, "u") == attempts)
            #expect(try await containers(deployment, client).mapValues(\.id) == before)

            // A further change is a new target: attempted (and, on the good image, switched over).
            try await deployment.sqlite("UPDATE bots SET image = '\(Self.gateway)', environment = '[\"A=2\"]' WHERE id = '\(deployment.bot("u"))'")
            let fixed = try await deployment.botmaker(["reconcile", "--port-range", "19600-19649"])
            #expect(fixed.status == 0, "\(fixed.stdout)\(fixed.stderr)")
            #expect(try await containers(deployment, client)["botmaker-\(deployment.bot("u"))"]?.id != before["botmaker-\(deployment.bot("u"))"])
            #expect(try await deployment.status("u", "last_error_code") == "")
            #expect(try await deployment.status("u", "rolled_back_from_generation") == "")
        }
    }

    /// A good update switches over: state written before is there after, the previous container is gone, and Docker's
    /// event stream shows the old container die before the new one starts (never two copies).
    @Test(.timeLimit(.minutes(2))) func aGoodUpdateSwitchesOverCarryingStateNeverTwoCopies() async throws {
        try await Deployment.withMigrated("switch") { deployment, client in
            try await insertGateway(deployment, "g")
            #expect(try await deployment.botmaker(["reconcile", "--wait", "--port-range", "19650-19699"]).status == 0)
            let name = "botmaker-\(deployment.bot("g"))"
            let old = try #require(try await containers(deployment, client)[name]?.id)
            let stateFile = "\(deployment.dataDir)/\(deployment.bot("g"))/state/note"
            #expect(try await runProcess(["docker", "exec", name, "sh", "-c", "echo kept > /home/node/.openclaw/note"]).status == 0)
            let watcher = try DockerEventWatcher(label: "botmaker.bot-id=\(deployment.bot("g"))")
            defer { watcher.stop() }
            try await watcher.ready(name)
            try await deployment.sqlite("UPDATE bots SET environment = '[\"A=2\"]' WHERE id = '\(deployment.bot("g"))'")
            let updated = try await deployment.botmaker(["reconcile", "--wait", "--port-range", "19650-19699"])
            #expect(updated.status == 0, "\(updated.stdout)\(updated.stderr)")
            #expect(updated.stdout.contains("confirm: the new container is healthy"), "\(updated.stdout)")
            let after = try await containers(deployment, client)
            let new = try #require(after[name]?.id)
            #expect(new != old)
            #expect(after.count == 1, "the previous container is removed: \(after.keys.sorted())")
            #expect(try await runProcess(["docker", "exec", name, "cat", "/home/node/.openclaw/note"]).stdout == "kept\n")
            #expect(FileManager.default.fileExists(atPath: stateFile))
            let seen = try await watcher.stop(waitingFor: "destroy", of: old)
            let died = seen.firstIndex { $0.action == "die" && $0.id == old }
            let started = seen.firstIndex { $0.action == "start" && $0.id == new }
            #expect(died != nil && started != nil && died! < started!, "old died before new started: \(seen)")
            #expect(!seen.contains { $0.action == "start" && $0.id == old }, "\(seen)")
        }
    }

    /// SIGKILL of botmaker at every named step of the update state machine, then one run: every bot has exactly one
    /// running container, on the old spec or the new, and no `.previous` is left.
    @Test(.timeLimit(.minutes(6))) func aKillAtEveryStepConvergesInOneRun() async throws {
        try await Deployment.withMigrated("kill") { deployment, client in
            let unhealthy = try await Self.unhealthyImage()
            for (index, failpoint) in Failpoint.names.enumerated() {
                let bot = "k\(index)"
                try await insertGateway(deployment, bot)
                #expect(try await deployment.botmaker(["reconcile", "--wait", "--port-range", "19700-19749"]).status == 0)
                let bad = failpoint.hasPrefix("rollback.")
                try await deployment.sqlite("""
                    UPDATE bots SET environment = '["A=2"]'\(bad ? ", image = '\(unhealthy)'" : "") WHERE id = '\(deployment.bot(bot))'
                    """)
                // Every bot here fails on the same image: no rollout pause (that is tested on its own).
                let killed = try await deployment.botmaker(["reconcile", "--port-range", "19700-19749", "--max-failed-updates", "100"],
                                                           environment: ["BOTMAKER_FAILPOINT": failpoint])
                #expect(killed.status != 0 && killed.stderr.contains("failpoint \(failpoint)"), "\(failpoint): \(killed.status) \(killed.stdout) \(killed.stderr)")
                let recovered = try await deployment.botmaker(["reconcile", "--port-range", "19700-19749", "--max-failed-updates", "100"])
                #expect(recovered.status == (bad ? 1 : 0) || (bad && recovered.status == 0), "\(failpoint): \(recovered.stdout)\(recovered.stderr)")
                let name = "botmaker-\(deployment.bot(bot))"
                let mine = try await containers(deployment, client).filter { $0.key.hasPrefix(name) }
                #expect(mine.keys.sorted() == [name], "\(failpoint): one container, no .previous: \(mine.keys.sorted())")
                #expect(mine[name]?.state == "running", "\(failpoint)")
                let env = try await client.inspectContainer(name).config.env
                if bad {
                    #expect(env.contains("A=1"), "\(failpoint): rolled back to the old spec")
                    #expect(try await deployment.status(bot, "last_error_code") == "UPDATE_ROLLED_BACK", "\(failpoint)")
                } else {
                    #expect(env.contains("A=2"), "\(failpoint): the new spec, confirmed")
                    #expect(try await deployment.status(bot, "update_phase") == "", "\(failpoint)")
                }
            }
        }
    }
}

extension UpdateTests {
    /// A tag moved under 6 `always` bots to an image whose health check fails: one bot at a time is updated and rolled
    /// back, a second one too, then the other 4 are ROLLOUT_PAUSED and keep running untouched; `rollout resume` goes on.
    @Test(.timeLimit(.minutes(4))) func aBadTagUnderSixBotsPausesTheRolloutAfterTwoRollbacks() async throws {
        let deployment = try Deployment("rollout")
        defer { deployment.remove() }
        let registry = try await TestRegistry()
        defer { registry.stop() }
        try await TestDocker.withClient(cleaning: deployment.tag) { client in
            #expect(try await deployment.botmaker(["migrate"]).status == 0)
            let reference = try await registry.push(Self.gateway, as: "bots/fleet-\(deployment.tag)", tag: "1")
            let names = (0..<6).map { "r\($0)" }
            let rows = names.map { "('\(deployment.bot($0))', '\(reference)', 'always')" }.joined(separator: ",")
            try await deployment.sqlite("INSERT INTO bots (id, image, pull_policy) VALUES \(rows)")
            let reconcile = { (extra: [String]) in
                try await deployment.botmaker(["reconcile", "--registry-config", registry.configJSON, "--max-parallel-updates", "1"] + extra)
            }
            let first = try await reconcile(["--wait"])
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            let before = try await deployment.containers(client).mapValues(\.id)
            #expect(before.count == 6)

            try await registry.push(try await Self.unhealthyImage(), as: "bots/fleet-\(deployment.tag)", tag: "1")
            let rollout = try await reconcile(["--check-images"])
            #expect(rollout.status == 1, "\(rollout.stdout)\(rollout.stderr)")
            var codes: [String: Int] = [:]
            for name in names { codes[try await deployment.status(name, "last_error_code"), default: 0] += 1 }
            #expect(codes == ["UPDATE_ROLLED_BACK": 2, "ROLLOUT_PAUSED": 4], "\(codes)\n\(rollout.stdout)")
            let after = try await deployment.containers(client)
            #expect(after.mapValues(\.id) == before, "all six run their original containers")
            #expect(after.values.allSatisfy { $0.state == "running" })
            let status = try await deployment.botmaker(["status"])
            #expect(status.stdout.contains("updates: 0 in progress, 0 waiting their turn, 2 rolled back, 4 paused"), "\(status.stdout)")

            // Resumed: the paused bots are tried again (and, the image being bad, rolled back and paused again).
            let resumed = try await deployment.botmaker(["rollout", "resume"])
            #expect(resumed.stdout.contains("resumed: 4 bots"), "\(resumed.stdout)")
            _ = try await reconcile([])
            var rolledBack = 0
            for name in names where try await deployment.status(name, "last_error_code") == "UPDATE_ROLLED_BACK" { rolledBack += 1 }
            #expect(rolledBack == 4, "two more attempts after the resume")
            #expect(try await deployment.containers(client).mapValues(\.id) == before)
        }
        await TestDocker.removeImageReferences(from: registry.host)
    }
}

/// `docker events` for one label, recorded from the moment it is subscribed.
final class DockerEventWatcher: @unchecked Sendable {
    struct Event: CustomStringConvertible {
        var action: String
        var id: String
        var description: String { "\(action) \(id.prefix(12))" }
    }

    private let process = Process()
    private let pipe = Pipe()
    private let lock = NSLock()
    private var lines: [String] = []
    private var buffer = Data()

    init(label: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["docker", "events", "--filter", "type=container", "--filter", "label=\(label)", "--format", "{{.Action}} {{.Actor.ID}}"]
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock {
                self.buffer.append(data)
                while let newline = self.buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    self.lines.append(String(decoding: self.buffer[..<newline], as: UTF8.self))
                    self.buffer.removeSubrange(...newline)
                }
            }
        }
        try process.run()
    }

    var events: [Event] {
        lock.withLock { lines }.compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            return parts.count == 2 ? Event(action: parts[0], id: parts[1]) : nil
        }
    }

    /// Returns once the subscription delivers: `container` (which has the label) is paused and unpaused until the watcher
    /// has seen it.
    func ready(_ container: String) async throws {
        try await eventually(timeout: 20, "docker events delivers") {
            _ = try await runProcess(["docker", "pause", container])
            _ = try await runProcess(["docker", "unpause", container])
            return self.events.contains { $0.action == "unpause" }
        }
    }

    /// Waits until `action` of container `id` was seen, then stops watching and returns everything seen.
    func stop(waitingFor action: String, of id: String) async throws -> [Event] {
        try await eventually(timeout: 20, "docker events shows \(action) of \(id.prefix(12))") {
            self.events.contains { $0.action == action && $0.id == id }
        }
        stop()
        return events
    }

    func stop() {
        // SIGKILL, not a wait on this (cooperative) thread: the watcher's end needs nothing from it.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        pipe.fileHandleForReading.readabilityHandler = nil
    }
}
