import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small Docker Engine API client over AsyncHTTPClient. Knows nothing about bots.
///
/// The API version is negotiated on first use (`HEAD /_ping`): the lower of the daemon's
/// version and ``maximumAPIVersion``; a daemon below ``minimumAPIVersion`` is refused.
public final class DockerClient: Sendable {
    public static let minimumAPIVersion = APIVersion(1, 41)
    public static let maximumAPIVersion = APIVersion(1, 47)

    /// Per-call deadlines, in seconds.
    public struct Deadlines: Sendable {
        /// ping, version, list, inspect.
        public var short: Double = 5
        /// create, remove.
        public var medium: Double = 30
        /// Added to the stop grace period for stop and restart.
        public var stopMargin: Double = 15

        public init(short: Double = 5, medium: Double = 30, stopMargin: Double = 15) {
            self.short = short
            self.medium = medium
            self.stopMargin = stopMargin
        }
    }

    /// What one finished request looked like; for metrics and tests.
    public struct RequestRecord: Sendable {
        /// A stable name such as `containers.list`.
        public var operation: String
        /// The HTTP status, or nil when the daemon did not answer.
        public var status: Int?
        public var seconds: Double
    }

    public let host: DockerHost
    private let configuredDeadlines: Deadlines
    /// The per-call deadlines. Podman answers lists and inspects in milliseconds when idle but holds them for seconds
    /// behind container locks while it creates and starts others: there, those calls get the medium deadline.
    public var deadlines: Deadlines {
        var deadlines = configuredDeadlines
        if serverHeader.withLockedValue({ $0 })?.hasPrefix("Libpod/") == true { deadlines.short = max(deadlines.short, deadlines.medium) }
        return deadlines
    }
    private let http: HTTPClient
    private let logger: Logger
    private let negotiated = NIOLockedValueBox<APIVersion?>(nil)
    private let serverHeader = NIOLockedValueBox<String?>(nil)
    private let observer: (@Sendable (RequestRecord) -> Void)?

