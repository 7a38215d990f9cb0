import Foundation

/// The one door to a container engine, in bot terms. Everything the reconciler does to or learns
/// from an engine goes through this protocol: the Docker Engine API implements it (``DockerService``,
/// which also serves Podman's compatible API), and ``InMemoryRuntime`` implements it for unit tests.
///
/// Implementations own the safety rules: a container without our labels (managed, our instance) is
/// never stopped, removed or modified, whatever its name; such a container holding a bot's name is
/// reported in ``ObservedContainers/foreignNames``.
public protocol ContainerRuntime: Sendable {
    /// Where the engine is, for logs (never holds credentials).
    var endpoint: String { get }

    /// Checks that the engine answers.
    func ping() async throws(ContainerError)

    /// What the engine is (`Docker 20.10.24 (API 1.41)`, `Podman 4.3.1 (API 1.41)`), for logs and `/readyz`.
    func identify() async throws(ContainerError) -> String

    /// One call that returns every container of ours and the names in our namespace held by others.
    func observe() async throws(ContainerError) -> ObservedContainers

    /// What the engine has under the bot's container name and its update's previous name (`botmaker-<id>.previous`):
    /// ours, foreign, or nothing.
    func observe(botId: String) async throws(ContainerError) -> ObservedContainers

    /// One container of ours by id, or nil when it is gone or not ours.
    func observe(containerId: String) async throws(ContainerError) -> ContainerInfo?

    /// Creates the bot's container (not started) and returns its id. `launch` carries what is resolved only now
    /// (secret environment values, host ports) and must never be logged.
    func createContainer(botId: String, config: ContainerConfig, launch: ContainerLaunch) async throws(ContainerError) -> String

    /// The engine's image under `reference` (one inspect), or nil when it has none.
    func image(_ reference: String) async throws(ContainerError) -> ImageInfo?

    /// Pulls `reference`, with `auth` as the registry credentials header (never logged), within `timeout` seconds.
    /// Failures are `IMAGE_NOT_FOUND`, `AUTH_FAILED` or `PULL_FAILED` with the registry's message.
    func pullImage(_ reference: ImageReference, auth: String?, timeout: TimeInterval,
                   progress: @escaping @Sendable (PullEvent) -> Void) async throws(ContainerError)

    /// The registry's digest (`sha256:…`) for `reference`, without pulling.
    func registryDigest(_ reference: ImageReference, auth: String?) async throws(ContainerError) -> String

    /// Removes an image (by ID or reference); one still used by a container is refused. Gone already is success.
    func removeImage(_ image: String) async throws(ContainerError)

    /// The IDs of the images every container on the engine (ours or not) was made from.
    func imagesInUse() async throws(ContainerError) -> Set<String>

    /// Starts the bot's container (by id when the caller just created it); already running is success.
    func startContainer(botId: String, containerId: String?) async throws(ContainerError)

    /// Stops the bot's container with the grace period; already stopped is success.
    func stopContainer(botId: String) async throws(ContainerError)

    /// Restarts the bot's container.
    func restartContainer(botId: String) async throws(ContainerError)

    /// Stops then removes the bot's container; one that is already gone is success.
    func removeContainer(botId: String) async throws(ContainerError)

    /// Renames a container of ours (an update's old container to `botmaker-<id>.previous`, and back). A name that is
    /// taken is `ALREADY_EXISTS`; a container that is not ours is refused.
    func renameContainer(botId: String, containerId: String, to name: String) async throws(ContainerError)

    /// Removes a container of ours by id (orphans and strays, whose names may not match a bot).
    func removeManagedContainer(id: String, botId: String) async throws(ContainerError)

    /// The bot's container state, or nil when it has none.
    func getContainerStatus(botId: String) async throws(ContainerError) -> ContainerStatus?

    /// For a container made by a botmaker that set no spec-hash label: true when it matches `config`
    /// (so it is adopted rather than recreated).
    func matchesWithoutSpecHash(containerId: String, config: ContainerConfig) async -> Bool

    /// Changes to our containers as they happen. `onConnect` runs once the engine has accepted the
    /// subscription. The stream ends (or throws) when the connection breaks; callers reconnect.
    func events(onConnect: @escaping @Sendable () -> Void) -> AsyncThrowingStream<RuntimeEvent, any Error>

    /// The instance's claim on the engine, if anyone holds it (read only).
    func instanceClaim() async throws(ContainerError) -> InstanceClaim?

    /// Claims the instance on the engine unless someone holds it; returns the claim in force afterwards
    /// (ours, or the holder's).
    func claimInstance(_ claim: InstanceClaim) async throws(ContainerError) -> InstanceClaim

