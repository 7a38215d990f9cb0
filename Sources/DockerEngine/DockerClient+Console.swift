import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

// Logs, exec and stats: what an operator asks of one container.
extension DockerClient {
    /// What `GET /containers/{id}/logs` returns.
    public struct LogOptions: Sendable {
        public var follow = false
        /// Only entries from then on.
        public var since: Date?
        /// Only the last N entries (nil: all).
        public var tail: Int?
        /// Each entry starts with its RFC 3339 time and a space.
        public var timestamps = false

        public init(follow: Bool = false, since: Date? = nil, tail: Int? = nil, timestamps: Bool = false) {
            self.follow = follow
            self.since = since
            self.tail = tail
            self.timestamps = timestamps
        }
    }

    /// `GET /containers/{id}/logs` (stdout and stderr), calling `onFrame` with each frame as it arrives. Returns when the
    /// engine ends the stream: at once without `follow`, when the container stops with it.
    public func containerLogs(_ id: String, _ options: LogOptions, onFrame: (StreamFrame) async throws -> Void) async throws(DockerEngineError) {
        var query = [("stdout", "1"), ("stderr", "1"), ("follow", options.follow ? "1" : "0"), ("timestamps", options.timestamps ? "1" : "0")]
        if let tail = options.tail { query.append(("tail", String(tail))) }
        if let since = options.since { query.append(("since", String(format: "%.9f", since.timeIntervalSince1970))) }
        let response = try await open("/containers/\(Self.segment(id))/logs", query: query, operation: "containers.logs")
        try await Self.wrapping(operation: "containers.logs") {
            try await Self.expectStreaming(response, operation: "containers.logs")
            var decoder = StreamFrameDecoder()  // bots have no TTY
            for try await chunk in response.body {
                for frame in decoder.feed(chunk.readableBytesView) {
                    if frame.stream == .systemError {
                        throw DockerEngineError.inStream(message: String(decoding: frame.bytes, as: UTF8.self), operation: "containers.logs")
                    }
                    try await onFrame(frame)
                }
            }
        }
    }

    /// `POST /containers/{id}/exec`: the exec's ID. Output is attached, without a TTY; stdin when `stdin` is set.
    public func createExec(_ id: String, command: [String], stdin: Bool) async throws(DockerEngineError) -> String {
        struct Body: Encodable {
            var AttachStdin: Bool
            var AttachStdout = true
            var AttachStderr = true
            var Tty = false
            var Cmd: [String]
        }
        struct Created: Decodable { var Id: String }
        let body = try Self.encodeBody(Body(AttachStdin: stdin, Cmd: command), operation: "exec.create")
        let response = try await send(.POST, "/containers/\(Self.segment(id))/exec", body: body, operation: "exec.create", deadline: deadlines.medium)
        try response.expectSuccess()
        return try response.decode(Created.self).Id
    }