    public init(
        host: DockerHost,
        deadlines: Deadlines = .init(),
        logger: Logger = Logger(label: "botmaker.docker"),
        observer: (@Sendable (RequestRecord) -> Void)? = nil
    ) {
        self.host = host
        self.configuredDeadlines = deadlines
        self.logger = logger
        self.observer = observer
        // No read timeout: the events stream idles for minutes. Every other call has its own deadline.
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: nil))
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 32)
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Must be called once the client is no longer used.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// Runs `body` with a client and shuts it down afterwards, whatever happens.
    public static func withClient<Result: Sendable>(
        host: DockerHost,
        deadlines: Deadlines = .init(),
        logger: Logger = Logger(label: "botmaker.docker"),
        observer: (@Sendable (RequestRecord) -> Void)? = nil,
        _ body: (DockerClient) async throws -> Result
    ) async throws -> Result {
        let client = DockerClient(host: host, deadlines: deadlines, logger: logger, observer: observer)
        let result: Result
        do {
            result = try await body(client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return result
    }

    // MARK: - Version negotiation

    /// The API version in use, negotiating it first if needed.
    public func apiVersion() async throws(DockerEngineError) -> APIVersion {
        if let version = negotiated.withLockedValue({ $0 }) { return version }
        let server = try await ping()
        guard let serverVersion = APIVersion(server) else {
            throw .decoding(operation: "ping", reason: "Api-Version header \(server.debugDescription)")
        }
        guard serverVersion >= Self.minimumAPIVersion else {
            throw .unsupportedAPIVersion(server: server, minimum: Self.minimumAPIVersion.description)
        }
        let chosen = min(serverVersion, Self.maximumAPIVersion)
        negotiated.withLockedValue { $0 = chosen }
        logger.debug("negotiated Docker API version", metadata: ["docker.api": "\(chosen)", "docker.host": "\(host)"])
        return chosen
    }

    /// `HEAD /_ping`; returns the daemon's `Api-Version` header.
    @discardableResult
    public func ping() async throws(DockerEngineError) -> String {
        let response = try await send(.HEAD, "/_ping", versioned: false, operation: "ping", deadline: deadlines.short)
        try response.expectSuccess()
        if let server = response.headers.first(name: "Server") { serverHeader.withLockedValue { $0 = server } }
        guard let version = response.headers.first(name: "Api-Version") else {
            throw .decoding(operation: "ping", reason: "no Api-Version header")
        }
        return version
    }

    /// What answers (Docker or Podman), from the `Server` header of the ping that negotiated the API version.
    public func product() async throws(DockerEngineError) -> EngineProduct {
        let version = try await apiVersion()
        if serverHeader.withLockedValue({ $0 }) == nil { try await ping() }
        return EngineProduct(server: serverHeader.withLockedValue { $0 }, apiVersion: version)
    }

    // MARK: - Transport

    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
        var operation: String

        func expectSuccess(allowing extra: Set<Int> = []) throws(DockerEngineError) {
            guard (200..<300).contains(status) || extra.contains(status) else {
                throw .http(status: status, message: message, operation: operation)
            }
        }

        /// The daemon's `message`, or the body text when it is not Docker's JSON error shape.
        var message: String {
            let bytes = Data(body.readableBytesView)
            if let decoded = try? JSONDecoder().decode(DockerErrorBody.self, from: bytes) { return decoded.message }
            let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? HTTPResponseStatus(statusCode: status).reasonPhrase : text
        }

        func decode<T: Decodable>(_ type: T.Type) throws(DockerEngineError) -> T {
            do {
                return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
            } catch {
                throw .decoding(operation: operation, reason: "\(error)")
            }
        }
    }

    /// Sends one request and collects its whole body, all within `deadline` seconds from now.
    func send(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)] = [],
        body: Data? = nil,
        headers: [(String, String)] = [],
        versioned: Bool = true,
        operation: String,
        deadline seconds: Double
    ) async throws(DockerEngineError) -> Response {
        var request = try await makeRequest(method, path, query: query, body: body, versioned: versioned, operation: operation)
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        let started = ContinuousClock.now
        // One absolute deadline for the whole exchange: the head and the body share it.
        let deadline = NIODeadline.now() + .nanoseconds(Int64(seconds * 1e9))
        do {
            let response = try await http.execute(request, deadline: deadline, logger: logger)
            let remaining = Double(max(0, (deadline - .now()).nanoseconds)) / 1e9
            let collected = try await withDeadline(seconds: remaining) {
                try await response.body.collect(upTo: 64 << 20)
            }
            let result = Response(status: Int(response.status.code), headers: response.headers, body: collected, operation: operation)
            record(operation, status: result.status, since: started)
            return result
        } catch {
            record(operation, status: nil, since: started)
            throw mapTransportError(error, operation: operation, seconds: seconds)
        }
    }

    /// Starts a request whose body the caller streams (no deadline unless given); used by the events stream and pulls.
    func open(_ path: String, method: HTTPMethod = .GET, query: [(String, String)], headers: [(String, String)] = [], operation: String,
              deadline: NIODeadline = .distantFuture) async throws(DockerEngineError) -> HTTPClientResponse {
        var request = try await makeRequest(method, path, query: query, body: nil, versioned: true, operation: operation)
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        let started = ContinuousClock.now
        do {
            let response = try await http.execute(request, deadline: deadline, logger: logger)
            record(operation, status: Int(response.status.code), since: started)
            return response
        } catch {
            record(operation, status: nil, since: started)
            throw mapTransportError(error, operation: operation, seconds: .infinity)
        }
    }

    private func makeRequest(
        _ method: HTTPMethod, _ path: String, query: [(String, String)], body: Data?, versioned: Bool, operation: String
    ) async throws(DockerEngineError) -> HTTPClientRequest {
        try checkSocketExists()
        let prefix = versioned ? "/v\(try await apiVersion())" : ""
        var url = host.baseURL + prefix + path
        if !query.isEmpty {
            url += "?" + query.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        // dockerd refuses requests without a Host header, and AsyncHTTPClient sends none for unix sockets.
        request.headers.replaceOrAdd(name: "Host", value: "localhost")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    /// A missing socket fails at once rather than after the connection pool's retries.
    private func checkSocketExists() throws(DockerEngineError) {
        guard case .unixSocket(let path) = host.transport else { return }
        var info = stat()
        if stat(path, &info) != 0 {
            throw .unreachable(host: host.description, reason: String(cString: strerror(errno)))
        }
    }

    private func record(_ operation: String, status: Int?, since started: ContinuousClock.Instant) {
        guard let observer else { return }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        observer(RequestRecord(operation: operation, status: status, seconds: seconds))
    }

    func mapTransportError(_ error: any Error, operation: String, seconds: Double) -> DockerEngineError {
        if let engineError = error as? DockerEngineError { return engineError }
        if let httpError = error as? HTTPClientError {
            switch httpError {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return .timeout(operation: operation, seconds: seconds)
            default:
                break
            }
        }
        if error is DeadlineExceeded {
            return .timeout(operation: operation, seconds: seconds)
        }
        if let ioError = error as? IOError {
            return .unreachable(host: host.description, reason: String(cString: strerror(ioError.errnoCode)))
        }
        if let connection = error as? NIOConnectionError, let first = connection.connectionErrors.first {
            return .unreachable(host: host.description, reason: "\(first.error)")
        }
        return .unreachable(host: host.description, reason: "\(error)")
    }

    private static let queryAllowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~")
        return set
    }()

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: queryAllowed) ?? text
    }

    /// Percent-encodes one path segment (an id, a name or an image reference).
    static func segment(_ text: String) -> String {
        var allowed = queryAllowed
        allowed.insert(charactersIn: ":@/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

struct DeadlineExceeded: Error {}

/// Runs `operation`, cancelling it and throwing ``DeadlineExceeded`` after `seconds`.
func withDeadline<T: Sendable>(seconds: Double, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw DeadlineExceeded()
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw DeadlineExceeded() }
        return first
    }
}
