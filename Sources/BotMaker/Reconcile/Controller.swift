import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// What working one key did: the key's plan (every action, mutating or not) and the outcome of each
/// mutating action.
public struct KeyReport: Sendable {
    public var key: WorkKey
    public var actions: [PlannedAction]
    public var results: [ActionResult]
}

/// Hears a one-shot pass as it goes (`botmaker reconcile` prints it): the plan, then each key's report.
public protocol ReconcileObserver: Sendable {
    /// The plan, before any action; `working` is the controller doing it (its queue and pulls say what is under way).
    func planned(_ view: FleetView, working: Controller)
    /// A key's worker is done: its actions and their results.
    func reported(_ report: KeyReport)
}

/// The result of one mutating action.
public struct ActionResult: Sendable {
    public var action: PlannedAction
    public var error: ContainerError?
    public var seconds: Double
    /// When a failed bot may be retried.
    public var nextAttemptAt: Date?
    public var succeeded: Bool { error == nil }
}

/// The reconcile core, the same for `botmaker reconcile` and `botmaker run`: a keyed work queue and
/// up to `concurrency` workers. A worker takes one key, reads that bot's row and status, observes its
/// container (one engine call), plans it with the pure ``Planner``, acts through the
/// ``ContainerRuntime`` and records the outcome. Waiting (a backoff, Docker removing a container) is
/// a deadline on the queue, never a held worker.
public final class Controller: Sendable {
    public struct Settings: Sendable {
        /// Workers, so at most this many engine operations at once (never two on one bot).
        public var concurrency: Int = 4
        public var backoff: Backoff = .init()
        /// How long to wait before looking again at a container Docker is busy with.
        public var busyRetry: TimeInterval = 1
        /// When false, a key's deadline is recorded but not followed: the one-shot makes one attempt per bot.
        public var followsDeadlines = true
        /// Lets a batch of removals the mass-removal guard would hold go ahead (`reconcile --allow-mass-removal`).
        public var allowMassRemoval = false
        /// At most this many running bots are recreated (updated) at once; the others wait their turn, holding no worker.
        public var maxParallelUpdates = 1
        /// Where automatic host ports come from.
        public var portRange: ClosedRange<Int> = 19000...19999
        /// Image pulls at once (never holding a worker), and how long one may take.
        public var pullConcurrency = 2
        public var pullTimeout: TimeInterval = 600
        /// Where registry credentials are read (Docker's `config.json`).
        public var registryCredentials = RegistryCredentialStore()
        /// When a switch-over's new container is confirmed or rolled back, and when a rollout pauses.
        public var updatePolicy = UpdatePolicy()
        public init(concurrency: Int = 4, backoff: Backoff = .init()) {
            self.concurrency = max(1, concurrency)
            self.backoff = backoff
        }
    }

    public let store: Store
    public let runtime: any ContainerRuntime
    public let secrets: SecretsManager
    public let state: StateDirectories
    public let settings: Settings
    public let clock: any WallClock
    public let queue: WorkQueue<WorkKey>
    public let puller: ImagePuller
    public let metrics: ReconcilerMetrics
    private let logger: Logger
    private let onReport: (@Sendable (KeyReport) -> Void)?
    /// Consecutive failures of keys that have no status row to count them in (orphans, strays, failed reads).
    private let transientFailures = NIOLockedValueBox<[WorkKey: Int]>([:])
    /// Whether the last resync engaged the mass-removal guard: workers then hold unexplained removals too.
    private let removalsHeld = NIOLockedValueBox(false)
    private let garbageCollectedAt = NIOLockedValueBox<Date?>(nil)
    /// Keys with an update in progress (a switch-over holds its slot until confirmed or rolled back), and the keys
    /// waiting for a slot (in arrival order).
    private let updates = NIOLockedValueBox<(running: Set<WorkKey>, waiting: [WorkKey])>(([], []))

    /// `state` nil: the data root beside the secrets root, as `data` (tests).
    public init(store: Store, runtime: any ContainerRuntime, secrets: SecretsManager, state: StateDirectories? = nil,
                settings: Settings = .init(), clock: any WallClock = SystemWallClock(), metrics: ReconcilerMetrics = .init(),
                logger: Logger, onReport: (@Sendable (KeyReport) -> Void)? = nil) {
        self.store = store
        self.runtime = runtime
        self.secrets = secrets
        self.state = state ?? StateDirectories(root: ((secrets.root as NSString).deletingLastPathComponent as NSString).appendingPathComponent("data"))
        self.settings = settings
        self.clock = clock
        let queue = WorkQueue<WorkKey>(clock: clock)
        self.queue = queue
        self.puller = ImagePuller(
            runtime: runtime, credentials: settings.registryCredentials, concurrency: settings.pullConcurrency, timeout: settings.pullTimeout,
            metrics: metrics, logger: logger,
            onFinished: { keys in for key in keys { queue.add(key) } },
            onProgress: { keys, text in Task { try? await store.recordWaiting(botIds: keys.compactMap(\.botId), waitingFor: text) } },
            onPulled: { reference in
                if let info = try? await runtime.image(reference.text) { try? await store.recordPulledImage(reference.text, id: info.id) }
            })
        self.metrics = metrics
        self.logger = logger
        self.onReport = onReport
    }

    /// Whether the last resync engaged the mass-removal guard.
    public var isHoldingRemovals: Bool { removalsHeld.withLockedValue { $0 } }

    /// Bots whose switch-over is under way (not yet confirmed or rolled back).
    public var updatesInProgress: Int { updates.withLockedValue { $0.running.count } }

    // MARK: - Whole fleet

