import DockerEngine
import Foundation
import Logging
import ServiceLifecycle

/// The result of one mutating action.
public struct ActionResult: Sendable {
    public var action: PlannedAction
    public var error: ContainerError?
    public var seconds: Double
    /// When a failed bot may be retried.
    public var nextAttemptAt: Date?
    public var succeeded: Bool { error == nil }
}

/// Applies a plan's mutating actions through ``DockerService`` with bounded concurrency (one action
/// per bot, so never two operations on one bot at once) and records each outcome in the store.
public struct Executor: Sendable {
    public var docker: DockerService
    public var store: Store
    public var secrets: SecretsManager
    public var concurrency: Int
    public var backoff: Backoff
    public var logger: Logger
    public var now: @Sendable () -> Date

    public init(docker: DockerService, store: Store, secrets: SecretsManager, concurrency: Int = 4, backoff: Backoff = .init(),
                logger: Logger = Logger(label: "botmaker.executor"), now: @escaping @Sendable () -> Date = { Date() }) {
        self.docker = docker
        self.store = store
        self.secrets = secrets
        self.concurrency = max(1, concurrency)
        self.backoff = backoff
        self.logger = logger
        self.now = now
    }

    /// Writes the plan's status-only updates, then runs its mutating actions. Stops starting new
    /// actions once the task is cancelled; actions already running finish.
    public func apply(_ plan: Plan, statuses: [String: BotStatus]) async -> [ActionResult] {
        do {
            try await store.record(statuses: plan.statusUpdates, events: plan.events)
        } catch {
            logger.error("cannot record status", metadata: ["error": "\(error)"])
        }
        let actions = plan.mutatingActions
        return await withTaskGroup(of: ActionResult.self) { group in
            var results: [ActionResult] = []
            var next = 0
            func launch() {
                let action = actions[next]
                next += 1
                group.addTask { await self.run(action, prior: statuses[action.botId]) }
            }
            // On cancellation or graceful shutdown no new action starts; running ones finish.
            func stopping() -> Bool { Task.isCancelled || Task.isShuttingDownGracefully }
            while next < actions.count && next < concurrency && !stopping() { launch() }
            for await result in group {
                results.append(result)
                if next < actions.count && !stopping() { launch() }
            }
            return results
        }
    }

    func run(_ action: PlannedAction, prior: BotStatus?) async -> ActionResult {
        let started = ContinuousClock.now
        var logger = logger
        logger[metadataKey: "bot.id"] = "\(action.botId)"
        logger[metadataKey: "action"] = "\(action.kind.rawValue)"
        var error: ContainerError?
        var observed: ContainerStatus?
        do {
            observed = try await perform(action)
        } catch let failure {
            error = failure
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if let error {
            logger.warning("action failed", metadata: ["error.code": "\(error.code.rawValue)", "error.message": "\(error.message)"])
        } else {
            logger.info("action done", metadata: ["cause": "\(action.cause)", "seconds": "\(String(format: "%.3f", seconds))"])
        }
        let status = await record(action, prior: prior, observed: observed, error: error)
        return ActionResult(action: action, error: error, seconds: seconds, nextAttemptAt: status?.nextAttemptAt)
    }

    /// Performs the Docker calls for one action; returns the container's resulting state (nil when removed).
    func perform(_ action: PlannedAction) async throws(ContainerError) -> ContainerStatus? {
        let botId = action.botId
        switch action.kind {
        case .create:
            return try await createAndStart(action)
        case .start:
            try await docker.startContainer(botId: botId)
        case .stop:
            try await docker.stopContainer(botId: botId)
        case .restart:
            try await docker.restartContainer(botId: botId)
        case .recreate:
            try await docker.removeContainer(botId: botId)
            return try await createAndStart(action)
        case .remove:
            if action.isOrphan, let id = action.containerId {
                try await docker.removeManagedContainer(id: id, botId: botId)
            } else {
                try await docker.removeContainer(botId: botId)
            }
            return nil
        case .invalid, .blocked, .wait:
            return nil
        }
        return try await docker.getContainerStatus(botId: botId)
    }

    private func createAndStart(_ action: PlannedAction) async throws(ContainerError) -> ContainerStatus? {
        guard let bot = action.desired else { throw ContainerError(.invalidSpec, "no desired spec", botId: action.botId) }
        do {
            try secrets.ensureDirectory(for: bot.id)
        } catch {
            throw ContainerError(.secretsError, error.message, botId: bot.id)
        }
        let containerId = try await docker.createContainer(botId: bot.id, config: bot.config)
        if bot.desiredState == .running {
            try await docker.start(containerId: containerId, botId: bot.id)
        }
        return try await docker.getContainerStatus(botId: bot.id)
    }

    /// Upserts the bot's status and appends an event, in one transaction; returns the status written.
    @discardableResult
    func record(_ action: PlannedAction, prior: BotStatus?, observed: ContainerStatus?, error: ContainerError?) async -> BotStatus? {
        let now = now()
        let event = BotEvent(at: now, botId: action.botId, action: action.kind.rawValue, result: error == nil ? "ok" : "error",
                             errorCode: error?.code.rawValue, message: error?.message ?? action.cause)
        var status: BotStatus?
        if !action.isOrphan {
            var row = prior ?? BotStatus(botId: action.botId)
            row.lastAction = action.kind.rawValue
            row.lastActionAt = now
            row.lastReconciledAt = now
            if let error {
                row.lastErrorCode = error.code.rawValue
                row.lastErrorMessage = error.message
                row.lastErrorAt = now
                row.failureCount += 1
                row.failedGeneration = action.desired?.generation
                row.nextAttemptAt = now.addingTimeInterval(backoff.delay(afterFailures: row.failureCount))
            } else {
                row.lastErrorCode = nil
                row.lastErrorMessage = nil
                row.lastErrorAt = nil
                row.failureCount = 0
                row.failedGeneration = nil
                row.nextAttemptAt = nil
                if let bot = action.desired {
                    row.observedGeneration = bot.generation
                    if action.kind == .create || action.kind == .recreate {
                        row.specHash = bot.config.specHash
                        row.appliedSpec = String(decoding: bot.config.spec.canonicalEncoding, as: UTF8.self)
                    }
                    if let requested = bot.restartRequestedAt, bot.desiredState == .running, action.kind != .stop {
                        row.restartObservedAt = requested
                    }
                }
                if let observed {
                    row.containerId = observed.id
                    row.actualState = observed.state.rawValue
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
}
