import DockerEngine

/// How far a log follower has shown one container's log, so that a read resumed from the last stamp shows each entry
/// once: entries stamped earlier were shown; of those that carry that stamp, the ones shown (by stream and content) are
/// skipped, once each. Stamps alone are not enough: Podman stamps to the second, and its follow stream can carry on into
/// the container's next run and deliver only some of that run's first entries.
public struct LogResumePoint: Sendable {
    struct Entry: Hashable, Sendable {
        let stream: StreamFrame.Stream
        /// The content's hash, not the content: a burst within one second is not kept in memory.
        let content: Int

        init(_ stream: StreamFrame.Stream, _ payload: [UInt8]) {
            self.stream = stream
            content = payload.hashValue
        }
    }

    /// The last stamp shown; nil when nothing has been.
    public private(set) var stamp: LogTimestamp?
    private var shownAtStamp: [Entry: Int] = [:]

    public init() {}

    /// Records an entry as shown. One stamped earlier than the last (Docker stamps its two streams apart, so the
    /// file's order can disagree with their stamps by a little) needs no record: a resumed read skips it anyway.
    public mutating func shown(_ stamp: LogTimestamp, _ stream: StreamFrame.Stream, _ payload: [UInt8]) {
        if let last = self.stamp, stamp < last { return }
        if stamp != self.stamp {
            self.stamp = stamp
            shownAtStamp = [:]
        }
        shownAtStamp[Entry(stream, payload), default: 0] += 1
    }

    /// The filter of a read resumed from ``stamp``.
    public func resumedRead() -> Filter { Filter(stamp: stamp, toSkip: shownAtStamp) }

    /// Says of each entry of a resumed read whether it is new.
    public struct Filter: Sendable {
        let stamp: LogTimestamp?
        var toSkip: [Entry: Int]

        public mutating func isNew(_ stamp: LogTimestamp, _ stream: StreamFrame.Stream, _ payload: [UInt8]) -> Bool {
            guard let last = self.stamp, stamp <= last else { return true }
            guard stamp == last else { return false }
            let entry = Entry(stream, payload)
            guard let left = toSkip[entry], left > 0 else { return true }
            toSkip[entry] = left - 1
            return false
        }
    }
}
