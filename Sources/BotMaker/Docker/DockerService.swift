import DockerEngine
import Foundation
import Logging

/// The Docker layer for bot containers. Containers are named `botmaker-<id>`, labelled
/// `botmaker.managed=true`, `botmaker.bot-id=<id>` and `botmaker.instance=<instance>`; a container
/// without the managed label (or owned by another instance) is never stopped, removed or restarted,
/// whatever its name.
public struct DockerService: Sendable {
    public let client: DockerClient
    /// Seconds Docker waits after SIGTERM before SIGKILL on stop and restart.
    public var stopGraceSeconds: Int
    /// Several botmaker databases can share one engine; each owns only its instance's containers.
    public var instance: String
    private let logger: Logger

    public init(client: DockerClient, stopGraceSeconds: Int = 10, instance: String = BotLabels.defaultInstance,
                logger: Logger = Logger(label: "botmaker.docker")) {
        self.client = client
        self.stopGraceSeconds = stopGraceSeconds
        self.instance = instance
        self.logger = logger
    }

    /// True when the labels say this service's instance manages the container.
    public func owns(_ labels: [String: String]) -> Bool {
        labels[BotLabels.managed] == "true" && (labels[BotLabels.instance] ?? BotLabels.defaultInstance) == instance
    }

    private func notOwnedMessage(_ what: String, labels: [String: String]) -> String {
        if labels[BotLabels.managed] == "true" {
            return "\(what) belongs to botmaker instance \(labels[BotLabels.instance] ?? BotLabels.defaultInstance), not \(instance); it is left alone"
        }
        return "\(what) is not managed by botmaker (no \(BotLabels.managed)=true label); it is left alone"
    }

    public static func containerName(for botId: String) -> String {
        ContainerDefaults.containerName(for: botId)
    }

    /// Creates the bot's container (not started) and returns its id.
    public func createContainer(botId: String, config: ContainerConfig) async throws(ContainerError) -> String {
        let name = Self.containerName(for: botId)
        guard config.secretsPath.hasPrefix("/") else {
            // A relative bind source silently becomes a named volume.
            throw ContainerError(.startFailed, "secrets path must be absolute: \(config.secretsPath)", botId: botId)
        }
        let request = ContainerCreateRequest(
            image: config.image,
            cmd: config.command,
            env: config.environment,
            labels: [
                BotLabels.managed: "true",
                BotLabels.botId: botId,
                BotLabels.specHash: config.specHash,
                BotLabels.instance: instance,
            ],
            hostConfig: .init(
                binds: [ContainerDefaults.secretsBind(config.secretsPath)],
                restartPolicy: .init(name: ContainerDefaults.restartPolicy),
                networkMode: ContainerDefaults.networkMode,
                initProcess: ContainerDefaults.initProcess
            )
        )
        do {
            let created = try await client.createContainer(name: name, request)
            logger.debug("created container", metadata: ["bot.id": "\(botId)", "container.id": "\(created.id.prefix(12))"])
            return created.id
        } catch {
            var wrapped = wrapDockerError(error, botId: botId)
            if wrapped.code == .alreadyExists, let holder = try? await client.inspectContainer(name),
               holder.name == "/" + name, !owns(holder.config.labels) {
                wrapped.message = "\(name) is held by container \(holder.id.prefix(12)): " + notOwnedMessage("it", labels: holder.config.labels)
            }
            throw wrapped
        }
    }

    /// Starts the bot's container; already running is success.
    public func startContainer(botId: String) async throws(ContainerError) {
        let container = try await requireManaged(botId: botId, fallback: .startFailed)
        try await start(containerId: container.id, botId: botId)
    }

    /// Starts a container by id, for one this service has just created (no name lookup needed).
    func start(containerId: String, botId: String) async throws(ContainerError) {
        do {
            try await client.startContainer(containerId)
        } catch {
            throw wrapDockerError(error, botId: botId, fallback: .startFailed)
        }
    }

    /// Stops the bot's container with the grace period; already stopped is success.
    public func stopContainer(botId: String) async throws(ContainerError) {
        let container = try await requireManaged(botId: botId, fallback: .stopFailed)
        do {
            try await client.stopContainer(container.id, timeoutSeconds: stopGraceSeconds)
        } catch {
            throw wrapDockerError(error, botId: botId, fallback: .stopFailed)
        }
    }

    /// Restarts the bot's container (stop with the grace period, then start).
    public func restartContainer(botId: String) async throws(ContainerError) {
        let container = try await requireManaged(botId: botId, fallback: .startFailed)
        do {
            try await client.restartContainer(container.id, timeoutSeconds: stopGraceSeconds)
        } catch {
            throw wrapDockerError(error, botId: botId, fallback: .startFailed)
        }
    }

    /// Stops then removes the bot's container; a container that is already gone is success.
    public func removeContainer(botId: String) async throws(ContainerError) {
        guard let container = try await managedContainer(botId: botId, fallback: .stopFailed) else { return }
        try await removeManaged(id: container.id, botId: botId)
    }

