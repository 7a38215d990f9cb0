/// A failed container operation, with a stable code persisted per bot.
public struct ContainerError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable, CaseIterable {
        /// No such container, image or network.
        case notFound = "NOT_FOUND"
        /// The bot's container exists but is not running (`exec` needs a running container).
        case notRunning = "NOT_RUNNING"
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
        /// The engine answered a list or inspect with an error, or the bot's row could not be read (not the bot's fault; retried).
        case observeFailed = "OBSERVE_FAILED"
        /// The engine speaks an API version older than botmaker's minimum, or answered something botmaker cannot read.
        case engineIncompatible = "ENGINE_INCOMPATIBLE"
        /// botmaker's own configuration is wrong, e.g. a malformed `DOCKER_HOST`.
        case configError = "CONFIG_ERROR"
        /// The bot's name is held by a container of our instance made from another database (another owner).
        case ownerConflict = "OWNER_CONFLICT"
        /// Removals held back by the mass-removal guard: too many containers would go without their bots being deleted.
        case removalGuard = "REMOVAL_GUARD"
        /// A state directory cannot be prepared, or a path under the data root leads out of it.
        case dataError = "DATA_ERROR"
        /// A host port the bot publishes is held by another container or process.
        case portConflict = "PORT_CONFLICT"
        /// The container fails its health check; botmaker restarts it with backoff.
        case unhealthy = "UNHEALTHY"
        /// The registry has no such repository or tag, or `pull_policy` is `never` and the image is not on the engine.
        case imageNotFound = "IMAGE_NOT_FOUND"
        /// The registry refused the credentials, or there were none.
        case authFailed = "AUTH_FAILED"
        /// A pull failed for another reason: the registry unreachable or failing, an error in the pull stream, a timeout.
        case pullFailed = "PULL_FAILED"
        /// An update's new container did not become healthy (or exited, or timed out): the previous container runs
        /// again, and that target is not tried again until it changes or `botmaker bot retry`.
        case updateRolledBack = "UPDATE_ROLLED_BACK"
        /// The rollout of an image was paused after `--max-failed-updates` rollbacks; `botmaker rollout resume`.
        case rolloutPaused = "ROLLOUT_PAUSED"
        /// Swarm: the bot is pinned to the node its state lives on, and that node is down (it is not moved without its data).
        case nodeDown = "NODE_DOWN"
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
