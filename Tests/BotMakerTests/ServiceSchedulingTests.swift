@testable import BotMaker
import Foundation
import Logging
import Testing
import TestSupport

/// How `botmaker run` feeds the work queue: database edits by other connections queue only the
/// changed rows, engine events queue only their container's bot. The in-memory engine and a real
/// SQLite file; every wait is on the queue itself, never on wall-clock time.
@Suite(.timeLimit(.minutes(2))) struct ServiceSchedulingTests {
    static func makeService(_ dir: TemporaryDirectory, clock: ManualWallClock = ManualWallClock()) throws -> (ReconcilerService, InMemoryRuntime, Store) {
        let store = try Store.open(path: dir.file("bots.db"))
        let runtime = InMemoryRuntime(clock: clock)
        let controller = Controller(store: store, runtime: runtime, secrets: SecretsManager(root: dir.file("s")), clock: clock,
                                    logger: Logger(label: "test"))
        var settings = ReconcilerService.Settings()
        settings.pollInterval = .milliseconds(20)
        return (ReconcilerService(controller: controller, settings: settings, logger: Logger(label: "test")), runtime, store)
    }

    /// The service's own writes never wake the poller; another connection's edit queues exactly its row.
    @Test func anEditByAnotherConnectionQueuesOnlyItsRowAndOwnWritesQueueNothing() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (service, _, store) = try Self.makeService(dir)
        for id in ["a", "b", "c"] { try store.addBot(id: id, changes: BotChanges(image: "img:1")) }
        await service.resync(.startup)
        let queue = service.controller.queue
        for _ in 0..<3 { if let key = await queue.next() { queue.done(key) } }
        #expect(queue.stats.depth == 0)

        let poller = Task { await service.pollDatabase() }
        // Our own write (a status row, what the service writes): no change noticed.
        try await store.record(statuses: [BotStatus(botId: "a")], events: [])
        // Another connection edits one row of three.
        try await runProcess(["sqlite3", dir.file("bots.db"), "UPDATE bots SET environment = '[\"K=v\"]' WHERE id = 'b'"])
        #expect(await queue.next() == .bot("b"))
        #expect(queue.stats.depth == 0)
        #expect(service.databaseChangesNoticed == 1)

        // A deletion reaches the queue through its tombstone.
        queue.done(.bot("b"))
        try await runProcess(["sqlite3", dir.file("bots.db"), "DELETE FROM bots WHERE id = 'c'"])
        #expect(await queue.next() == .bot("c"))
        #expect(service.databaseChangesNoticed == 2)
        poller.cancel()
        await poller.value
    }

    @Test func anEngineEventQueuesOnlyItsContainersBot() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (service, runtime, store) = try Self.makeService(dir)
        for id in ["a", "b"] { try store.addBot(id: id, changes: BotChanges(image: "img:1")) }
        await service.resync(.startup)
        let queue = service.controller.queue
        for _ in 0..<2 { if let key = await queue.next() { queue.done(key) } }

        let watcher = Task { await service.watchEvents() }
        await runtime.waitForSubscribers(1)
        _ = try await runtime.createContainer(botId: "b", config: ContainerConfig(image: "img:1", secretsPath: "/s/b"))
        #expect(await queue.next() == .bot("b"))
        #expect(queue.stats.depth == 0)
        watcher.cancel()
        await watcher.value
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
