import BotMaker
import Foundation
import Logging
import GRDB
import Testing
import TestSupport

/// The work queue and its workers on the in-memory engine and a manual clock, with a real SQLite
/// file: scheduling is proven by ordering, never by waiting for wall-clock time.
@Suite(.timeLimit(.minutes(1))) struct ControllerTests {
    final class Fixture: Sendable {
        let dir: TemporaryDirectory
        let store: Store
        let clock = ManualWallClock()
        let runtime: InMemoryRuntime
        let controller: Controller
        let reports: AsyncStream<KeyReport>

        init(concurrency: Int = 4, maxParallelUpdates: Int = 1) throws {
            dir = try TemporaryDirectory()
            store = try Store.open(path: dir.file("bots.db"))
            runtime = InMemoryRuntime(clock: clock, owner: store.ownerId)
            let (stream, continuation) = AsyncStream.makeStream(of: KeyReport.self)
            reports = stream
            var settings = Controller.Settings(concurrency: concurrency, backoff: Backoff(base: 1, cap: 8, jitter: 0))
            settings.maxParallelUpdates = maxParallelUpdates
            controller = Controller(store: store, runtime: runtime, secrets: SecretsManager(root: dir.file("secrets")),
                                    settings: settings, clock: clock, logger: Logger(label: "test"), onReport: { continuation.yield($0) })
        }

        func add(_ ids: String..., state: DesiredState = .running) throws {
            for id in ids { try store.addBot(id: id, changes: BotChanges(image: "img:1", desiredState: state)) }
        }

        func status(_ id: String) async throws -> BotStatus? { try await store.botState(id: id).status }

        deinit { dir.remove() }
    }

    /// Reads reports until one for `key` arrives.
    static func report(for key: WorkKey, from reports: inout AsyncStream<KeyReport>.Iterator) async -> KeyReport? {
        while let report = await reports.next() {
            if report.key == key { return report }
        }
        return nil
    }

    /// Reads reports until one for each of `keys` has arrived, in whatever order the workers finish them.
    static func reports(for keys: Set<WorkKey>, from reports: inout AsyncStream<KeyReport>.Iterator) async -> [WorkKey: KeyReport] {
        var found: [WorkKey: KeyReport] = [:]
        while found.count < keys.count, let report = await reports.next() {
            if keys.contains(report.key) { found[report.key] = report }
        }
        return found
    }

    /// Runs `body` with the controller's workers; the workers end with it. A test cancelled by its time limit cancels
    /// them too (a worker may be parked on the manual clock), so a stuck test fails instead of hanging the run.
    static func withWorkers(_ fixture: Fixture, _ body: (inout AsyncStream<KeyReport>.Iterator) async throws -> Void) async throws {
        let workers = Task { await fixture.controller.runWorkers() }
        var reports = fixture.reports.makeAsyncIterator()
        let finish = {
            fixture.controller.queue.shutDown()
            await withTaskCancellationHandler { await workers.value } onCancel: { workers.cancel() }
        }
        do {
            try await body(&reports)
        } catch {
            await finish()
            throw error
        }
        await finish()
    }

    /// Issue 11: an unhealthy container is restarted and recorded UNHEALTHY; while it stays unhealthy the restarts
    /// follow the backoff (here 1, 2, 4 s), and a healthy check clears the error.
    @Test func anUnhealthyBotIsRestartedOnTheBackoffSchedule() async throws {
        let fixture = try Fixture()
        try fixture.add("h")
        try await Self.withWorkers(fixture) { reports in
            try await fixture.controller.resync()
            _ = await Self.report(for: .bot("h"), from: &reports)
            for round in 1...3 {
                await fixture.runtime.setHealth(botId: "h", .unhealthy)
                fixture.controller.queue.add(.bot("h"))  // as the health_status event would
                if round > 1 {
                    // The bot waits for its backoff: no restart before the deadline.
                    let waiting = await Self.report(for: .bot("h"), from: &reports)
                    #expect(waiting?.actions.map(\.kind) == [.wait])
                    #expect(await fixture.runtime.callCount(.restart, botId: "h") == round - 1)
                    await fixture.clock.waitForSleepers(1)
                    fixture.clock.advance(by: pow(2, Double(round - 2)))
                }
                let restarted = await Self.report(for: .bot("h"), from: &reports)
                #expect(restarted?.results.map(\.action.kind) == [.restart])
                let status = try await fixture.status("h")
                #expect(status?.lastErrorCode == "UNHEALTHY")
                #expect(status?.failureCount == round)
                #expect(status?.lastErrorMessage?.contains("in-memory health check failed") == true)
            }
            #expect(await fixture.runtime.callCount(.restart, botId: "h") == 3)
            await fixture.runtime.setHealth(botId: "h", .healthy)
            fixture.controller.queue.add(.bot("h"))
            let holding = await Self.report(for: .bot("h"), from: &reports)
            #expect(holding?.actions.map(\.kind) == [.wait], "healthy again: the error clears only if it stays healthy")
            #expect(try await fixture.status("h")?.lastErrorCode == "UNHEALTHY")
            await fixture.clock.waitForSleepers(1)
            fixture.clock.advance(by: Planner.healthyWindow)
            _ = await Self.report(for: .bot("h"), from: &reports)
            let healed = try await fixture.status("h")
            #expect(healed?.lastErrorCode == nil)
            #expect(healed?.health == "healthy")
        }
    }

    /// Issue 12: bots waiting for one image cause one pull, which holds no worker: another bot is repaired while it
    /// runs, and every waiting bot is created when it lands.
    @Test func onePullPerImageHoldsNoWorker() async throws {
        let fixture = try Fixture(concurrency: 2)
        let waiting = ["p1", "p2", "p3", "p4"]
        try fixture.add("other")
        try await Self.withWorkers(fixture) { reports in
            try await fixture.controller.resync()
            _ = await Self.report(for: .bot("other"), from: &reports)
            await fixture.runtime.setImageMissing("img:2")
            await fixture.runtime.setInRegistry("img:2")
            await fixture.runtime.setLatency(.pull, 60)
            for id in waiting { try fixture.store.addBot(id: id, changes: BotChanges(image: "img:2")) }
            try await fixture.controller.resync()
            var parked = Set<String>()
            while parked.count < waiting.count, let report = await reports.next() {
                if report.actions.contains(where: { $0.kind == .wait && $0.cause.contains("img:2") }) { parked.insert(report.key.description) }
            }
            await fixture.clock.waitForSleepers(1)  // the one pull, in progress
            #expect(await fixture.runtime.callCount(.pull) == 1)
            #expect(try await fixture.status("p1")?.waitingFor?.contains("img:2") == true)

            await fixture.runtime.removeExternally(botId: "other")
            fixture.controller.queue.add(.bot("other"))
            let repaired = await Self.report(for: .bot("other"), from: &reports)
            #expect(repaired?.results.map(\.action.kind) == [.create], "a repair goes ahead while the pull runs")

            fixture.clock.advance(by: 60)
            var created = Set<String>()
            while created.count < waiting.count, let report = await reports.next() {
                for result in report.results where result.action.kind == .create && result.succeeded { created.insert(result.action.botId) }
            }
            #expect(created == Set(waiting))
            #expect(await fixture.runtime.callCount(.pull) == 1, "one pull for four bots")
        }
    }

    /// Issue 12: `never` makes no pull and records IMAGE_NOT_FOUND; a failed pull is recorded on every bot that waited.
    @Test func neverDoesNotPullAndAFailedPullIsRecordedOnItsBots() async throws {
        let fixture = try Fixture()
        try await Self.withWorkers(fixture) { reports in
            await fixture.runtime.setImageMissing("img:9")
            var never = BotChanges(image: "img:9")
            never.pullPolicy = .never
            try fixture.store.addBot(id: "n", changes: never)
            try fixture.store.addBot(id: "f", changes: BotChanges(image: "img:9"))
            try await fixture.controller.resync()
            let refused = await Self.report(for: .bot("n"), from: &reports)
            #expect(refused?.results.first?.error?.code == .imageNotFound)
            var failed: KeyReport?
            while failed == nil, let report = await reports.next() {
                if report.key == .bot("f"), report.results.contains(where: { !$0.succeeded }) { failed = report }
            }
            #expect(failed?.results.first?.error?.code == .imageNotFound)
            #expect(try await fixture.status("f")?.lastErrorCode == "IMAGE_NOT_FOUND")
            #expect(try await fixture.status("n")?.lastErrorMessage?.contains("pull_policy is never") == true)
            #expect(await fixture.runtime.callCount(.pull, botId: "img:9") == 1, "only the bot that may pull asked for it")
        }
    }

    /// A test stopped by its time limit while a worker is parked on the manual clock ends (failed) instead of hanging
    /// the whole run: the workers are cancelled with it.
    @Test func aCancelledTestEndsItsParkedWorkers() async throws {
        let fixture = try Fixture(concurrency: 1)
        try fixture.add("a")
        await fixture.runtime.setLatency(.create, 3_600)
        let test = Task {
            try await Self.withWorkers(fixture) { _ in
                fixture.controller.queue.add(.bot("a"))
                try await Task.sleep(for: .seconds(3_600))  // stands for a wait that never ends
            }
        }
        await fixture.clock.waitForSleepers(1)  // the worker is inside a's create, which the clock never ends
        test.cancel()
        #expect(await test.result.isFailure, "cancelled, the test ends with its cancellation")
    }

    @Test func aSlowStopHoldsOneWorkerAndBlocksNoOtherBot() async throws {
        let fixture = try Fixture(concurrency: 2)
        try fixture.add("a", "b")
        try await Self.withWorkers(fixture) { reports in
            try await fixture.controller.resync()
            // Two workers create a and b at once: their reports come in either order.
            #expect(await Self.reports(for: [.bot("a"), .bot("b")], from: &reports).count == 2)
            #expect(await fixture.runtime.container(botId: "b")?.state == .running)

            await fixture.runtime.setLatency(.stop, 10, botId: "a")
            try fixture.store.updateBot(id: "a", changes: BotChanges(desiredState: .stopped))
            fixture.controller.queue.add(.bot("a"))
            await fixture.clock.waitForSleepers(1)  // a worker is inside a's 10 s stop
            // The in-flight mark is written beside the engine call, not before it.
            try await eventually(timeout: 10, every: .milliseconds(10), "a's in-flight mark") {
                try await fixture.status("a")?.inFlightAction == "stopping"
            }

            await fixture.runtime.removeExternally(botId: "b")
            fixture.controller.queue.add(.bot("b"))
            let repaired = await Self.report(for: .bot("b"), from: &reports)
            #expect(repaired?.results.map(\.action.kind) == [.create])
            #expect(repaired?.results.allSatisfy(\.succeeded) == true)
            // b is running again while a's stop has not finished.
            #expect(await fixture.runtime.container(botId: "b")?.state == .running)
            #expect(await fixture.runtime.container(botId: "a")?.state == .running)

            fixture.clock.advance(by: 10)
            let stopped = await Self.report(for: .bot("a"), from: &reports)
            #expect(stopped?.results.map(\.action.kind) == [.stop])
            #expect(await fixture.runtime.container(botId: "a")?.state == .exited)
            let status = try await fixture.status("a")
            #expect(status?.inFlightAction == nil && status?.inFlightSince == nil)
            #expect(status?.actualState == "exited")
        }
    }

    @Test func aKeyAddedWhileItIsWorkedIsWorkedOnceMoreAndNeverConcurrently() async throws {
        let fixture = try Fixture(concurrency: 4)
        try fixture.add("a")
        await fixture.runtime.setLatency(.create, 5)
        try await Self.withWorkers(fixture) { reports in
            fixture.controller.queue.add(.bot("a"))
            await fixture.clock.waitForSleepers(1)
            for _ in 0..<5 { fixture.controller.queue.add(.bot("a")) }
            fixture.clock.advance(by: 5)
            let first = await Self.report(for: .bot("a"), from: &reports)
            #expect(first?.results.map(\.action.kind) == [.create])
            let second = await Self.report(for: .bot("a"), from: &reports)
            #expect(second?.actions.isEmpty == true, "the second look finds the bot converged")
            await fixture.controller.queue.waitUntilIdle()
        }
        #expect(await fixture.runtime.maxConcurrentPerBot == 1)
        #expect(await fixture.runtime.callCount(.create) == 1)
        #expect(await fixture.runtime.callCount(.observe, botId: "a") == 2)
    }

    @Test func aFailedBotWaitsForItsDeadlineWithoutHoldingAWorker() async throws {
        let fixture = try Fixture(concurrency: 1)
        for id in ["a", "b"] {
            var changes = BotChanges(image: "img:1")
            changes.pullPolicy = .never  // fails at once, without a pull
            try fixture.store.addBot(id: id, changes: changes)
        }
        await fixture.runtime.setImageMissing("img:1")
        try await Self.withWorkers(fixture) { reports in
            fixture.controller.queue.add(.bot("a"))
            let failed = await Self.report(for: .bot("a"), from: &reports)
            #expect(failed?.results.first?.error?.code == .imageNotFound)
            let status = try await fixture.status("a")
            #expect(status?.waitingFor == "retry after IMAGE_NOT_FOUND")
            #expect(status?.nextAttemptAt == fixture.clock.now().addingTimeInterval(1))
            #expect(fixture.controller.queue.deadline(of: .bot("a")) == status?.nextAttemptAt)
            #expect(fixture.controller.queue.stats.busy == 0)

            // The only worker is free for b while a waits (b fails too: same missing image).
            fixture.controller.queue.add(.bot("b"))
            #expect(await Self.report(for: .bot("b"), from: &reports) != nil)

            // An event before the deadline finds a still backing off: it waits again, nothing is called.
            let creates = await fixture.runtime.callCount(.create, botId: "a")
            fixture.controller.queue.add(.bot("a"))
            let early = await Self.report(for: .bot("a"), from: &reports)
            #expect(early?.actions.map(\.kind) == [.wait])
            #expect(await fixture.runtime.callCount(.create, botId: "a") == creates)

            await fixture.runtime.setImageMissing("img:1", false)
            fixture.clock.advance(by: 1)
            let retried = await Self.report(for: .bot("a"), from: &reports)
            #expect(retried?.results.map(\.succeeded) == [true])
            let after = try await fixture.status("a")
            #expect(after?.lastErrorCode == nil && after?.waitingFor == nil && after?.failureCount == 0)
        }
    }

    @Test func orphansAndStraysAreKeysAndAreRemoved() async throws {
        let fixture = try Fixture()
        let ours = [BotLabels.managed: "true", BotLabels.instance: BotLabels.defaultInstance, BotLabels.owner: fixture.store.ownerId]
        await fixture.runtime.addContainer(name: "botmaker-gone", labels: ours.merging([BotLabels.botId: "gone"]) { a, _ in a })
        let stray = await fixture.runtime.addContainer(name: "renamed", labels: ours.merging([BotLabels.botId: "x"]) { a, _ in a })
        let view = try await fixture.controller.resync()
        #expect(Set(view.keysToWork().now) == [.bot("gone"), .container(stray)])
        try await Self.withWorkers(fixture) { _ in await fixture.controller.queue.waitUntilIdle() }
        #expect(await fixture.runtime.allContainers.isEmpty)
    }

    @Test func aForeignContainerHoldingTheNameBlocksTheBotAndIsNeverTouched() async throws {
        let fixture = try Fixture()
        let foreign = await fixture.runtime.addContainer(name: "botmaker-f")
        try fixture.add("f")
        try await Self.withWorkers(fixture) { reports in
            fixture.controller.queue.add(.bot("f"))
            let report = await Self.report(for: .bot("f"), from: &reports)
            #expect(report?.actions.map(\.kind) == [.blocked])
            #expect(report?.actions.first?.errorCode == .alreadyExists)
        }
        #expect(try await fixture.status("f")?.lastErrorCode == "ALREADY_EXISTS")
        #expect(await fixture.runtime.allContainers.map(\.id) == [foreign])
        #expect(await fixture.runtime.calls.filter { $0.1 == "f" }.map(\.0) == [.observe])
    }

    @Test func aConvergedResyncIsOneListCallAndWritesNothing() async throws {
        let fixture = try Fixture()
        try fixture.add("a", "b")
        try fixture.add("s", state: .stopped)
        try await Self.withWorkers(fixture) { _ in
            try await fixture.controller.resync()
            await fixture.controller.queue.waitUntilIdle()
        }
        let writes = fixture.store.writeTransactions
        let calls = await fixture.runtime.calls.count
        let view = try await fixture.controller.resync()
        #expect(view.plan.actions.isEmpty && view.plan.statusUpdates.isEmpty)
        #expect(fixture.controller.queue.stats.depth == 0)
        #expect(await fixture.runtime.calls.count == calls + 1)
        #expect(fixture.store.writeTransactions == writes)
    }

    @Test func anInFlightMarkLeftByACrashIsClearedByTheNextLook() async throws {
        let fixture = try Fixture()
        try fixture.add("a")
        try await Self.withWorkers(fixture) { _ in
            try await fixture.controller.resync()
            await fixture.controller.queue.waitUntilIdle()
            var status = try #require(try await fixture.status("a"))
            status.inFlightAction = "stopping"
            status.inFlightSince = fixture.clock.now()
            try await fixture.store.record(statuses: [status], events: [])
            try await fixture.controller.resync()
            await fixture.controller.queue.waitUntilIdle()
        }
        #expect(try await fixture.status("a")?.inFlightAction == nil)
    }

    @Test func reconcileOnceReturnsWhenNoKeyHasImmediateWork() async throws {
        let fixture = try Fixture()
        try fixture.add("a", "b")
        try fixture.store.addBot(id: "ghost", changes: BotChanges(image: "missing:1"))
        await fixture.runtime.setImageMissing("missing:1")
        let outcome = try await fixture.controller.reconcileOnce()
        let byKey = Dictionary(outcome.reports.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
        #expect(byKey[.bot("a")]?.results.map(\.succeeded) == [true])
        // The one-shot waits for the pull its bot asked for (it holds no worker), then records its failure.
        #expect(byKey[.bot("ghost")]?.results.first?.error?.code == .imageNotFound)
        // The ghost's retry is a deadline, not awaited; the merged plan shows every bot once.
        #expect(outcome.view.merging(outcome.reports).actions.map(\.botId) == ["a", "b", "ghost"])
        let again = try await fixture.controller.reconcileOnce()
        #expect(again.reports.map(\.key) == [.bot("ghost")])
        #expect(again.reports.first?.actions.map(\.kind) == [.wait])
    }

    /// Regression (review): a bot whose container could not be inspected vanished from the one-shot's report,
    /// which could print "No changes" and exit 0.
    @Test func aBotThatCannotBeObservedIsReportedAsAFailure() async throws {
        let fixture = try Fixture()
        try fixture.add("a", "b")
        await fixture.runtime.setFailure(.observe, botId: "a", ContainerError(.observeFailed, "inspect broke", botId: "a"))
        let outcome = try await fixture.controller.reconcileOnce()
        let report = try #require(outcome.reports.first { $0.key == .bot("a") })
        #expect(report.actions.map(\.kind) == [.blocked])
        #expect(report.results.map { $0.error?.code } == [.observeFailed])
        let plan = outcome.view.merging(outcome.reports)
        #expect(plan.actions.map(\.botId) == ["a", "b"])
        #expect(try await fixture.status("a")?.lastErrorCode == "OBSERVE_FAILED")
        #expect(try await fixture.status("b")?.actualState == "running")
    }

    /// Regression (review): an engine-wide error recorded on every bot wrote whole status rows read earlier,
    /// overwriting what a worker recorded meanwhile.
    @Test func anEngineWideErrorTouchesOnlyTheErrorColumns() async throws {
        let fixture = try Fixture()
        try fixture.add("a")
        var status = BotStatus(botId: "a")
        status.restartObservedAt = "r1"
        status.containerId = "c1"
        try await fixture.store.record(statuses: [status], events: [])
        await fixture.controller.recordUnreachable(ContainerError(.networkError, "engine gone"))
        let after = try #require(try await fixture.status("a"))
        #expect(after.lastErrorCode == "NETWORK_ERROR" && after.lastErrorMessage == "engine gone")
        #expect(after.restartObservedAt == "r1" && after.containerId == "c1")
        let writes = fixture.store.writeTransactions
        await fixture.controller.recordUnreachable(ContainerError(.networkError, "engine gone"))
        #expect(try await fixture.status("a") == after, "already recorded: nothing changes")
        #expect(fixture.store.writeTransactions == writes + 1)
    }

    /// A new fleet of stopped bots costs one list and one write, not one inspect and one write per bot.
    @Test func firstSightingsAreRecordedByTheResyncInOneWrite() async throws {
        let fixture = try Fixture()
        for index in 0..<200 { try fixture.store.addBot(id: "s\(index)", changes: BotChanges(image: "img:1", desiredState: .stopped)) }
        try fixture.add("r")
        let writes = fixture.store.writeTransactions
        try await fixture.controller.resync()
        #expect(fixture.store.writeTransactions == writes + 1)
        #expect(fixture.controller.queue.stats.depth == 1, "only the running bot needs a worker")
        #expect(await fixture.runtime.calls.count == 1)
        #expect(try await fixture.status("s199")?.actualState == "absent")
        #expect(try await fixture.status("r") == nil)
        // Converged now: the next resync writes nothing and queues nothing new.
        _ = await fixture.controller.queue.next()
        try await fixture.controller.resync()
        #expect(fixture.store.writeTransactions == writes + 1)
    }

    /// Containers of our instance without an owner label (an older botmaker, or another BotMaker install such
    /// as upstream's, which labels `botmaker.managed` and `botmaker.bot-id` but no owner) are never removed as
    /// orphans; one that is exactly a bot's is adopted; another database's holds its name (`OWNER_CONFLICT`).
    @Test func unownedAndOtherOwnersContainersAreLeftAlone() async throws {
        let fixture = try Fixture()
        let upstream = [BotLabels.managed: "true", BotLabels.botId: "5b0c1f7e-9a43-4f8e-b0a7-3c1d2e4f5a6b", "botmaker.bot-hostname": "sales"]
        let stranger = await fixture.runtime.addContainer(name: "botmaker-sales", labels: upstream)
        let legacy = await fixture.runtime.addContainer(name: "botmaker-kept",
                                                        labels: [BotLabels.managed: "true", BotLabels.botId: "kept"], running: false)
        let other = await fixture.runtime.addContainer(
            name: "botmaker-mine", labels: [BotLabels.managed: "true", BotLabels.botId: "mine", BotLabels.owner: String(repeating: "0", count: 32)])
        try fixture.add("kept", "mine")
        let outcome = try await fixture.controller.reconcileOnce()
        let plan = outcome.view.merging(outcome.reports)
        let kinds = Dictionary(uniqueKeysWithValues: plan.actions.map { ($0.containerName, $0.kind) })
        #expect(kinds["botmaker-sales"] == .unowned)
        #expect(kinds["botmaker-kept"] == .recreate, "exactly the bot's: adopted (and, its spec unknown, recreated)")
        #expect(kinds["botmaker-mine"] == .blocked)
        #expect(try await fixture.status("mine")?.lastErrorCode == "OWNER_CONFLICT")
        let left = await fixture.runtime.allContainers
        #expect(Set(left.map(\.id)).isSuperset(of: [stranger, other]))
        #expect(!left.map(\.id).contains(legacy))
        #expect(await fixture.runtime.container(botId: "kept")?.labels[BotLabels.owner] == fixture.store.ownerId)
        #expect(await fixture.runtime.container(botId: "sales")?.state == .running)
        #expect(await fixture.runtime.calls.filter { $0.0 != .observe && ($0.1 == "sales" || $0.1 == "mine") }.isEmpty)
    }

    /// The mass-removal guard: a database that lost its rows without deleting them (a restored old backup)
    /// removes nothing until approved; bots deleted on purpose (tombstones) go whatever their number.
    @Test func aMassRemovalNobodyAskedForIsHeldUntilApproved() async throws {
        let fixture = try Fixture()
        try fixture.add("a", "b", "c", "d", "e")
        _ = try await fixture.controller.reconcileOnce()
        #expect(await fixture.runtime.allContainers.count == 5)
        try await fixture.store.write { db in try db.execute(sql: "DELETE FROM bots; DELETE FROM bot_tombstones") }

        let held = try await fixture.controller.reconcileOnce()
        #expect(held.view.removalGuard?.hasPrefix("5 of 5 containers") == true)
        #expect(held.view.plan.actions.count == 5)
        #expect(held.view.plan.actions.allSatisfy { $0.kind == .blocked && $0.errorCode == .removalGuard })
        #expect(held.reports.isEmpty)
        #expect(await fixture.runtime.allContainers.count == 5)
        #expect(try fixture.store.removalGuard()?.reason.hasPrefix("5 of 5") == true)
        // Still held on the next look; an approval lets the batch through once, and the guard clears.
        #expect(try await fixture.controller.reconcileOnce().view.removalGuard != nil)
        try fixture.store.approveRemovals()
        let approved = try await fixture.controller.reconcileOnce()
        #expect(approved.view.removalGuard == nil)
        #expect(approved.reports.flatMap(\.results).map(\.action.kind) == [.remove, .remove, .remove, .remove, .remove])
        #expect(await fixture.runtime.allContainers.isEmpty)
        #expect(try fixture.store.removalGuard() == nil)
    }

    @Test func botsDeletedOnPurposeAreRemovedWhateverTheirNumber() async throws {
        let fixture = try Fixture()
        try fixture.add("a", "b", "c", "d", "e")
        _ = try await fixture.controller.reconcileOnce()
        try await fixture.store.write { db in try db.execute(sql: "DELETE FROM bots") }  // tombstones record the intent
        let outcome = try await fixture.controller.reconcileOnce()
        #expect(outcome.view.removalGuard == nil)
        #expect(await fixture.runtime.allContainers.isEmpty)
    }

    /// A worker woken by an event for an orphan holds its removal too while the guard is engaged.
    @Test func workersHoldUnexplainedRemovalsWhileTheGuardIsEngaged() async throws {
        let fixture = try Fixture()
        try fixture.add("a", "b", "c", "d", "e")
        _ = try await fixture.controller.reconcileOnce()
        try await fixture.store.write { db in try db.execute(sql: "DELETE FROM bots; DELETE FROM bot_tombstones") }
        try await Self.withWorkers(fixture) { reports in
            let view = try await fixture.controller.resync()
            #expect(view.removalGuard != nil)
            fixture.controller.queue.add(.bot("a"))
            let report = await Self.report(for: .bot("a"), from: &reports)
            #expect(report?.actions.map(\.kind) == [.blocked])
            #expect(report?.actions.first?.errorCode == .removalGuard)
        }
        #expect(await fixture.runtime.allContainers.count == 5)
    }

    /// The instance's claim: a free instance is claimed, the holder is let through, anyone else (another
    /// database, or this one at another path or host) is refused, and a take-over adopts only the holder's
    /// containers of the taker's own rows.
    @Test func oneDatabaseHoldsTheInstanceAndTakeOverAdoptsOnlyItsOwnBots() async throws {
        let fixture = try Fixture()
        let mine = InstanceClaim(owner: fixture.store.ownerId, databasePath: "/srv/a.db", host: "h1")
        #expect(try await InstanceClaims.ensure(mine, instance: "default", runtime: fixture.runtime, store: fixture.store, takeOver: false) == nil)
        #expect(try await InstanceClaims.ensure(mine, instance: "default", runtime: fixture.runtime, store: fixture.store, takeOver: false) == nil)
        for other in [InstanceClaim(owner: fixture.store.ownerId, databasePath: "/srv/copy.db", host: "h1"),
                      InstanceClaim(owner: fixture.store.ownerId, databasePath: "/srv/a.db", host: "h2"),
                      InstanceClaim(owner: String(repeating: "f", count: 32), databasePath: "/srv/a.db", host: "h1")] {
            await #expect(throws: ClaimRefused.self) {
                try await InstanceClaims.ensure(other, instance: "default", runtime: fixture.runtime, store: fixture.store, takeOver: false)
            }
        }
        // The holder's containers: one for a bot we also have a row for, one not.
        let previous = String(repeating: "b", count: 32)
        let theirs = [BotLabels.managed: "true", BotLabels.owner: previous]
        let shared = await fixture.runtime.addContainer(name: "botmaker-shared", labels: theirs.merging([BotLabels.botId: "shared"]) { a, _ in a })
        await fixture.runtime.addContainer(name: "botmaker-private", labels: theirs.merging([BotLabels.botId: "private"]) { a, _ in a })
        try await fixture.runtime.releaseInstanceClaim()
        _ = try await fixture.runtime.claimInstance(InstanceClaim(owner: previous, databasePath: "/srv/old.db", host: "h0"))
        try fixture.add("shared")
        let note = try await InstanceClaims.ensure(mine, instance: "default", runtime: fixture.runtime, store: fixture.store, takeOver: true)
        #expect(note?.contains("adopted 1 of its containers") == true)
        #expect(try fixture.store.adoptedContainers() == [shared])
        #expect(try await fixture.runtime.instanceClaim()?.sameHolder(as: mine) == true)
    }
}

extension Result {
    var isFailure: Bool { if case .failure = self { true } else { false } }
}
