import Foundation
import NIOConcurrencyHelpers

/// A keyed work queue in controller-runtime's model. A key is queued at most once; a key handed to a
/// worker is *processing* until `done`, and a key added meanwhile is marked dirty and queued again
/// after `done`, so no key is ever worked by two workers at once and no change is lost. A key can
/// also be added for later (`add(_:at:)`): waiting holds no worker.
public final class WorkQueue<Key: Hashable & Sendable>: Sendable {
    /// What the queue holds right now.
    public struct Stats: Sendable, Equatable {
        /// Keys ready for a worker.
        public var depth: Int
        /// Keys being worked on.
        public var busy: Int
        /// Keys waiting for a deadline.
        public var delayed: Int
        /// When the oldest ready key was queued.
        public var oldestQueuedAt: Date?

        public init(depth: Int, busy: Int, delayed: Int, oldestQueuedAt: Date?) {
            self.depth = depth
            self.busy = busy
            self.delayed = delayed
            self.oldestQueuedAt = oldestQueuedAt
        }
    }

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Key?, Never>
    }

    private struct State {
        var ready: [Key] = []
        var head = 0
        var queuedAt: [Key: Date] = [:]
        var processing: Set<Key> = []
        var dirty: Set<Key> = []
        var delayed: [Key: Date] = [:]
        var timer: Task<Void, Never>?
        var timerDeadline: Date?
        var timerGeneration: UInt64 = 0
        var waiters: [Waiter] = []
        var nextWaiterId: UInt64 = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        var isShutDown = false

        var readyCount: Int { ready.count - head }
        var isIdle: Bool { readyCount == 0 && processing.isEmpty }
    }

    /// Continuations to resume (and a replaced timer to cancel) once the lock is released.
    private struct Wakeups {
        var handed: [(CheckedContinuation<Key?, Never>, Key?)] = []
        var idle: [CheckedContinuation<Void, Never>] = []
        var cancelled: Task<Void, Never>?

        func resume() {
            cancelled?.cancel()
            for (continuation, key) in handed { continuation.resume(returning: key) }
            for continuation in idle { continuation.resume() }
        }
    }

    private let state = NIOLockedValueBox(State())
    private let clock: any WallClock

    public init(clock: any WallClock = SystemWallClock()) {
        self.clock = clock
    }

    /// Queues `key` now. A key already queued stays where it is; a key being processed is marked dirty.
    /// An immediate add replaces any deadline the key was waiting for.
    public func add(_ key: Key) {
        let now = clock.now()
        let wakeups = state.withLockedValue { state -> Wakeups in
            guard !state.isShutDown else { return Wakeups() }
            state.delayed[key] = nil
            var wakeups = Wakeups()
            Self.enqueue(key, now: now, into: &state, wakeups: &wakeups)
            return wakeups
        }
        wakeups.resume()
    }

    /// Queues `key` at `deadline` (at once if it has passed). The earliest deadline given wins: a key that
    /// comes back too early is looked at and simply waits again, one that comes back too late is a bug.
    public func add(_ key: Key, at deadline: Date) {
        if deadline <= clock.now() { return add(key) }
        let wakeups = state.withLockedValue { state -> Wakeups in
            var wakeups = Wakeups()
            guard !state.isShutDown else { return wakeups }
            if let existing = state.delayed[key], existing <= deadline { return wakeups }
            state.delayed[key] = deadline
            // O(1): the timer only moves when this deadline comes before the one it sleeps until.
            if state.timerDeadline.map({ deadline < $0 }) ?? true { schedule(at: deadline, &state, &wakeups) }
            return wakeups
        }
        wakeups.resume()
    }

    /// The next key to work on, waiting for one if needed; nil once the queue is shut down (or the task cancelled).
    public func next() async -> Key? {
        let id = state.withLockedValue { state -> UInt64 in
            state.nextWaiterId += 1
            return state.nextWaiterId
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Key?, Never>) in
                let immediate = state.withLockedValue { state -> Key?? in
                    if state.isShutDown || Task.isCancelled { return .some(nil) }
                    if state.readyCount > 0 {
                        let key = state.ready[state.head]
                        state.head += 1
                        Self.compact(&state)
                        state.queuedAt[key] = nil
                        state.processing.insert(key)
                        return .some(key)
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLockedValue { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(returning: nil)
        }
    }

    /// Ends the processing of `key`; a key dirtied meanwhile is queued again.
    public func done(_ key: Key) {
        let now = clock.now()
        let wakeups = state.withLockedValue { state -> Wakeups in
            var wakeups = Wakeups()
            state.processing.remove(key)
            if state.dirty.remove(key) != nil && !state.isShutDown {
                Self.enqueue(key, now: now, into: &state, wakeups: &wakeups)
            }
            if state.isIdle || state.isShutDown && state.processing.isEmpty {
                wakeups.idle = state.idleWaiters
                state.idleWaiters = []
            }
            return wakeups
        }
        wakeups.resume()
    }

    /// Returns once no key is ready or processing (keys waiting for a deadline do not count).
    public func waitUntilIdle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLockedValue { state -> Bool in
                if state.isIdle || state.isShutDown && state.processing.isEmpty { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    /// Stops handing out keys: waiting workers get nil, keys in progress may still call `done`.
    public func shutDown() {
        let wakeups = state.withLockedValue { state -> Wakeups in
            state.isShutDown = true
            var wakeups = Wakeups()
            wakeups.cancelled = state.timer
            state.timer = nil
            state.delayed = [:]
            state.ready = []
            state.head = 0
            state.queuedAt = [:]
            state.dirty = []
            wakeups.handed = state.waiters.map { ($0.continuation, nil) }
            state.waiters = []
            if state.processing.isEmpty {
                wakeups.idle = state.idleWaiters
                state.idleWaiters = []
            }
            return wakeups
        }
        wakeups.resume()
    }

    public var stats: Stats {
        state.withLockedValue { state in
            Stats(depth: state.readyCount, busy: state.processing.count, delayed: state.delayed.count,
                  oldestQueuedAt: state.queuedAt.values.min())
        }
    }

    /// The deadline `key` waits for, if any.
    public func deadline(of key: Key) -> Date? {
        state.withLockedValue { $0.delayed[key] }
    }

    // MARK: - Internals (called with the lock held)

    private static func enqueue(_ key: Key, now: Date, into state: inout State, wakeups: inout Wakeups) {
        if state.processing.contains(key) {
            state.dirty.insert(key)
            return
        }
        if state.queuedAt[key] != nil { return }
        if !state.waiters.isEmpty {
            let waiter = state.waiters.removeFirst()
            state.processing.insert(key)
            wakeups.handed.append((waiter.continuation, key))
            return
        }
        state.ready.append(key)
        state.queuedAt[key] = now
    }

    private static func compact(_ state: inout State) {
        if state.head > 1024 && state.head * 2 > state.ready.count {
            state.ready.removeFirst(state.head)
            state.head = 0
        }
    }

    /// Keeps one timer task, sleeping until `deadline`; the one it replaces is cancelled after the lock is released.
    private func schedule(at deadline: Date?, _ state: inout State, _ wakeups: inout Wakeups) {
        wakeups.cancelled = state.timer
        state.timer = nil
        state.timerDeadline = deadline
        guard let deadline else { return }
        state.timerGeneration += 1
        let generation = state.timerGeneration
        let clock = self.clock
        state.timer = Task { [weak self] in
            do { try await clock.sleep(until: deadline) } catch { return }
            self?.promoteDue(generation: generation)
        }
    }

    /// Queues the keys whose deadline has come and sleeps until the next one (one scan of the waiting keys).
    private func promoteDue(generation: UInt64) {
        let now = clock.now()
        let wakeups = state.withLockedValue { state -> Wakeups in
            var wakeups = Wakeups()
            guard !state.isShutDown, state.timerGeneration == generation else { return wakeups }
            state.timer = nil
            state.timerDeadline = nil
            var next: Date?
            for (key, deadline) in state.delayed {
                if deadline <= now {
                    state.delayed[key] = nil
                    Self.enqueue(key, now: now, into: &state, wakeups: &wakeups)
                } else if next.map({ deadline < $0 }) ?? true {
                    next = deadline
                }
            }
            schedule(at: next, &state, &wakeups)
            wakeups.cancelled = nil  // this task is the timer that fired: nothing to cancel
            return wakeups
        }
        wakeups.resume()
    }
}