    /// Drops the instance's claim (for a deliberate take-over).
    func releaseInstanceClaim() async throws(ContainerError)

    /// Treats these containers (another database's, taken over) as ours.
    func adopt(_ containerIds: Set<String>) async

    /// Releases connections; the runtime is not used afterwards.
    func shutdown() async

    /// What the engine does differently from one Docker host.
    var capabilities: RuntimeCapabilities { get }

    /// Why the engine cannot run `config` as declared (recorded as `INVALID_SPEC`), or nil. An engine never weakens a
    /// spec silently.
    func refusal(for botId: String, config: ContainerConfig) -> String?

    /// Applies a changed spec to the bot's container in place (``RuntimeCapabilities/updatesInPlace`` engines only).
    func reconfigureContainer(botId: String, config: ContainerConfig, launch: ContainerLaunch) async throws(ContainerError)

    /// The node a new bot with state is pinned to (``RuntimeCapabilities/pinsStatefulBots`` engines only): its id.
    func chooseNode(botId: String) async throws(ContainerError) -> String

    /// Removes what the engine keeps for bots beside their containers (Swarm's secrets and networks) that no bot of
    /// ours uses any more. Best effort; never touches anything without our labels.
    func collectGarbage() async
}

/// What an engine does differently from one Docker host.
public struct RuntimeCapabilities: Sendable, Equatable {
    /// A changed spec is applied to the bot's service in place (Swarm's service update, which also rolls back by itself),
    /// never by a remove and a create.
    public var updatesInPlace = false
    /// A bot with state is pinned to the node it first runs on, where its state lives.
    public var pinsStatefulBots = false
    /// Secret files are copied into the engine, so their digests belong to the spec.
    public var copiesSecretFiles = false
    /// The engine's name for logs and `/readyz`.
    public var name = "docker"

    public init(updatesInPlace: Bool = false, pinsStatefulBots: Bool = false, copiesSecretFiles: Bool = false, name: String = "docker") {
        self.updatesInPlace = updatesInPlace
        self.pinsStatefulBots = pinsStatefulBots
        self.copiesSecretFiles = copiesSecretFiles
        self.name = name
    }
}

extension ContainerRuntime {
    public func startContainer(botId: String) async throws(ContainerError) {
        try await startContainer(botId: botId, containerId: nil)
    }

    public var capabilities: RuntimeCapabilities { RuntimeCapabilities() }
    public func identify() async throws(ContainerError) -> String { capabilities.name }
    public func refusal(for botId: String, config: ContainerConfig) -> String? { nil }
    public func reconfigureContainer(botId: String, config: ContainerConfig, launch: ContainerLaunch) async throws(ContainerError) {
        throw ContainerError(.configError, "this engine does not update containers in place", botId: botId)
    }
    public func chooseNode(botId: String) async throws(ContainerError) -> String {
        throw ContainerError(.configError, "this engine has no nodes", botId: botId)
    }
    public func collectGarbage() async {}
}

/// One change to one of our containers.
public struct RuntimeEvent: Sendable, Equatable {
    /// The engine's action without detail: `create`, `start`, `die`, `destroy`, `health_status`, …
    public var action: String
    public var containerId: String
    public var name: String
    public var botId: String

    public init(action: String, containerId: String, name: String, botId: String) {
        self.action = action
        self.containerId = containerId
        self.name = name
        self.botId = botId
    }

    /// Actions that say nothing about the container's state.
    static let ignored: Set<String> = [
        "exec_create", "exec_start", "exec_die", "exec_detach", "attach", "detach", "resize", "top",
        "archive-path", "extract-to-dir", "export", "commit", "copy",
    ]

    /// The actions that can change what the reconciler sees, for engines that filter events server-side (a health
    /// check's `exec_*` events, three per check and container, then never reach botmaker).
    public static let stateActions = ["create", "start", "restart", "die", "kill", "oom", "stop", "destroy", "pause", "unpause",
                                      "rename", "update", "health_status",
                                      // Podman's names for die and destroy in filters (its events still say `die`, `remove`).
                                      "died", "remove"]

    /// Whether the reconciler should look at the container again.
    public var changesState: Bool { !Self.ignored.contains(action) }
}

/// One finished request to the engine, for metrics and `--stats` (operation names such as `containers.list`).
public struct EngineRequest: Sendable {
    public var operation: String
    /// The HTTP status, or nil when the engine did not answer.
    public var status: Int?
    public var seconds: Double

    public init(operation: String, status: Int?, seconds: Double) {
        self.operation = operation
        self.status = status
        self.seconds = seconds
    }
}
