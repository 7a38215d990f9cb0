import Foundation

/// The mass-removal guard, pure: when more than half of the instance's containers (and more than
/// `minimum`) would be removed although their bots were neither deleted nor set `absent` (no tombstone:
/// a restored old backup, a wrong database), none of those removals happens until someone approves them.
public struct RemovalGuard: Sendable, Equatable {
    public var minimum = 3

    public init(minimum: Int = 3) {
        self.minimum = minimum
    }

    /// The removals the guard would hold: orphans and strays of ours whose bot has no tombstone.
    public static func unexplained(_ plan: Plan, tombstones: Set<String>) -> [PlannedAction] {
        plan.actions.filter { $0.kind == .remove && $0.isOrphan && !tombstones.contains($0.botId) }
    }

    /// Nil when the removals may go ahead, else the reason they are held (for the plan, `status` and logs).
    public func hold(_ unexplained: Int, of managed: Int) -> String? {
        guard unexplained > minimum, unexplained * 2 > managed else { return nil }
        return "\(unexplained) of \(managed) containers would be removed although their bots were neither deleted nor set absent; "
            + "nothing is removed until `botmaker approve-removals` (or `reconcile --allow-mass-removal`)"
    }

    /// The plan with the held removals turned into `blocked` actions carrying `REMOVAL_GUARD`.
    public static func holding(_ plan: Plan, _ held: [PlannedAction], reason: String) -> Plan {
        let ids = Set(held.compactMap(\.containerId))
        var guarded = plan
        guarded.actions = plan.actions.map { action in
            guard action.kind == .remove, let id = action.containerId, ids.contains(id) else { return action }
            var blocked = action
            blocked.kind = .blocked
            blocked.errorCode = .removalGuard
            blocked.cause = "removal held (\(action.cause)): \(reason)"
            return blocked
        }
        return guarded
    }
}
