import BotMaker
import Foundation
import Testing

/// The keyed queue on a manual clock: nothing here sleeps or waits for wall-clock time.
@Suite(.timeLimit(.minutes(1))) struct WorkQueueTests {
    @Test func aKeyAddedManyTimesIsHandedOutOnce() async {
        let queue = WorkQueue<String>(clock: ManualWallClock())
        for _ in 0..<100 { queue.add("a") }
        queue.add("b")
        #expect(queue.stats.depth == 2)
        #expect(await queue.next() == "a")
        #expect(await queue.next() == "b")
        #expect(queue.stats == .init(depth: 0, busy: 2, delayed: 0, oldestQueuedAt: nil))
    }

    @Test func aKeyAddedWhileProcessingIsWorkedOnceMoreAfterwardsAndNeverTwiceAtOnce() async {
        let queue = WorkQueue<String>(clock: ManualWallClock())
        queue.add("a")
        #expect(await queue.next() == "a")
        for _ in 0..<10 { queue.add("a") }
        // Dirty, not queued: another worker must not get it while the first holds it.
        #expect(queue.stats.depth == 0)
        queue.add("b")
        #expect(await queue.next() == "b")
        queue.done("a")
        #expect(queue.stats.depth == 1)
        #expect(await queue.next() == "a")
        queue.done("a")
        queue.done("b")
        #expect(queue.stats == .init(depth: 0, busy: 0, delayed: 0, oldestQueuedAt: nil))
    }

    @Test func aWaitingWorkerGetsTheNextKeyAdded() async {
        let queue = WorkQueue<String>(clock: ManualWallClock())
        async let next = queue.next()
        queue.add("late")
        #expect(await next == "late")
    }

    @Test func aDelayedKeyComesBackExactlyAtItsDeadline() async {
        let clock = ManualWallClock()
        let queue = WorkQueue<String>(clock: clock)
        queue.add("a", at: clock.now().addingTimeInterval(5))
        #expect(queue.stats.delayed == 1)
        await clock.waitForSleepers(1)  // the queue's timer
        clock.advance(by: 4.9)
        #expect(queue.stats.depth == 0)
        #expect(queue.stats.delayed == 1)
        clock.advance(by: 0.1)
        #expect(await queue.next() == "a")
        #expect(queue.stats.delayed == 0)
    }

    @Test func theEarliestDeadlineWinsAndAnImmediateAddCancelsIt() async {
        let clock = ManualWallClock()
        let queue = WorkQueue<String>(clock: clock)
        let start = clock.now()
        queue.add("a", at: start.addingTimeInterval(10))
        queue.add("a", at: start.addingTimeInterval(2))
        queue.add("a", at: start.addingTimeInterval(300))
        #expect(queue.deadline(of: "a") == start.addingTimeInterval(2))
        queue.add("a")
        #expect(queue.deadline(of: "a") == nil)
        #expect(await queue.next() == "a")
        // A deadline that has passed is an immediate add.
        queue.done("a")
        queue.add("a", at: start.addingTimeInterval(-1))
        #expect(queue.stats.depth == 1)
    }

    @Test func aDeadlineReachedWhileProcessingDirtiesTheKey() async {
        let clock = ManualWallClock()
        let queue = WorkQueue<String>(clock: clock)
        queue.add("a")
        #expect(await queue.next() == "a")
        queue.add("a", at: clock.now().addingTimeInterval(1))
        await clock.waitForSleepers(1)
        clock.advance(by: 1)
        // The timer fires while "a" is processing: it must come back after done, not before.
        while queue.stats.delayed > 0 { await Task.yield() }
        #expect(queue.stats.depth == 0)
        queue.done("a")
        #expect(await queue.next() == "a")
    }

    @Test func shutDownReleasesWaitingWorkersAndIgnoresNewKeys() async {
        let queue = WorkQueue<String>(clock: ManualWallClock())
        async let first = queue.next()
        async let second = queue.next()
        queue.shutDown()
        #expect(await first == nil)
        #expect(await second == nil)
        queue.add("a")
        #expect(await queue.next() == nil)
    }

    /// Many keys waiting at many deadlines come back in deadline order, each exactly when its time comes.
    @Test func manyDeadlinesComeBackInOrder() async {
        let clock = ManualWallClock()
        let queue = WorkQueue<Int>(clock: clock)
        for key in (1...50).reversed() { queue.add(key, at: clock.now().addingTimeInterval(Double(key))) }
        for key in 1...50 {
            await clock.waitForSleepers(1)
            clock.advance(by: 1)
            #expect(await queue.next() == key)
            #expect(queue.stats.depth == 0)
            queue.done(key)
        }
        #expect(queue.stats.delayed == 0)
    }

    @Test func waitUntilIdleReturnsWhenNothingIsReadyOrProcessing() async {
        let clock = ManualWallClock()
        let queue = WorkQueue<String>(clock: clock)
        await queue.waitUntilIdle()
        queue.add("a")
        queue.add("later", at: clock.now().addingTimeInterval(60))
        let worker = Task {
            while let key = await queue.next() { queue.done(key) }
        }
        await queue.waitUntilIdle()  // "later" waits for its deadline: not immediate work
        #expect(queue.stats.delayed == 1)
        queue.shutDown()
        await worker.value
    }

    @Test func theOldestQueuedKeyIsReported() async {
        let clock = ManualWallClock()
        let queue = WorkQueue<String>(clock: clock)
        let start = clock.now()
        queue.add("a")
        clock.advance(by: 3)
        queue.add("b")
        #expect(queue.stats.oldestQueuedAt == start)
        _ = await queue.next()
        #expect(queue.stats.oldestQueuedAt == start.addingTimeInterval(3))
    }
}
