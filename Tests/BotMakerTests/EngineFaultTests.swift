import BotMaker
import DockerEngine
import Foundation
import Logging
import Testing
import TestSupport

/// Engine faults that the real daemon cannot show on demand, against a stand-in on a unix socket.
@Suite(.timeLimit(.minutes(1))) struct EngineFaultTests {
    /// Regression: the deadline restarted for the body, so a request could take twice its deadline.
    @Test func oneDeadlineCoversTheHeadAndTheBody() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let engine = try await FakeEngine(.slowHeadThenSlowBody, in: dir)
        let client = DockerClient(host: try DockerHost(parsing: engine.host), deadlines: .init(short: 1))
        do {
            _ = try await client.listContainers()
            Issue.record("the list answered although head + body took 1.4 s against a 1 s deadline")
        } catch {
            guard case .timeout(let operation, _) = error else { Issue.record("expected a timeout, got \(error)"); return }
            #expect(operation == "containers.list")
        }
        try await client.shutdown()
        await engine.stop()
    }

    /// Regression: a failed container listing was recorded as START_FAILED.
    @Test func aFailedListingIsAnObserveFailureNotAStartFailure() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let engine = try await FakeEngine(.serverError, in: dir)
        let runtime = try DockerService.connect(host: engine.host, logger: Logger(label: "test"))
        do {
            _ = try await runtime.observe()
            Issue.record("the listing succeeded")
        } catch {
            #expect(error.code == .observeFailed)
            #expect(error.message == "the daemon broke while listing")
        }
        let perBot = await containerError { _ = try await runtime.observe(botId: "a") }
        #expect(perBot?.code == .observeFailed)
        await runtime.shutdown()
        await engine.stop()
    }

    @Test func aMalformedDockerHostIsAConfigurationError() {
        do {
            _ = try DockerService.connect(host: "ftp://nowhere", logger: Logger(label: "test"))
            Issue.record("a malformed DOCKER_HOST was accepted")
        } catch {
            #expect(error.code == .configError)
        }
    }
}
