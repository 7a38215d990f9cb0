import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// Tests that read the engine's past events. Docker keeps only its last 256 events: in the parallel suite other tests'
/// events push them out within seconds, so scripts/test runs this suite on its own.
@Suite(.enabled(if: TestDocker.shouldRun, "no Docker engine (set BOTMAKER_REQUIRE_DOCKER=1 to make this a failure)"))
struct QuietEngineTests {
    /// Docker resets `State.ExitCode` when it restarts a container; the status still says how the run before ended
    /// (what a rolled-back update reports), read from the engine's `die` event.
    @Test(.timeLimit(.minutes(2)), .disabled(if: TestDocker.isPodman, "not run on Podman: its events API replays no past window (docs/podman.md)"))
    func aRestartedContainerReportsTheExitCodeOfItsRunBefore() async throws {
        let id = "rst-\(uniqueSuffix())"
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try await TestDocker.withClient(cleaning: id) { client in
            let docker = DockerServiceTests.service(client, instance: id)
            var config = try DockerServiceTests.config(dir, id)
            config.command = ["sh", "-c", "test -f /ran && exec sleep 600; touch /ran; exit 3"]
            _ = try await docker.createContainer(botId: id, config: config)
            try await docker.startContainer(botId: id)
            var status = try #require(try await docker.getContainerStatus(botId: id))
            let deadline = Date().addingTimeInterval(60)
            while !(status.state == .running && status.restartCount == 1), Date() < deadline {
                try await Task.sleep(for: .milliseconds(50))
                // A loaded engine may miss the 5 s deadline of one look: look again.
                if let seen = try? await docker.getContainerStatus(botId: id) { status = seen }
            }
            #expect(status.state == .running && status.restartCount == 1, "\(status)")
            #expect(status.exitCode == nil)
            // The lookup is bounded (5 s): on an engine loaded by the parallel suite, look again.
            for _ in 0..<5 where status.lastExitCode == nil {
                if let seen = try? await docker.getContainerStatus(botId: id), seen.restartCount == 1 { status = seen }
            }
            #expect(status.lastExitCode == 3)
        }
    }
}