    /// `GET /exec/{id}/json`: whether it runs and its exit code.
    public func inspectExec(_ id: String) async throws(DockerEngineError) -> ExecInspect {
        let response = try await send(.GET, "/exec/\(Self.segment(id))/json", operation: "exec.inspect", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode(ExecInspect.self)
    }

    /// `POST /exec/{id}/start` on a connection of its own that the engine takes over (hijacks) for the exec's streams:
    /// `stdin`'s chunks are written to the process (its end closes our side, which the process reads as end of input),
    /// and its output arrives through `onFrame` until the process ends. AsyncHTTPClient cannot hand over a connection,
    /// so this one request is written on a SwiftNIO channel.
    public func startExec<Input: AsyncSequence & Sendable>(
        _ id: String, stdin: Input?, onFrame: @escaping @Sendable (StreamFrame) async throws -> Void
    ) async throws(DockerEngineError) where Input.Element == [UInt8] {
        let version = try await apiVersion()
        let body = #"{"Detach":false,"Tty":false}"#
        let head = "POST /v\(version)/exec/\(Self.segment(id))/start HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + body
        let transport = host.transport
        try await Self.wrapping(operation: "exec.start") {
            let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
            let channel = switch transport {
            case .unixSocket(let path): try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: initializer)
            case .tcp(let host, let port): try await bootstrap.connect(host: host, port: port, channelInitializer: initializer)
            }
            // An engine that takes the request but never answers would hang the exec: no head within the medium deadline
            // closes the connection, which ends the read below with an error.
            let answered = NIOLockedValueBox(false)
            let raw = channel.channel
            raw.eventLoop.scheduleTask(in: .nanoseconds(Int64(deadlines.medium * 1e9))) {
                if !answered.withLockedValue({ $0 }) { raw.close(promise: nil) }
            }
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: head))
                var chunks = inbound.makeAsyncIterator()
                var reader = HijackedResponseReader()
                var answer: (status: Int, rest: ByteBuffer)?
                while answer == nil {
                    guard let chunk = try await chunks.next() else {
                        throw DockerEngineError.inStream(message: "the engine closed the exec connection before answering", operation: "exec.start")
                    }
                    answer = try reader.feed(chunk)
                }
                answered.withLockedValue { $0 = true }
                guard let answer, answer.status == 101 || answer.status == 200 else {
                    var body = answer?.rest ?? ByteBuffer()
                    while body.readableBytes < reader.contentLength ?? body.readableBytes, var chunk = try await chunks.next() {
                        body.writeBuffer(&chunk)
                    }
                    throw DockerEngineError.http(status: answer?.status ?? 0, message: HijackedResponseReader.message(body), operation: "exec.start")
                }
                var decoder = StreamFrameDecoder()  // created without a TTY
                try await withThrowingTaskGroup(of: Void.self) { group in
                    if let stdin {
                        group.addTask {
                            for try await piece in stdin where !piece.isEmpty { try await outbound.write(ByteBuffer(bytes: piece)) }
                            outbound.finish()
                        }
                    }
                    for frame in decoder.feed(answer.rest.readableBytesView) { try await onFrame(frame) }
                    while let chunk = try await chunks.next() {
                        for frame in decoder.feed(chunk.readableBytesView) { try await onFrame(frame) }
                    }
                    group.cancelAll()
                }
            }
        }
    }

    /// `GET /containers/{id}/stats?stream=false`: one sample. With `oneShot` the engine answers at once but leaves
    /// `precpu_stats` empty; without it, it waits for a second sample (about a second) so the CPU delta is filled in.
    public func containerStats(_ id: String, oneShot: Bool) async throws(DockerEngineError) -> ContainerStats {
        var query = [("stream", "false")]
        if oneShot { query.append(("one-shot", "true")) }
        let response = try await send(.GET, "/containers/\(Self.segment(id))/stats", query: query, operation: "containers.stats",
                                      deadline: deadlines.medium)
        try response.expectSuccess()
        return try response.decode(ContainerStats.self)
    }

    /// A streamed answer (logs, events, pulls) that is not 200: the engine's `message` from its body, as an HTTP error.
    static func expectStreaming(_ response: HTTPClientResponse, operation: String) async throws(DockerEngineError) {
        guard response.status.code == 200 else {
            let text = (try? await response.body.collect(upTo: 1 << 20)).map { String(buffer: $0) } ?? ""
            let message = (try? JSONDecoder().decode(DockerErrorBody.self, from: Data(text.utf8)).message) ?? text
            throw .http(status: Int(response.status.code), message: message, operation: operation)
        }
    }

    /// Runs `body`, turning whatever it throws into a `DockerEngineError`.
    static func wrapping(operation: String, _ body: () async throws -> Void) async throws(DockerEngineError) {
        do { try await body() } catch let error as DockerEngineError { throw error } catch {
            if error is CancellationError { throw .inStream(message: "cancelled", operation: operation) }
            throw .unreachable(host: "engine", reason: "\(operation): \(error)")
        }
    }

    static func encodeBody<T: Encodable>(_ value: T, operation: String) throws(DockerEngineError) -> Data {
        do { return try JSONEncoder().encode(value) } catch { throw .decoding(operation: operation, reason: "\(error)") }
    }
}

/// The head of the engine's answer on a hijacked connection (`101 UPGRADED`, or `200 OK` from engines that do not
/// upgrade), read before the raw streams start.
struct HijackedResponseReader {
    private var buffer = ByteBuffer()
    private var headers: [String: String] = [:]

    /// Nil until the head is complete; then the status and the bytes after the head.
    mutating func feed(_ chunk: ByteBuffer) throws -> (Int, ByteBuffer)? {
        var chunk = chunk
        buffer.writeBuffer(&chunk)
        let view = buffer.readableBytesView
        guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else {
            if buffer.readableBytes > 64 << 10 { throw DockerEngineError.decoding(operation: "exec.start", reason: "no HTTP head in 64 KiB") }
            return nil
        }
        let headText = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
        let rest = buffer.getSlice(at: end.upperBound, length: view.endIndex - end.upperBound) ?? ByteBuffer()
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw DockerEngineError.decoding(operation: "exec.start", reason: "not an HTTP status line: \(headText.prefix(80))")
        }
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, rest)
    }

    var contentLength: Int? { headers["content-length"].flatMap { Int($0) } }

    /// The engine's `message` from an error body, or the body's text.
    static func message(_ body: ByteBuffer) -> String {
        let text = String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines)
        return (try? JSONDecoder().decode(DockerErrorBody.self, from: Data(text.utf8)).message) ?? text
    }
}
