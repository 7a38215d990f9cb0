@testable import BotMaker
import DockerEngine
import Foundation
import Logging
import Testing
import TestSupport

@Suite struct ServiceSchedulingTests {
    @Test func aBurstOfTriggersCoalescesIntoOnePendingPass() async {
        let queue = TriggerQueue()
        for _ in 0..<100 { queue.fire(.database) }
        queue.fire(.dockerEvent)
        queue.finish()
        var received: [PassTrigger] = []
        for await trigger in queue.stream { received.append(trigger) }
        #expect(received == [.dockerEvent])
    }

    @Test func triggersDuringAPassLeadToExactlyOneMorePass() async {
        let queue = TriggerQueue()
        let passes = LockedBox(0)
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
        queue.fire(.startup)
        let loop = Task {
            var releases = release.makeAsyncIterator()
            for await _ in queue.stream {
                passes.update { $0 += 1 }
                startedContinuation.yield()
                _ = await releases.next()
            }
        }
        var startedIterator = started.makeAsyncIterator()
        _ = await startedIterator.next()  // first pass is running
        for _ in 0..<50 { queue.fire(.database) }
        releaseContinuation.yield()  // first pass ends
        _ = await startedIterator.next()  // the one coalesced pass starts
        releaseContinuation.yield()
        queue.finish()
        await loop.value
        #expect(passes.value == 2)
    }

    @Test func nextWakeIsTheEarliestFutureDeadline() {
        let now = Date(timeIntervalSince1970: 1_000)
        var waiting = BotStatus(botId: "w")
        waiting.nextAttemptAt = now.addingTimeInterval(30)
        var past = BotStatus(botId: "p")
        past.nextAttemptAt = now.addingTimeInterval(-5)
        let plan = Plan(actions: [
            PlannedAction(botId: "w", containerName: "botmaker-w", kind: .wait, cause: "backing off"),
            PlannedAction(botId: "p", containerName: "botmaker-p", kind: .wait, cause: "backing off"),
        ])
        let failed = ActionResult(action: PlannedAction(botId: "f", containerName: "botmaker-f", kind: .create, cause: "no container"),
                                  error: ContainerError(.notFound, "No such image"), seconds: 0.1, nextAttemptAt: now.addingTimeInterval(2))
        #expect(WakeSchedule.nextWake(plan: plan, statuses: ["w": waiting, "p": past], results: [], now: now) == now.addingTimeInterval(30))
        #expect(WakeSchedule.nextWake(plan: plan, statuses: ["w": waiting, "p": past], results: [failed], now: now) == now.addingTimeInterval(2))
        #expect(WakeSchedule.nextWake(plan: Plan(), statuses: [:], results: [], now: now) == nil)
    }

    /// The poller fires `backoff` only once the injected clock passes the deadline, fires `database`
    /// for another connection's commit, and never for the service's own writes.
    @Test(.timeLimit(.minutes(3))) func pollerUsesTheInjectedClockAndIgnoresOwnWrites() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Store.open(path: dir.file("bots.db"))
        let clock = LockedBox(Date(timeIntervalSince1970: 5_000))
        let client = DockerClient(host: DockerHost(transport: .unixSocket(path: dir.file("no-docker.sock"))))
        let reconciler = Reconciler(store: store, docker: DockerService(client: client), secrets: SecretsManager(root: dir.file("s")),
                                    now: { clock.value })
        var settings = ReconcilerService.Settings()
        settings.pollInterval = .milliseconds(20)
        let service = ReconcilerService(reconciler: reconciler, settings: settings, logger: Logger(label: "test"))
        service.pendingWake = Date(timeIntervalSince1970: 5_010)
        let poller = Task { await service.pollDatabaseAndDeadlines() }
        var triggers = service.triggers.stream.makeAsyncIterator()

        // Our own write: no trigger. Then the clock passes the deadline: exactly one backoff trigger.
        try store.addBot(id: "own", changes: BotChanges(image: "img:1"))
        try await Task.sleep(for: .milliseconds(200))
        clock.update { $0 = Date(timeIntervalSince1970: 5_011) }
        #expect(await triggers.next() == .backoff)
        #expect(service.pendingWake == nil)

        // Another connection commits: a database trigger.
        try runProcess(["sqlite3", dir.file("bots.db"), "INSERT INTO bots (id, image) VALUES ('other', 'img:1')"])
        #expect(await triggers.next() == .database)
        poller.cancel()
        await poller.value
        try await client.shutdown()
    }

    @Test func eventsThatDoNotChangeContainersAreIgnored() {
        #expect(ReconcilerService.triggersPass("die"))
        #expect(ReconcilerService.triggersPass("destroy"))
        #expect(ReconcilerService.triggersPass("start"))
        #expect(!ReconcilerService.triggersPass("exec_start"))
        #expect(!ReconcilerService.triggersPass("health_status"))
    }

    @Test func metricsAddressesParse() {
        #expect(MetricsServer.parseAddress("127.0.0.1:9464")! == ("127.0.0.1", 9464))
        #expect(MetricsServer.parseAddress("[::1]:0")! == ("::1", 0))
        #expect(MetricsServer.parseAddress("9464") == nil)
        #expect(MetricsServer.parseAddress(":9464") == nil)
        #expect(MetricsServer.parseAddress("h:70000") == nil)
    }

    @Test func lockIsExclusiveAndNamesTheHolder() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let first = try ReconcilerLock.acquire(databasePath: dir.file("bots.db"))
        // flock is per open file description: a second acquisition in the same process conflicts too.
        do {
            _ = try ReconcilerLock.acquire(databasePath: dir.file("bots.db"))
            Issue.record("second lock acquired")
        } catch {
            #expect(error.message.contains(dir.file("bots.db.lock")))
            #expect(error.message.contains("pid \(getpid())"))
        }
        withExtendedLifetime(first) {}
    }
}
