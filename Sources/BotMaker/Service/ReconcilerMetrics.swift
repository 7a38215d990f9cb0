import Foundation
import Metrics
import NIOConcurrencyHelpers

/// The controller's metrics, through swift-metrics (exported as Prometheus text by `botmaker run`
/// when `--metrics-addr` is set). Names follow Prometheus and controller-runtime conventions; see
/// docs/operations.md for what each one means.
public final class ReconcilerMetrics: Sendable {
    private let reconcileDuration = Metrics.Timer(label: "botmaker_reconcile_duration_seconds", preferredDisplayUnit: .seconds)
    private let lastResync = Gauge(label: "botmaker_last_successful_resync_timestamp_seconds")
    private let botsInError = Gauge(label: "botmaker_bots_in_error")
    private let reconnects = Counter(label: "botmaker_event_stream_reconnects_total")
    private let queueDepth = Gauge(label: "botmaker_workqueue_depth")
    private let queueBusy = Gauge(label: "botmaker_workqueue_busy_workers")
    private let queueWaiting = Gauge(label: "botmaker_workqueue_waiting_keys")
    private let queueOldest = Gauge(label: "botmaker_workqueue_oldest_age_seconds")
    private let reportedBotGauges = NIOLockedValueBox<Set<[String]>>([])
    private let reportedStatsBots = NIOLockedValueBox<Set<String>>([])
    private let pullDuration = Metrics.Timer(label: "botmaker_image_pull_duration_seconds", preferredDisplayUnit: .seconds)

    public init() {}

    /// One key worked: `ok` (actions succeeded), `error` (one failed) or `noop`.
    public func reconciled(result: String, seconds: Double) {
        Counter(label: "botmaker_reconcile_total", dimensions: [("result", result)]).increment()
        reconcileDuration.recordNanoseconds(Int64(seconds * 1e9))
    }

    public func resync(trigger: String, result: String) {
        Counter(label: "botmaker_resyncs_total", dimensions: [("trigger", trigger), ("result", result)]).increment()
        if result == "ok" { lastResync.record(Date().timeIntervalSince1970) }
    }

    public func action(kind: String, result: String) {
        Counter(label: "botmaker_actions_total", dimensions: [("kind", kind), ("result", result)]).increment()
    }

    /// One image pull ended: `ok` or its error code.
    public func pulled(result: String, seconds: Double) {
        Counter(label: "botmaker_image_pulls_total", dimensions: [("result", result)]).increment()
        pullDuration.recordNanoseconds(Int64(seconds * 1e9))
    }

    /// The running bots' resource use as gauges labelled by bot id; a bot no longer running loses its gauges.
    public func botStats(_ stats: [BotStats]) {
        let current = Set(stats.map(\.botId))
        let gone = reportedStatsBots.withLockedValue { reported -> Set<String> in
            let gone = reported.subtracting(current)
            reported = current
            return gone
        }
        for botId in gone {
            for label in Self.botStatsLabels { Gauge(label: label, dimensions: [("bot", botId)]).destroy() }
        }
        for bot in stats {
            let values: [Double?] = [bot.cpuPercent, bot.memoryUsed.map(Double.init), bot.memoryLimit.map(Double.init), Double(bot.restartCount)]
            for (label, value) in zip(Self.botStatsLabels, values) {
                // No value this time (no CPU delta after a restart or recreate): no stale figure either.
                if let value { Gauge(label: label, dimensions: [("bot", bot.botId)]).record(value) } else {
                    Gauge(label: label, dimensions: [("bot", bot.botId)]).destroy()
                }
            }
        }
    }

    static let botStatsLabels = ["botmaker_bot_cpu_percent", "botmaker_bot_memory_used_bytes", "botmaker_bot_memory_limit_bytes",
                                 "botmaker_bot_restarts"]

    public func eventStreamReconnected() {
        reconnects.increment()
    }

    public func queue(_ stats: WorkQueue<WorkKey>.Stats, now: Date) {
        queueDepth.record(stats.depth)
        queueBusy.record(stats.busy)
        queueWaiting.record(stats.delayed)
        queueOldest.record(stats.oldestQueuedAt.map { max(0, now.timeIntervalSince($0)) } ?? 0)
    }

    /// Counts bots by (desired, actual) state as a resync saw them; combinations no longer present drop to 0.
    public func fleet(_ view: FleetView) {
        let actual = Dictionary(view.observed.managed.map { ($0.botId, $0.state.rawValue) }, uniquingKeysWith: { a, _ in a })
        var counts: [[String]: Int] = [:]
        for row in view.snapshot.bots {
            counts[[row.desiredState ?? "invalid", actual[row.id] ?? "absent"], default: 0] += 1
        }
        var inError = Set(view.snapshot.statuses.values.filter { $0.lastErrorCode != nil }.map(\.botId))
        for status in view.plan.statusUpdates {
            if status.lastErrorCode == nil { inError.remove(status.botId) } else { inError.insert(status.botId) }
        }
        let previous = reportedBotGauges.withLockedValue { reported -> Set<[String]> in
            let old = reported
            reported.formUnion(counts.keys)
            return old
        }
        for key in previous.union(counts.keys) where key.count == 2 {
            Gauge(label: "botmaker_bots", dimensions: [("desired", key[0]), ("actual", key[1])]).record(counts[key] ?? 0)
        }
        botsInError.record(inError.count)
    }

    /// An observer for the engine counting requests by endpoint and status.
    public static var engineRequestObserver: @Sendable (EngineRequest) -> Void {
        { request in
            Counter(label: "botmaker_docker_requests_total",
                    dimensions: [("endpoint", request.operation), ("status", request.status.map(String.init) ?? "unreachable")]).increment()
        }
    }
}
