import DockerEngine
import Foundation

/// One running bot's resource use, as `status --stats` and the `/metrics` gauges show it.
public struct BotStats: Sendable, Equatable {
    public var botId: String
    /// Percent of one CPU (200 is two CPUs busy); nil without two samples to compare.
    public var cpuPercent: Double?
    /// What `docker stats` calls usage: memory in use without the reclaimable page cache.
    public var memoryUsed: UInt64?
    /// The container's memory limit (the host's memory when the bot has none).
    public var memoryLimit: UInt64?
    public var restartCount: Int

    public init(botId: String, cpuPercent: Double?, memoryUsed: UInt64?, memoryLimit: UInt64?, restartCount: Int) {
        self.botId = botId
        self.cpuPercent = cpuPercent
        self.memoryUsed = memoryUsed
        self.memoryLimit = memoryLimit
        self.restartCount = restartCount
    }

    /// From one sample: the CPU delta against `previous` (an earlier sample of the same container), else against the
    /// sample's own `precpu_stats` when the engine filled them in.
    public init(botId: String, sample: ContainerStats, restartCount: Int, previous: ContainerStats? = nil) {
        self.init(botId: botId, cpuPercent: Self.cpuPercent(sample.cpu, since: previous?.cpu ?? sample.precpu),
                  memoryUsed: sample.memory.workingSet, memoryLimit: sample.memory.limit, restartCount: restartCount)
    }

    /// The CPU time the container used over the host's CPU time between two samples, times the CPUs, in percent (the
    /// formula of `docker stats`). Nil when the earlier sample is empty or the counters went back (a restart).
    static func cpuPercent(_ now: ContainerStats.CPU, since before: ContainerStats.CPU) -> Double? {
        guard let system = now.systemUsage, let systemBefore = before.systemUsage, system > systemBefore,
              before.totalUsage > 0 || systemBefore > 0, now.totalUsage >= before.totalUsage else { return nil }
        let cpus = Double(now.onlineCPUs ?? 1)
        return Double(now.totalUsage - before.totalUsage) / Double(system - systemBefore) * cpus * 100
    }
}

/// A sample and what it needs to become `BotStats` later (the metrics keep the last one to compute the CPU delta).
public struct BotSample: Sendable {
    public var botId: String
    public var containerId: String
    public var stats: ContainerStats
    public var restartCount: Int
    /// A sample of the same container a second before, where the engine gave no CPU delta of its own (Podman).
    public var earlier: ContainerStats?

    public var botStats: BotStats { BotStats(botId: botId, sample: stats, restartCount: restartCount, previous: earlier) }
}
