import DockerEngine

/// Maps any error from the Docker layer to a ``ContainerError``: 404 → `NOT_FOUND`, 409 (and Podman's 500s for the
/// same conflicts) → `ALREADY_EXISTS`, unreachable or timeout → `NETWORK_ERROR`, an API version below our minimum or an
/// answer we cannot read → `ENGINE_INCOMPATIBLE`, a bad `DOCKER_HOST` → `CONFIG_ERROR`, any other
/// HTTP error → `fallback` (by default `START_FAILED`) with the daemon's message.
/// Podman's causes (the end of its message) for what Docker reports as 409 Conflict.
let podmanConflicts = ["that name is already in use", "network already exists", "container state improper"]

public func wrapDockerError(_ error: any Error, botId: String?, fallback: ContainerError.Code = .startFailed) -> ContainerError {
    if let already = error as? ContainerError {
        return already
    }
    guard let engineError = error as? DockerEngineError else {
        return ContainerError(fallback, "\(error)", botId: botId, underlying: nil)
    }
    switch engineError {
    case .http(_, let message, _) where message.contains("port is already allocated") || message.contains("address already in use"):
        return ContainerError(.portConflict, message, botId: botId, underlying: engineError)
    case .http(404, let message, _):
        return ContainerError(.notFound, message, botId: botId, underlying: engineError)
    case .http(409, let message, _):
        return ContainerError(.alreadyExists, message, botId: botId, underlying: engineError)
    case .http(500, let message, _) where podmanConflicts.contains(where: message.contains):
        // Podman answers 500 where Docker answers 409; its message carries the cause.
        return ContainerError(.alreadyExists, message, botId: botId, underlying: engineError)
    case .http(_, let message, _):
        return ContainerError(fallback, message, botId: botId, underlying: engineError)
    case .unreachable, .timeout:
        return ContainerError(.networkError, engineError.description, botId: botId, underlying: engineError)
    case .unsupportedAPIVersion, .decoding:
        return ContainerError(.engineIncompatible, engineError.description, botId: botId, underlying: engineError)
    case .invalidHost:
        return ContainerError(.configError, engineError.description, botId: botId, underlying: engineError)
    case .inStream(let message, _):
        return ContainerError(fallback, message, botId: botId, underlying: engineError)
    }
}
