import DockerEngine
import Foundation
import Metrics
import NIOConcurrencyHelpers

/// The service's metrics, through swift-metrics (exported as Prometheus text when bootstrapped).
/// Names follow Prometheus conventions; see docs/operations.md for what each one means.
public final class ReconcilerMetrics: Sendable {
    private let passDuration = Metrics.Timer(label: "botmaker_reconcile_pass_duration_seconds", preferredDisplayUnit: .seconds)
    private let lastSuccess = Gauge(label: "botmaker_last_successful_pass_timestamp_seconds")
    private let botsInError = Gauge(label: "botmaker_bots_in_error")
    private let reconnects = Counter(label: "botmaker_event_stream_reconnects_total")
    private let reportedBotGauges = NIOLockedValueBox<Set<[String]>>([])

    public init() {}

    public func pass(result: String, trigger: PassTrigger, seconds: Double) {
        Counter(label: "botmaker_reconcile_passes_total", dimensions: [("result", result), ("trigger", trigger.rawValue)]).increment()
        passDuration.recordNanoseconds(Int64(seconds * 1e9))
        if result != "error" { lastSuccess.record(Date().timeIntervalSince1970) }
    }

    public func action(kind: String, result: String) {
        Counter(label: "botmaker_actions_total", dimensions: [("kind", kind), ("result", result)]).increment()
    }

    public func eventStreamReconnected() {
        reconnects.increment()
    }

    /// Counts bots by (desired, actual) state; combinations no longer present drop to 0.
    public func bots(byState counts: [[String]: Int], inError: Int) {
        let previous = reportedBotGauges.withLockedValue { reported -> Set<[String]> in
            let old = reported
            reported.formUnion(counts.keys)
            return old
        }
        for key in previous.union(counts.keys) where key.count == 2 {
            Gauge(label: "botmaker_bots", dimensions: [("desired", key[0]), ("actual", key[1])]).record(counts[key] ?? 0)
        }
        botsInError.record(inError)
    }

    /// An observer for ``DockerClient`` counting requests by endpoint and status.
    public static var dockerRequestObserver: @Sendable (DockerClient.RequestRecord) -> Void {
        { record in
            Counter(label: "botmaker_docker_requests_total",
                    dimensions: [("endpoint", record.operation), ("status", record.status.map(String.init) ?? "unreachable")]).increment()
        }
    }
}
