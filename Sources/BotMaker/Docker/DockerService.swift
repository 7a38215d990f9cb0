import DockerEngine
import Foundation
import Logging
import NIOConcurrencyHelpers

/// The Docker Engine API implementation of ``ContainerRuntime`` (Podman's compatible API too).
/// Containers are named `botmaker-<id>`, labelled `botmaker.managed=true`, `botmaker.bot-id=<id>` and
/// `botmaker.instance=<instance>`; a container without the managed label (or owned by another
/// instance) is never stopped, removed or restarted, whatever its name. The only file outside
/// `DockerEngine` that knows the Engine API.
public struct DockerService: ContainerRuntime {
    public let client: DockerClient
    /// Seconds Docker waits after SIGTERM before SIGKILL on stop and restart.
    public var stopGraceSeconds: Int
    /// Several botmaker databases can share one engine; each owns only its instance's containers.
    public var instance: String
    /// The database's identity, put on every container as `botmaker.owner`; nil only for the engine's own tests.
    public var owner: String?
    /// Containers taken over from another database (`--take-over`): ours although their owner label is not.
    private let adopted: NIOLockedValueBox<Set<String>>
    /// The id of botmaker's isolated network once known (looked up again after a 404 naming a network).
    private let networkId = NIOLockedValueBox<String?>(nil)
    let logger: Logger

    public init(client: DockerClient, stopGraceSeconds: Int = 10, instance: String = BotLabels.defaultInstance,
                owner: String? = nil, adopted: Set<String> = [], logger: Logger = Logger(label: "botmaker.docker")) {
        self.client = client
        self.stopGraceSeconds = stopGraceSeconds
        self.instance = instance
        self.owner = owner
        self.adopted = NIOLockedValueBox(adopted)
        self.logger = logger
    }

    /// A service on the engine at `host` (`unix:///path` or `tcp://host:port`; nil: `DOCKER_HOST`, else the
    /// default socket). `observer` sees every finished request. Call ``shutdown()`` when done.
    public static func connect(host: String?, stopGraceSeconds: Int = 10, instance: String = BotLabels.defaultInstance,
                               owner: String? = nil, adopted: Set<String> = [], logger: Logger,
                               observer: (@Sendable (EngineRequest) -> Void)? = nil) throws(ContainerError) -> DockerService {
        DockerService(client: try makeClient(host: host, logger: logger, observer: observer), stopGraceSeconds: stopGraceSeconds,
                      instance: instance, owner: owner, adopted: adopted, logger: logger)
    }

    /// A client of the engine at `host` (nil: `DOCKER_HOST`, else the default socket); `observer` sees every finished request.
    public static func makeClient(host: String?, logger: Logger, observer: (@Sendable (EngineRequest) -> Void)?) throws(ContainerError) -> DockerClient {
        let parsed: DockerHost
        do {
            parsed = try DockerHost(parsing: host ?? ProcessInfo.processInfo.environment["DOCKER_HOST"])
        } catch {
            throw wrapDockerError(error, botId: nil)
        }
        var recorder: (@Sendable (DockerClient.RequestRecord) -> Void)?
        if let observer {
            recorder = { record in observer(EngineRequest(operation: record.operation, status: record.status, seconds: record.seconds)) }
        }
        return DockerClient(host: parsed, logger: logger, observer: recorder)
    }

    public var endpoint: String { client.host.description }

    public func shutdown() async {
        try? await client.shutdown()
    }

    public func ownership(_ labels: [String: String], id: String) -> ContainerOwnership {
        ContainerOwnership.of(labels, instance: instance, owner: owner, adopted: adopted.withLockedValue { $0.contains(id) })
    }

    /// True when this database's botmaker made (or took over) the container.
    public func owns(_ labels: [String: String], id: String) -> Bool {
        ownership(labels, id: id) == .ours
    }

    /// Ours, or without an owner label and exactly the bot's own (name checked by the caller, bot-id label here).
    func mayManage(_ labels: [String: String], id: String, botId: String) -> Bool {
        ownership(labels, id: id).allows(botId: botId, labels: labels)
    }

