import Foundation

/// The whole fleet at one moment: every row, every container of ours (one list call) and the plan
/// the pure planner makes of them. Read-only: the dry run shows it, the resync enqueues from it.
public struct FleetView: Sendable {
    public var plan: Plan
    public var snapshot: StoreSnapshot
    public var observed: ObservedContainers
    /// Why the mass-removal guard holds removals back (they are `blocked` in `plan`), or nil.
    public var removalGuard: String?

    /// One store read and one list call, plus one inspect per container without a spec-hash label
    /// that the store has not seen before (containers made by an older botmaker).
    /// `createKey`: whether the secrets' digest key may be made (false for the side-effect-free dry run).
    public static func load(store: Store, runtime: any ContainerRuntime, secrets: SecretsManager, state: StateDirectories, now: Date,
                            allowMassRemoval: Bool = false, createKey: Bool = false, updatePolicy: UpdatePolicy = .init()) async throws -> FleetView {
        let snapshot = try await store.snapshot()
        var desired: [DesiredBot] = []
        var invalid: [InvalidBot] = []
        for row in snapshot.bots {
            switch validate(row, secrets: secrets, state: state, runtime: runtime) {
            case .valid(var bot):
                secrets.resolve(&bot, createKey: createKey)
                desired.append(bot)
            case .invalid(let bot): invalid.append(bot)
            }
        }
        // `always` bots follow their tag, and a bot whose update was rolled back is held only while its target's image is
        // the failed one: one image inspect per image they use (none for the others).
        func needsImage(_ bot: DesiredBot) -> Bool { bot.pullPolicy == .always || snapshot.statuses[bot.id]?.failedUpdateHash != nil }
        var resolved: [String: String] = [:]
        for image in Set(desired.filter(needsImage).map(\.config.image)) {
            if let info = try? await runtime.image(image) { resolved[image] = info.id }
        }
        for index in desired.indices where needsImage(desired[index]) {
            desired[index].resolvedImageId = resolved[desired[index].config.image]
        }
        let observed = try await runtime.observe()
        let adopted = await adoptions(runtime: runtime, observed: observed, desired: desired, statuses: snapshot.statuses)
        let probes = await updateProbes(runtime: runtime, observed: observed, bots: desired, secrets: secrets)
        let plan = Planner.plan(PlannerInput(
            desired: desired, invalid: invalid, observed: observed, statuses: snapshot.statuses, adoptedHashes: adopted,
            ownerId: store.ownerId, now: now, updatePolicy: updatePolicy, probes: probes, capabilities: runtime.capabilities))
        // The guard: removals nobody asked for (no tombstone), too many of them at once.
        let unexplained = RemovalGuard.unexplained(plan, tombstones: snapshot.tombstones)
        let ours = observed.managed.filter { store.ownerId.isEmpty || $0.owner == store.ownerId }.count
        var reason = RemovalGuard().hold(unexplained.count, of: ours)
        let approved = snapshot.removalGuard != nil && snapshot.lastRemovalApproval > snapshot.removalGuardApproval
        if allowMassRemoval || approved { reason = nil }
        let guarded = reason.map { RemovalGuard.holding(plan, unexplained, reason: $0) } ?? plan
        return FleetView(plan: guarded, snapshot: snapshot, observed: observed, removalGuard: reason)
    }

    /// The row validated, then checked against what the engine can run: a refusal (Swarm cannot express a field) is the
    /// row's `INVALID_SPEC`, never a silently weaker container.
    static func validate(_ row: BotRow, secrets: SecretsManager, state: StateDirectories, runtime: any ContainerRuntime) -> BotValidation.Outcome {
        let outcome = BotValidation.validate(row, secretsRoot: secrets.root, dataRoot: state.root)
        guard case .valid(let bot) = outcome, let refusal = runtime.refusal(for: bot.id, config: bot.config) else { return outcome }
        return .invalid(InvalidBot(id: bot.id, generation: bot.generation, desiredState: bot.desiredState, message: refusal))
    }

