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
            // Wait for the process itself to exit: a new dockerd refuses to start while the old pid file exists.
            try await eventually(timeout: 90, "engine exited") { try runProcess(["kill", "-0", pid]).status != 0 }
            try await eventually(timeout: 60, "NETWORK_ERROR recorded") { try deployment.status("a", "last_error_code") == "NETWORK_ERROR" }
            #expect(service.isRunning, "\(service.log)")

            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            // Not waited for: Foundation's Process sees a child end only when every holder of its status
            // socket closes it, and the new dockerd inherits that socket.
            let starter = Process()
            starter.executableURL = URL(fileURLWithPath: "/bin/bash")
            starter.arguments = ["-c", "source scripts/lib.sh && ensure_dockerd"]
            starter.currentDirectoryURL = root
            starter.standardInput = FileHandle.nullDevice
            starter.standardOutput = FileHandle.nullDevice
            starter.standardError = FileHandle.nullDevice
            try starter.run()
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
