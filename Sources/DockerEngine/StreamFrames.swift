/// One piece of a container's output: which stream it was written to and its bytes.
public struct StreamFrame: Sendable, Equatable {
    public enum Stream: UInt8, Sendable {
        /// `systemError`: the engine's own error about the stream (`Error grabbing logs: …`), not the container's output.
        case stdin = 0, stdout = 1, stderr = 2, systemError = 3
    }

    public var stream: Stream
    public var bytes: [UInt8]

    public init(_ stream: Stream, _ bytes: [UInt8]) {
        self.stream = stream
        self.bytes = bytes
    }
}

/// Splits the engine's multiplexed stdout/stderr stream (logs, attach and exec of a container without a TTY) into
/// frames: each has an 8-byte header `[stream, 0, 0, 0, size as big-endian UInt32]` then `size` bytes. Pure: bytes
/// are fed in as they arrive, split anywhere, and whole frames come out in order. A raw stream (a container with a
/// TTY) is passed through as stdout. Whether a stream is raw is known from the TTY setting, not from `Content-Type`:
/// below API 1.42 the engine calls a multiplexed exec stream `raw-stream`.
public struct StreamFrameDecoder: Sendable {
    private var pending: [UInt8] = []
    private var start = 0
    public let raw: Bool

    public init(raw: Bool = false) {
        self.raw = raw
    }

    /// The whole frames that `bytes` completes.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [StreamFrame] where Bytes.Element == UInt8 {
        if raw {
            let chunk = Array(bytes)
            return chunk.isEmpty ? [] : [StreamFrame(.stdout, chunk)]
        }
        pending.append(contentsOf: bytes)
        var frames: [StreamFrame] = []
        while pending.count - start >= 8 {
            let size = pending[(start + 4)..<(start + 8)].reduce(0) { $0 << 8 | Int($1) }
            guard pending.count - start >= 8 + size else { break }
            let stream = StreamFrame.Stream(rawValue: pending[start]) ?? .stdout
            frames.append(StreamFrame(stream, Array(pending[(start + 8)..<(start + 8 + size)])))
            start += 8 + size
        }
        if start > 0 && start * 2 >= pending.count {
            pending.removeFirst(start)
            start = 0
        }
        return frames
    }

    /// Bytes left over that do not make a whole frame (a stream cut short).
    public var leftover: Int { pending.count - start }
}
