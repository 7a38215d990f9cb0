import Foundation

/// Per-bot exponential backoff: `base × 2^(failures−1)`, capped, with ± `jitter` spread.
public struct Backoff: Sendable, Equatable {
    public var base: TimeInterval
    public var cap: TimeInterval
    /// Fraction of the delay added or removed at random (0.2 → ±20 %).
    public var jitter: Double

    public init(base: TimeInterval = 1, cap: TimeInterval = 300, jitter: Double = 0.2) {
        self.base = base
        self.cap = cap
        self.jitter = jitter
    }

    /// The delay before the next attempt after `failures` consecutive failures (≥ 1).
    /// `unit` is a number in [0, 1) that picks the jitter (random by default).
    public func delay(afterFailures failures: Int, unit: Double = Double.random(in: 0..<1)) -> TimeInterval {
        let exponent = min(max(failures - 1, 0), 62)
        let raw = min(cap, base * pow(2, Double(exponent)))
        let spread = raw * jitter * (2 * unit - 1)
        return min(cap, max(0, raw + spread))
    }
}
