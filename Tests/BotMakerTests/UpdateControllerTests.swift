import BotMaker
import Foundation
import Testing

/// Switch-overs on the in-memory engine and a manual clock, with a real SQLite file: updates are confirmed, rolled back,
/// held and paused, and proven by what the engine and the store hold, never by waiting for wall-clock time.
@Suite(.timeLimit(.minutes(1))) struct UpdateControllerTests {
    typealias Fixture = ControllerTests.Fixture

    /// Lets the workers run and moves the manual clock one second at a time (only when no key is ready or being worked
    /// and the queue's timer sleeps) until `done` holds. A timer just woken may not have queued its keys yet: then the
    /// loop yields until it has (or sleeps again).
    static func drive(_ fixture: Fixture, seconds: Int = 600, until done: () async throws -> Bool,
                      sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var advanced = 0
        while advanced < seconds {
            try Task.checkCancellation()
            await fixture.controller.queue.waitUntilIdle()
            if try await done() { return }
            let stats = fixture.controller.queue.stats
            if stats.depth == 0, stats.busy == 0, fixture.clock.sleeperCount > 0 {
                fixture.clock.advance(by: 1)
                advanced += 1
            } else {
                await Task.yield()
            }
        }
        Issue.record("not done after \(seconds) s of the manual clock", sourceLocation: sourceLocation)
        throw CancellationError()
    }

    static func names(_ fixture: Fixture) async -> [String: InMemoryRuntime.Container] {
        Dictionary(await fixture.runtime.allContainers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    static func change(_ fixture: Fixture, _ ids: [String], image: String) throws {
        for id in ids { _ = try fixture.store.updateBot(id: id, changes: BotChanges(image: image)) }
        for id in ids { fixture.controller.queue.add(.bot(id)) }  // as the store's change feed would
    }

    @Test func aGoodUpdateIsSwitchedOverThenConfirmed() async throws {
        let fixture = try Fixture()
        try fixture.add("a")
        await fixture.runtime.setStartBehaviour(image: "img:2", .healthy)
        try await ControllerTests.withWorkers(fixture) { _ in
            try await fixture.controller.resync()
            try await Self.drive(fixture) { await Self.names(fixture)["botmaker-a"]?.state == .running }
            let old = try #require(await Self.names(fixture)["botmaker-a"]?.id)
            try Self.change(fixture, ["a"], image: "img:2")
            await fixture.controller.queue.waitUntilIdle()
            // Switched over: the old container is stopped and kept; the new one runs; not confirmed yet.
            var containers = await Self.names(fixture)
            #expect(containers["botmaker-a.previous"]?.id == old)
            #expect(containers["botmaker-a.previous"]?.state == .exited)
            #expect(containers["botmaker-a"]?.config?.image == "img:2")
            #expect(try await fixture.status("a")?.updatePhase == "confirming")
            try await Self.drive(fixture) { await Self.names(fixture)["botmaker-a.previous"] == nil }
            containers = await Self.names(fixture)
            #expect(containers.count == 1)
            #expect(containers["botmaker-a"]?.state == .running && containers["botmaker-a"]?.config?.image == "img:2")
            let status = try #require(try await fixture.status("a"))
            #expect(status.updatePhase == nil && status.lastErrorCode == nil && status.failedUpdateHash == nil)
            #expect(status.lastAction == "confirm")
        }
    }

    @Test func anUnhealthyUpdateIsRolledBackToTheSameContainerAndHeld() async throws {
        let fixture = try Fixture()
        try fixture.add("a")
        await fixture.runtime.setStartBehaviour(image: "img:bad", .unhealthy)
        try await ControllerTests.withWorkers(fixture) { _ in
            try await fixture.controller.resync()
            try await Self.drive(fixture) { await Self.names(fixture)["botmaker-a"]?.state == .running }
            let old = try #require(await Self.names(fixture)["botmaker-a"]?.id)
            try Self.change(fixture, ["a"], image: "img:bad")
            try await Self.drive(fixture) {
                let code = try await fixture.status("a")?.lastErrorCode
                return code == "UPDATE_ROLLED_BACK" && fixture.controller.updatesInProgress == 0
            }
            let containers = await Self.names(fixture)
            #expect(containers.count == 1, "no previous container left: \(containers.keys.sorted())")
            #expect(containers["botmaker-a"]?.id == old && containers["botmaker-a"]?.state == .running, "the original container runs again")
            let status = try #require(try await fixture.status("a"))
            #expect(status.rolledBackFromGeneration == 2)
            #expect(status.lastErrorMessage?.contains("unhealthy") == true, "\(status.lastErrorMessage ?? "")")
            #expect(status.containerId == old && status.updatePhase == nil)
            // Not tried again: however often the bot is looked at.
            let creates = await fixture.runtime.callCount(.create, botId: "a")
            for _ in 0..<3 {
                fixture.controller.queue.add(.bot("a"))
                await fixture.controller.queue.waitUntilIdle()
            }
            #expect(await fixture.runtime.callCount(.create, botId: "a") == creates)
            #expect(try await fixture.status("a")?.lastErrorCode == "UPDATE_ROLLED_BACK")
            // `bot retry` asks for one more attempt.
            #expect(try fixture.store.retryUpdate(botId: "a"))
            fixture.controller.queue.add(.bot("a"))
            await fixture.controller.queue.waitUntilIdle()
            #expect(await fixture.runtime.callCount(.create, botId: "a") == creates + 1)
        }
    }

    @Test func anUpdateThatExitsAtOnceOrCannotBeCreatedIsRolledBack() async throws {
        let fixture = try Fixture()
        try fixture.add("a", "b")
        await fixture.runtime.setStartBehaviour(image: "img:exits", .exits(3))
        try await ControllerTests.withWorkers(fixture) { _ in
            try await fixture.controller.resync()
            try await Self.drive(fixture) { await Self.names(fixture).values.count { $0.state == .running } == 2 }
            let old = await Self.names(fixture).mapValues(\.id)
            await fixture.runtime.setFailure(.create, botId: "b", ContainerError(.startFailed, "invalid mount config"))
            try Self.change(fixture, ["a"], image: "img:exits")
            try Self.change(fixture, ["b"], image: "img:2")
            try await Self.drive(fixture) {
                let a = try await fixture.status("a")?.lastErrorCode
                let b = try await fixture.status("b")?.lastErrorCode
                return a == "UPDATE_ROLLED_BACK" && b == "UPDATE_ROLLED_BACK" && fixture.controller.updatesInProgress == 0
            }
            let containers = await Self.names(fixture)
            #expect(containers.mapValues(\.id) == old, "both bots run their original containers")
            #expect(containers.values.allSatisfy { $0.state == .running })
            #expect(try await fixture.status("a")?.lastErrorMessage?.contains("exit code 3") == true)
            #expect(try await fixture.status("b")?.lastErrorMessage?.contains("invalid mount config") == true)
        }
    }

    /// The engine failing while the new container is made (slow, unreachable) is not the target's fault: the previous
    /// container comes back, the target is not held, and the update is tried again after the backoff.
    @Test func anEngineErrorDuringAnUpdateRollsBackWithoutHoldingTheTarget() async throws {
        let fixture = try Fixture()
        try fixture.add("a")
        try await ControllerTests.withWorkers(fixture) { _ in
            try await fixture.controller.resync()
            try await Self.drive(fixture) { await Self.names(fixture)["botmaker-a"]?.state == .running }
            let old = try #require(await Self.names(fixture)["botmaker-a"]?.id)
            await fixture.runtime.setFailure(.create, botId: "a", ContainerError(.networkError, "the engine did not answer in time"))
            try Self.change(fixture, ["a"], image: "img:2")
            await fixture.controller.queue.waitUntilIdle()
            #expect(await Self.names(fixture)["botmaker-a"]?.id == old)
            #expect(await Self.names(fixture)["botmaker-a"]?.state == .running)
            let status = try #require(try await fixture.status("a"))
            #expect(status.lastErrorCode == "NETWORK_ERROR" && status.failedUpdateHash == nil && status.nextAttemptAt != nil)
            await fixture.runtime.setFailure(.create, botId: "a", nil)
            try await Self.drive(fixture) {
                let containers = await Self.names(fixture)
                return containers.count == 1 && containers["botmaker-a"]?.config?.image == "img:2"
            }
        }
    }

    /// An `always` bot whose tag moved is switched over after one pull (a bug dropped the pull's outcome before an update
    /// used it, so the bot pulled forever).
    @Test func aMovedTagOfAnAlwaysBotIsPulledOnceThenSwitchedOver() async throws {
        let fixture = try Fixture()
        try fixture.store.addBot(id: "a", changes: { var c = BotChanges(image: "img:1"); c.pullPolicy = .always; return c }())
        await fixture.runtime.setInRegistry("img:1")
        await fixture.runtime.setStartBehaviour(image: "img:1", .healthy)
        try await ControllerTests.withWorkers(fixture) { _ in
            try await fixture.controller.resync()
            try await Self.drive(fixture) { await Self.names(fixture)["botmaker-a"]?.state == .running }
            let pulls = await fixture.runtime.callCount(.pull)
            await fixture.runtime.setImageId("img:1", "sha256:moved")
            try await fixture.controller.resync()
            try await Self.drive(fixture) {
                let containers = await Self.names(fixture)
                return containers.count == 1 && containers["botmaker-a"]?.imageId == "sha256:moved"
            }
            #expect(await fixture.runtime.callCount(.pull) == pulls + 1)
        }
    }

    /// Issue 13: a tag moved under 6 bots to a bad image: one bot at a time is updated and rolled back; after two
    /// rollbacks the other four are ROLLOUT_PAUSED and keep running untouched, until `rollout resume`.
    @Test func aBadRolloutPausesAfterTwoRollbacks() async throws {
        let fixture = try Fixture()
        let ids = ["a", "b", "c", "d", "e", "f"]
        for id in ids { try fixture.add(id) }
        await fixture.runtime.setStartBehaviour(image: "img:bad", .unhealthy)
        try await ControllerTests.withWorkers(fixture) { _ in
            try await fixture.controller.resync()
            try await Self.drive(fixture) { await Self.names(fixture).values.count { $0.state == .running } == 6 }
            let old = await Self.names(fixture).mapValues(\.id)
            try Self.change(fixture, ids, image: "img:bad")
            func codes() async throws -> [String] {
                var codes: [String] = []
                for id in ids { codes.append(try await fixture.status(id)?.lastErrorCode ?? "-") }
                return codes
            }
            try await Self.drive(fixture) {
                let codes = try await codes()
                return codes.count { $0 == "UPDATE_ROLLED_BACK" } == 2 && codes.count { $0 == "ROLLOUT_PAUSED" } == 4
                    && fixture.controller.updatesInProgress == 0
            }
            #expect(await Self.names(fixture).mapValues(\.id) == old, "every bot runs its original container")
            #expect(await fixture.runtime.callCount(.create) == 6 + 2, "two attempts, no more")
            let paused = try fixture.store.resumeRollouts()
            #expect(paused.count == 4)
            for id in paused { fixture.controller.queue.add(.bot(id)) }
            await fixture.controller.queue.waitUntilIdle()
            #expect(await fixture.runtime.callCount(.create) == 6 + 3, "resumed: the next bot is tried")
        }
    }

    /// Issue 11 and 13: updates of many running bots are paced: at most --max-parallel-updates switch-overs are under way
    /// (from the stop of the old container to the confirmation of the new), the others wait for a slot holding no worker.
    @Test func updatesOfRunningBotsArePacedByMaxParallelUpdates() async throws {
        let fixture = try Fixture(concurrency: 4, maxParallelUpdates: 2)
        let ids = ["a", "b", "c", "d", "e"]
        for id in ids { try fixture.add(id) }
        try await ControllerTests.withWorkers(fixture) { _ in
            try await fixture.controller.resync()
            try await Self.drive(fixture) { await Self.names(fixture).values.count { $0.state == .running } == 5 }
            for id in ids { _ = try fixture.store.updateBot(id: id, changes: BotChanges(environment: ["V=2"])) }
            try await fixture.controller.resync()
            var mostAtOnce = 0
            try await Self.drive(fixture) {
                let containers = await Self.names(fixture)
                mostAtOnce = max(mostAtOnce, containers.keys.count { $0.hasSuffix(".previous") })
                let waiting = try await ids.asyncCount { try await fixture.status($0)?.waitingFor?.contains("update slot") == true }
                if mostAtOnce == 2 { #expect(waiting <= 3) }
                return containers.count == 5 && containers.values.allSatisfy { $0.config?.environment == ["V=2"] && $0.state == .running }
            }
            #expect(mostAtOnce == 2, "two updates at once, never more")
        }
    }
}

extension Array {
    func asyncCount(_ predicate: (Element) async throws -> Bool) async rethrows -> Int {
        var count = 0
        for element in self where try await predicate(element) { count += 1 }
        return count
    }
}