    /// Removes a managed container by id (used for orphans and strays, whose names may not match a bot).
    public func removeManagedContainer(id: String, botId: String) async throws(ContainerError) {
        let inspected: ContainerInspect
        do {
            inspected = try await client.inspectContainer(id)
        } catch {
            if error.httpStatus == 404 { return }
            throw wrapDockerError(error, botId: botId, fallback: .stopFailed)
        }
        guard inspected.id == id || inspected.id.hasPrefix(id) else { return }
        guard owns(inspected.config.labels) else {
            throw ContainerError(.notManaged, notOwnedMessage("container \(id.prefix(12))", labels: inspected.config.labels), botId: botId)
        }
        try await removeManaged(id: inspected.id, botId: botId)
    }

    private func removeManaged(id: String, botId: String) async throws(ContainerError) {
        do {
            try await client.stopContainer(id, timeoutSeconds: stopGraceSeconds)
        } catch {
            if error.httpStatus != 404 && error.httpStatus != 304 {
                throw wrapDockerError(error, botId: botId, fallback: .stopFailed)
            }
        }
        do {
            try await client.removeContainer(id, force: true)
        } catch {
            // 404: already gone. 409: another removal of it is already in progress.
            if error.httpStatus == 404 || (error.httpStatus == 409 && "\(error)".contains("already in progress")) { return }
            throw wrapDockerError(error, botId: botId, fallback: .stopFailed)
        }
    }

    /// The bot's container state, or nil when it has none.
    public func getContainerStatus(botId: String) async throws(ContainerError) -> ContainerStatus? {
        guard let container = try await managedContainer(botId: botId, fallback: .startFailed) else { return nil }
        return Self.status(of: container)
    }

    /// Every container labelled `botmaker.managed=true` (of this instance), in all states.
    public func listManagedContainers() async throws(ContainerError) -> [ContainerInfo] {
        do {
            let summaries = try await client.listContainers(all: true, filters: ["label": ["\(BotLabels.managed)=true"]])
            return summaries.compactMap(managedInfo)
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .startFailed)
        }
    }

    /// One list call that returns our containers and the names in our namespace held by others.
    public func observe() async throws(ContainerError) -> ObservedContainers {
        let summaries: [ContainerSummary]
        do {
            summaries = try await client.listContainers(all: true)
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .startFailed)
        }
        var observed = ObservedContainers()
        for summary in summaries {
            if let info = managedInfo(summary) {
                observed.managed.append(info)
            } else if summary.name.hasPrefix(ContainerDefaults.namePrefix) {
                observed.foreignNames[summary.name] = summary.id
            }
        }
        return observed
    }

    // MARK: - Helpers

    func managedInfo(_ summary: ContainerSummary) -> ContainerInfo? {
        guard owns(summary.labels) else { return nil }
        let name = summary.name
        let botId = summary.labels[BotLabels.botId]
            ?? (name.hasPrefix(ContainerDefaults.namePrefix) ? String(name.dropFirst(ContainerDefaults.namePrefix.count)) : name)
        return ContainerInfo(
            id: summary.id, name: name, botId: botId, state: ContainerState(docker: summary.state),
            status: summary.status, image: summary.image, labels: summary.labels)
    }

    static func status(of container: ContainerInspect) -> ContainerStatus {
        let state = ContainerState(docker: container.state.status)
        let neverRan = container.state.finishedDate == nil && container.state.startedDate == nil
        return ContainerStatus(
            id: container.id,
            state: state,
            running: container.state.running,
            exitCode: state == .running || neverRan ? nil : container.state.exitCode,
            startedAt: container.state.startedDate,
            finishedAt: container.state.finishedDate,
            restartCount: container.restartCount,
            error: container.state.error.isEmpty ? nil : container.state.error
        )
    }

    /// The bot's container by exact name, or nil. Docker falls back to id-prefix matching, so the
    /// name is checked; a container with our name but without the managed label is an error.
    func managedContainer(botId: String, fallback: ContainerError.Code) async throws(ContainerError) -> ContainerInspect? {
        let name = Self.containerName(for: botId)
        let container: ContainerInspect
        do {
            container = try await client.inspectContainer(name)
        } catch {
            if error.httpStatus == 404 { return nil }
            throw wrapDockerError(error, botId: botId, fallback: fallback)
        }
        guard container.name == "/" + name else { return nil }
        guard owns(container.config.labels) else {
            throw ContainerError(.notManaged, notOwnedMessage("\(name) (\(container.id.prefix(12)))", labels: container.config.labels), botId: botId)
        }
        return container
    }

    private func requireManaged(botId: String, fallback: ContainerError.Code) async throws(ContainerError) -> ContainerInspect {
        guard let container = try await managedContainer(botId: botId, fallback: fallback) else {
            throw ContainerError(.notFound, "no container \(Self.containerName(for: botId))", botId: botId)
        }
        return container
    }
}

/// What one list call saw: our containers, and names in our namespace held by containers we don't manage.
public struct ObservedContainers: Sendable, Equatable {
    public var managed: [ContainerInfo] = []
    /// Container name → id, for containers we don't own whose name starts with `botmaker-`.
    public var foreignNames: [String: String] = [:]

    public init(managed: [ContainerInfo] = [], foreignNames: [String: String] = [:]) {
        self.managed = managed
        self.foreignNames = foreignNames
    }
}
