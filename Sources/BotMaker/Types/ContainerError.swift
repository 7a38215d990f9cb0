import DockerEngine

/// A failed container operation, with a stable code persisted per bot.
public struct ContainerError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable, CaseIterable {
        /// No such container, image or network.
        case notFound = "NOT_FOUND"
        /// The container name is taken (by us, or by a container we do not manage).
        case alreadyExists = "ALREADY_EXISTS"
        case startFailed = "START_FAILED"
        case stopFailed = "STOP_FAILED"
        /// The daemon is unreachable or did not answer in time.
        case networkError = "NETWORK_ERROR"
        /// A container with the bot's name exists but lacks `botmaker.managed=true`: never touched.
        case notManaged = "NOT_MANAGED"
        /// The bot's row cannot be turned into a container spec.
        case invalidSpec = "INVALID_SPEC"
        /// Docker keeps restarting the container.
        case crashLoop = "CRASH_LOOP"
        /// The secrets directory could not be prepared.
        case secretsError = "SECRETS_ERROR"
    }

    public var code: Code
    public var message: String
    public var botId: String?
    public var underlying: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, botId: String? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.botId = botId
        self.underlying = underlying
    }

    public var description: String {
        if let botId { return "\(code.rawValue) [\(botId)]: \(message)" }
        return "\(code.rawValue): \(message)"
    }
}

/// Maps any error from the Docker layer to a ``ContainerError``: 404 → `NOT_FOUND`, 409 → `ALREADY_EXISTS`,
/// unreachable or timeout → `NETWORK_ERROR`, anything else → `fallback` (by default `START_FAILED`)
/// with the daemon's message.
public func wrapDockerError(_ error: any Error, botId: String?, fallback: ContainerError.Code = .startFailed) -> ContainerError {
    if let already = error as? ContainerError {
        return already
    }
    guard let engineError = error as? DockerEngineError else {
        return ContainerError(fallback, "\(error)", botId: botId, underlying: nil)
    }
    switch engineError {
    case .http(404, let message, _):
        return ContainerError(.notFound, message, botId: botId, underlying: engineError)
    case .http(409, let message, _):
        return ContainerError(.alreadyExists, message, botId: botId, underlying: engineError)
    case .http(_, let message, _):
        return ContainerError(fallback, message, botId: botId, underlying: engineError)
    case .unreachable, .timeout, .unsupportedAPIVersion, .invalidHost:
        return ContainerError(.networkError, engineError.description, botId: botId, underlying: engineError)
    case .decoding:
        return ContainerError(fallback, engineError.description, botId: botId, underlying: engineError)
    }
}
