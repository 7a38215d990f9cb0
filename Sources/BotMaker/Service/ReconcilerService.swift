import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The long-running controller (`botmaker run`): feeds the ``Controller``'s work queue. A resync timer
/// (and the start, and every reconnect of the event stream) runs the full comparison; a database edit
/// (`PRAGMA data_version`) queues only the rows changed since the last revision seen; an engine event
/// queues only its container's bot; deadlines (backoff) live on the queue itself. On graceful
/// shutdown no new key is taken; keys in progress finish.
public final class ReconcilerService: Service, Sendable {
    public struct Settings: Sendable {
        public var resyncInterval: Duration = .seconds(30)
        public var pollInterval: Duration = .milliseconds(100)
        /// First delay before reconnecting a broken event stream; doubles up to `reconnectCap`.
        public var reconnectBase: Duration = .milliseconds(500)
        public var reconnectCap: Duration = .seconds(30)
        /// How often the images of `always` bots are checked against their registries (nil: never).
        public var imageCheckInterval: Duration? = .seconds(900)
        public init() {}
    }

    /// Why a full resync runs.
    public enum ResyncTrigger: String, Sendable {
        case startup, timer = "resync", reconnect, reset
        /// The mass-removal guard holds removals and the database changed (perhaps an approval).
        case guardCheck = "guard"
    }

    public let controller: Controller
    public let settings: Settings
    private let logger: Logger
    private let resyncs: AsyncStream<ResyncTrigger>
    private let resyncContinuation: AsyncStream<ResyncTrigger>.Continuation
    /// The store revision the queue has seen everything up to, and the `data_version` read just before that
    /// view was taken; nil until the first resync succeeds.
    private let seen = NIOLockedValueBox<(revision: Int64, dataVersion: Int?)?>(nil)
    private let changesNoticed = NIOLockedValueBox(0)
    /// Set when the service must stop with an error (the database path no longer names its file).
    private let failure = NIOLockedValueBox<StoreError?>(nil)

    /// Runs before anything else and must succeed first (the instance's claim): an engine error is recorded
    /// and retried with backoff; any other error ends the service.
    private let preflight: (@Sendable () async throws -> Void)?

