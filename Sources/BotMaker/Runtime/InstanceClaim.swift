import Foundation

/// Who holds an instance on an engine: one database (its identity), at one path, on one host. Kept on the
/// engine itself (a labelled named volume for Docker), outside the bots' namespace.
public struct InstanceClaim: Sendable, Equatable {
    public var owner: String
    public var databasePath: String
    public var host: String
    public var since: Date?

    public init(owner: String, databasePath: String, host: String, since: Date? = nil) {
        self.owner = owner
        self.databasePath = databasePath
        self.host = host
        self.since = since
    }

    /// The same database at the same path on the same host (a copy elsewhere is another claimant).
    public func sameHolder(as other: InstanceClaim) -> Bool {
        owner == other.owner && databasePath == other.databasePath && host == other.host
    }

    public var description: String {
        "database \(databasePath) on host \(host) (identity \(owner.prefix(12)))"
            + (since.map { " since \(ISO8601DateFormatter().string(from: $0))" } ?? "")
    }
}

/// The instance is claimed by another database, or by a copy of this one at another path or on another host.
public struct ClaimRefused: Error, Sendable, CustomStringConvertible {
    public var holder: InstanceClaim
    public var mine: InstanceClaim
    public var instance: String

    public init(holder: InstanceClaim, mine: InstanceClaim, instance: String) {
        self.holder = holder
        self.mine = mine
        self.instance = instance
    }

    public var description: String {
        "instance \(instance) on this engine is claimed by \(holder.description); this is \(mine.description). "
            + "Nothing was changed. Use another --instance, or --take-over to take the instance over deliberately "
            + "(stop the holder's service first)"
    }
}

/// Makes sure this database holds its instance's claim before it changes anything.
public enum InstanceClaims {
    /// Claims a free instance; accepts our own claim; refuses anyone else's unless `takeOver`, which adopts the
    /// holder's containers of our bots (recorded in `adopted_containers`) and moves the claim to us.
    /// Returns a line for the operator when something changed hands.
    @discardableResult
    public static func ensure(_ mine: InstanceClaim, instance: String, runtime: any ContainerRuntime, store: Store,
                              takeOver: Bool) async throws -> String? {
        let held = try await runtime.claimInstance(mine)
        if held.sameHolder(as: mine) { return nil }
        guard takeOver else { throw ClaimRefused(holder: held, mine: mine, instance: instance) }
        var adopted: [String] = []
        if held.owner != mine.owner {
            let rows = Set(try await store.snapshot().bots.map { ContainerDefaults.containerName(for: $0.id) })
            let observed = try await runtime.observe()
            for (name, owner) in observed.otherOwners where owner == held.owner && rows.contains(name) {
                if let id = observed.foreignNames[name] { adopted.append(id) }
            }
            try await store.recordAdoptions(adopted, previousOwner: held.owner)
            await runtime.adopt(Set(adopted))
        }
        try await runtime.releaseInstanceClaim()
        let now = try await runtime.claimInstance(mine)
        guard now.sameHolder(as: mine) else { throw ClaimRefused(holder: now, mine: mine, instance: instance) }
        return "took instance \(instance) over from \(held.description); adopted \(adopted.count) of its containers"
    }
}
