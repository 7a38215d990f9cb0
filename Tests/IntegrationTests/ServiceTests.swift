import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// `botmaker run` as a real process against the real engine.
@Suite(.enabled(if: TestDocker.shouldRun, "no Docker engine (set BOTMAKER_REQUIRE_DOCKER=1 to make this a failure)"))
struct ServiceTests {
    func withService(_ prefix: String, extra: [String] = [], _ body: (Deployment, ServiceProcess, DockerClient) async throws -> Void) async throws {
        let deployment = try Deployment(prefix)
        defer { deployment.remove() }
        try await TestDocker.withClient(cleaning: deployment.tag) { client in
            #expect(try await deployment.botmaker(["migrate"]).status == 0)
            let service = try ServiceProcess(
                arguments: deployment.commonArguments + ["--poll-interval", "0.1", "--metrics-addr", "127.0.0.1:0", "--log-level", "debug"] + extra,
                logPath: deployment.dir.file("run.log"))
            do {
                try await body(deployment, service, client)
            } catch {
                Issue.record("service log:\n\(service.log)")
                _ = try? await service.stop(signal: SIGKILL)
                throw error
            }
            if service.isRunning { _ = try await service.stop() }
        }
    }

    func state(_ deployment: Deployment, _ client: DockerClient, _ name: String) async throws -> ContainerSummary? {
        try await deployment.containers(client)["botmaker-\(deployment.bot(name))"]
    }

    @Test(.timeLimit(.minutes(3))) func convergesOnDatabaseEditsAndDockerEvents() async throws {
        try await withService("svc") { deployment, service, client in
            let port = try await service.metricsPort()
            #expect(try await httpGet(port: port, path: "/healthz").status == 200)
            #expect(try await httpGet(port: port, path: "/readyz").status == 200)

            // sqlite3 insert → running
            try await deployment.insertBots(["a"])
            try await eventually("bot a running") { try await state(deployment, client, "a")?.state == "running" }
            let firstId = try #require(try await state(deployment, client, "a")?.id)

            // docker rm -f → recreated
            #expect(try await runProcess(["docker", "rm", "-f", "botmaker-\(deployment.bot("a"))"]).status == 0)
            try await eventually("bot a recreated") {
                let now = try await state(deployment, client, "a")
                return now?.state == "running" && now?.id != firstId
            }

            // docker stop → started again
            #expect(try await runProcess(["docker", "stop", "botmaker-\(deployment.bot("a"))"]).status == 0)
            try await eventually("bot a restarted") { try await state(deployment, client, "a")?.state == "running" }

            // An unmanaged container with a bot's name is reported, never touched.
            let foreignId = try await TestDocker.runForeign(name: "botmaker-\(deployment.bot("f"))")
            try await deployment.insertBots(["f"])
            try await eventually("collision recorded") { try await deployment.status("f", "last_error_code") == "ALREADY_EXISTS" }
            #expect(try await client.inspectContainer(foreignId).state.running)

            // Metrics: well-formed Prometheus text whose pass counter moves.
            let before = try await Self.sum(of: "botmaker_reconcile_total", in: httpGet(port: port, path: "/metrics").body)
            try await deployment.sqlite("UPDATE bots SET desired_state = 'stopped' WHERE id = '\(deployment.bot("a"))'")
            try await eventually("bot a stopped") { try await state(deployment, client, "a")?.state == "exited" }
            let metrics = try await httpGet(port: port, path: "/metrics")
            #expect(metrics.status == 200)
            try Self.checkPrometheusText(metrics.body)
            #expect(Self.sum(of: "botmaker_reconcile_total", in: metrics.body) > before)
            for name in ["botmaker_reconcile_duration_seconds_bucket", "botmaker_actions_total", "botmaker_docker_requests_total",
                         "botmaker_bots", "botmaker_bots_in_error", "botmaker_last_successful_resync_timestamp_seconds",
                         "botmaker_resyncs_total", "botmaker_workqueue_depth", "botmaker_workqueue_busy_workers",
                         "botmaker_workqueue_oldest_age_seconds", "botmaker_workqueue_waiting_keys"] {
                #expect(metrics.body.contains("\n\(name)"), "missing \(name)")
            }

            // Row deleted → removed.
            try await deployment.sqlite("DELETE FROM bots WHERE id = '\(deployment.bot("a"))'")
            try await eventually("bot a removed") { try await state(deployment, client, "a") == nil }

            // One reconciler per database: a second run and an applying reconcile are refused; dry run and status are not.
            let second = try await deployment.botmaker(["run"])
            #expect(second.status != 0)
            #expect(second.stderr.contains("\(deployment.db).lock"), "\(second.stderr)")
            #expect(second.stderr.contains("pid \(service.pid)"), "\(second.stderr)")
            #expect(try await deployment.botmaker(["reconcile"]).status != 0)
            #expect(try await deployment.botmaker(["reconcile", "--dry-run"]).status == 0)
            #expect(try await deployment.botmaker(["status"]).status == 0)

            #expect(service.isRunning)
            let exit = try await service.stop(signal: SIGTERM, timeout: 20)
            #expect(exit == 0, "\(service.log)")
            #expect(try await client.inspectContainer(foreignId).state.running)
            #expect(!service.log.contains("hello"), "env values must not be logged")
        }
    }

