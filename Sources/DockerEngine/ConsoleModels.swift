import Foundation

/// `GET /exec/{id}/json` (the fields we use).
public struct ExecInspect: Decodable, Sendable, Equatable {
    public var running: Bool
    public var exitCode: Int?

    enum CodingKeys: String, CodingKey { case running = "Running", exitCode = "ExitCode" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        running = try c.decodeIfPresent(Bool.self, forKey: .running) ?? false
        exitCode = try c.decodeIfPresent(Int.self, forKey: .exitCode)
    }
}

/// `GET /containers/{id}/stats?stream=false` (the fields we use).
public struct ContainerStats: Decodable, Sendable, Equatable {
    public struct CPU: Decodable, Sendable, Equatable {
        /// Nanoseconds of CPU the container used since it started.
        public var totalUsage: UInt64
        /// Nanoseconds of CPU the host used since boot (all CPUs); absent on some engines.
        public var systemUsage: UInt64?
        public var onlineCPUs: Int?

        enum CodingKeys: String, CodingKey { case cpuUsage = "cpu_usage", systemUsage = "system_cpu_usage", onlineCPUs = "online_cpus" }
        enum UsageKeys: String, CodingKey { case totalUsage = "total_usage" }

        public init(totalUsage: UInt64, systemUsage: UInt64?, onlineCPUs: Int?) {
            self.totalUsage = totalUsage
            self.systemUsage = systemUsage
            self.onlineCPUs = onlineCPUs
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let usage = try? c.nestedContainer(keyedBy: UsageKeys.self, forKey: .cpuUsage)
            totalUsage = (try usage?.decodeIfPresent(UInt64.self, forKey: .totalUsage)) ?? 0
            systemUsage = try c.decodeIfPresent(UInt64.self, forKey: .systemUsage)
            onlineCPUs = try c.decodeIfPresent(Int.self, forKey: .onlineCPUs)
        }
    }

    public struct Memory: Decodable, Sendable, Equatable {
        public var usage: UInt64?
        public var limit: UInt64?
        /// cgroup counters such as `inactive_file` (v2) or `total_inactive_file` (v1).
        public var stats: [String: UInt64]

        enum CodingKeys: String, CodingKey { case usage, limit, stats }

        public init(usage: UInt64?, limit: UInt64?, stats: [String: UInt64] = [:]) {
            self.usage = usage
            self.limit = limit
            self.stats = stats
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            usage = try c.decodeIfPresent(UInt64.self, forKey: .usage)
            limit = try c.decodeIfPresent(UInt64.self, forKey: .limit)
            stats = (try? c.decodeIfPresent([String: UInt64].self, forKey: .stats)) ?? [:]
        }

        /// What `docker stats` shows as used: the usage without the page cache that can be reclaimed.
        public var workingSet: UInt64? {
            guard let usage else { return nil }
            let cache = stats["total_inactive_file"] ?? stats["inactive_file"] ?? 0
            return usage > cache ? usage - cache : usage
        }
    }

    /// When the engine read this sample (RFC 3339).
    public var read: String
    public var cpu: CPU
    /// The sample before (filled only when the engine waited for a second sample).
    public var precpu: CPU
    public var memory: Memory

    enum CodingKeys: String, CodingKey { case read, cpu = "cpu_stats", precpu = "precpu_stats", memory = "memory_stats" }

    public init(read: String, cpu: CPU, precpu: CPU, memory: Memory) {
        self.read = read
        self.cpu = cpu
        self.precpu = precpu
        self.memory = memory
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        read = try c.decodeIfPresent(String.self, forKey: .read) ?? ""
        cpu = try c.decodeIfPresent(CPU.self, forKey: .cpu) ?? CPU(totalUsage: 0, systemUsage: nil, onlineCPUs: nil)
        precpu = try c.decodeIfPresent(CPU.self, forKey: .precpu) ?? CPU(totalUsage: 0, systemUsage: nil, onlineCPUs: nil)
        memory = try c.decodeIfPresent(Memory.self, forKey: .memory) ?? Memory(usage: nil, limit: nil)
    }
}
