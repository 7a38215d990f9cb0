import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// The Docker daemon goes away under a running service and comes back. Stops the engine, so it runs
/// alone: `scripts/test` runs it in a second `swift test` with BOTMAKER_DAEMON_TESTS=1, only when
/// it started the engine itself (always the case in CI).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["BOTMAKER_DAEMON_TESTS"] == "1", "stops the Docker engine; run by scripts/test"))
struct DaemonRestartTests {
    @Test(.timeLimit(.minutes(5))) func serviceSurvivesTheDaemonGoingAwayAndConvergesWhenItReturns() async throws {
        let deployment = try Deployment("daemon")
        defer { deployment.remove() }
        try await TestDocker.withClient(cleaning: deployment.tag) { client in
            #expect(try deployment.botmaker(["migrate"]).status == 0)
            let service = try ServiceProcess(
                arguments: deployment.commonArguments + ["--poll-interval", "0.1", "--resync-interval", "2", "--log-level", "debug"],
                logPath: deployment.dir.file("run.log"))
            try deployment.insertBots(["a", "b"])
            try await eventually("bots running") {
                try await deployment.containers(client).values.filter { $0.state == "running" }.count == 2
            }

            let pid = try String(contentsOfFile: "/var/run/docker.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try runProcess(["kill", pid]).status == 0)
            try await eventually(timeout: 90, "engine down") { !(try runProcess(["docker", "version"]).status == 0) }
            try await eventually(timeout: 60, "NETWORK_ERROR recorded") { try deployment.status("a", "last_error_code") == "NETWORK_ERROR" }
            #expect(service.isRunning, "\(service.log)")

            #expect(try runProcess(["bash", "-c", "nohup dockerd >>/tmp/botmaker-dockerd.log 2>&1 &"]).status == 0)
            try await eventually(timeout: 90, "engine back") { try runProcess(["docker", "version"]).status == 0 }
            try await eventually(timeout: 90, "bots converge again") {
                let running = try await deployment.containers(client).values.filter { $0.state == "running" }.count
                return try running == 2 && deployment.status("a", "last_error_code").isEmpty && deployment.status("b", "last_error_code").isEmpty
            }
            #expect(service.isRunning)
            #expect(try await service.stop(timeout: 20) == 0, "\(service.log)")
        }
    }
}
