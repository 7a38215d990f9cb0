import Dispatch

/// The periodic resync: a `DispatchSourceTimer` whose handler only fires a trigger.
public final class ResyncTimer: Sendable {
    // Dispatch sources are not Sendable on Linux; this one is only resumed and cancelled.
    nonisolated(unsafe) private let source: any DispatchSourceTimer

    /// `interval` must be positive and at most a day (the CLI validates it).
    public init(every interval: Duration, queue: DispatchQueue = .global(), fire: @escaping @Sendable () -> Void) {
        let bounded = min(max(interval, .milliseconds(1)), .seconds(86_400))
        let nanoseconds = Int(bounded.components.seconds) * 1_000_000_000 + Int(bounded.components.attoseconds / 1_000_000_000)
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
