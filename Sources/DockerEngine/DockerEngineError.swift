/// A failure talking to the Docker Engine. HTTP failures keep the status and the daemon's `message`.
public enum DockerEngineError: Error, Sendable, CustomStringConvertible {
    /// The daemon answered with a non-success status.
    case http(status: Int, message: String, operation: String)
    /// The daemon could not be reached (socket missing, connection refused, permission denied, …).
    case unreachable(host: String, reason: String)
    /// The daemon did not answer within the call's deadline.
    case timeout(operation: String, seconds: Double)
    /// The daemon speaks an API version older than the oldest one we support.
    case unsupportedAPIVersion(server: String, minimum: String)
    /// The daemon's answer could not be decoded.
    case decoding(operation: String, reason: String)
    /// `DOCKER_HOST` could not be parsed.
    case invalidHost(String)
    /// An error reported inside a successful (200) streamed answer, e.g. a pull that failed midway.
    case inStream(message: String, operation: String)

    /// The HTTP status when the daemon answered, else nil.
    public var httpStatus: Int? {
        if case .http(let status, _, _) = self { return status }
        return nil
    }

    /// True when the daemon was unreachable or did not answer in time.
    public var isUnreachable: Bool {
        switch self {
        case .unreachable, .timeout: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .http(let status, let message, let operation):
            "\(operation): HTTP \(status): \(message)"
        case .unreachable(let host, let reason):
            "Docker daemon unreachable at \(host): \(reason)"
        case .timeout(let operation, let seconds):
            "\(operation): no answer from the Docker daemon within \(Self.format(seconds)) s"
        case .unsupportedAPIVersion(let server, let minimum):
            "Docker daemon speaks API \(server); botmaker needs at least \(minimum)"
        case .decoding(let operation, let reason):
            "\(operation): unexpected answer from the Docker daemon: \(reason)"
        case .invalidHost(let message):
            message
        case .inStream(let message, let operation):
            "\(operation): \(message)"
        }
    }

    private static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}