    /// Spec hashes for containers without a spec-hash label that match their bot (adopted, not recreated).
    static func adoptions(runtime: any ContainerRuntime, observed: ObservedContainers, desired: [DesiredBot],
                          statuses: [String: BotStatus]) async -> [String: String] {
        let botsByName = Dictionary(desired.map { (ContainerDefaults.containerName(for: $0.id), $0) }, uniquingKeysWith: { a, _ in a })
        var adopted: [String: String] = [:]
        for container in observed.managed where container.specHash == nil {
            guard let bot = botsByName[container.name] else { continue }
            if let status = statuses[bot.id], status.containerId == container.id, status.specHash != nil { continue }
            if await runtime.matchesWithoutSpecHash(containerId: container.id, config: bot.config) {
                adopted[container.id] = bot.config.specHash
            }
        }
        return adopted
    }

    /// For bots with an update in progress (a previous container exists): one inspect of the new container, which says
    /// when it started, whether Docker restarted it, and its last health check (secret values scrubbed).
    static func updateProbes(runtime: any ContainerRuntime, observed: ObservedContainers, bots: [DesiredBot],
                             secrets: SecretsManager) async -> [String: ContainerStatus] {
        let names = Set(observed.managed.map(\.name))
        var probes: [String: ContainerStatus] = [:]
        for bot in bots where names.contains(ContainerDefaults.previousName(for: bot.id)) && names.contains(ContainerDefaults.containerName(for: bot.id)) {
            guard var status = try? await runtime.getContainerStatus(botId: bot.id) else { continue }
            status.healthLog = status.healthLog.map { secrets.scrub($0, for: bot.id, config: bot.config) }
            probes[bot.id] = status
        }
        return probes
    }

    /// The view's plan with the actions of the keys that were worked replaced by what their workers planned.
    public func merging(_ reports: [KeyReport]) -> Plan {
        // A key worked more than once (a switch-over: update, then confirm or rollback) shows every action it performed,
        // in order, and what it planned last.
        var worked: [WorkKey: [PlannedAction]] = [:]
        var performed: [WorkKey: [PlannedAction]] = [:]
        for report in reports {
            worked[report.key] = (performed[report.key] ?? []) + report.actions
            performed[report.key, default: []] += report.results.map(\.action)
        }
        var merged = Plan()
        for action in plan.actions where worked[action.workKey] == nil { merged.actions.append(action) }
        for key in worked.keys.sorted(by: { $0.description < $1.description }) { merged.actions += worked.removeValue(forKey: key) ?? [] }
        merged.actions.sort { $0.containerName < $1.containerName }  // stable: a key's actions stay in order
        return merged
    }

    /// The unowned containers this view reports, as `status` shows them (nil: none).
    public var unownedSummary: String? {
        let unowned = plan.actions.filter { $0.kind == .unowned }
        guard !unowned.isEmpty else { return nil }
        return unowned.map { "\($0.containerName) (bot-id \($0.botId))" }.joined(separator: ", ")
    }

    /// Status rows of bots that have none yet and need nothing else: no action, no error event.
    public func firstSightings() -> [BotStatus] {
        let busy = Set(plan.actions.map(\.workKey)).union(plan.events.map { WorkKey.bot($0.botId) })
        return plan.statusUpdates.filter { snapshot.statuses[$0.botId] == nil && !busy.contains(.bot($0.botId)) }
    }

    /// The keys this view says need work now, and the ones that wait for a deadline.
    public func keysToWork() -> (now: Set<WorkKey>, later: [WorkKey: Date]) {
        var now = Set<WorkKey>()
        var later: [WorkKey: Date] = [:]
        for action in plan.actions {
            let key = action.workKey
            if action.kind.isMutating {
                now.insert(key)
            } else if action.kind == .wait {
                if let at = action.retryAt { later[key] = at } else { now.insert(key) }
            }
        }
        for status in plan.statusUpdates { now.insert(.bot(status.botId)) }
        for event in plan.events { now.insert(.bot(event.botId)) }
        for key in now { later[key] = nil }
        return (now, later)
    }
}
