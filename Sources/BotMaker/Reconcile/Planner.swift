import Foundation

/// Everything the planner looks at. No I/O happens after this is built.
public struct PlannerInput: Sendable {
    public var desired: [DesiredBot]
    public var invalid: [InvalidBot]
    public var observed: ObservedContainers
    public var statuses: [String: BotStatus]
    /// Spec hashes for managed containers without a spec-hash label that were found to match their bot.
    public var adoptedHashes: [String: String]
    /// This database's identity: containers without an owner label are then unowned (never removed as orphans).
    /// Nil: every managed container observed is ours (as before identities existed).
    public var ownerId: String?
    public var now: Date
    /// When a switch-over's new container is confirmed or has failed.
    public var updatePolicy: UpdatePolicy
    /// Bot id → an inspect of its new container, for bots with a previous container (an update in progress): when it
    /// started, whether Docker restarted it, its last health check.
    public var probes: [String: ContainerStatus]
    /// What the engine does differently from one host (Swarm updates services in place).
    public var capabilities: RuntimeCapabilities

    public init(desired: [DesiredBot], invalid: [InvalidBot] = [], observed: ObservedContainers, statuses: [String: BotStatus] = [:],
                adoptedHashes: [String: String] = [:], ownerId: String? = nil, now: Date, updatePolicy: UpdatePolicy = .init(),
                probes: [String: ContainerStatus] = [:], capabilities: RuntimeCapabilities = .init()) {
        self.capabilities = capabilities
        self.updatePolicy = updatePolicy
        self.probes = probes
        self.ownerId = ownerId
        self.desired = desired
        self.invalid = invalid
        self.observed = observed
        self.statuses = statuses
        self.adoptedHashes = adoptedHashes
        self.now = now
    }
}

/// The pure heart of the reconciler: (desired, observed, status, now) → ``Plan``.
public enum Planner {
    /// How long a container restarted for failing its health check must stay healthy before `UNHEALTHY` (and its
    /// backoff) is cleared.
    public static let healthyWindow: TimeInterval = 30
    /// How often a bot whose task the engine is still placing is looked at without an event.
    public static let pendingRecheck: TimeInterval = 15