    private func notOwnedMessage(_ what: String, labels: [String: String], id: String) -> String {
        if case .otherOwner(let other) = ownership(labels, id: id) {
            return "\(what) belongs to another botmaker database (owner \(other.prefix(12))) of instance \(instance); it is left alone"
        }
        if case .unowned = ownership(labels, id: id) {
            return "\(what) was made by another botmaker (no \(BotLabels.owner) label) for bot \(labels[BotLabels.botId] ?? "?"); it is left alone"
        }
        if labels[BotLabels.managed] == "true" {
            return "\(what) belongs to botmaker instance \(labels[BotLabels.instance] ?? BotLabels.defaultInstance), not \(instance); it is left alone"
        }
        return "\(what) is not managed by botmaker (no \(BotLabels.managed)=true label); it is left alone"
    }

    public static func containerName(for botId: String) -> String {
        ContainerDefaults.containerName(for: botId)
    }

    public func ping() async throws(ContainerError) {
        do {
            try await client.ping()
            _ = try await client.apiVersion()
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    /// Creates the bot's container (not started) and returns its id.
    public func createContainer(botId: String, config: ContainerConfig, launch: ContainerLaunch) async throws(ContainerError) -> String {
        let name = Self.containerName(for: botId)
        guard config.secretsPath.hasPrefix("/"), config.mounts.isEmpty || config.dataPath.hasPrefix("/") else {
            // A relative bind source silently becomes a named volume.
            throw ContainerError(.startFailed, "secrets and data paths must be absolute: \(config.secretsPath), \(config.dataPath)", botId: botId)
        }
        let network = try await network(botId: botId, config: config)
        let request = Self.createRequest(botId: botId, config: config, launch: launch, network: network, labels: [
            BotLabels.managed: "true",
            BotLabels.botId: botId,
            BotLabels.specHash: config.specHash,
            BotLabels.specVersion: String(ContainerSpec.encodingVersion),
            BotLabels.instance: instance,
        ].merging(owner.map { [BotLabels.owner: $0] } ?? [:]) { a, _ in a })
        do {
            let created = try await client.createContainer(name: name, request)
            logger.debug("created container", metadata: ["bot.id": "\(botId)", "container.id": "\(created.id.prefix(12))"])
            return created.id
        } catch {
            var wrapped = wrapDockerError(error, botId: botId)
            if wrapped.code == .alreadyExists, let holder = try? await client.inspectContainer(name),
               holder.name == "/" + name, !owns(holder.config.labels, id: holder.id) {
                wrapped.message = "\(name) is held by container \(holder.id.prefix(12)): "
                    + notOwnedMessage("it", labels: holder.config.labels, id: holder.id)
                if case .otherOwner = ownership(holder.config.labels, id: holder.id) { wrapped.code = .ownerConflict }
            }
            if config.network == .botmaker, error.httpStatus == 404, "\(error)".contains("network") {
                networkId.withLockedValue { $0 = nil }
            }
            throw wrapped
        }
    }

    /// The Engine API body for a bot's container: the spec with its secrets and host ports resolved.
    static func createRequest(botId: String, config: ContainerConfig, launch: ContainerLaunch, network: String? = nil,
                              labels: [String: String]) -> ContainerCreateRequest {
        var bindings: [String: [ContainerCreateRequest.PortBinding]] = [:]
        for port in launch.published {
            bindings[port.containerKey, default: []].append(.init(hostIp: port.hostIP, hostPort: String(port.hostPort)))
        }
        let healthcheck = config.health.map {
            ContainerCreateRequest.Healthcheck(test: ["CMD"] + $0.command, interval: $0.intervalSeconds.map { Int64($0) * 1_000_000_000 })
        }
        return ContainerCreateRequest(
            image: launch.image ?? config.image,
            cmd: config.command,
            env: launch.environment,
            labels: labels,
            user: config.user,
            exposedPorts: bindings.isEmpty ? nil : bindings.mapValues { _ in .init() },
            healthcheck: healthcheck,
            hostConfig: .init(
                binds: [ContainerDefaults.secretsBind(config.secretsPath)],
                // Mounts, not Binds: a missing source is an error instead of a root-owned directory made by dockerd.
                mounts: config.mounts.isEmpty ? nil : config.mounts.map { .init(source: config.hostPath(of: $0), target: $0.target) },
                portBindings: bindings.isEmpty ? nil : bindings,
                restartPolicy: .init(name: ContainerDefaults.restartPolicy),
                networkMode: network ?? config.network.dockerName,
                initProcess: ContainerDefaults.initProcess,
                memory: config.memoryBytes,
                nanoCpus: config.nanoCPUs,
                pidsLimit: config.pidsLimit,
                securityOpt: ["no-new-privileges"],
                capDrop: config.security.droppedCapabilities,
                readonlyRootfs: config.security.readOnlyRoot ? true : nil,
                tmpfs: config.security.readOnlyRoot ? ["/tmp": SecurityProfile.tmpfsOptions] : nil,
                logConfig: .init(type: ContainerDefaults.logDriver, config: ContainerDefaults.logOptions)
            )
        )
    }

    /// The id of botmaker's bridge network (no traffic between its containers), made if missing. Docker's duplicate
    /// check is not atomic and two networks of one name make every container start fail ("ambiguous"): botmakers on
    /// this host create it under a host lock, and any duplicates found are removed (the lowest id is kept). A network
    /// of that name that botmaker did not make is never used or changed.
    func isolatedNetworkId(botId: String) async throws(ContainerError) -> String {
        if let id = networkId.withLockedValue({ $0 }) { return id }
        let name = BotNetwork.isolatedNetworkName
        do {
            func ours() async throws(DockerEngineError) -> [NetworkInspect] {
                try await client.listNetworks(filters: ["name": [name], "label": ["\(BotLabels.managed)=true"]])
                    .filter { $0.name == name }.sorted { $0.id < $1.id }
            }
            var found = try await ours()
            if found.isEmpty {
                // Docker's duplicate check races: botmakers on this host take turns (a remote engine is made once, rarely at once).
                let lock = await HostLock.acquire(name: "botmaker-network-\(name)")
                defer { lock?.release() }
                found = try await ours()
                if found.isEmpty {
                    do {
                        try await client.createNetwork(name: name, options: [Self.iccOption: "false"], labels: [BotLabels.managed: "true"])
                    } catch {
                        guard error.httpStatus == 409 else { throw error }
                    }
                    found = try await ours()
                }
            }
            guard let chosen = found.first else {
                throw ContainerError(.configError, "network \(name) exists but was not made by botmaker (no \(BotLabels.managed)=true label); "
                                     + "rename or remove it, or set the bot's network to bridge", botId: botId)
            }
            guard chosen.options[Self.iccOption] == "false" else {
                throw ContainerError(.configError, "network \(name) allows traffic between its containers (\(Self.iccOption) is not false); "
                                     + "remove it so botmaker makes it again", botId: botId)
            }
            for duplicate in found.dropFirst() { try? await client.removeNetwork(duplicate.id) }
            networkId.withLockedValue { $0 = chosen.id }
            return chosen.id
        } catch let error as ContainerError {
            throw error
        } catch let error as DockerEngineError {
            throw wrapDockerError(error, botId: botId, fallback: .networkError)
        } catch {
            throw ContainerError(.networkError, "\(error)", botId: botId)
        }
    }

    static let iccOption = "com.docker.network.bridge.enable_icc"

    public func image(_ reference: String) async throws(ContainerError) -> ImageInfo? {
        do {
            let image = try await client.inspectImage(reference)
            return ImageInfo(id: image.id, repoDigests: image.repoDigests)
        } catch {
            if error.httpStatus == 404 { return nil }
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    public func pullImage(_ reference: ImageReference, auth: String?, timeout: TimeInterval,
                          progress: @escaping @Sendable (PullEvent) -> Void) async throws(ContainerError) {
        do {
            try await client.pullImage(fromImage: reference.name, tag: reference.tagOrDigest, auth: auth, timeoutSeconds: timeout) { message in
                progress(PullEvent(status: message.status, layer: message.id, current: message.current, total: message.total))
            }
        } catch {
            throw Self.pullError(error, reference: reference, timeout: timeout)
        }
    }

    public func registryDigest(_ reference: ImageReference, auth: String?) async throws(ContainerError) -> String {
        do {
            return try await client.distributionInspect(reference.pullKey, auth: auth).digest
        } catch {
            throw Self.pullError(error, reference: reference, timeout: client.deadlines.medium)
        }
    }

    public func removeImage(_ image: String) async throws(ContainerError) {
        do { try await client.removeImage(image) } catch {
            if error.httpStatus == 404 { return }
            throw wrapDockerError(error, botId: nil, fallback: .stopFailed)
        }
    }

    public func imagesInUse() async throws(ContainerError) -> Set<String> {
        do {
            return Set(try await client.listContainers(all: true).map(\.imageId).filter { !$0.isEmpty })
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    /// The engine reports most registry failures as HTTP 500 or inside a 200 stream: classified by status and message.
    static func pullError(_ error: DockerEngineError, reference: ImageReference, timeout: TimeInterval) -> ContainerError {
        switch error {
        case .timeout:
            return ContainerError(.pullFailed, "pulling \(reference) took longer than --pull-timeout (\(Int(timeout)) s)", underlying: error)
        case .unreachable, .invalidHost, .unsupportedAPIVersion, .decoding:
            return wrapDockerError(error, botId: nil)
        case .http(_, let message, _), .inStream(let message, _):
            let lower = message.lowercased()
            let code: ContainerError.Code
            if error.httpStatus == 401 || lower.contains("unauthorized") || lower.contains("authentication required")
                || lower.contains("no basic auth credentials") || lower.contains("denied") {
                code = .authFailed
            } else if error.httpStatus == 404 || lower.contains("manifest unknown") || lower.contains("not found")
                        || lower.contains("repository does not exist") || lower.contains("name unknown") {
                code = .imageNotFound
            } else {
                code = .pullFailed
            }
            return ContainerError(code, "pulling \(reference): \(message)", underlying: error)
        }
    }

    /// Starts the bot's container, by id when the caller has just created it (no lookup needed).
    public func startContainer(botId: String, containerId: String?) async throws(ContainerError) {
        var id = containerId
        if id == nil { id = try await requireManaged(botId: botId, fallback: .startFailed).id }
        guard let id else { return }
        do {
            try await client.startContainer(id)
        } catch {
            // "network botmaker not found": someone removed it; it is made again before the next create.
            if error.httpStatus == 404, "\(error)".contains("network") { networkId.withLockedValue { $0 = nil } }
            throw wrapDockerError(error, botId: botId, fallback: .startFailed)
        }
    }

    /// Stops the bot's container with the grace period; already stopped is success.
    public func stopContainer(botId: String) async throws(ContainerError) {
        let container = try await requireManaged(botId: botId, fallback: .stopFailed)
        do {
            try await client.stopContainer(container.id, timeoutSeconds: stopGraceSeconds)
            // Podman answers a stop between two runs of a restart loop with 304 and goes on restarting: stop again.
            guard try await engine().isPodman else { return }
            for _ in 0..<5 {
                let state = ContainerState(docker: try await client.inspectContainer(container.id).state.status)
                guard state == .running || state == .restarting else { return }
                try await client.stopContainer(container.id, timeoutSeconds: stopGraceSeconds)
            }
            throw ContainerError(.stopFailed, "Podman keeps restarting \(Self.containerName(for: botId)) after 5 stops", botId: botId)
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

    public func renameContainer(botId: String, containerId: String, to name: String) async throws(ContainerError) {
        let inspected: ContainerInspect
        do {
            inspected = try await client.inspectContainer(containerId)
        } catch {
            throw wrapDockerError(error, botId: botId, fallback: .startFailed)
        }
        guard inspected.id.hasPrefix(containerId), mayManage(inspected.config.labels, id: inspected.id, botId: botId) else {
            throw ContainerError(.notManaged, notOwnedMessage("container \(containerId.prefix(12))", labels: inspected.config.labels, id: inspected.id),
                                 botId: botId)
        }
        if inspected.name == "/" + name { return }
        do {
            try await client.renameContainer(inspected.id, to: name)
        } catch {
            if error.httpStatus == 409 { throw ContainerError(.alreadyExists, "cannot rename to \(name): the name is taken", botId: botId) }
            throw wrapDockerError(error, botId: botId, fallback: .startFailed)
        }
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
        guard owns(inspected.config.labels, id: inspected.id) else {
            throw ContainerError(.notManaged, notOwnedMessage("container \(id.prefix(12))", labels: inspected.config.labels, id: inspected.id),
                                 botId: botId)
        }
        try await removeManaged(id: inspected.id, botId: botId)
    }

    private func removeManaged(id: String, botId: String) async throws(ContainerError) {
        do {
            try await client.stopContainer(id, timeoutSeconds: stopGraceSeconds)
        } catch {
            // A container Docker is restarting cannot be stopped ("is restarting, wait until the container is running"):
            // it is not running anything worth a graceful stop, and the forced removal below kills it.
            let restarting = "\(error)".contains("is restarting")
            if error.httpStatus != 404 && error.httpStatus != 304 && !restarting {
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
        guard let container = try await managedContainer(botId: botId, fallback: .observeFailed) else { return nil }
        var status = Self.status(of: container)
        if status.state == .running, status.restartCount > 0, let finished = status.finishedAt, let started = status.startedAt {
            status.lastExitCode = await lastExitCode(containerId: container.id, between: finished, and: started)
        }
        return status
    }

    /// The exit code of the run before this one, from the engine's `die` event between that run's end and this run's
    /// start (both by the engine's clock, so the window is in the past and the answer ends at once): Docker resets
    /// `State.ExitCode` when it restarts a container. Nil when the engine no longer has the event (Podman replays no
    /// past window), or does not answer within 5 s (a loaded engine).
    func lastExitCode(containerId: String, between finished: Date, and started: Date) async -> Int? {
        let events = client.events(filters: ["container": [containerId], "event": ["die", "died"]],
                                   since: finished.addingTimeInterval(-1), until: started)
        return await withTaskGroup(of: Int??.self) { group in
            group.addTask {
                var code: Int?
                do {
                    for try await event in events { code = event.attributes["exitCode"].flatMap { Int($0) } ?? code }
                } catch {
                    return nil
                }
                return code
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? nil
        }
    }

    /// Every container labelled `botmaker.managed=true` (of this instance), in all states.
    public func listManagedContainers() async throws(ContainerError) -> [ContainerInfo] {
        do {
            let summaries = try await client.listContainers(all: true, filters: ["label": ["\(BotLabels.managed)=true"]])
            return summaries.filter { owns($0.labels, id: $0.id) }.map(info)
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    /// One list call that returns our containers and the names in our namespace held by others.
    public func observe() async throws(ContainerError) -> ObservedContainers {
        let summaries: [ContainerSummary]
        do {
            summaries = try await client.listContainers(all: true)
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
        var observed = ObservedContainers()
        for summary in summaries { observed.record(info(summary), as: ownership(summary.labels, id: summary.id)) }
        return observed
    }

    /// Two inspects, of the bot's container name and of its update's previous name: ours, held by someone else, or nothing.
    public func observe(botId: String) async throws(ContainerError) -> ObservedContainers {
        var observed = ObservedContainers()
        for name in [Self.containerName(for: botId), ContainerDefaults.previousName(for: botId)] {
            let container: ContainerInspect
            do {
                container = try await client.inspectContainer(name)
            } catch {
                if error.httpStatus == 404 { continue }
                throw wrapDockerError(error, botId: botId, fallback: .observeFailed)
            }
            // Docker falls back to id-prefix matching: only the exact name counts.
            guard container.name == "/" + name else { continue }
            observed.record(Self.info(of: container), as: ownership(container.config.labels, id: container.id))
        }
        return observed
    }

    public func observe(containerId: String) async throws(ContainerError) -> ContainerInfo? {
        let container: ContainerInspect
        do {
            container = try await client.inspectContainer(containerId)
        } catch {
            if error.httpStatus == 404 { return nil }
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
        guard container.id.hasPrefix(containerId), owns(container.config.labels, id: container.id) else { return nil }
        return Self.info(of: container)
    }

    /// Containers made by a version without spec-hash labels are adopted, not recreated, when their
    /// image, environment, command and secrets mount match the bot.
    public func matchesWithoutSpecHash(containerId: String, config: ContainerConfig) async -> Bool {
        do {
            let inspected = try await client.inspectContainer(containerId)
            let imageEnvironment = (try? await client.inspectImage(inspected.config.image).env) ?? []
            return Self.matches(inspected, bot: config, imageEnvironment: imageEnvironment)
        } catch {
            logger.debug("cannot inspect a container without a spec hash", metadata: ["container.id": "\(containerId.prefix(12))", "error": "\(error)"])
            return false
        }
    }

    static func matches(_ container: ContainerInspect, bot: ContainerConfig, imageEnvironment: [String]) -> Bool {
        guard container.config.image == bot.image else { return false }
        // A container made without labels has none of these: adopting it would leave the bot without its state, ports or limits.
        guard bot.mounts.isEmpty, bot.ports.isEmpty, bot.user == nil, bot.memoryBytes == nil, bot.nanoCPUs == nil, bot.health == nil,
              bot.security == .standard, bot.secretEnvironment.isEmpty else { return false }
        let actual = Set(container.config.env)
        guard Set(bot.environment).isSubset(of: actual) else { return false }
        let desiredKeys = Set(bot.environment.map(EnvironmentEntry.key))
        let extras = actual.subtracting(bot.environment).filter { !desiredKeys.contains(EnvironmentEntry.key($0)) }
        guard extras.isSubset(of: Set(imageEnvironment)) else { return false }
        if let command = bot.command, container.config.cmd != command { return false }
        // The hardening and network of this version: a container without them is recreated (as an update).
        let networkMode = container.hostConfig.networkMode == "default" ? "bridge" : container.hostConfig.networkMode
        guard networkMode == bot.network.dockerName, container.hostConfig.pidsLimit == bot.pidsLimit,
              // The docker CLI writes capabilities as CAP_NET_RAW, the API keeps what it is given.
              Set((container.hostConfig.capDrop ?? []).map { $0.hasPrefix("CAP_") ? String($0.dropFirst(4)) : $0 })
                == Set(bot.security.droppedCapabilities) else { return false }
        return (container.hostConfig.binds ?? []).contains(ContainerDefaults.secretsBind(bot.secretsPath))
    }

    /// Our containers' lifecycle events, from Docker's `/events` (filtered by the managed label here and by instance below).
    public func events(onConnect: @escaping @Sendable () -> Void) -> AsyncThrowingStream<RuntimeEvent, any Error> {
        // Containers of the default instance may carry no instance label (older botmakers): only they need the
        // client-side check; any other instance is filtered by the engine, so other instances' churn costs nothing.
        var labels = ["\(BotLabels.managed)=true"]
        if instance != BotLabels.defaultInstance { labels.append("\(BotLabels.instance)=\(instance)") }
        let source = EventSource(client.events(filters: ["type": ["container"], "label": labels, "event": RuntimeEvent.stateActions],
                                               onConnect: onConnect))
        let service = self
        return AsyncThrowingStream {
            while let event = try await source.next() {
                switch service.ownership(event.attributes, id: event.actorID) {
                case .ours, .unowned: break
                case .otherOwner, .foreign: continue
                }
                let name = event.attributes["name"] ?? ""
                let botId = event.attributes[BotLabels.botId]
                    ?? (name.hasPrefix(ContainerDefaults.namePrefix) ? String(name.dropFirst(ContainerDefaults.namePrefix.count)) : name)
                // Podman calls Docker's `destroy` `remove`.
                let action = event.baseAction == "remove" ? "destroy" : event.baseAction
                return RuntimeEvent(action: action, containerId: event.actorID, name: name, botId: botId)
            }
            return nil
        }
    }

    // MARK: - The instance's claim (a labelled named volume: no image needed, untouched by `docker container prune`)

    var claimVolume: String { "botmaker.claim.\(instance)" }

    public func instanceClaim() async throws(ContainerError) -> InstanceClaim? {
        do {
            return Self.claim(from: try await client.inspectVolume(claimVolume))
        } catch {
            if error.httpStatus == 404 { return nil }
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    public func claimInstance(_ claim: InstanceClaim) async throws(ContainerError) -> InstanceClaim {
        let since = ISO8601DateFormatter().string(from: claim.since ?? Date())
        do {
            // Creating an existing volume returns it unchanged: whoever created it first holds the claim.
            return Self.claim(from: try await client.createVolume(name: claimVolume, labels: [
                BotLabels.claim: "true", BotLabels.instance: instance, BotLabels.owner: claim.owner,
                BotLabels.claimPath: claim.databasePath, BotLabels.claimHost: claim.host, BotLabels.claimSince: since,
            ]))
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    static func claim(from volume: VolumeInspect) -> InstanceClaim { claim(fromLabels: volume.labels) }

    static func claim(fromLabels labels: [String: String]) -> InstanceClaim {
        InstanceClaim(owner: labels[BotLabels.owner] ?? "?", databasePath: labels[BotLabels.claimPath] ?? "?",
                      host: labels[BotLabels.claimHost] ?? "?",
                      since: labels[BotLabels.claimSince].flatMap { ISO8601DateFormatter().date(from: $0) })
    }

    public func releaseInstanceClaim() async throws(ContainerError) {
        do { try await client.removeVolume(claimVolume) } catch {
            if error.httpStatus == 404 { return }
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    public func adopt(_ containerIds: Set<String>) async {
        adopted.withLockedValue { $0.formUnion(containerIds) }
    }

    // MARK: - Helpers

    func info(_ summary: ContainerSummary) -> ContainerInfo {
        let name = summary.name
        let botId = summary.labels[BotLabels.botId]
            ?? (name.hasPrefix(ContainerDefaults.namePrefix) ? String(name.dropFirst(ContainerDefaults.namePrefix.count)) : name)
        var info = ContainerInfo(
            id: summary.id, name: name, botId: botId, state: ContainerState(docker: summary.state),
            status: summary.status, image: summary.image, labels: summary.labels)
        info.imageId = summary.imageId.isEmpty ? nil : summary.imageId
        return info
    }

    static func info(of container: ContainerInspect) -> ContainerInfo {
        let name = String(container.name.drop { $0 == "/" })
        let state = ContainerState(docker: container.state.status)
        let labels = container.config.labels
        let botId = labels[BotLabels.botId]
            ?? (name.hasPrefix(ContainerDefaults.namePrefix) ? String(name.dropFirst(ContainerDefaults.namePrefix.count)) : name)
        // As in a list (`Dead` carries no code there): the two views must agree or every resync sees a change.
        let exitCode: Int? = [.exited, .restarting].contains(state) ? container.state.exitCode : nil
        return ContainerInfo(id: container.id, name: name, botId: botId, state: state,
                             status: state.rawValue + (exitCode.map { " (\($0))" } ?? ""),
                             image: container.config.image, labels: labels, exitCode: exitCode,
                             health: state == .running ? container.state.health.flatMap { ContainerHealth(docker: $0.status) } : nil,
                             imageId: container.imageId.isEmpty ? nil : container.imageId)
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
            error: container.state.error.isEmpty ? nil : container.state.error,
            health: state == .running ? container.state.health.flatMap { ContainerHealth(docker: $0.status) } : nil,
            healthLog: container.state.health?.log.last.map { Self.trimmedLog($0.output, exitCode: $0.exitCode) }
        )
    }

    /// The tail of a health check's output, one line, at most 300 characters.
    static func trimmedLog(_ output: String, exitCode: Int) -> String {
        let flat = output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " | ")
        let tail = flat.count > 300 ? "…" + flat.suffix(299) : flat
        return "exit code \(exitCode)" + (tail.isEmpty ? "" : ": " + tail)
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
        guard mayManage(container.config.labels, id: container.id, botId: botId) else {
            let code: ContainerError.Code
            if case .otherOwner = ownership(container.config.labels, id: container.id) { code = .ownerConflict } else { code = .notManaged }
            throw ContainerError(code, notOwnedMessage("\(name) (\(container.id.prefix(12)))", labels: container.config.labels, id: container.id),
                                 botId: botId)
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

/// Lets the single consumer of an event stream drive a non-Sendable iterator (the Docker and Swarm runtimes).
final class EventSource: @unchecked Sendable {
    private var iterator: DockerEventStream.Iterator

    init(_ stream: DockerEventStream) {
        iterator = stream.makeAsyncIterator()
    }

    func next() async throws -> DockerEvent? {
        try await iterator.next()
    }
}