    /// Head-of-line: bot a ignores SIGTERM, so its stop takes the whole 20 s grace period. While that stop is
    /// under way (botmaker's own record says so), bot b is removed behind botmaker's back and must be
    /// repaired before a's stop ends. Under the first generation b waited for a's stop.
    @Test(.timeLimit(.minutes(3))) func aSlowStopDoesNotDelayTheRepairOfAnotherBot() async throws {
        try await withService("hol", extra: ["--stop-grace", "20", "--shutdown-grace", "1"]) { deployment, _, client in
            let stubborn = #"["sh","-c","trap '' TERM; while true; do sleep 1; done"]"#.replacingOccurrences(of: "'", with: "''")
            try await deployment.sqlite(
                "INSERT INTO bots (id, image, command) VALUES ('\(deployment.bot("a"))', '\(TestDocker.image)', '\(stubborn)')")
            try await deployment.insertBots(["b"])
            try await eventually("both running") {
                let a = try await state(deployment, client, "a")?.state
                let b = try await state(deployment, client, "b")?.state
                return a == "running" && b == "running"
            }
            let firstB = try #require(try await state(deployment, client, "b")?.id)

            try await deployment.sqlite("UPDATE bots SET desired_state = 'stopped' WHERE id = '\(deployment.bot("a"))'")
            try await eventually("a's stop under way") { try await deployment.status("a", "in_flight_action") == "stopping" }
            #expect(try await runProcess(["docker", "rm", "-f", "botmaker-\(deployment.bot("b"))"]).status == 0)
            try await eventually(timeout: 60, "b repaired") {
                let b = try await state(deployment, client, "b")
                return b?.state == "running" && b?.id != firstB
            }
            #expect(try await deployment.status("a", "in_flight_action") == "stopping", "b's repair waited for a's stop")
            #expect(try await state(deployment, client, "a")?.state == "running")
            #expect(try await deployment.botmaker(["status"]).stdout.contains("stopping since"))
        }
    }