    public static func plan(_ input: PlannerInput) -> Plan {
        var plan = Plan()
        // A container without an owner label is a bot's only when it is exactly that bot's: its name and its
        // bot-id label agree. Any other such container is left alone, and holds its name against us.
        let isUnowned = { (container: ContainerInfo) in input.ownerId != nil && container.owner == nil }
        let adoptable = input.observed.managed.filter { !isUnowned($0) || $0.name == ContainerDefaults.containerName(for: $0.botId) }
        let byName = Dictionary(adoptable.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var input = input
        for container in input.observed.managed where byName[container.name]?.id != container.id {
            input.observed.foreignNames[container.name] = input.observed.foreignNames[container.name] ?? container.id
        }
        let knownIds = Set(input.desired.map(\.id)).union(input.invalid.map(\.id))
        var claimed = Set<String>()

        // An update's previous container belongs to its bot (never a stray or an orphan while the row exists).
        func previous(of id: String) -> ContainerInfo? {
            byName[ContainerDefaults.previousName(for: id)].flatMap { $0.botId == id && !isUnowned($0) ? $0 : nil }
        }
        for bot in input.desired {
            let name = ContainerDefaults.containerName(for: bot.id)
            let container = byName[name]
            if let container { claimed.insert(container.id) }
            let previous = previous(of: bot.id)
            if let previous { claimed.insert(previous.id) }
            let decision = previous.map { decideSwitchOver(bot: bot, current: container, previous: $0, input: input) }
                ?? decide(bot: bot, container: container, input: input)
            apply(decision, bot: bot, container: container, previous: previous, input: input, into: &plan)
        }

        for bot in input.invalid {
            let name = ContainerDefaults.containerName(for: bot.id)
            let container = BotValidation.idProblem(bot.id) == nil ? byName[name] : nil
            if let container { claimed.insert(container.id) }
            // Left where it is while the row is invalid: the row may be fixed back to either spec.
            if BotValidation.idProblem(bot.id) == nil, let previous = previous(of: bot.id) {
                claimed.insert(previous.id)
                if bot.desiredState == .absent {
                    plan.actions.append(PlannedAction(botId: bot.id, containerName: previous.name, kind: .remove, cause: "desired absent",
                                                      containerId: previous.id, isOrphan: true))
                }
            }
            if bot.desiredState == .absent, let container {
                plan.actions.append(PlannedAction(botId: bot.id, containerName: name, kind: .remove, cause: "desired absent",
                                                  containerId: container.id))
                continue
            }
            plan.actions.append(PlannedAction(botId: bot.id, containerName: name, kind: .invalid, cause: "invalid spec: \(bot.message)",
                                              containerId: container?.id, errorCode: .invalidSpec))
            var status = input.statuses[bot.id] ?? BotStatus(botId: bot.id)
            observe(container, into: &status)
            setError(.invalidSpec, bot.message, on: &status, botId: bot.id, action: "invalid", input: input, plan: &plan)
            commit(status, input: input, into: &plan)
        }

        for container in input.observed.managed where !claimed.contains(container.id) {
            if isUnowned(container) {
                plan.actions.append(PlannedAction(
                    botId: container.botId, containerName: container.name, kind: .unowned,
                    cause: "made by another botmaker (no \(BotLabels.owner) label) and not one of this database's bots; left alone",
                    containerId: container.id, isOrphan: true))
                continue
            }
            let expectedName = ContainerDefaults.containerName(for: container.botId)
            let cause: String
            if container.name == ContainerDefaults.previousName(for: container.botId), !knownIds.contains(container.botId) {
                cause = "orphan: previous container of an update, and no row in bots"
            } else if container.name != expectedName {
                cause = "stray: named \(container.name), not \(expectedName)"
            } else if knownIds.contains(container.botId) {
                cause = "stray: duplicate container for \(container.botId)"
            } else {
                cause = "orphan: no row in bots"
            }
            plan.actions.append(PlannedAction(botId: container.botId, containerName: container.name, kind: .remove, cause: cause,
                                              containerId: container.id, isOrphan: true))
        }

        let nodes = Dictionary(input.observed.managed.compactMap { container in container.node.map { (container.id, $0) } },
                               uniquingKeysWith: { a, _ in a })
        if !nodes.isEmpty {
            for index in plan.actions.indices { plan.actions[index].node = plan.actions[index].containerId.flatMap { nodes[$0] } }
        }
        plan.sortActions()
        return plan
    }

    // MARK: - One bot

    enum Decision: Equatable {
        case converged
        case act(PlannedAction.Kind, String)
        case blocked(ContainerError.Code, String)
        case waitForDocker(String)
        /// A step of a switch-over.
        case update(PlannedAction.UpdateStep, String)
        /// A switch-over waits for its new container to be confirmed (or to fail) until then.
        case waitForConfirmation(String, until: Date)
        /// Remove the new container and bring the previous one back; `failure`: record `UPDATE_ROLLED_BACK`.
        case rollback(String, failure: Bool)
        /// The bot runs the spec its failed update was rolled back to; the failed target is not tried again.
        case held(String)
        /// The rolled-back bot has no container: made again from the config it had.
        case restore(ContainerConfig)
        /// The engine rolled the bot's update back by itself (Swarm): recorded as `UPDATE_ROLLED_BACK`, its target held.
        case engineRolledBack(String)
        /// The engine is updating (or rolling back) the bot's service by itself: the update holds its slot meanwhile.
        case waitForEngineUpdate(String)
    }

    static func decide(bot: DesiredBot, container: ContainerInfo?, input: PlannerInput) -> Decision {
        let name = ContainerDefaults.containerName(for: bot.id)
        let status = input.statuses[bot.id]
        guard let container else {
            switch bot.desiredState {
            case .running:
                if let owner = input.observed.otherOwners[name], let holder = input.observed.foreignNames[name] {
                    return .blocked(.ownerConflict, "\(name) is held by container \(holder.prefix(12)) of another botmaker database "
                                    + "(owner \(owner.prefix(12))) for this instance; it is left alone")
                }
                if let holder = input.observed.foreignNames[name] {
                    return .blocked(.alreadyExists, "\(name) is held by container \(holder.prefix(12)), which this botmaker database does not manage")
                }
                if isFailedTarget(bot, status) { return restoreDecision(bot: bot, status: status) }
                return .act(.create, "no container")
            case .stopped, .absent:
                return .converged
            }
        }
        let exitText = container.exitCode.map { " (\($0))" } ?? ""
        switch bot.desiredState {
        case .absent:
            return .act(.remove, "desired absent")
        case .stopped:
            // Swarm: a task still being placed or started (replicas 1) is scaled to 0 now, not when it runs.
            if container.pending != nil { return .act(.stop, "desired stopped, the engine is still starting it") }
            switch container.state {
            case .running, .restarting, .paused: return .act(.stop, "desired stopped, container \(container.state.rawValue)")
            case .removing: return .waitForDocker("container is being removed")
            case .created, .exited, .dead, .unknown: return .converged
            }
        case .running:
            if let problem = bot.secretProblem { return .blocked(.secretsError, problem) }
            let desiredHash = bot.config.specHash
            let observedHash = container.specHash ?? input.adoptedHashes[container.id]
                ?? (status?.containerId == container.id ? status?.specHash : nil)
            if container.state == .removing { return .waitForDocker("container is being removed") }
            // A held bot runs the spec its failed update was rolled back to: that drift is expected, and only repairs happen.
            let held = isFailedTarget(bot, status)
            // The engine rolled back (or is rolling back) the update botmaker last wrote: that target failed.
            if input.capabilities.updatesInPlace, !held, let rollback = container.engineRollback, observedHash != desiredHash,
               let applied = status?.appliedSpec, ContainerSpec.hash(ofCanonical: applied) == desiredHash {
                if rollback.inProgress { return .waitForEngineUpdate("Swarm is rolling the failed update back (\(rollback.message))") }
                return .engineRolledBack("Swarm rolled the update to generation \(bot.generation) back: \(rollback.message) "
                                         + "(its new task failed within --update-min-uptime)")
            }
            // An update that stopped its old container and was interrupted before the rename goes on as an update.
            let switching = container.state == .running || container.state == .restarting || status?.updatePhase != nil
            if observedHash != desiredHash && !held {
                let cause = driftCause(bot: bot, container: container, observedHash: observedHash, status: status)
                return switching ? updateDecision(bot: bot, cause: cause, input: input)
                    : .act(input.capabilities.updatesInPlace ? .reconfigure : .recreate, cause)
            }
            if container.engineUpdating || container.engineRollback?.inProgress == true {
                return .waitForEngineUpdate("Swarm is updating the service (its new task must stay up --update-min-uptime)")
            }
            if let pending = container.pending {
                return container.nodeDown ? .blocked(.nodeDown, pending) : .waitForDocker(pending)
            }
            switch container.state {
            case .running:
                if let requested = bot.restartRequestedAt, requested != status?.restartObservedAt {
                    return .act(.restart, "restart requested at \(requested)")
                }
                if !held, bot.pullPolicy == .always, let wanted = bot.resolvedImageId, let have = container.imageId, wanted != have {
                    return updateDecision(bot: bot, cause: "image updated: \(Self.shortImage(have)) → \(Self.shortImage(wanted)) (\(bot.config.image))",
                                          input: input)
                }
                if container.health == .unhealthy { return .act(.restart, "unhealthy: the container fails its health check") }
                return held ? .held(heldMessage(bot: bot, status: status)) : .converged
            case .restarting:
                return .blocked(.crashLoop, "Docker keeps restarting \(name)\(container.exitCode.map { "; last exit code \($0)" } ?? "")")
            case .created:
                return .act(.start, "desired running, container created but not started")
            case .exited:
                return .act(.start, "desired running, container exited\(exitText)")
            case .paused:
                return .blocked(.startFailed, "container is paused; run `docker unpause \(name)`")
            case .dead:
                return held ? restoreDecision(bot: bot, status: status) : .act(.recreate, "container is dead")
            case .removing:
                return .waitForDocker("container is being removed")
            case .unknown:
                return .blocked(.startFailed, "container is in a state botmaker does not know: \(container.status)")
            }
        }
    }

    static func driftCause(bot: DesiredBot, container: ContainerInfo, observedHash: String?, status: BotStatus?) -> String {
        guard observedHash != nil else { return "spec changed: container has no spec hash and does not match" }
        if observedHash == ContainerInfo.editedOutside { return "changed outside botmaker (e.g. `docker service update`): put back" }
        let version = container.labels[BotLabels.specVersion].flatMap(Int.init) ?? 1
        if version < ContainerSpec.encodingVersion {
            return "botmaker upgrade: spec version \(version) → \(ContainerSpec.encodingVersion) "
                + "(new defaults: hardening, pids limit, log rotation, isolated network)"
        }
        if status?.containerId == container.id, let applied = status?.appliedSpec,
           let old = try? JSONDecoder().decode(ContainerSpec.self, from: Data(applied.utf8)) {
            let fields = bot.config.spec.differences(from: old)
            if !fields.isEmpty { return "spec changed: " + fields.joined(separator: ", ") }
        }
        if container.image != bot.config.image && !container.image.hasPrefix("sha256:") { return "spec changed: image" }
        return "spec changed"
    }

    static func apply(_ decision: Decision, bot: DesiredBot, container: ContainerInfo?, previous: ContainerInfo? = nil, input: PlannerInput,
                      into plan: inout Plan) {
        let name = ContainerDefaults.containerName(for: bot.id)
        let prior = input.statuses[bot.id]
        var status = prior ?? BotStatus(botId: bot.id)
        /// Plans a wait instead of `kind` while the bot backs off after a failure of this generation.
        func waitsForBackoff(_ kind: PlannedAction.Kind) -> Bool {
            guard let wait = backoffWait(kind: kind, bot: bot, container: container, prior: prior, input: input) else { return false }
            plan.actions.append(wait)
            observe(container, into: &status)
            status.waitingFor = retryReason(prior?.lastErrorCode ?? "")
            status.waitUntil = wait.retryAt
            commit(status, input: input, into: &plan)
            return true
        }
        switch decision {
        case .rollback(let cause, let failure):
            var action = PlannedAction(botId: bot.id, containerName: name, kind: .rollback, cause: cause, containerId: container?.id,
                                       desired: bot, errorCode: failure ? .updateRolledBack : nil)
            action.previousContainerId = previous?.id
            action.isFailure = failure
            action.isUpdate = true
            plan.actions.append(action)
        case .waitForConfirmation(let cause, let until):
            var wait = PlannedAction(botId: bot.id, containerName: name, kind: .wait, cause: cause, containerId: container?.id,
                                     desired: bot, retryAt: until)
            wait.previousContainerId = previous?.id
            plan.actions.append(wait)
            observe(container, into: &status)
            status.updatePhase = "confirming"
            status.previousContainerId = previous?.id
            status.waitingFor = "update confirmation"
            status.waitUntil = until
            commit(status, input: input, into: &plan)
        case .held(let message):
            plan.actions.append(PlannedAction(botId: bot.id, containerName: name, kind: .blocked, cause: message, containerId: container?.id,
                                              desired: bot, errorCode: .updateRolledBack))
            observe(container, into: &status)
            status.observedGeneration = bot.generation
            status.waitingFor = nil
            status.waitUntil = nil
            status.clearUpdate()
            if status.lastErrorCode != ContainerError.Code.updateRolledBack.rawValue {
                status.lastErrorCode = ContainerError.Code.updateRolledBack.rawValue
                status.lastErrorMessage = message
                status.lastErrorAt = status.lastErrorAt ?? input.now
            }
            commit(status, input: input, into: &plan)
        case .waitForEngineUpdate(let cause):
            var wait = PlannedAction(botId: bot.id, containerName: name, kind: .wait, cause: cause, containerId: container?.id, desired: bot)
            wait.holdsUpdateSlot = true
            plan.actions.append(wait)
            observe(container, into: &status)
            status.waitingFor = "the engine's update of the service"
            status.waitUntil = nil
            commit(status, input: input, into: &plan)
        case .engineRolledBack(let message):
            plan.actions.append(PlannedAction(botId: bot.id, containerName: name, kind: .blocked, cause: message, containerId: container?.id,
                                              desired: bot, errorCode: .updateRolledBack))
            observe(container, into: &status)
            status.failedUpdateHash = bot.config.specHash
            status.failedUpdateImageId = bot.resolvedImageId
            status.rolledBackFromGeneration = bot.generation
            // What the service runs again is not what was last applied: once recorded, the same rollback is not seen as new
            // (after `bot retry`, the target is sent again).
            status.appliedSpec = nil
            status.appliedConfig = nil
            status.observedGeneration = bot.generation
            setError(.updateRolledBack, message, on: &status, botId: bot.id, action: "rollback", input: input, plan: &plan)
            commit(status, input: input, into: &plan)
        case .restore(let config):
            var action = PlannedAction(botId: bot.id, containerName: name, kind: .create,
                                       cause: "no container; made again from the spec the failed update was rolled back to",
                                       containerId: nil, desired: bot)
            action.restoring = config
            plan.actions.append(action)
        case .update(let step, let cause):
            if step == .begin, waitsForBackoff(.update) { return }
            var action = PlannedAction(botId: bot.id, containerName: name, kind: .update, cause: cause, containerId: container?.id, desired: bot)
            action.isUpdate = true
            action.updateStep = step
            action.previousContainerId = previous?.id
            plan.actions.append(action)
        case .act(let kind, let cause):
            // The steps of a switch-over never back off: the bot is down between them.
            if previous == nil, waitsForBackoff(kind) { return }
            var action = PlannedAction(botId: bot.id, containerName: name, kind: kind, cause: cause, containerId: container?.id, desired: bot)
            action.isUpdate = kind == .confirm
                || ((kind == .recreate || kind == .reconfigure) && (container?.state == .running || container?.state == .restarting))
            action.previousContainerId = previous?.id
            if kind == .restart, container?.health == .unhealthy, bot.restartRequestedAt == prior?.restartObservedAt || bot.restartRequestedAt == nil {
                action.errorCode = .unhealthy
            }
            plan.actions.append(action)
        case .waitForDocker(let cause):
            // Swarm placing a task can take long (no suitable node): its events bring the bot back; a look every 15 s meanwhile.
            plan.actions.append(PlannedAction(botId: bot.id, containerName: name, kind: .wait, cause: cause, containerId: container?.id, desired: bot,
                                              retryAt: container?.pending != nil ? input.now.addingTimeInterval(pendingRecheck) : nil))
            observe(container, into: &status)
            status.waitingFor = cause
            status.waitUntil = nil
            commit(status, input: input, into: &plan)
        case .blocked(let code, let message):
            plan.actions.append(PlannedAction(botId: bot.id, containerName: name, kind: .blocked, cause: message,
                                              containerId: container?.id, desired: bot, errorCode: code))
            observe(container, into: &status)
            setError(code, message, on: &status, botId: bot.id, action: "blocked", input: input, plan: &plan)
            commit(status, input: input, into: &plan)
        case .converged:
            observe(container, into: &status)
            if let container {
                status.specHash = container.specHash ?? input.adoptedHashes[container.id] ?? status.specHash
            }
            status.observedGeneration = bot.generation
            // A container restarted for failing its health check is not well again until it has stayed healthy for
            // `healthyWindow` after the restart: keeping the error keeps its backoff, so a bot that is always (or
            // every few seconds) unhealthy is restarted on the backoff schedule, never in a storm.
            status.waitingFor = nil
            status.waitUntil = nil
            if status.lastErrorCode == ContainerError.Code.unhealthy.rawValue, let health = container?.health, health != .unhealthy {
                let clearsAt = (status.lastErrorAt ?? input.now).addingTimeInterval(healthyWindow)
                if health == .starting || clearsAt > input.now {
                    if health == .healthy {
                        status.waitingFor = "health to hold after the restart"
                        status.waitUntil = clearsAt
                        plan.actions.append(PlannedAction(botId: bot.id, containerName: name, kind: .wait,
                                                          cause: "healthy again; UNHEALTHY clears if it stays healthy until \(Self.format(clearsAt))",
                                                          containerId: container?.id, desired: bot, retryAt: clearsAt))
                    }
                    commit(status, input: input, into: &plan)
                    return
                }
            }
            status.clearError()
            // A switch-over that finished without its record (a crash after the last step), or a failed target the
            // row no longer asks for: nothing of it is left to show.
            status.clearUpdate()
            if !isFailedTarget(bot, status) { status.clearFailedUpdate() }
            // Containers made before configs were recorded: the one that matches its row was made from the row's config.
            if status.appliedConfig == nil, let container, container.specHash == bot.config.specHash {
                status.appliedConfig = (try? JSONEncoder.canonical.encode(bot.config)).map { String(decoding: $0, as: UTF8.self) }
            }
            commit(status, input: input, into: &plan)
        }
    }

    /// The wait of a bot backing off after a failure of this generation, or nil when it may act now.
    static func backoffWait(kind: PlannedAction.Kind, bot: DesiredBot, container: ContainerInfo?, prior: BotStatus?, input: PlannerInput) -> PlannedAction? {
        guard let prior, let retryAt = prior.nextAttemptAt, retryAt > input.now, let code = prior.lastErrorCode,
              prior.failedGeneration == bot.generation else { return nil }
        return PlannedAction(botId: bot.id, containerName: ContainerDefaults.containerName(for: bot.id), kind: .wait,
                             cause: "\(kind.rawValue) after \(code) is backing off until \(Self.format(retryAt)) (failure \(prior.failureCount))",
                             containerId: container?.id, desired: bot, retryAt: retryAt)
    }

    /// Copies what the list call shows about the container into a status row.
    static func observe(_ container: ContainerInfo?, into status: inout BotStatus) {
        // A worker that planned this is not performing anything: an in-flight mark left by a crash is stale.
        status.inFlightAction = nil
        status.inFlightSince = nil
        guard let container else {
            status.containerId = nil
            status.node = nil
            status.actualState = "absent"
            status.exitCode = nil
            status.health = nil
            status.publishedPorts = nil
            return
        }
        status.noteContainer(container.id, imageId: container.imageId)
        status.node = container.node
        // Containers made before image IDs were recorded: the running image is the one a repair comes back on.
        if status.imageId == nil, let imageId = container.imageId { status.imageId = imageId }
        status.actualState = container.state.rawValue
        status.health = container.state == .running ? (container.health?.rawValue ?? "none") : nil
        status.exitCode = container.state == .exited || container.state == .restarting || container.state == .dead ? container.exitCode : nil
        status.specHash = container.specHash ?? status.specHash
    }

    static func setError(_ code: ContainerError.Code, _ message: String, on status: inout BotStatus, botId: String, action: String,
                         input: PlannerInput, plan: inout Plan) {
        if status.lastErrorCode != code.rawValue || status.lastErrorMessage != message {
            status.lastErrorAt = input.now
            plan.events.append(BotEvent(at: input.now, botId: botId, action: action, result: "error", errorCode: code.rawValue, message: message))
        }
        status.lastErrorCode = code.rawValue
        status.lastErrorMessage = message
        status.nextAttemptAt = nil
        status.waitingFor = nil
        status.waitUntil = nil
    }

    /// What a bot backing off after a failure with `code` waits for.
    public static func retryReason(_ code: String) -> String { "retry after \(code)" }

    /// Adds the status row to the plan only if it differs from the stored one.
    static func commit(_ status: BotStatus, input: PlannerInput, into plan: inout Plan) {
        if let prior = input.statuses[status.botId], prior.sameObservation(as: status) { return }
        var updated = status
        updated.lastReconciledAt = input.now
        plan.statusUpdates.append(updated)
    }

    /// `sha256:0123456789ab`.
    public static func shortImage(_ id: String) -> String { String(id.prefix(19)) }

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
