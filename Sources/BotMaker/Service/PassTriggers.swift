import Dispatch
import Foundation

/// Why a pass runs. Every pass is a full pass; the reason is only logged and counted.
public enum PassTrigger: String, Sendable {
    case startup, resync, database, dockerEvent = "docker_event", reconnect, backoff
}

/// The single queue all triggers feed. It keeps at most one pending trigger, so a burst of edits or
/// events while a pass runs leads to exactly one more pass, and passes never overlap.
public struct TriggerQueue: Sendable {
    public let stream: AsyncStream<PassTrigger>
    private let continuation: AsyncStream<PassTrigger>.Continuation

    public init() {
        (stream, continuation) = AsyncStream.makeStream(of: PassTrigger.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func fire(_ trigger: PassTrigger) {
        continuation.yield(trigger)
    }

    public func finish() {
        continuation.finish()
    }
}

/// The periodic resync: a `DispatchSourceTimer` whose handler only fires a trigger.
public final class ResyncTimer: Sendable {
    // Dispatch sources are not Sendable on Linux; this one is only resumed and cancelled.
    nonisolated(unsafe) private let source: any DispatchSourceTimer

    public init(every interval: Duration, queue: DispatchQueue = .global(), fire: @escaping @Sendable () -> Void) {
        let nanoseconds = Int(interval.components.seconds) * 1_000_000_000 + Int(interval.components.attoseconds / 1_000_000_000)
        let source = DispatchSource.makeTimerSource(queue: queue)
        source.schedule(deadline: .now() + .nanoseconds(nanoseconds), repeating: .nanoseconds(nanoseconds), leeway: .milliseconds(100))
        source.setEventHandler(handler: fire)
        source.resume()
        self.source = source
    }

    public func cancel() {
        source.cancel()
    }

    deinit {
        source.cancel()
    }
}

/// When a pass should wake up by itself: the earliest backoff deadline still in the future.
public enum WakeSchedule {
    /// The earliest `next_attempt_at` after `now`, among bots that wait or just failed.
    public static func nextWake(plan: Plan, statuses: [String: BotStatus], results: [ActionResult], now: Date) -> Date? {
        var candidates: [Date] = []
        for action in plan.actions where action.kind == .wait {
            if let at = statuses[action.botId]?.nextAttemptAt { candidates.append(at) }
        }
        for result in results {
            if let at = result.nextAttemptAt { candidates.append(at) }
        }
        return candidates.filter { $0 > now }.min()
    }
}
