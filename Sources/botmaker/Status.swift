import ArgumentParser
import BotMaker
import Foundation

extension Botmaker {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each bot's desired and actual state, last action and last error (from the database).")

        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON.") var json = false
        @Flag(help: "Add CPU %, memory used / limit and restart count of each running bot (asks the engine; about 2 s).")
        var stats = false

        func run() async throws {
            let store = try global.openStore(readOnly: true)
            let now = Date()
            var bots = try store.listBots().map { BotStatusView($0, now: now) }
            if stats {
                let samples = try await global.withOneHostEngine(store, command: "status --stats") { docker in
                    await docker.samples(botIds: bots.map(\.id), engineDelta: true)
                }
                let byBot = Dictionary(samples.map { ($0.botId, $0.botStats) }, uniquingKeysWith: { a, _ in a })
                for index in bots.indices { bots[index].stats = byBot[bots[index].id] }
            }
            if json {
                print(Output.json(bots))
                return
            }
            if let held = try store.removalGuard() {
                print("REMOVAL_GUARD since \(held.since.map(Self.format) ?? "?"): \(held.reason)\n")
            }
            if let unowned = try store.unownedContainers() {
                print("unowned (made by another botmaker, left alone): \(unowned)\n")
            }
            if bots.isEmpty { print("no bots"); return }
            // A NODE column where bots run on a cluster (Swarm).
            let nodes = bots.contains { $0.node != nil }
            var rows = [["ID", "DESIRED", "ACTUAL", "HEALTH"] + (nodes ? ["NODE"] : []) + (stats ? ["CPU", "MEMORY", "RESTARTS"] : [])
                        + ["ACTIVITY", "PORTS", "CONTAINER", "LAST ACTION", "ERROR", "NEXT ATTEMPT"]]
            for bot in bots {
                let container = bot.containerId.map { String($0.prefix(12)) } ?? "-"
                let lastAction = bot.lastAction.map { "\($0) \(bot.lastActionAt.map(Self.format) ?? "")" } ?? "-"
                let error = bot.lastErrorCode.map { "\($0): \(bot.lastErrorMessage ?? "")" } ?? "-"
                let next = bot.nextAttemptAt.map(Self.format) ?? "-"
                let row: [String] = [bot.id, bot.desiredState ?? "?", bot.actualState ?? "-", bot.health ?? "-"] + (nodes ? [bot.node ?? "-"] : [])
                    + (stats ? Self.statsColumns(bot.stats) : [])
                    + [bot.activity ?? "-", bot.publishedPorts ?? "-", container, lastAction, error, next]
                rows.append(row)
            }
            print(Output.table(rows))
            if let progress = Self.updateProgress(bots) { print("\n" + progress) }
        }

        /// One line about updates under way, waiting, rolled back and paused (nil when there are none).
        static func updateProgress(_ bots: [BotStatusView]) -> String? {
            let switching = bots.count { $0.updatePhase != nil }
            let waiting = bots.count { $0.waitingFor?.hasPrefix("an update slot") == true }
            let rolledBack = bots.count { $0.rolledBackFromGeneration != nil }
            let paused = bots.count { $0.lastErrorCode == ContainerError.Code.rolloutPaused.rawValue }
            guard switching + waiting + rolledBack + paused > 0 else { return nil }
            var parts = ["\(switching) in progress", "\(waiting) waiting their turn", "\(rolledBack) rolled back"]
            if paused > 0 { parts.append("\(paused) paused (ROLLOUT_PAUSED: `botmaker rollout resume` goes on)") }
            return "updates: " + parts.joined(separator: ", ") + (rolledBack > 0 ? "; `botmaker bot retry <id>` tries a rolled-back update again" : "")
        }

        static func statsColumns(_ stats: BotStats?) -> [String] {
            guard let stats else { return ["-", "-", "-"] }
            let cpu = stats.cpuPercent.map { String(format: "%.1f%%", $0) } ?? "-"
            let memory = (stats.memoryUsed.map(Self.bytes) ?? "-") + " / " + (stats.memoryLimit.map(Self.bytes) ?? "-")
            return [cpu, memory, String(stats.restartCount)]
        }

        static func bytes(_ value: UInt64) -> String {
            let units = ["B", "KiB", "MiB", "GiB", "TiB"]
            var amount = Double(value)
            var unit = 0
            while amount >= 1024, unit < units.count - 1 {
                amount /= 1024
                unit += 1
            }
            return unit == 0 ? "\(value)B" : String(format: amount < 10 ? "%.1f%@" : "%.0f%@", amount, units[unit])
        }