    public init(controller: Controller, settings: Settings = .init(), logger: Logger,
                preflight: (@Sendable () async throws -> Void)? = nil) {
        self.controller = controller
        self.settings = settings
        self.logger = logger
        self.preflight = preflight
        // At most one resync pending: a burst of triggers while one runs leads to exactly one more.
        (resyncs, resyncContinuation) = AsyncStream.makeStream(of: ResyncTrigger.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// How many database changes by other connections the poller has noticed.
    public var databaseChangesNoticed: Int { changesNoticed.withLockedValue { $0 } }

    public func requestResync(_ trigger: ResyncTrigger) {
        resyncContinuation.yield(trigger)
    }

    public func run() async throws {
        logger.info("reconciler started", metadata: [
            "resync.seconds": "\(settings.resyncInterval)", "poll.seconds": "\(settings.pollInterval)",
            "concurrency": "\(controller.settings.concurrency)",
        ])
        guard try await passPreflight() else { return }
        requestResync(.startup)
        let timer = ResyncTimer(every: settings.resyncInterval) { [self] in requestResync(.timer) }
        defer { timer.cancel() }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.pollDatabase() }
                group.addTask { await self.watchEvents() }
                group.addTask { await self.checkImagesPeriodically() }
                await withTaskGroup(of: Void.self) { core in
                    core.addTask { await self.controller.runWorkers() }
                    core.addTask { await self.runResyncs() }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.stopTakingWork()
        }
        if let failure = failure.withLockedValue({ $0 }) { throw failure }
        logger.info("reconciler stopped")
    }

    /// Returns false when a graceful shutdown came first. The engine may not answer yet (botmaker started before
    /// dockerd): that is recorded on every bot and retried, like any other time the engine is away.
    private func passPreflight() async throws -> Bool {
        guard let preflight else { return true }
        var delay = settings.reconnectBase
        while true {
            do {
                try await preflight()
                return true
            } catch let error as ContainerError {
                await controller.recordUnreachable(error)
                logger.warning("cannot check the instance's claim yet; will retry", metadata: [
                    "error.code": "\(error.code.rawValue)", "error.message": "\(error.message)",
                ])
            }
            do {
                let wait = delay
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
            } catch {
                return false
            }
            delay = min(delay * 2, settings.reconnectCap)
        }
    }

    /// Checks the `always` bots' images against their registries at start and every `imageCheckInterval`; a moved tag
    /// is pulled and its bots are updated (paced, like any spec change).
    func checkImagesPeriodically() async {
        guard let interval = settings.imageCheckInterval else { return }
        while !Task.isCancelled {
            do {
                for update in try await controller.checkImages(pull: true) where update.isAvailable || update.error != nil {
                    if update.error != nil { logger.warning("\(update.description)") } else { logger.notice("\(update.description); pulled, updating its bots") }
                }
            } catch {
                logger.warning("image check failed", metadata: ["error": "\(error)"])
            }
            do { try await Task.sleep(for: interval) } catch { return }
        }
    }

    /// Workers finish the bot in hand and take no other; no new resync starts.
    private func stopTakingWork() {
        controller.queue.shutDown()
        resyncContinuation.finish()
    }

    /// Runs the full comparison for each trigger, one at a time.
    func runResyncs() async {
        for await trigger in resyncs { await resync(trigger) }
    }

    /// One full comparison; never throws: failures are recorded and retried on the next trigger.
    func resync(_ trigger: ResyncTrigger) async {
        do {
            // data_version first: a commit after this read changes it, so the poller looks even if the view had it.
            let version = try? await controller.store.dataVersion()
            let view = try await controller.resync()
            seen.withLockedValue { $0 = (view.snapshot.revision, version) }
            controller.metrics.resync(trigger: trigger.rawValue, result: "ok")
        } catch let error as ContainerError {
            controller.metrics.resync(trigger: trigger.rawValue, result: "error")
            await controller.recordUnreachable(error)
            logger.warning("cannot list the engine's containers; will retry", metadata: [
                "error.code": "\(error.code.rawValue)", "error.message": "\(error.message)",
            ])
        } catch {
            controller.metrics.resync(trigger: trigger.rawValue, result: "error")
            logger.error("resync failed", metadata: ["error": "\(error)"])
        }
    }

    /// Polls `PRAGMA data_version` on the store's own connection (so our own writes never wake us);
    /// on a change, queues only the bots changed since the last revision seen.
    func pollDatabase() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: settings.pollInterval) } catch { return }
            controller.metrics.queue(controller.queue.stats, now: controller.clock.now())
            // Never act on a detached file: a replaced or deleted database ends the service with an error,
            // so a supervisor restarts it against what the path names now.
            if let problem = controller.store.pathProblem() {
                logger.critical("\(problem); stopping so the service can be restarted against it")
                failure.withLockedValue { $0 = StoreError(problem) }
                return stopTakingWork()
            }
            guard let baseline = seen.withLockedValue({ $0 }),
                  let current = try? await controller.store.dataVersion(), current != baseline.dataVersion else { continue }
            changesNoticed.withLockedValue { $0 += 1 }
            await queueChanges(since: baseline.revision, dataVersion: current)
            if controller.isHoldingRemovals { requestResync(.guardCheck) }
        }
    }

    /// Queues the bots changed since `revision` (a full resync when the store went back); on success the
    /// poller's baseline moves to `dataVersion`, else the same changes are read again on the next poll.
    func queueChanges(since revision: Int64, dataVersion: Int) async {
        do {
            let changes = try await controller.store.changes(since: revision)
            if changes.isReset {
                logger.warning("the database's revision went back (replaced or restored?): full resync")
                seen.withLockedValue { $0?.dataVersion = dataVersion }
                return requestResync(.reset)
            }
            for id in changes.botIds { controller.queue.add(.bot(id)) }
            seen.withLockedValue { seen in
                // A resync that finished meanwhile has the newer view: keep it.
                if let current = seen, current.revision == revision { seen = (changes.revision, dataVersion) }
            }
            if !changes.botIds.isEmpty { logger.debug("database changes", metadata: ["bots": "\(changes.botIds.count)"]) }
        } catch {
            logger.error("cannot read database changes", metadata: ["error": "\(error)"])
        }
    }

    /// Follows the engine's events for our containers, queueing each one's key; reconnects with
    /// backoff and asks for a full resync after every reconnect (events missed meanwhile are not replayed).
    func watchEvents() async {
        var delay = settings.reconnectBase
        var isReconnect = false
        while !Task.isCancelled {
            let connected = NIOLockedValueBox(false)
            let trigger: ResyncTrigger = isReconnect ? .reconnect : .startup
            // Events before a subscription are not replayed: every connect, the first included, asks for a resync
            // (coalesced with the start-up one when that is still pending).
            let stream = controller.runtime.events { [self] in
                connected.withLockedValue { $0 = true }
                requestResync(trigger)
            }
            do {
                for try await event in stream where event.changesState {
                    logger.trace("engine event", metadata: ["event": "\(event.action)", "container": "\(event.name)"])
                    controller.queue.add(.forContainer(named: event.name, botId: event.botId, id: event.containerId))
                }
            } catch {
                logger.debug("event stream ended", metadata: ["error": "\(error)"])
            }
            if Task.isCancelled { return }
            isReconnect = true
            if connected.withLockedValue({ $0 }) { delay = settings.reconnectBase }
            controller.metrics.eventStreamReconnected()
            do { try await Task.sleep(for: delay) } catch { return }
            delay = min(delay * 2, settings.reconnectCap)
        }
    }
}
