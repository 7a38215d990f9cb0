import NIOConcurrencyHelpers
import Foundation

/// How a running bot whose spec changed is brought onto the new spec (`bots.update_strategy`).
public enum UpdateStrategy: String, Sendable, Codable, CaseIterable {
    /// Stop the old container and keep it as `botmaker-<id>.previous`; start the new one; keep it once confirmed
    /// (healthy, or up for the minimum uptime), otherwise bring the previous one back.
    case rollback
    /// Stop, remove, create, start: no safety net (for bots that cannot be stopped twice).
    case recreate
}

/// When a switch-over's new container is confirmed, and when it has failed.
public struct UpdatePolicy: Sendable, Equatable {
    /// A bot without a health check is confirmed once its new container has stayed running this long.
    public var minUptime: TimeInterval
    /// A new container not confirmed this long after it started is rolled back.
    public var timeout: TimeInterval
    /// After this many rollbacks of updates to one image, the rollout of that image pauses (`ROLLOUT_PAUSED`).
    public var maxFailedUpdates: Int

    public init(minUptime: TimeInterval = 10, timeout: TimeInterval = 120, maxFailedUpdates: Int = 2) {
        self.minUptime = minUptime
        self.timeout = timeout
        self.maxFailedUpdates = max(1, maxFailedUpdates)
    }
}

/// Named points of the update state machine where a test can have the process killed (`BOTMAKER_FAILPOINT=<name>`):
/// a SIGKILL there leaves exactly the engine state that step leaves, so the next run's handling of it is tested for
/// real. Unset in production; reading it costs one environment lookup at start.
public enum Failpoint {
    public static let names = ["update.after-stop", "update.after-rename", "update.after-create", "update.after-start",
                               "confirm.before-remove", "rollback.after-record", "rollback.after-remove", "rollback.after-rename"]

    /// `NAME` or `NAME@N` (the Nth time it is reached).
    static let armed: (name: String, count: Int)? = ProcessInfo.processInfo.environment["BOTMAKER_FAILPOINT"].map { value in
        let parts = value.split(separator: "@", maxSplits: 1)
        return (String(parts[0]), parts.count == 2 ? Int(parts[1]) ?? 1 : 1)
    }
    static let hits = NIOLockedValueBox(0)

    /// Kills the process (SIGKILL: no cleanup, no flush) when `name` is the armed failpoint (at its Nth hit with `NAME@N`).
    public static func hit(_ name: String) {
        guard let armed, armed.name == name, hits.withLockedValue({ $0 += 1; return $0 }) == armed.count else { return }
        FileHandle.standardError.write(Data("failpoint \(name): killing the process\n".utf8))
        kill(getpid(), SIGKILL)
    }
}