        static func format(_ date: Date) -> String {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime]
            return formatter.string(from: date)
        }
    }
}

/// One bot as `status --json` shows it.
struct BotStatusView: Encodable {
    var id: String
    var desiredState: String?
    var actualState: String?
    var generation: Int64
    var observedGeneration: Int64?
    var containerId: String?
    var exitCode: Int?
    var lastAction: String?
    var lastActionAt: Date?
    var lastErrorCode: String?
    var lastErrorMessage: String?
    var lastErrorAt: Date?
    var failureCount: Int
    var nextAttemptAt: Date?
    var lastReconciledAt: Date?
    /// What is under way (`stopping since 4 s`) or awaited (`waiting: retry after NOT_FOUND until …`).
    var activity: String?
    var inFlightAction: String?
    var inFlightSince: Date?
    var waitingFor: String?
    var waitUntil: Date?
    var health: String?
    var publishedPorts: String?
    var imageId: String?
    var imageDigest: String?
    /// The switch-over in progress (`switching`, `confirming`, `rolling back`).
    var updatePhase: String?
    var updateStrategy: String?
    /// The generation whose update was rolled back (the bot runs the spec before it).
    var rolledBackFromGeneration: Int64?
    /// Swarm: the node the bot's task runs on.
    var node: String?
    /// With `--stats`, for a running bot.
    var cpuPercent: Double?
    var memoryUsed: UInt64?
    var memoryLimit: UInt64?
    var restartCount: Int?

    var stats: BotStats? {
        get {
            restartCount.map { BotStats(botId: id, cpuPercent: cpuPercent, memoryUsed: memoryUsed, memoryLimit: memoryLimit, restartCount: $0) }
        }
        set {
            cpuPercent = newValue?.cpuPercent
            memoryUsed = newValue?.memoryUsed
            memoryLimit = newValue?.memoryLimit
            restartCount = newValue?.restartCount
        }
    }

    init(_ listing: BotListing, now: Date = Date()) {
        id = listing.row.id
        desiredState = listing.row.desiredState
        generation = listing.row.generation
        let status = listing.status
        actualState = status?.actualState
        observedGeneration = status?.observedGeneration
        containerId = status?.containerId
        exitCode = status?.exitCode
        lastAction = status?.lastAction
        lastActionAt = status?.lastActionAt
        lastErrorCode = status?.lastErrorCode
        lastErrorMessage = status?.lastErrorMessage
        lastErrorAt = status?.lastErrorAt
        failureCount = status?.failureCount ?? 0
        nextAttemptAt = status?.nextAttemptAt
        lastReconciledAt = status?.lastReconciledAt
        inFlightAction = status?.inFlightAction
        inFlightSince = status?.inFlightSince
        waitingFor = status?.waitingFor
        waitUntil = status?.waitUntil
        health = status?.health
        publishedPorts = status?.publishedPorts
        imageId = status?.imageId
        imageDigest = status?.imageDigest
        updatePhase = status?.updatePhase
        updateStrategy = listing.row.updateStrategy
        rolledBackFromGeneration = status?.rolledBackFromGeneration
        node = status?.node
        if let generation = rolledBackFromGeneration, let state = actualState {
            actualState = "\(state) (rolled back from generation \(generation))"
        }
        if let action = inFlightAction {
            activity = action + (inFlightSince.map { " since \(max(0, Int(now.timeIntervalSince($0).rounded()))) s" } ?? "")
        } else if let waitingFor {
            activity = "waiting: " + waitingFor + (waitUntil.map { " until " + Botmaker.Status.format($0) } ?? "")
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, desiredState = "desired_state", actualState = "actual_state", generation, observedGeneration = "observed_generation"
        case containerId = "container_id", exitCode = "exit_code", lastAction = "last_action", lastActionAt = "last_action_at"
        case lastErrorCode = "last_error_code", lastErrorMessage = "last_error_message", lastErrorAt = "last_error_at"
        case failureCount = "failure_count", nextAttemptAt = "next_attempt_at", lastReconciledAt = "last_reconciled_at"
        case activity, inFlightAction = "in_flight_action", inFlightSince = "in_flight_since", waitingFor = "waiting_for"
        case waitUntil = "wait_until", health, publishedPorts = "published_ports", imageId = "image_id", imageDigest = "image_digest"
        case updatePhase = "update_phase", updateStrategy = "update_strategy", rolledBackFromGeneration = "rolled_back_from_generation", node
        case cpuPercent = "cpu_percent", memoryUsed = "memory_used_bytes", memoryLimit = "memory_limit_bytes", restartCount = "restart_count"
    }
}