    /// The level-triggered full comparison: one store read and one list call. Queues every key that
    /// needs work (or a deadline for those that wait) and returns the view. Writes nothing.
    @discardableResult
    public func resync() async throws -> FleetView {
        let view = try await FleetView.load(store: store, runtime: runtime, secrets: secrets, state: state, now: clock.now(),
                                            allowMassRemoval: settings.allowMassRemoval, createKey: true, updatePolicy: settings.updatePolicy)
        removalsHeld.withLockedValue { $0 = view.removalGuard != nil }
        if view.removalGuard != view.snapshot.removalGuard {
            if let reason = view.removalGuard {
                logger.error("REMOVAL_GUARD: \(reason)")
            } else {
                logger.notice("the mass-removal guard holds nothing back any more")
            }
            try await store.recordRemovalGuard(view.removalGuard, at: clock.now())
        }
        if view.unownedSummary != view.snapshot.unownedContainers {
            if let unowned = view.unownedSummary {
                logger.notice("containers of this instance made by another botmaker (no owner label) are left alone: \(unowned)")
            }
            try await store.recordUnownedContainers(view.unownedSummary)
        }
        var (now, later) = view.keysToWork()
        // First sightings (a bot with no status row, nothing to do but record what was seen) are written here in
        // one transaction rather than by one worker each: a new 50,000-row fleet is one write, not 50,000 looks.
        let firstSightings = view.firstSightings()
        if !firstSightings.isEmpty {
            do {
                try await store.recordFirstSightings(firstSightings)
                for status in firstSightings { now.remove(.bot(status.botId)) }
            } catch {
                logger.warning("cannot record first sightings; the workers will", metadata: ["error": "\(error)"])
            }
        }
        for key in now.sorted(by: { $0.description < $1.description }) { queue.add(key) }
        for (key, at) in later { requeue(key, at: at) }
        metrics.fleet(view)
        // What the engine keeps beside containers (Swarm's secrets and networks) and a crash left unused: looked for at the
        // first resync, whenever the fleet has work, and every 10 minutes.
        let resyncedAt = clock.now()
        if view.plan.hasChanges || garbageCollectedAt.withLockedValue({ last in
            defer { last = resyncedAt }
            return last.map { resyncedAt.timeIntervalSince($0) >= 600 } ?? true
        }) {
            await runtime.collectGarbage()
        }
        return view
    }