    /// The database path is watched: replaced with `mv` the service exits non-zero on its own (it never acts on
    /// the detached file) and a restart converges to the new file; deleted with `rm`, the same.
    @Test(.timeLimit(.minutes(3))) func aReplacedOrDeletedDatabaseStopsTheService() async throws {
        try await withService("swap") { deployment, service, client in
            try await deployment.insertBots(["a"])
            try await eventually("a running") { try await state(deployment, client, "a")?.state == "running" }

            // A copy of this database (its backup, so the same identity) with one bot more, moved over the live file.
            let copy = deployment.dir.file("restored.db")
            #expect(try await deployment.botmaker(["backup", copy]).status == 0)
            let firstA = try #require(try await state(deployment, client, "a")?.id)
            let value = "('\(deployment.bot("b"))', '\(TestDocker.image)', '[\"GREETING=hello\"]')"
            #expect(try await runProcess(["sqlite3", copy, "INSERT INTO bots (id, image, environment) VALUES \(value)"]).status == 0)
            #expect(try await runProcess(["mv", copy, deployment.db]).status == 0)
            let exit = await service.waitForExit(timeout: 60)
            #expect(exit != nil && exit != 0, "\(service.log)")
            #expect(service.log.contains("now names another file"), "\(service.log)")
            #expect(try await state(deployment, client, "b") == nil, "the detached service acted on the new file")

            let restarted = try ServiceProcess(arguments: deployment.commonArguments + ["--poll-interval", "0.1"],
                                               logPath: deployment.dir.file("run2.log"))
            try await eventually("b running after the restart") { try await state(deployment, client, "b")?.state == "running" }
            let a = try await state(deployment, client, "a")
            #expect(a?.state == "running" && a?.id == firstA, "a, the same in both files, keeps its container")

            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: deployment.db + suffix) }
            let gone = await restarted.waitForExit(timeout: 60)
            #expect(gone != nil && gone != 0, "\(restarted.log)")
            #expect(restarted.log.contains("is gone"), "\(restarted.log)")
            #expect(try await state(deployment, client, "a")?.id == firstA, "a deleted database removes nothing")
        }
    }

    @Test(.timeLimit(.minutes(3))) func sigtermDuringALargeApplyExitsZeroAndLeavesOnlyLabelledContainers() async throws {
        try await withService("term") { deployment, service, client in
            try await deployment.insertBots((1...16).map { "b\($0)" })
            try await eventually("first containers") { try await !deployment.containers(client).isEmpty }
            let exit = try await service.stop(signal: SIGTERM, timeout: 20)
            #expect(exit == 0, "\(service.log)")
            let all = try await client.listContainers(all: true, filters: ["name": [deployment.tag]])
            for container in all {
                #expect(container.labels["botmaker.managed"] == "true")
                #expect(container.labels["botmaker.bot-id"] != nil)
            }
            let next = try await deployment.botmaker(["reconcile"])
            #expect(next.status == 0, "\(next.stdout)")
            #expect(try await deployment.containers(client).values.filter { $0.state == "running" }.count == 16)
        }
    }

    @Test(.timeLimit(.minutes(2))) func unreachableDockerIsRecordedAndMakesReadyzFail() async throws {
        try await withService("nodocker", extra: ["--docker-host", "unix:///nonexistent/\(uniqueSuffix()).sock"]) { deployment, service, _ in
            let port = try await service.metricsPort()
            try await deployment.insertBots(["a"])
            try await eventually("NETWORK_ERROR recorded") { try await deployment.status("a", "last_error_code") == "NETWORK_ERROR" }
            #expect(try await httpGet(port: port, path: "/healthz").status == 200)
            let ready = try await httpGet(port: port, path: "/readyz")
            #expect(ready.status == 503)
            #expect(ready.body.contains("docker"))
            #expect(service.isRunning)
        }
    }

    // MARK: - Prometheus text checks

    static func checkPrometheusText(_ text: String) throws {
        let sample = try Regex(#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? [-+0-9.eE]+|[-+]Inf|NaN$"#)
        for line in text.split(separator: "\n") where !line.isEmpty {
            if line.hasPrefix("# TYPE ") || line.hasPrefix("# HELP ") { continue }
            #expect(try sample.wholeMatch(in: String(line)) != nil, "malformed line: \(line)")
        }
    }

    static func sum(of metric: String, in text: String) -> Double {
        text.split(separator: "\n").filter { $0.hasPrefix(metric + "{") || $0.hasPrefix(metric + " ") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }
}
