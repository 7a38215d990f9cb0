import DockerEngine
import Foundation
import Logging

/// One reconcile pass: read the store, observe Docker, plan, and (unless dry-run) apply.
public struct Reconciler: Sendable {
    public var store: Store
    public var docker: DockerService
    public var secrets: SecretsManager
    public var concurrency: Int
    public var backoff: Backoff
    public var logger: Logger
    public var now: @Sendable () -> Date

    public init(store: Store, docker: DockerService, secrets: SecretsManager, concurrency: Int = 4, backoff: Backoff = .init(),
                logger: Logger = Logger(label: "botmaker.reconciler"), now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.docker = docker
        self.secrets = secrets
        self.concurrency = concurrency
        self.backoff = backoff
        self.logger = logger
        self.now = now
    }

    /// What planning saw and decided; nothing has been changed yet.
    public struct PlannedPass: Sendable {
        public var plan: Plan
        public var snapshot: StoreSnapshot
        public var desired: [DesiredBot]
        public var invalid: [InvalidBot]
        public var observed: ObservedContainers
    }

    /// The result of an applied pass.
    public struct PassReport: Sendable {
        public var plan: Plan
        public var results: [ActionResult]
        public var failures: [ActionResult] { results.filter { !$0.succeeded } }
    }

    /// Reads and observes, then plans. Read-only: one store read, one list call, and an inspect only
    /// for a managed container without a spec-hash label that the store has not seen before.
    public func plan() async throws -> PlannedPass {
        let snapshot = try await store.snapshot()
        var desired: [DesiredBot] = []
        var invalid: [InvalidBot] = []
        for row in snapshot.bots {
            switch BotValidation.validate(row, secretsRoot: secrets.root) {
            case .valid(let bot): desired.append(bot)
            case .invalid(let bot): invalid.append(bot)
            }
        }
        let observed = try await docker.observe()
        let adopted = await adoptLegacy(observed: observed, desired: desired, statuses: snapshot.statuses)
        let plan = Planner.plan(PlannerInput(
            desired: desired, invalid: invalid, observed: observed, statuses: snapshot.statuses, adoptedHashes: adopted, now: now()))
        return PlannedPass(plan: plan, snapshot: snapshot, desired: desired, invalid: invalid, observed: observed)
    }

    /// Applies a planned pass. Only this writes to the store or changes containers.
    public func apply(_ pass: PlannedPass) async -> PassReport {
        let executor = Executor(docker: docker, store: store, secrets: secrets, concurrency: concurrency, backoff: backoff,
                                logger: logger, now: now)
        let results = await executor.apply(pass.plan, statuses: pass.snapshot.statuses)
        return PassReport(plan: pass.plan, results: results)
    }

    /// Records `NETWORK_ERROR` on every bot that does not already show it; used when Docker cannot be observed.
    public func recordUnreachable(_ error: ContainerError) async {
        do {
            let snapshot = try await store.snapshot()
            let at = now()
            var statuses: [BotStatus] = []
            for row in snapshot.bots {
                var status = snapshot.statuses[row.id] ?? BotStatus(botId: row.id)
                guard status.lastErrorCode != ContainerError.Code.networkError.rawValue else { continue }
                status.lastErrorCode = ContainerError.Code.networkError.rawValue
                status.lastErrorMessage = error.message
                status.lastErrorAt = at
                status.lastReconciledAt = at
                statuses.append(status)
            }
            try await store.record(statuses: statuses, events: [])
        } catch {
            logger.error("cannot record NETWORK_ERROR", metadata: ["error": "\(error)"])
        }
    }

    /// Containers made by a version without spec-hash labels are adopted, not recreated, when their
    /// image, environment and secrets mount match the bot.
    func adoptLegacy(observed: ObservedContainers, desired: [DesiredBot], statuses: [String: BotStatus]) async -> [String: String] {
        let botsByName = Dictionary(desired.map { (ContainerDefaults.containerName(for: $0.id), $0) }, uniquingKeysWith: { a, _ in a })
        var adopted: [String: String] = [:]
        for container in observed.managed where container.specHash == nil {
            guard let bot = botsByName[container.name] else { continue }
            if let status = statuses[bot.id], status.containerId == container.id, status.specHash != nil { continue }
            do {
                let inspected = try await docker.client.inspectContainer(container.id)
                let imageEnv = (try? await docker.client.inspectImage(inspected.config.image).env) ?? []
                if Self.matches(inspected, bot: bot.config, imageEnvironment: imageEnv) {
                    adopted[container.id] = bot.config.specHash
                    logger.info("adopted a container without a spec hash", metadata: ["bot.id": "\(bot.id)"])
                }
            } catch {
                logger.debug("cannot inspect legacy container", metadata: ["bot.id": "\(bot.id)", "error": "\(error)"])
            }
        }
        return adopted
    }

    static func matches(_ container: ContainerInspect, bot: ContainerConfig, imageEnvironment: [String]) -> Bool {
        guard container.config.image == bot.image else { return false }
        let actual = Set(container.config.env)
        guard Set(bot.environment).isSubset(of: actual) else { return false }
        let desiredKeys = Set(bot.environment.map { $0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0 })
        let extras = actual.subtracting(bot.environment).filter { entry in
            let key = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? entry
            return !desiredKeys.contains(key)
        }
        guard extras.isSubset(of: Set(imageEnvironment)) else { return false }
        if let command = bot.command, container.config.cmd != command { return false }
        return (container.hostConfig.binds ?? []).contains(ContainerDefaults.secretsBind(bot.secretsPath))
    }
}