    /// Runs the workers until the queue is shut down.
    public func runWorkers() async {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<settings.concurrency {
                group.addTask {
                    while let key = await self.queue.next() {
                        let report = await self.work(key)
                        self.queue.done(key)
                        self.onReport?(report)
                    }
                }
            }
        }
    }

    /// `botmaker reconcile`: one resync, then workers until no key has immediate work left. Keys that
    /// wait for a deadline are not waited for (their wait shows in the reports).
    /// `observer` hears the plan as soon as it is made and each key's report as soon as its worker is done.
    public func reconcileOnce(observer: (any ReconcileObserver)? = nil) async throws -> (view: FleetView, reports: [KeyReport]) {
        let collected = NIOLockedValueBox<[KeyReport]>([])
        var once = settings
        once.followsDeadlines = false
        let controller = Controller(store: store, runtime: runtime, secrets: secrets, state: state, settings: once, clock: clock,
                                    metrics: metrics, logger: logger, onReport: { report in
                                        collected.withLockedValue { $0.append(report) }
                                        observer?.reported(report)
                                    })
        let view = try await controller.resync()
        observer?.planned(view, working: controller)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await controller.runWorkers() }
            await withGracefulShutdownHandler {
                await controller.queue.waitUntilIdle()
                // Bots waiting for a pull hold no worker: the run ends when the pulls have landed and their bots are done,
                // and when every switch-over it started is confirmed or rolled back (never left half-way).
                while !Task.isShuttingDownGracefully {
                    if await !controller.puller.isIdle {
                        await controller.puller.waitUntilIdle()
                    } else if controller.updatesInProgress > 0 {
                        // A switch-over comes back at its deadline. A slot held by a key that is neither queued nor
                        // waiting for a deadline would never be freed: the run ends rather than wait for it forever.
                        let stats = controller.queue.stats
                        if stats.depth == 0 && stats.busy == 0 && stats.delayed == 0 {
                            logger.error("an update slot is held by a bot that is not scheduled; ending the run",
                                         metadata: ["updates": "\(controller.updatesInProgress)"])
                            break
                        }
                        try? await Task.sleep(for: .milliseconds(100))
                    } else {
                        break
                    }
                    await controller.queue.waitUntilIdle()
                }
            } onGracefulShutdown: {
                controller.queue.shutDown()
            }
            controller.queue.shutDown()
        }
        return (view, collected.withLockedValue { $0 })
    }

    /// Records the engine's error (`NETWORK_ERROR`, `OBSERVE_FAILED`, …) on every bot that does not already
    /// show it; used when the engine cannot be listed. One statement touching only the error columns, so it
    /// never overwrites what a worker records meanwhile.
    public func recordUnreachable(_ error: ContainerError) async {
        do {
            try await store.recordFleetError(code: error.code.rawValue, message: error.message, at: clock.now())
        } catch {
            logger.error("cannot record the engine error", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - One key

    /// Reconciles one key; never throws: failures are recorded on the bot and retried with backoff.
    public func work(_ key: WorkKey) async -> KeyReport {
        let started = ContinuousClock.now
        let report: KeyReport
        switch key {
        case .bot(let id): report = await workBot(id)
        case .container(let id): report = await workContainer(id)
        }
        let result = report.results.contains { !$0.succeeded } ? "error" : report.results.isEmpty ? "noop" : "ok"
        metrics.reconciled(result: result, seconds: (ContinuousClock.now - started).seconds)
        return report
    }

    private func workBot(_ id: String) async -> KeyReport {
        let key = WorkKey.bot(id)
        let state: BotState
        do {
            state = try await store.botState(id: id)
        } catch {
            logger.error("cannot read the bot", metadata: ["bot.id": "\(id)", "error": "\(error)"])
            retryLater(key)
            return failureReport(key, botId: id, ContainerError(.observeFailed, "cannot read the bot's row from the database: \(error)", botId: id))
        }
        var desired: [DesiredBot] = []
        var invalid: [InvalidBot] = []
        if let row = state.row {
            switch FleetView.validate(row, secrets: secrets, state: self.state, runtime: runtime) {
            case .valid(var bot):
                secrets.resolve(&bot, createKey: true)
                if bot.pullPolicy == .always || state.status?.failedUpdateHash != nil {
                    bot.resolvedImageId = (try? await runtime.image(bot.config.image))??.id
                }
                desired.append(bot)
            case .invalid(let bot): invalid.append(bot)
            }
        }
        var observed = ObservedContainers()
        if BotValidation.idProblem(id) == nil {
            do {
                observed = try await runtime.observe(botId: id)
            } catch {
                await recordObserveFailure(error, state: state, key: key)
                return failureReport(key, botId: id, error)
            }
        }
        let statuses = state.status.map { [id: $0] } ?? [:]
        let adopted = await FleetView.adoptions(runtime: runtime, observed: observed, desired: desired, statuses: statuses)
        let probes = await FleetView.updateProbes(runtime: runtime, observed: observed, bots: desired, secrets: secrets)
        let now = clock.now()
        let plan = Planner.plan(PlannerInput(desired: desired, invalid: invalid, observed: observed, statuses: statuses,
                                             adoptedHashes: adopted, ownerId: store.ownerId, now: now, updatePolicy: settings.updatePolicy,
                                             probes: probes, capabilities: runtime.capabilities))
        return await apply(plan, key: key, prior: state.status)
    }

    private func workContainer(_ containerId: String) async -> KeyReport {
        let key = WorkKey.container(containerId)
        let container: ContainerInfo?
        do {
            container = try await runtime.observe(containerId: containerId)
        } catch {
            logger.warning("cannot inspect container", metadata: ["container.id": "\(containerId.prefix(12))", "error": "\(error)"])
            retryLater(key)
            return failureReport(key, botId: error.botId ?? "", error, containerId: containerId)
        }
        guard let container else { return KeyReport(key: key, actions: [], results: []) }
        // A container carrying a bot's name is that bot's business.
        if let nameId = ContainerDefaults.botId(inName: container.name) {
            let hasRow = (try? await store.botState(id: nameId).row) != nil
            if hasRow || WorkKey.forContainer(named: container.name, botId: container.botId, id: container.id) != key {
                queue.add(.bot(nameId))
                return KeyReport(key: key, actions: [], results: [])
            }
        }
        var plan = Planner.plan(PlannerInput(desired: [], invalid: [], observed: ObservedContainers(managed: [container]),
                                             ownerId: store.ownerId, now: clock.now(), capabilities: runtime.capabilities))
        plan.actions = plan.actions.filter { $0.containerId == container.id && $0.isOrphan }
        return await apply(plan, key: key, prior: nil)
    }

    /// Writes the plan's status-only changes, then runs its actions one after the other (a key has at most one).
    private func apply(_ plan: Plan, key: WorkKey, prior: BotStatus?) async -> KeyReport {
        // A pull's outcome is for the create it was made for: a plan without one drops it (it must not let a later
        // create of an `always` bot skip its pull, nor replay an old failure).
        if !plan.actions.contains(where: { [.create, .recreate, .update, .reconfigure].contains($0.kind) }) { await puller.clearOutcome(for: key) }
        do {
            try await store.record(statuses: plan.statusUpdates, events: plan.events)
        } catch {
            logger.error("cannot record status", metadata: ["key": "\(key)", "error": "\(error)"])
        }
        var results: [ActionResult] = []
        var heldActions: [PlannedAction] = []
        var prior = plan.statusUpdates.last ?? prior
        // Whether this key has a switch-over under way once its actions are done (it then keeps its update slot).
        var switching = plan.actions.contains { $0.previousContainerId != nil || $0.holdsUpdateSlot }
        for var action in plan.actions {
            if action.kind == .remove, action.isOrphan, removalsHeld.withLockedValue({ $0 }),
               (try? await store.isTombstoned(action.botId)) != true {
                action.kind = .blocked
                action.errorCode = .removalGuard
                action.cause = "removal held by the mass-removal guard (\(action.cause))"
                heldActions.append(action)
                continue
            }
            var image: ImageInfo?
            var pinnedImage: String?
            let needsImage = action.kind == .create || action.kind == .recreate || action.kind == .reconfigure
                || (action.kind == .update && action.updateStep != .start)
            if needsImage {
                switch await imageReadiness(action, key: key, prior: prior) {
                case .ready(let info, let pinned):
                    image = info
                    pinnedImage = pinned ? info?.id : nil
                case .pulling(let what):
                    // Pull before stop: a recreate waits for its new image with the old container untouched.
                    action.kind = .wait
                    action.cause = "waiting for \(what): \(action.cause)"
                    var waiting = prior ?? BotStatus(botId: action.botId)
                    waiting.waitingFor = what
                    waiting.waitUntil = nil
                    try? await store.record(statuses: [waiting], events: [])
                    heldActions.append(action)
                    continue
                case .failed(let error) where action.kind == .update && action.previousContainerId != nil:
                    // The bot is down between the steps of a switch-over (after a crash): the previous container comes back
                    // at once. The image could not be had, which says nothing about the target: it is not held.
                    let result = await rollBack(after: action, error: error, prior: prior, key: key, failure: false)
                    results.append(result.result)
                    heldActions.append(result.result.action)
                    prior = result.status ?? prior
                    switching = false
                    continue
                case .failed(let error):
                    let status = await record(action, prior: prior, observed: nil, created: nil, healthLog: nil, error: error)
                    metrics.action(kind: action.kind.rawValue, result: "error")
                    logger.warning("image not ready", metadata: ["bot.id": "\(action.botId)", "error.code": "\(error.code.rawValue)",
                                                                 "error.message": "\(error.message)"])
                    results.append(ActionResult(action: action, error: error, seconds: 0, nextAttemptAt: status?.nextAttemptAt))
                    prior = status ?? prior
                    if let at = status?.nextAttemptAt { requeue(key, at: at) }
                    continue
                }
            }
            if action.kind == .update, action.updateStep == .begin, let paused = await rolloutPause(action, image: image) {
                action.kind = .blocked
                action.errorCode = .rolloutPaused
                action.cause = paused
                await recordPaused(action, prior: prior)
                heldActions.append(action)
                switching = false
                continue
            }
            // A switch-over that is under way (after a restart of botmaker, too) holds its slot whatever the limit.
            let continuing = action.previousContainerId != nil && (action.kind == .update || action.kind == .confirm || action.kind == .rollback)
            if continuing { holdUpdateSlot(key) }
            if action.isUpdate, !continuing, !takeUpdateSlot(key) {
                // The pull this bot waited for (if any) stays its own until it gets a slot.
                action.kind = .wait
                action.cause = "update waits its turn (at most \(settings.maxParallelUpdates) at a time): \(action.cause)"
                var waiting = prior ?? BotStatus(botId: action.botId)
                waiting.waitingFor = "an update slot (--max-parallel-updates \(settings.maxParallelUpdates))"
                waiting.waitUntil = nil
                try? await store.record(statuses: [waiting], events: [])
                heldActions.append(action)
                continue
            }
            if needsImage { await puller.clearOutcome(for: key) }
            if action.kind.isMutating {
                var result = await run(action, prior: prior, image: image, pinnedImage: pinnedImage)
                if action.kind == .update, let error = result.result.error {
                    // The new container could not be made or started. Once the old one is stopped and kept as the
                    // previous container, the bot is down: it comes back at once, and this target is held.
                    var kept = action.previousContainerId != nil
                    if !kept, let observed = try? await runtime.observe(botId: action.botId) {
                        kept = observed.managed.contains { $0.name == ContainerDefaults.previousName(for: action.botId) }
                    }
                    if kept {
                        var failed = action
                        if failed.previousContainerId == nil { failed.previousContainerId = action.containerId }
                        results.append(result.result)
                        // The engine refused the new container (a bad mount, command or config): the target is at fault
                        // and held. Anything else (the engine slow or unreachable, a port someone holds) is retried later.
                        result = await rollBack(after: failed, error: error, prior: result.status ?? prior, key: key,
                                                failure: error.code == .startFailed)
                        heldActions.append(result.result.action)
                    }
                    switching = false
                } else if action.kind == .confirm || action.kind == .rollback {
                    // A step that failed leaves the switch-over under way: it keeps its slot and comes back after the backoff.
                    switching = !result.result.succeeded && action.previousContainerId != nil
                        && result.result.error?.code != .updateRolledBack
                } else if action.kind == .recreate {
                    switching = false
                } else if action.kind == .reconfigure {
                    // Swarm updates the running service by itself: the update keeps its slot until Swarm has completed
                    // (or rolled back) it, as a switch-over does until its confirmation.
                    switching = action.isUpdate && result.result.succeeded
                    if switching { requeue(key, at: clock.now().addingTimeInterval(1), force: true) }
                } else if action.kind == .update {
                    // Confirmed (or not) by the next look: a health event, the minimum uptime, or the deadline.
                    switching = true
                    requeue(key, at: clock.now().addingTimeInterval(1), force: true)
                }
                results.append(result.result)
                prior = result.status ?? prior
                if let at = result.result.nextAttemptAt { requeue(key, at: at) }
                if action.isOrphan && !result.result.succeeded { retryLater(key) }
            } else if action.kind == .wait {
                requeue(key, at: action.retryAt ?? clock.now().addingTimeInterval(settings.busyRetry), force: switching)
            }
        }
        // A switch-over under way holds its slot (found after a restart, too) until it is confirmed or rolled back.
        if switching { holdUpdateSlot(key) } else { releaseUpdateSlot(key) }
        if results.allSatisfy(\.succeeded) { transientFailures.withLockedValue { $0[key] = nil } }
        let held = Set(heldActions.map { "\($0.botId)|\($0.containerId ?? "")" })
        let actions = plan.actions.filter { !(($0.kind == .remove || $0.isUpdate) && held.contains("\($0.botId)|\($0.containerId ?? "")")) } + heldActions
        return KeyReport(key: key, actions: actions, results: results)
    }

    /// Takes an update slot, or queues `key` behind the updates in progress (it is added back when one finishes).
    private func takeUpdateSlot(_ key: WorkKey) -> Bool {
        updates.withLockedValue { updates in
            if updates.running.contains(key) { return true }
            if updates.running.count < settings.maxParallelUpdates {
                updates.running.insert(key)
                updates.waiting.removeAll { $0 == key }
                return true
            }
            if !updates.waiting.contains(key) { updates.waiting.append(key) }
            return false
        }
    }

    /// Counts a switch-over found under way (e.g. after a restart) as holding a slot, even above the limit.
    private func holdUpdateSlot(_ key: WorkKey) {
        updates.withLockedValue { updates in
            updates.running.insert(key)
            updates.waiting.removeAll { $0 == key }
        }
    }

    /// Frees `key`'s slot, if it holds one, and queues every waiting key again (in arrival order): they contend anew, so
    /// a key whose update is no longer needed (its container exited, its row changed) strands no other.
    private func releaseUpdateSlot(_ key: WorkKey) {
        let waiting = updates.withLockedValue { updates -> [WorkKey] in
            guard updates.running.remove(key) != nil else { return [] }
            defer { updates.waiting = [] }
            return updates.waiting
        }
        for key in waiting { queue.add(key) }
    }

    /// Brings back a key that could not be worked, with the same backoff as a bot's failures.
    private func retryLater(_ key: WorkKey) {
        let failures = transientFailures.withLockedValue { counts -> Int in
            counts[key, default: 0] += 1
            return counts[key] ?? 1
        }
        requeue(key, at: clock.now().addingTimeInterval(settings.backoff.delay(afterFailures: failures)))
    }

    /// A key that could not even be planned: reported as blocked and failed, so the one-shot says so and exits 1.
    private func failureReport(_ key: WorkKey, botId: String, _ error: ContainerError, containerId: String? = nil) -> KeyReport {
        let name = containerId.map { "container \($0.prefix(12))" } ?? ContainerDefaults.containerName(for: botId)
        let action = PlannedAction(botId: botId, containerName: name, kind: .blocked, cause: error.message, containerId: containerId,
                                   errorCode: error.code, isOrphan: containerId != nil)
        return KeyReport(key: key, actions: [action], results: [ActionResult(action: action, error: error, seconds: 0)])
    }

    private func run(_ action: PlannedAction, prior: BotStatus?, image: ImageInfo?, pinnedImage: String? = nil) async -> (result: ActionResult, status: BotStatus?) {
        var logger = logger
        logger[metadataKey: "bot.id"] = "\(action.botId)"
        logger[metadataKey: "action"] = "\(action.kind.rawValue)"
        // The in-flight mark is written while the engine works, off the action's critical path; the
        // outcome is recorded only after it, so it always replaces the mark.
        var inFlight = prior ?? BotStatus(botId: action.botId)
        inFlight.inFlightAction = action.kind.inFlightName
        inFlight.inFlightSince = clock.now()
        // A switch-over's begin and a failed update's rollback write their intent (with the in-flight mark) first, in order.
        let writesIntent = (action.kind == .update && action.updateStep == .begin) || (action.kind == .rollback && action.isFailure)
            || action.kind == .confirm
        async let marked: Void = markInFlight(action.isOrphan || writesIntent ? nil : inFlight, logger: logger)
        let started = ContinuousClock.now
        var error: ContainerError?
        var observed: ContainerStatus?
        var created: Created?
        // An unhealthy container's last health check says why: read it before the restart starts a fresh one.
        let healthLog = action.errorCode == .unhealthy ? await lastHealthCheck(botId: action.botId, desired: action.desired) : nil
        var prior = prior
        if action.kind == .rollback, action.isFailure {
            // Recorded before any engine step: a crash in the middle of the rollback finishes it, never retries the target.
            prior = await recordRollbackIntent(action, prior: prior)
            Failpoint.hit("rollback.after-record")
        } else if action.kind == .update, action.updateStep == .begin {
            var intent = prior ?? BotStatus(botId: action.botId)
            intent.updatePhase = "switching"
            intent.updateStartedAt = clock.now()
            intent.previousContainerId = action.containerId
            intent.previousConfig = intent.appliedConfig
            intent.previousImageId = intent.imageId
            intent.inFlightAction = action.kind.inFlightName
            intent.inFlightSince = clock.now()
            do { try await store.record(statuses: [intent], events: []) } catch {
                logger.error("cannot record the update under way", metadata: ["error": "\(error)"])
            }
            prior = intent
        }
        do {
            (observed, created) = try await perform(action, image: image, pinnedImage: pinnedImage)
        } catch let failure {
            error = failure
        }
        await marked
        let seconds = (ContinuousClock.now - started).seconds
        metrics.action(kind: action.kind.rawValue, result: error == nil ? "ok" : "error")
        if let error {
            logger.warning("action failed", metadata: ["error.code": "\(error.code.rawValue)", "error.message": "\(error.message)"])
        } else {
            logger.info("action done", metadata: ["cause": "\(action.cause)", "seconds": "\(String(format: "%.3f", seconds))"])
        }
        let status = await record(action, prior: prior, observed: observed, created: created, healthLog: healthLog, error: error)
        // A rollback that worked still reports the update's failure (a one-shot exits 1).
        let reported = error ?? (action.kind == .rollback && action.isFailure
                                 ? ContainerError(.updateRolledBack, status?.lastErrorMessage ?? action.cause, botId: action.botId) : nil)
        return (ActionResult(action: action, error: reported, seconds: seconds, nextAttemptAt: status?.nextAttemptAt), status)
    }

    /// Records a failed switch-over before it is rolled back: `UPDATE_ROLLED_BACK` with the reason, and its target (spec hash
    /// and image ID), which is then not tried again.
    private func recordRollbackIntent(_ action: PlannedAction, prior: BotStatus?) async -> BotStatus {
        let now = clock.now()
        var status = prior ?? BotStatus(botId: action.botId)
        status.failedUpdateHash = action.desired?.config.specHash
        // The target's image: what the bot's reference names on the engine now (the new container was made from it).
        if let image = action.desired?.config.image { status.failedUpdateImageId = (try? await runtime.image(image))??.id }
        status.rolledBackFromGeneration = action.desired?.generation
        status.rolloutFailure = action.countsTowardRolloutPause
        status.updatePhase = "rolling back"
        status.inFlightAction = action.kind.inFlightName
        status.inFlightSince = now
        let message = "update to generation \(action.desired.map { String($0.generation) } ?? "?") rolled back: \(action.cause)"
        status.lastErrorCode = ContainerError.Code.updateRolledBack.rawValue
        status.lastErrorMessage = message
        status.lastErrorAt = now
        status.nextAttemptAt = nil
        status.failedGeneration = action.desired?.generation
        let event = BotEvent(at: now, botId: action.botId, action: "rollback", result: "error",
                             errorCode: ContainerError.Code.updateRolledBack.rawValue, message: message)
        do { try await store.record(statuses: [status], events: [event]) } catch {
            logger.error("cannot record the rollback", metadata: ["bot.id": "\(action.botId)", "error": "\(error)"])
        }
        return status
    }

    private func markInFlight(_ status: BotStatus?, logger: Logger) async {
        guard let status else { return }
        do { try await store.record(statuses: [status], events: []) } catch {
            logger.error("cannot record the action under way", metadata: ["error": "\(error)"])
        }
    }

    /// Performs the engine calls for one action; returns the container's resulting state (nil when removed) and,
    /// for a create, what it was made from.
    private func perform(_ action: PlannedAction, image: ImageInfo?, pinnedImage: String?) async throws(ContainerError) -> (ContainerStatus?, Created?) {
        let botId = action.botId
        switch action.kind {
        case .create:
            let created = try await createAndStart(action, image: image, pinnedImage: pinnedImage)
            return (created.status, created)
        case .start:
            try await runtime.startContainer(botId: botId)
        case .stop:
            try await runtime.stopContainer(botId: botId)
        case .restart:
            try await runtime.restartContainer(botId: botId)
        case .recreate:
            try await runtime.removeContainer(botId: botId)
            let created = try await createAndStart(action, image: image, pinnedImage: nil)
            return (created.status, created)
        case .reconfigure:
            guard let bot = action.desired else { throw ContainerError(.invalidSpec, "no desired spec", botId: botId) }
            let prepared = try await prepare(bot, restoring: nil, pinnedImage: nil)
            try await runtime.reconfigureContainer(botId: botId, config: prepared.config, launch: prepared.launch)
            let created = Created(status: await statusAfterAction(botId: botId), config: prepared.config, published: prepared.launch.published,
                                  image: image, reference: ImageReference(prepared.config.image))
            return (created.status, created)
        case .update:
            return try await performUpdate(action, image: image)
        case .confirm:
            if let previous = action.previousContainerId {
                var confirmed = (try? await store.botState(id: botId).status) ?? BotStatus(botId: botId)
                confirmed.updatePhase = "confirmed"
                confirmed.inFlightAction = action.kind.inFlightName
                confirmed.inFlightSince = clock.now()
                try? await store.record(statuses: [confirmed], events: [])
                Failpoint.hit("confirm.before-remove")
                try await runtime.removeManagedContainer(id: previous, botId: botId)
            }
        case .rollback:
            try await performRollback(action)
        case .remove:
            if action.isOrphan, let id = action.containerId {
                try await runtime.removeManagedContainer(id: id, botId: botId)
            } else {
                try await runtime.removeContainer(botId: botId)
            }
            return (nil, nil)
        case .invalid, .blocked, .wait, .unowned:
            return (nil, nil)
        }
        return (await statusAfterAction(botId: botId), nil)
    }

    /// One step of a switch-over (see ``PlannedAction/UpdateStep``). The old container is stopped before the new one
    /// starts: never two copies of a bot at once.
    private func performUpdate(_ action: PlannedAction, image: ImageInfo?) async throws(ContainerError) -> (ContainerStatus?, Created?) {
        let botId = action.botId
        switch action.updateStep ?? .begin {
        case .begin:
            if let old = action.containerId {
                try await runtime.stopContainer(botId: botId)
                Failpoint.hit("update.after-stop")
                do {
                    try await runtime.renameContainer(botId: botId, containerId: old, to: ContainerDefaults.previousName(for: botId))
                } catch {
                    // Not kept: the bot must not stay down for the backoff. The update is tried again after it.
                    try? await runtime.startContainer(botId: botId, containerId: old)
                    throw error
                }
                Failpoint.hit("update.after-rename")
            }
        case .replace:
            if let stale = action.containerId { try await runtime.removeManagedContainer(id: stale, botId: botId) }
        case .start:
            try await runtime.startContainer(botId: botId)
            Failpoint.hit("update.after-start")
            return (await statusAfterAction(botId: botId), nil)
        case .create:
            break
        }
        let created = try await createAndStart(action, image: image, pinnedImage: nil)
        Failpoint.hit("update.after-start")
        return (created.status, created)
    }

    /// Removes the new container (whatever holds the bot's name, if ours), renames the previous one back and starts it.
    private func performRollback(_ action: PlannedAction) async throws(ContainerError) {
        let botId = action.botId
        guard let previous = action.previousContainerId else { return }
        try await runtime.removeContainer(botId: botId)
        Failpoint.hit("rollback.after-remove")
        try await runtime.renameContainer(botId: botId, containerId: previous, to: ContainerDefaults.containerName(for: botId))
        Failpoint.hit("rollback.after-rename")
        if action.desired?.desiredState == .running { try await runtime.startContainer(botId: botId, containerId: previous) }
    }

    /// Rolls a switch-over back after its step failed with `error` (the new container could not be made or started).
    private func rollBack(after action: PlannedAction, error: ContainerError, prior: BotStatus?, key: WorkKey,
                          failure: Bool = true) async -> (result: ActionResult, status: BotStatus?) {
        var rollback = PlannedAction(botId: action.botId, containerName: action.containerName, kind: .rollback,
                                     cause: "the new container could not be made or started: \(error.code.rawValue): \(error.message)",
                                     containerId: nil, desired: action.desired, errorCode: failure ? .updateRolledBack : nil)
        rollback.previousContainerId = action.previousContainerId
        rollback.isFailure = failure
        rollback.isUpdate = true
        // A bot's own problem (its port, its mount, its secret) says nothing about the image being rolled out.
        rollback.countsTowardRolloutPause = false
        var outcome = await run(rollback, prior: prior, image: nil)
        guard !failure, outcome.result.succeeded, var status = outcome.status else { return outcome }
        // Not held: the update is tried again after the usual backoff (the old container runs meanwhile).
        let now = clock.now()
        status.lastErrorCode = error.code.rawValue
        status.lastErrorMessage = "update not applied (the previous container runs again): \(error.message)"
        status.lastErrorAt = now
        status.failureCount = (prior?.failureCount ?? 0) + 1
        status.failedGeneration = action.desired?.generation
        status.nextAttemptAt = now.addingTimeInterval(settings.backoff.delay(afterFailures: status.failureCount))
        status.waitingFor = Planner.retryReason(error.code.rawValue)
        status.waitUntil = status.nextAttemptAt
        try? await store.record(statuses: [status], events: [])
        if let at = status.nextAttemptAt { requeue(key, at: at) }
        outcome.status = status
        outcome.result.error = error
        outcome.result.nextAttemptAt = status.nextAttemptAt
        return outcome
    }

    /// Why an update to `image` must wait: its rollout is paused after too many rollbacks (nil: it may go on).
    private func rolloutPause(_ action: PlannedAction, image: ImageInfo?) async -> String? {
        guard let target = image?.id ?? action.desired?.resolvedImageId,
              let failed = try? await store.rolloutFailures(imageId: target) else { return nil }
        let limit = settings.updatePolicy.maxFailedUpdates
        guard failed.count >= limit, !failed.contains(action.botId) else { return nil }
        return "the rollout of \(Planner.shortImage(target)) is paused after \(failed.count) rolled-back updates ("
            + failed.prefix(5).joined(separator: ", ") + (failed.count > 5 ? ", …" : "")
            + "); this bot keeps running its current spec until the target changes or `botmaker rollout resume`"
    }

    private func recordPaused(_ action: PlannedAction, prior: BotStatus?) async {
        var status = prior ?? BotStatus(botId: action.botId)
        var events: [BotEvent] = []
        let now = clock.now()
        if status.lastErrorCode != ContainerError.Code.rolloutPaused.rawValue || status.lastErrorMessage != action.cause {
            status.lastErrorAt = now
            events.append(BotEvent(at: now, botId: action.botId, action: "update", result: "error",
                                   errorCode: ContainerError.Code.rolloutPaused.rawValue, message: action.cause))
        }
        status.lastErrorCode = ContainerError.Code.rolloutPaused.rawValue
        status.lastErrorMessage = action.cause
        status.nextAttemptAt = nil
        status.waitingFor = "rollout resume"
        status.waitUntil = nil
        status.lastReconciledAt = now
        do { try await store.record(statuses: [status], events: events) } catch {
            logger.error("cannot record status", metadata: ["bot.id": "\(action.botId)", "error": "\(error)"])
        }
    }

    /// The container's state after a successful action; best effort: a failed look does not undo the action.
    private func statusAfterAction(botId: String) async -> ContainerStatus? {
        do { return try await runtime.getContainerStatus(botId: botId) } catch {
            logger.debug("cannot inspect after the action", metadata: ["bot.id": "\(botId)", "error": "\(error)"])
            return nil
        }
    }

    /// Prepares what the container needs on the host (secrets directory, state directories, environment values from
    /// secrets, host ports), creates it and starts it when the bot should run.
    private func createAndStart(_ action: PlannedAction, image: ImageInfo?, pinnedImage: String?) async throws(ContainerError) -> Created {
        guard let desired = action.desired else { throw ContainerError(.invalidSpec, "no desired spec", botId: action.botId) }
        let prepared = try await prepare(desired, restoring: action.restoring, pinnedImage: pinnedImage)
        var bot = desired
        bot.config = prepared.config
        let published = prepared.launch.published
        let containerId = try await runtime.createContainer(botId: bot.id, config: bot.config, launch: prepared.launch)
        if action.kind == .update { Failpoint.hit("update.after-create") }
        if bot.desiredState == .running {
            do {
                try await runtime.startContainer(botId: bot.id, containerId: containerId)
            } catch let error where error.code == .portConflict {
                // An automatic port someone else took (another database's bot, a process that bound it since): forget it
                // and the container made with it, so the retry chooses a free port. A port the row names stays.
                let automatic = Set(zip(bot.config.ports, published).filter { $0.0.hostPort == nil && (error.message.contains(":\($0.1.hostPort):") || error.message.contains(":\($0.1.hostPort) ")) }
                    .map(\.1.hostPort))
                if !automatic.isEmpty {
                    try? await store.releaseAutomaticPorts(botId: bot.id, hostPorts: automatic)
                    try? await runtime.removeContainer(botId: bot.id)
                }
                throw error
            }
        }
        return Created(status: await statusAfterAction(botId: bot.id), config: bot.config, published: published, image: image,
                       reference: ImageReference(bot.config.image))
    }

    /// What a container needs on the host before it is made (secrets directory, state directories, environment values
    /// from secrets, host ports; for Swarm also the secret files, the registry credentials and a stateful bot's node),
    /// with the config whose secret digests describe exactly the values read.
    private func prepare(_ desired: DesiredBot, restoring: ContainerConfig?, pinnedImage: String?) async throws(ContainerError)
        -> (config: ContainerConfig, launch: ContainerLaunch) {
        var bot = desired
        if let restoring { bot.config = restoring }
        do {
            try secrets.ensureDirectory(for: bot.id)
        } catch {
            throw ContainerError(.secretsError, error.message, botId: bot.id)
        }
        let capabilities = runtime.capabilities
        // A Swarm node's volumes are made by the engine on that node: nothing to prepare on this host.
        if !capabilities.pinsStatefulBots { try state.ensure(botId: bot.id, config: bot.config) }
        // Values and digests are read together now, so the label always describes the values the container got.
        if let problem = secrets.resolveDigests(for: bot.id, config: &bot.config, createKey: true) {
            throw ContainerError(.secretsError, problem, botId: bot.id)
        }
        if let restoring, bot.config.secretDigests != restoring.secretDigests || bot.config.secretFileDigests != restoring.secretFileDigests {
            throw ContainerError(.updateRolledBack, "cannot make the rolled-back spec again: secrets its environment used have changed since; "
                                 + "`botmaker bot retry \(bot.id)` deploys the new target", botId: bot.id)
        }
        let environment: [String]
        do { environment = try secrets.resolveEnvironment(for: bot.id, config: bot.config) } catch {
            throw ContainerError(.secretsError, error.message, botId: bot.id)
        }
        var published: [PublishedPort] = []
        if !bot.config.ports.isEmpty {
            do {
                published = try await store.publishedPorts(botId: bot.id, ports: bot.config.ports, range: settings.portRange,
                                                            isFree: { mapping, port in HostPortProbe.isFree(ip: mapping.hostIP, port: port, proto: mapping.proto) })
            } catch let error as ContainerError {
                throw error
            } catch {
                throw ContainerError(.observeFailed, "cannot record the bot's host ports: \(error)", botId: bot.id)
            }
        }
        // A repair comes back on the image ID the bot ran; on Swarm other nodes cannot pull a local image ID, so the
        // reference is used there.
        var launch = ContainerLaunch(environment: environment, published: published, image: capabilities.pinsStatefulBots ? nil : pinnedImage)
        launch.updateStrategy = bot.updateStrategy
        launch.running = bot.desiredState == .running
        if capabilities.copiesSecretFiles {
            do { launch.secretFiles = try secrets.secretFiles(for: bot.id) } catch {
                throw ContainerError(.secretsError, error.message, botId: bot.id)
            }
            // The spec's digests are those of the files the engine gets.
            bot.config.secretFileDigests = launch.secretFiles.isEmpty ? nil : Dictionary(uniqueKeysWithValues: launch.secretFiles.map { ($0.name, $0.digest) })
        }
        if capabilities.pinsStatefulBots {
            launch.registryAuth = try? await settings.registryCredentials.lookUp(ImageReference(bot.config.image).registry)?.header
            if !bot.config.mounts.isEmpty {
                do {
                    launch.node = try await store.pinnedNode(botId: bot.id)
                    if launch.node == nil { launch.node = try await store.pin(botId: bot.id, nodeId: try await runtime.chooseNode(botId: bot.id)) }
                } catch let error as ContainerError {
                    throw error
                } catch {
                    throw ContainerError(.observeFailed, "cannot record the bot's node: \(error)", botId: bot.id)
                }
            }
        }
        return (bot.config, launch)
    }

    /// What a create made: the container's state, the spec it was made from (secret digests resolved), its ports and
    /// the image it was made from.
    struct Created {
        var status: ContainerStatus?
        var config: ContainerConfig
        var published: [PublishedPort]
        var image: ImageInfo?
        var reference: ImageReference
    }

    enum ImageReadiness {
        /// `pinned`: create from this image's ID rather than the reference (a repair, after the tag moved).
        case ready(ImageInfo?, pinned: Bool = false)
        case pulling(String)
        case failed(ContainerError)
    }

    /// Whether a create's image is on the engine, by the bot's pull policy; a pull it needs is asked of the puller
    /// (the worker does not wait for it), and the outcome of a pull the bot waited for is taken here.
    private func imageReadiness(_ action: PlannedAction, key: WorkKey, prior: BotStatus?) async -> ImageReadiness {
        guard let bot = action.desired else { return .ready(nil) }
        let reference = ImageReference(bot.config.image)
        let outcome = await puller.outcome(for: key, reference: reference)
        if case .failed(let error) = outcome {
            await puller.clearOutcome(for: key)
            return .failed(error)
        }
        let present: ImageInfo?
        do { present = try await runtime.image(bot.config.image) } catch { return .failed(error) }
        // A repair (no container, the same spec as the last one) comes back on the image the bot ran, not on what the
        // tag points to now: only an update deploys a moved tag.
        if action.kind == .create, let pinned = prior?.imageId, pinned != present?.id, prior?.specHash != nil,
           action.restoring != nil || Self.sameSpec(prior?.appliedSpec, bot), let info = try? await runtime.image(pinned) {
            return .ready(info, pinned: true)
        }
        switch bot.pullPolicy {
        case .never:
            guard let present else {
                return .failed(ContainerError(.imageNotFound, "image \(reference) is not on the engine and the bot's pull_policy is never", botId: bot.id))
            }
            return .ready(present)
        case .missing:
            if let present { return .ready(present) }
        case .always:
            if outcome != nil, let present { return .ready(present) }
        }
        if outcome != nil, present == nil {
            await puller.clearOutcome(for: key)
            return .failed(ContainerError(.imageNotFound, "image \(reference) was pulled but is not on the engine", botId: bot.id))
        }
        return .pulling(await puller.request(reference, for: key))
    }

    /// Whether the bot's spec (secret digests aside) is the one its last container was made from.
    static func sameSpec(_ applied: String?, _ bot: DesiredBot) -> Bool {
        guard let applied, let old = try? JSONDecoder().decode(ContainerSpec.self, from: Data(applied.utf8)) else { return false }
        return bot.config.spec.differences(from: old).allSatisfy { $0 == "environment from secrets" }
    }

    /// Upserts the bot's status and appends an event, in one transaction; returns the status written.
    /// The output of the bot container's last health check, with the bot's secret values replaced (a check may echo
    /// its environment, e.g. a `curl -v` with a token); nil without a container or a check.
    public func lastHealthCheck(botId: String, desired: DesiredBot?) async -> String? {
        guard let log = (try? await runtime.getContainerStatus(botId: botId))?.healthLog else { return nil }
        guard let bot = desired else { return log }
        return secrets.scrub(log, for: bot.id, config: bot.config)
    }

    private func record(_ action: PlannedAction, prior: BotStatus?, observed: ContainerStatus?, created: Created?, healthLog: String?,
                        error: ContainerError?) async -> BotStatus? {
        let now = clock.now()
        // A restart for failing the health check succeeded as an action, but the bot is not well: it is recorded as
        // UNHEALTHY with backoff, so a bot that stays unhealthy is restarted on the backoff schedule.
        let unhealthy = error == nil && action.errorCode == .unhealthy
        let unhealthyMessage = "the container failed its health check and was restarted (restart \((prior?.failureCount ?? 0) + 1))"
            + (healthLog.map { "; last check: \($0)" } ?? "")
        let event = BotEvent(at: now, botId: action.botId, action: action.kind.rawValue, result: error == nil && !unhealthy ? "ok" : "error",
                             errorCode: error?.code.rawValue ?? (unhealthy ? ContainerError.Code.unhealthy.rawValue : nil),
                             message: error?.message ?? (unhealthy ? unhealthyMessage : action.cause))
        var status: BotStatus?
        if !action.isOrphan {
            var row = prior ?? BotStatus(botId: action.botId)
            row.lastAction = action.kind.rawValue
            row.lastActionAt = now
            row.lastReconciledAt = now
            row.inFlightAction = nil
            row.inFlightSince = nil
            row.waitingFor = nil
            row.waitUntil = nil
            if let error {
                row.lastErrorCode = error.code.rawValue
                row.lastErrorMessage = error.message
                row.lastErrorAt = now
                row.failureCount += 1
                row.failedGeneration = action.desired?.generation
                row.nextAttemptAt = now.addingTimeInterval(settings.backoff.delay(afterFailures: row.failureCount))
                row.waitingFor = Planner.retryReason(error.code.rawValue)
                row.waitUntil = row.nextAttemptAt
            } else {
                let failures = row.failureCount
                row.clearError()
                if unhealthy, let bot = action.desired {
                    row.lastErrorCode = ContainerError.Code.unhealthy.rawValue
                    row.lastErrorMessage = unhealthyMessage
                    row.lastErrorAt = now
                    row.failureCount = failures + 1
                    row.failedGeneration = bot.generation
                    row.nextAttemptAt = now.addingTimeInterval(settings.backoff.delay(afterFailures: row.failureCount))
                }
                if let bot = action.desired {
                    row.observedGeneration = bot.generation
                    if let created {
                        row.specHash = created.config.specHash
                        row.appliedSpec = String(decoding: created.config.spec.canonicalEncoding, as: UTF8.self)
                        row.publishedPorts = created.published.isEmpty ? nil : created.published.map(\.description).joined(separator: ", ")
                        row.imageId = created.image?.id
                        row.imageDigest = created.image?.digest(for: created.reference)
                        row.appliedConfig = (try? JSONEncoder.canonical.encode(created.config)).map { String(decoding: $0, as: UTF8.self) }
                    }
                    if let requested = bot.restartRequestedAt, bot.desiredState == .running, action.kind != .stop {
                        row.restartObservedAt = requested
                    }
                }
                switch action.kind {
                case .update:
                    row.updatePhase = "confirming"
                    row.updateStartedAt = row.updateStartedAt ?? now
                    row.waitingFor = "update confirmation"
                    row.waitUntil = now.addingTimeInterval(settings.updatePolicy.timeout)
                case .confirm:
                    row.clearUpdate()
                    row.clearFailedUpdate()
                case .rollback:
                    // The bot is back on what the previous container was made from.
                    let restored = row.previousConfig.flatMap { try? JSONDecoder().decode(ContainerConfig.self, from: Data($0.utf8)) }
                    row.specHash = restored?.specHash
                    row.appliedSpec = restored.map { String(decoding: $0.spec.canonicalEncoding, as: UTF8.self) }
                    row.appliedConfig = row.previousConfig
                    row.imageId = row.previousImageId
                    row.imageDigest = nil
                    row.clearUpdate()
                    if let prior, prior.lastErrorCode == ContainerError.Code.updateRolledBack.rawValue {
                        row.lastErrorCode = prior.lastErrorCode
                        row.lastErrorMessage = prior.lastErrorMessage
                        row.lastErrorAt = prior.lastErrorAt
                        row.failedGeneration = prior.failedGeneration
                    }
                default:
                    break
                }
                // A bot held after a rolled-back update stays marked so while it is repaired on its old spec.
                if let prior, prior.lastErrorCode == ContainerError.Code.updateRolledBack.rawValue, row.failedUpdateHash != nil,
                   action.kind != .confirm, action.kind != .update {
                    row.lastErrorCode = prior.lastErrorCode
                    row.lastErrorMessage = prior.lastErrorMessage
                    row.lastErrorAt = prior.lastErrorAt
                }
                if let observed {
                    if created == nil, action.kind != .rollback { row.noteContainer(observed.id, imageId: nil) }
                    row.containerId = observed.id
                    row.actualState = observed.state.rawValue
                    row.health = observed.state == .running ? (observed.health?.rawValue ?? "none") : nil
                    row.exitCode = observed.exitCode
                    row.startedAt = observed.startedAt
                    row.finishedAt = observed.finishedAt
                } else if action.kind == .remove {
                    row.containerId = nil
                    row.actualState = "absent"
                    row.exitCode = nil
                    row.startedAt = nil
                    row.finishedAt = nil
                    row.specHash = nil
                    row.appliedSpec = nil
                    row.health = nil
                    row.publishedPorts = nil
                    row.imageId = nil
                    row.imageDigest = nil
                }
            }
            status = row
        }
        do {
            try await store.record(statuses: status.map { [$0] } ?? [], events: [event])
        } catch {
            logger.error("cannot record outcome", metadata: ["bot.id": "\(action.botId)", "error": "\(error)"])
        }
        return status
    }

    /// The engine could not show this bot's container: record why (once) and look again after a backoff.
    private func recordObserveFailure(_ error: ContainerError, state: BotState, key: WorkKey) async {
        let now = clock.now()
        var status = state.status ?? BotStatus(botId: error.botId ?? "")
        let failures = status.failureCount + 1
        let retryAt = now.addingTimeInterval(settings.backoff.delay(afterFailures: failures))
        logger.warning("cannot observe the bot's container", metadata: ["key": "\(key)", "error.code": "\(error.code.rawValue)"])
        if state.row != nil, case .bot(let id) = key {
            status.botId = id
            let changed = status.lastErrorCode != error.code.rawValue || status.lastErrorMessage != error.message
            status.lastErrorCode = error.code.rawValue
            status.lastErrorMessage = error.message
            status.failureCount = failures
            status.nextAttemptAt = retryAt
            status.lastReconciledAt = now
            if changed { status.lastErrorAt = now }
            do {
                try await store.record(statuses: [status], events: changed
                    ? [BotEvent(at: now, botId: id, action: "observe", result: "error", errorCode: error.code.rawValue, message: error.message)] : [])
            } catch {
                logger.error("cannot record status", metadata: ["key": "\(key)", "error": "\(error)"])
            }
        }
        requeue(key, at: retryAt)
    }

    /// Brings `key` back at `deadline` (a wait holds no worker), unless deadlines are not followed; `force`: always
    /// (the one-shot follows a switch-over to its end).
    private func requeue(_ key: WorkKey, at deadline: Date, force: Bool = false) {
        if settings.followsDeadlines || force || updates.withLockedValue({ $0.running.contains(key) }) { queue.add(key, at: deadline) }
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
