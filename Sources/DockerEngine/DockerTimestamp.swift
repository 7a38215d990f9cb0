import Foundation

/// Docker's RFC 3339 timestamps: up to 9 fractional digits; `0001-01-01T00:00:00Z` means "never".
public enum DockerTimestamp {
    /// Parses a Docker timestamp; nil for empty, zero ("never") or unparseable values.
    public static func parse(_ text: String?) -> Date? {
        guard let text, !text.isEmpty, !text.hasPrefix("0001-01-01") else { return nil }
        // Split off the fraction: ISO8601DateFormatter handles at most milliseconds portably.
        var base = text
        var fraction = 0.0
        if let dot = text.firstIndex(of: ".") {
            let afterDot = text[text.index(after: dot)...]
            let digits = afterDot.prefix(while: \.isNumber)
            let zone = afterDot.dropFirst(digits.count)
            base = String(text[..<dot]) + zone
            fraction = Double("0." + digits) ?? 0
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        guard let whole = formatter.date(from: base) else { return nil }
        return whole.addingTimeInterval(fraction)
    }
}
