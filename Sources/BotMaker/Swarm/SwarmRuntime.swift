import DockerEngine
import Foundation
import Logging
import NIOConcurrencyHelpers

/// The Docker Swarm implementation of ``ContainerRuntime``: one replicated service per bot (`botmaker-<id>`, replicas 1
/// or 0), talking to a manager. The service stands where a container stands on one host: its id is the "container id",
/// its labels are the same, and a service without our labels is never updated or removed, whatever its name.
///
/// What differs from one host: a changed spec is a service update (Swarm keeps its history and rolls a failed update back
/// itself, `stop-first`: never two copies); secret files become content-addressed Swarm secrets; a bot with state is
/// pinned to one node, where its named volumes live; images are checked and pulled on the manager only (each node pulls
/// for itself when it runs a task). docs/swarm.md has the whole mapping.
public final class SwarmRuntime: ContainerRuntime {
    public let client: DockerClient
    public let stopGraceSeconds: Int
    public let instance: String
    public let owner: String?
    /// When a new task counts as updated (Swarm's `UpdateConfig.Monitor`): the update policy's minimum uptime.
    public let monitorSeconds: Double
    /// What the engine supports; learnt from its API version at ``ping()``.
    public var engine: SwarmServiceSpec.Engine { engineBox.withLockedValue { $0 } }
    private let engineBox: NIOLockedValueBox<SwarmServiceSpec.Engine>
    /// How often the events stream looks at the services while one of them is not converged (Swarm sends no task events).
    public let pollInterval: Duration
    /// Images and the claim of the manager's own engine.
    private let local: DockerService
    private let adopted: NIOLockedValueBox<Set<String>>
    /// Service id → what the last look saw (`running/desired/version/update state`), for the poller.
    private let seen = NIOLockedValueBox<[String: String]>([:])
    /// Until when the poller looks even when everything looked converged (after our own changes and node events).
    private let pollUntil = NIOLockedValueBox<ContinuousClock.Instant>(.now)
    private let logger: Logger

    public init(client: DockerClient, stopGraceSeconds: Int = 10, instance: String = BotLabels.defaultInstance, owner: String? = nil,
                adopted: Set<String> = [], monitorSeconds: Double = 10, engine: SwarmServiceSpec.Engine = .init(),
                pollInterval: Duration = .seconds(1), logger: Logger = Logger(label: "botmaker.swarm")) {
        self.client = client
        self.stopGraceSeconds = stopGraceSeconds
        self.instance = instance
        self.owner = owner
        self.adopted = NIOLockedValueBox(adopted)
        self.monitorSeconds = monitorSeconds
        self.engineBox = NIOLockedValueBox(engine)
        self.pollInterval = pollInterval
        self.logger = logger
        local = DockerService(client: client, stopGraceSeconds: stopGraceSeconds, instance: instance, owner: owner, logger: logger)
    }

    /// A runtime for the Swarm manager at `host` (nil: `DOCKER_HOST`, else the default socket). Whether it is a manager, and
    /// which API it speaks, is checked by ``ping()``.
    public static func connect(host: String?, stopGraceSeconds: Int = 10, instance: String = BotLabels.defaultInstance, owner: String? = nil,
                               adopted: Set<String> = [], monitorSeconds: Double = 10, allowsPrivilegeEscalation: Bool = false, logger: Logger,
                               observer: (@Sendable (EngineRequest) -> Void)? = nil) throws(ContainerError) -> SwarmRuntime {
        SwarmRuntime(client: try DockerService.makeClient(host: host, logger: logger, observer: observer), stopGraceSeconds: stopGraceSeconds,
                     instance: instance, owner: owner, adopted: adopted, monitorSeconds: monitorSeconds,
                     engine: .init(supportsNoNewPrivileges: false, allowsPrivilegeEscalation: allowsPrivilegeEscalation), logger: logger)
    }

    public var endpoint: String { client.host.description }
    public var capabilities: RuntimeCapabilities {
        RuntimeCapabilities(updatesInPlace: true, pinsStatefulBots: true, copiesSecretFiles: true, name: "swarm")
    }

    public func shutdown() async { try? await client.shutdown() }

    func ownership(_ labels: [String: String], id: String) -> ContainerOwnership {
        ContainerOwnership.of(labels, instance: instance, owner: owner, adopted: adopted.withLockedValue { $0.contains(id) })
    }

    // MARK: - The engine

    /// Answers, and is a manager of an active swarm: botmaker refuses a worker or an engine outside a swarm.
    public func ping() async throws(ContainerError) {
        let info: EngineInfo
        let version: APIVersion
        do {
            try await client.ping()
            info = try await client.info()
            version = try await client.apiVersion()
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
        try Self.checkManager(info, endpoint: endpoint)
        engineBox.withLockedValue { $0.apiVersion = version.description; $0.supportsNoNewPrivileges = version >= SwarmServiceSpec.noNewPrivilegesAPI }
    }

    static func checkManager(_ info: EngineInfo, endpoint: String) throws(ContainerError) {
        guard info.swarm.localNodeState == "active" else {
            throw ContainerError(.configError, "the engine at \(endpoint) is not part of a swarm (state \(info.swarm.localNodeState)); "
                                 + "point DOCKER_HOST at a swarm manager, or use --engine docker")
        }
        guard info.swarm.controlAvailable == true else {
            throw ContainerError(.configError, "the engine at \(endpoint) is a swarm worker; botmaker needs a manager "
                                 + "(`docker node ls` on a manager shows them)")
        }
    }

    public func refusal(for botId: String, config: ContainerConfig) -> String? {
        SwarmServiceSpec.refusal(botId: botId, config: config, engine: engine)
    }

    // MARK: - Observing

    public func observe() async throws(ContainerError) -> ObservedContainers {
        do {
            let services = try await client.listServices(filters: ["name": [ContainerDefaults.namePrefix]])
            return try await observed(services.filter { $0.name.hasPrefix(ContainerDefaults.namePrefix) })
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    public func observe(botId: String) async throws(ContainerError) -> ObservedContainers {
        do {
            let name = ContainerDefaults.containerName(for: botId)
            let services = try await client.listServices(filters: ["name": [name]]).filter { $0.name == name }
            return try await observed(services, only: true)
        } catch {
            throw wrapDockerError(error, botId: botId, fallback: .observeFailed)
        }
    }

    public func observe(containerId: String) async throws(ContainerError) -> ContainerInfo? {
        do {
            let service = try await client.listServices(filters: ["id": [containerId]]).first { $0.id.hasPrefix(containerId) }
            guard let service, ownership(service.labels, id: service.id) == .ours else { return nil }
            return try await observed([service], only: true).managed.first
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    /// Services filed by ownership, ours with their tasks' state and node: one task list for the tasks meant to run, one
    /// more (of those services only) when some are not converged, and the nodes.
    private func observed(_ services: [SwarmService], only: Bool = false) async throws(DockerEngineError) -> ObservedContainers {
        var observed = ObservedContainers()
        let ours = services.filter {
            switch ownership($0.labels, id: $0.id) { case .ours, .unowned: true; default: false }
        }
        var tasks: [String: [SwarmTask]] = [:]
        var nodes: [String: SwarmNode] = [:]
        if !ours.isEmpty {
            let running = only ? try await client.listTasks(filters: ["service": ours.map(\.id)])
                : try await client.listTasks(filters: ["desired-state": ["running"]])
            for task in running { tasks[task.serviceID, default: []].append(task) }
            let unsettled = ours.filter { !Self.isSettled($0) }.map(\.id)
            if !only, !unsettled.isEmpty {
                for task in try await client.listTasks(filters: ["service": unsettled]) where task.desiredState != "running" {
                    tasks[task.serviceID, default: []].append(task)
                }
            }
            nodes = Dictionary(try await client.listNodes().map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        }
        for service in services {
            let info = Self.info(service, tasks: tasks[service.id] ?? [], nodes: nodes)
            observed.record(info, as: ownership(service.labels, id: service.id))
        }
        remember(ours)
        return observed
    }

    /// A service whose tasks are where it wants them (and no update in flight).
    static func isSettled(_ service: SwarmService) -> Bool {
        let desired = service.replicas ?? 0
        let running = service.serviceStatus?.runningTasks ?? 0
        let updating = ["updating", "rollback_started"].contains(service.updateStatus?.state ?? "")
        return running == desired && !updating
    }

    private func remember(_ services: [SwarmService]) {
        seen.withLockedValue { seen in
            for service in services { seen[service.id] = Self.fingerprint(service) }
        }
    }

    static func fingerprint(_ service: SwarmService) -> String {
        "\(service.serviceStatus?.runningTasks ?? -1)/\(service.replicas ?? -1)/\(service.version.index)/\(service.updateStatus?.state ?? "")"
    }

    /// Task states before `running`, in which Swarm is still placing or starting the task.
    static let startingStates: Set<String> = ["new", "pending", "assigned", "accepted", "preparing", "ready", "starting"]

    /// The service as a container: `running` when its task runs, `exited` when scaled to 0, `created` with `pending` while
    /// Swarm places or starts it (or its pinned node is down), `restarting` when its tasks keep failing.
    public static func info(_ service: SwarmService, tasks: [SwarmTask], nodes: [String: SwarmNode]) -> ContainerInfo {
        let name = service.name
        var labels = service.labels
        // Edited outside botmaker (`docker service update`): its spec hash no longer describes it, so it is put back.
        if let written = labels[SwarmServiceSpec.digestLabel], written != SwarmServiceSpec.digest(of: service.spec), labels[BotLabels.specHash] != nil {
            labels[BotLabels.specHash] = ContainerInfo.editedOutside
        }
        let botId = labels[BotLabels.botId] ?? ContainerDefaults.botId(inName: name) ?? name
        let replicas = service.replicas ?? 0
        let sorted = tasks.sorted { ($0.status.timestamp ?? $0.updatedAt ?? "") > ($1.status.timestamp ?? $1.updatedAt ?? "") }
        let current = sorted.first { $0.desiredState == "running" }
        // Not `ServiceStatus.RunningTasks`: it still counts a task on a node that is down (measured), and a pinned bot's
        // replacement task waits for that node.
        let runningTask = sorted.first { $0.desiredState == "running" && $0.status.state == "running"
            && $0.nodeID.flatMap { nodes[$0]?.state }.map { $0 == "ready" } ?? true }
        // Failures since the spec last changed: older ones (before an update) say nothing about this spec.
        let since = DockerTimestamp.parse(service.updatedAt) ?? .distantPast
        let failed = sorted.filter { ["failed", "rejected"].contains($0.status.state) && (DockerTimestamp.parse($0.status.timestamp) ?? .distantFuture) >= since }
        let nodeName = { (id: String?) in id.flatMap { nodes[$0]?.hostname } }
        let pinned = service.constraints.compactMap { $0.hasPrefix("node.id==") ? String($0.dropFirst("node.id==".count)) : nil }.first

        var state: ContainerState
        var status: String
        var exitCode: Int?
        var pending: String?
        var nodeDown = false
        var node = nodeName(runningTask?.nodeID ?? current?.nodeID) ?? pinned.flatMap { nodeName($0) }
        if replicas == 0 {
            state = .exited
            exitCode = sorted.first?.status.containerStatus?.exitCode
            status = "scaled to 0"
            node = nil
        } else if runningTask != nil {
            state = .running
            status = "running" + (node.map { " on \($0)" } ?? "")
        } else if let pinned, !nodes.isEmpty, nodes[pinned].map({ $0.state != "ready" || $0.availability != "active" }) ?? true {
            let pinnedNode = nodes[pinned]
            let hostname = pinnedNode?.hostname ?? pinned
            let condition = pinnedNode.map { $0.state == "ready" ? $0.availability : $0.state } ?? "no longer in the swarm"
            state = .created
            nodeDown = true
            pending = "pinned to node \(hostname) (its state is there), which is \(condition); it runs again when the node is back"
            status = "waiting for node \(hostname)"
        } else if failed.count >= 2 || (failed.count == 1 && current == nil) {
            state = .restarting
            exitCode = failed.first?.status.containerStatus?.exitCode
            let reason = failed.first.flatMap { $0.status.err ?? $0.status.message } ?? "failed"
            status = "restarting (\(exitCode.map(String.init) ?? "?")): \(reason)"
        } else {
            state = .created
            if let lost = current?.nodeID.flatMap({ nodes[$0] }), lost.state != "ready" {
                pending = "its node \(lost.hostname) is \(lost.state): Swarm starts it on another node"
            } else {
                let detail = current.map { "task \($0.status.state)" + ($0.status.err.map { ": \($0)" } ?? "") } ?? "no task yet"
                pending = "Swarm is placing or starting the task (\(detail))"
            }
            status = "pending"
        }
        var info = ContainerInfo(id: service.id, name: name, botId: botId, state: state, status: status, image: service.image,
                                 labels: labels, exitCode: exitCode)
        info.node = node
        info.pending = pending
        info.nodeDown = nodeDown
        // Swarm forgets the failed spec (PreviousSpec is cleared by its rollback): the planner compares with what it wrote.
        info.engineUpdating = service.updateStatus?.state == "updating"
        if let state = service.updateStatus?.state, state.hasPrefix("rollback_") {
            info.engineRollback = EngineRollback(inProgress: state == "rollback_started", message: service.updateStatus?.message ?? state)
        }
        return info
    }

    public func getContainerStatus(botId: String) async throws(ContainerError) -> ContainerStatus? {
        guard let service = try await managedService(botId: botId, fallback: .observeFailed) else { return nil }
        let info: ContainerInfo
        let tasks: [SwarmTask]
        do {
            tasks = try await client.listTasks(filters: ["service": [service.id]])
            info = try await observed([service], only: true).managed.first ?? Self.info(service, tasks: tasks, nodes: [:])
        } catch {
            throw wrapDockerError(error, botId: botId, fallback: .observeFailed)
        }
        let current = tasks.filter { $0.desiredState == "running" }.max { ($0.status.timestamp ?? "") < ($1.status.timestamp ?? "") }
        let failures = tasks.filter { ["failed", "rejected"].contains($0.status.state) }
        return ContainerStatus(id: service.id, state: info.state, running: info.state == .running, exitCode: info.exitCode,
                               startedAt: info.state == .running ? current?.status.timestamp.flatMap(DockerTimestamp.parse) : nil,
                               finishedAt: nil, restartCount: failures.count,
                               error: failures.first.flatMap { $0.status.err } ?? info.pending)
    }

    public func matchesWithoutSpecHash(containerId: String, config: ContainerConfig) async -> Bool { false }

    // MARK: - Changing services

    public func createContainer(botId: String, config: ContainerConfig, launch: ContainerLaunch) async throws(ContainerError) -> String {
        let name = ContainerDefaults.containerName(for: botId)
        let spec = try await serviceSpec(botId: botId, config: config, launch: launch, replicas: launch.running ? 1 : 0, forceUpdate: 0)
        Failpoint.hit("swarm.before-create")
        do {
            let created = try await client.createService(spec, auth: launch.registryAuth)
            logger.debug("created service", metadata: ["bot.id": "\(botId)", "service.id": "\(created.id.prefix(12))"])
            markChanged()
            return created.id
        } catch {
            var wrapped = wrapDockerError(error, botId: botId)
            if wrapped.code == .alreadyExists || "\(error)".contains("name conflicts") {
                wrapped.code = .alreadyExists
                if let holder = try? await client.inspectService(name), holder.name == name,
                   case .otherOwner = ownership(holder.labels, id: holder.id) { wrapped.code = .ownerConflict }
                wrapped.message = "\(name) is held by service \(wrapped.message.isEmpty ? "" : "(\(wrapped.message)) ")which this botmaker database does not manage"
            }
            throw wrapped
        }
    }

    public func reconfigureContainer(botId: String, config: ContainerConfig, launch: ContainerLaunch) async throws(ContainerError) {
        guard let service = try await managedService(botId: botId, fallback: .startFailed) else { throw Self.noService(botId) }
        let forceUpdate = service.spec[path: ["TaskTemplate", "ForceUpdate"]]?.intValue ?? 0
        let spec = try await serviceSpec(botId: botId, config: config, launch: launch, replicas: launch.running ? 1 : 0, forceUpdate: forceUpdate)
        try await update(service, botId: botId, auth: launch.registryAuth) { $0 = spec }
        await removeUnusedObjects(botId: botId, keepingPrevious: true)
    }

    /// Creates (or finds) the bot's secrets and network, then builds the whole service spec.
    private func serviceSpec(botId: String, config: ContainerConfig, launch: ContainerLaunch, replicas: Int, forceUpdate: Int) async throws(ContainerError) -> JSONValue {
        if let refusal = refusal(for: botId, config: config) { throw ContainerError(.invalidSpec, refusal, botId: botId) }
        let objectLabels = SwarmServiceSpec.labels(botId: botId, instance: instance, owner: owner)
        var labels = objectLabels
        labels[BotLabels.specHash] = config.specHash
        labels[BotLabels.specVersion] = String(ContainerSpec.encodingVersion)
        let secrets = try await ensureSecrets(botId: botId, files: launch.secretFiles, labels: objectLabels)
        let networkId = config.network == .botmaker ? try await ensureNetwork(botId: botId, labels: objectLabels) : nil
        return SwarmServiceSpec.make(botId: botId, config: config, launch: launch, labels: labels, secrets: secrets, networkId: networkId,
                                     replicas: replicas, forceUpdate: forceUpdate, stopGraceSeconds: stopGraceSeconds,
                                     monitorSeconds: monitorSeconds, engine: engine)
    }

    private func ensureSecrets(botId: String, files: [SecretFile], labels: [String: String]) async throws(ContainerError) -> [SwarmServiceSpec.SecretReference] {
        guard !files.isEmpty else { return [] }
        return try await Self.wrapping(botId: botId, fallback: .secretsError) { try await self.makeSecrets(botId: botId, files: files, labels: labels) }
    }

    /// Runs `body`, passing a ``ContainerError`` through and wrapping any other error as one.
    private static func wrapping<T: Sendable>(botId: String?, fallback: ContainerError.Code, _ body: () async throws -> T) async throws(ContainerError) -> T {
        do { return try await body() } catch let error as ContainerError { throw error } catch {
            throw wrapDockerError(error, botId: botId, fallback: fallback)
        }
    }

    private static func noService(_ botId: String) -> ContainerError {
        ContainerError(.notFound, "no service \(ContainerDefaults.containerName(for: botId))", botId: botId)
    }

    private func makeSecrets(botId: String, files: [SecretFile], labels: [String: String]) async throws -> [SwarmServiceSpec.SecretReference] {
        let existing = try await client.listSwarmObjects(.secrets, filters: ["label": ["\(BotLabels.botId)=\(botId)"]])
        var references: [SwarmServiceSpec.SecretReference] = []
        for file in files {
            let name = SwarmServiceSpec.secretName(botId: botId, file: file.name, digest: file.digest)
            var secretLabels = labels
            secretLabels[BotLabels.secretFile] = file.name
            let id: String
            if let found = existing.first(where: { $0.name == name }) {
                id = try ours(found, botId: botId)
            } else {
                id = try await createSecret(name: name, data: file.data, labels: secretLabels, botId: botId)
            }
            references.append(.init(file: file.name, id: id, name: name))
        }
        return references
    }

    private func ours(_ secret: SwarmObject, botId: String) throws(ContainerError) -> String {
        guard ownership(secret.labels, id: secret.id) == .ours else {
            throw ContainerError(.alreadyExists, "Swarm secret \(secret.name) exists without this database's labels; it is left alone", botId: botId)
        }
        return secret.id
    }

    /// Creates a secret; one made meanwhile (a retry after a crash) is content-addressed, so it holds the same content.
    private func createSecret(name: String, data: Data, labels: [String: String], botId: String) async throws -> String {
        let result: Result<String, DockerEngineError>
        do { result = .success(try await client.createSwarmObject(.secrets, name: name, data: data, labels: labels)) } catch { result = .failure(error) }
        switch result {
        case .success(let id): return id
        case .failure(let error) where error.httpStatus == 409:
            guard let found = try await client.listSwarmObjects(.secrets, filters: ["name": [name]]).first(where: { $0.name == name }) else { throw error }
            return try ours(found, botId: botId)
        case .failure(let error): throw error
        }
    }

    private func ensureNetwork(botId: String, labels: [String: String]) async throws(ContainerError) -> String {
        try await Self.wrapping(botId: botId, fallback: .networkError) { try await self.makeNetwork(botId: botId, labels: labels) }
    }

    private func makeNetwork(botId: String, labels: [String: String]) async throws -> String {
        let name = SwarmServiceSpec.networkName(botId: botId)
        func find() async throws -> NetworkInspect? {
            try await client.listNetworks(filters: ["name": [name]]).first { $0.name == name }
        }
        if let found = try await find() {
            guard ownership(found.labels, id: found.id) == .ours, found.driver == "overlay" else {
                throw ContainerError(.alreadyExists, "network \(name) exists without this database's labels; it is left alone", botId: botId)
            }
            return found.id
        }
        let created: DockerEngineError?
        do { try await client.createNetwork(name: name, driver: "overlay", options: [:], labels: labels); created = nil } catch { created = error }
        if let created, created.httpStatus != 409 { throw created }
        guard let made = try await find() else { throw ContainerError(.networkError, "network \(name) was made but is not listed", botId: botId) }
        return made.id
    }

    public func startContainer(botId: String, containerId: String?) async throws(ContainerError) {
        try await scale(botId: botId, to: 1, fallback: .startFailed)
    }

    public func stopContainer(botId: String) async throws(ContainerError) {
        try await scale(botId: botId, to: 0, fallback: .stopFailed)
    }

    private func scale(botId: String, to replicas: Int, fallback: ContainerError.Code) async throws(ContainerError) {
        guard let service = try await managedService(botId: botId, fallback: fallback) else { throw Self.noService(botId) }
        try await update(service, botId: botId, auth: nil) { $0[path: ["Mode", "Replicated", "Replicas"]] = .number(Double(replicas)) }
    }

    /// `ForceUpdate` + 1: Swarm replaces the task (stop-first).
    public func restartContainer(botId: String) async throws(ContainerError) {
        guard let service = try await managedService(botId: botId, fallback: .startFailed) else { throw Self.noService(botId) }
        try await update(service, botId: botId, auth: nil) { spec in
            let next = (spec[path: ["TaskTemplate", "ForceUpdate"]]?.intValue ?? 0) + 1
            spec[path: ["TaskTemplate", "ForceUpdate"]] = .number(Double(next))
        }
    }

    /// Writes `change` of the service's whole spec; a stale version ("update out of sequence", HTTP 500: someone updated it
    /// meanwhile) is read again and retried, never reported as the bot's error. Nothing is written when nothing changes.
    func update(_ service: SwarmService, botId: String, auth: String?, _ change: (inout JSONValue) -> Void) async throws(ContainerError) {
        var current = service
        for attempt in 1...5 {
            var spec = current.spec
            change(&spec)
            if spec == current.spec { return }
            do {
                try await client.updateService(current.id, version: current.version.index, spec: spec, auth: auth)
                markChanged()
                return
            } catch where "\(error)".contains("update out of sequence") && attempt < 5 {
                do { current = try await client.inspectService(current.id) } catch {
                    throw wrapDockerError(error, botId: botId, fallback: .startFailed)
                }
                guard ownership(current.labels, id: current.id).allows(botId: botId, labels: current.labels) else {
                    throw ContainerError(.notManaged, "service \(current.name) lost this database's labels meanwhile; it is left alone", botId: botId)
                }
            } catch {
                throw wrapDockerError(error, botId: botId, fallback: .startFailed)
            }
        }
    }

    public func removeContainer(botId: String) async throws(ContainerError) {
        guard let service = try await managedService(botId: botId, fallback: .stopFailed) else { return }
        try await removeService(service.id, botId: botId)
    }

    public func removeManagedContainer(id: String, botId: String) async throws(ContainerError) {
        let service: SwarmService
        do { service = try await client.inspectService(id) } catch {
            if error.httpStatus == 404 { return }
            throw wrapDockerError(error, botId: botId, fallback: .stopFailed)
        }
        guard service.id.hasPrefix(id) else { return }
        guard ownership(service.labels, id: service.id) == .ours else {
            throw ContainerError(.notManaged, "service \(service.name) (\(service.id.prefix(12))) is not this database's; it is left alone", botId: botId)
        }
        try await removeService(service.id, botId: botId)
    }

    private func removeService(_ id: String, botId: String) async throws(ContainerError) {
        do {
            try await client.removeService(id)
        } catch {
            if error.httpStatus != 404 { throw wrapDockerError(error, botId: botId, fallback: .stopFailed) }
        }
        markChanged()
        await removeUnusedObjects(botId: botId, keepingPrevious: false)
    }

    public func renameContainer(botId: String, containerId: String, to name: String) async throws(ContainerError) {
        throw ContainerError(.configError, "Swarm services are updated in place, never renamed", botId: botId)
    }

    // MARK: - Placement

    /// The ready, active node with the fewest of our running tasks (ties by hostname).
    public func chooseNode(botId: String) async throws(ContainerError) -> String {
        try await Self.wrapping(botId: botId, fallback: .observeFailed) { try await self.leastLoadedNode(botId: botId) }
    }

    private func leastLoadedNode(botId: String) async throws -> String {
        let nodes = try await client.listNodes().filter { $0.state == "ready" && $0.availability == "active" }
        let ours = Set(try await client.listServices(filters: ["label": ["\(BotLabels.managed)=true"]]).map(\.id))
        var load: [String: Int] = [:]
        for task in try await client.listTasks(filters: ["desired-state": ["running"]]) where ours.contains(task.serviceID) {
            if let node = task.nodeID { load[node, default: 0] += 1 }
        }
        guard let chosen = nodes.min(by: { (load[$0.id] ?? 0, $0.hostname) < (load[$1.id] ?? 0, $1.hostname) }) else {
            throw ContainerError(.nodeDown, "no ready node to place the bot on", botId: botId)
        }
        return chosen.id
    }

    // MARK: - Secrets and networks no service uses

    /// Removes the bot's secrets and network that its service (if any) does not use. In-use ones are left for the next time.
    /// `keepingPrevious`: right after an update, the previous spec's secrets stay (Swarm's rollback target needs them until
    /// the update completes; the completion, seen by the events stream or the garbage collection, removes them).
    private func removeUnusedObjects(botId: String, keepingPrevious: Bool) async {
        do {
            let service = (try? await managedService(botId: botId, fallback: .observeFailed)) ?? nil
            let used = Set((service.map(Self.secretsInUse) ?? []) + (keepingPrevious ? Self.secretIds(of: service?.previousSpec) : []))
            for secret in try await client.listSwarmObjects(.secrets, filters: ["label": ["\(BotLabels.botId)=\(botId)"]])
            where !used.contains(secret.id) && ownership(secret.labels, id: secret.id) == .ours {
                try? await client.removeSwarmObject(.secrets, secret.id)
            }
            if service == nil || service?.spec[path: ["TaskTemplate", "Networks"]] == nil {
                let name = SwarmServiceSpec.networkName(botId: botId)
                if let network = try await client.listNetworks(filters: ["name": [name]]).first(where: { $0.name == name }),
                   ownership(network.labels, id: network.id) == .ours {
                    try? await client.removeNetwork(network.id)
                }
            }
        } catch {
            logger.debug("cannot remove unused secrets or networks", metadata: ["bot.id": "\(botId)", "error": "\(error)"])
        }
    }

    /// The secrets a service uses, and while its update is not completed those of its previous spec (Swarm's rollback
    /// target needs them).
    static func secretsInUse(_ service: SwarmService) -> [String] {
        let previous = service.updateStatus?.state == "completed" || service.updateStatus == nil ? [] : secretIds(of: service.previousSpec)
        return secretIds(of: service.spec) + previous
    }

    static func secretIds(of spec: JSONValue?) -> [String] {
        guard case .array(let secrets)? = spec?[path: ["TaskTemplate", "ContainerSpec", "Secrets"]] else { return [] }
        return secrets.compactMap { $0["SecretID"]?.stringValue }
    }

    /// How old an unused secret or network must be before ``collectGarbage()`` removes it.
    static let garbageAge: TimeInterval = 30

    /// Our secrets and networks whose bot has no service of ours, or that its service does not use (after a crash
    /// between a rotation's update and its clean-up).
    public func collectGarbage() async {
        do {
            let services = try await client.listServices(filters: ["label": ["\(BotLabels.managed)=true"]])
                .filter { ownership($0.labels, id: $0.id) == .ours }
            let usedSecrets = Set(services.flatMap(Self.secretsInUse))
            let usedNetworks = Set(services.compactMap { service -> String? in
                guard case .array(let networks)? = service.spec[path: ["TaskTemplate", "Networks"]] else { return nil }
                return networks.first?["Target"]?.stringValue
            })
            let ourLabel = ["label": ["\(BotLabels.managed)=true", "\(BotLabels.instance)=\(instance)"]]
            // A secret or network made moments ago may be for a service a worker is creating right now.
            let settled = { (created: String?) in (DockerTimestamp.parse(created) ?? .distantFuture) < Date().addingTimeInterval(-Self.garbageAge) }
            for secret in try await client.listSwarmObjects(.secrets, filters: ourLabel)
            where !usedSecrets.contains(secret.id) && ownership(secret.labels, id: secret.id) == .ours && settled(secret.createdAt) {
                try? await client.removeSwarmObject(.secrets, secret.id)
            }
            for network in try await client.listNetworks(filters: ourLabel)
            where network.driver == "overlay" && !usedNetworks.contains(network.id) && !usedNetworks.contains(network.name)
                && ownership(network.labels, id: network.id) == .ours && settled(network.created) {
                try? await client.removeNetwork(network.id)
            }
        } catch {
            logger.debug("cannot collect unused secrets and networks", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Events

    private func markChanged() {
        pollUntil.withLockedValue { $0 = .now + .seconds(120) }
    }

    /// Swarm's `/events` has service and node events but no task events: the stream adds what a look at the services
    /// finds changed, every `pollInterval` while any service is not converged (or shortly after our own changes and
    /// any node event), so a task that fails, restarts or moves brings its bot back.
    public func events(onConnect: @escaping @Sendable () -> Void) -> AsyncThrowingStream<RuntimeEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: RuntimeEvent.self)
        let runtime = self
        let task = Task {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        let source = EventSource(runtime.client.events(filters: ["type": ["service", "node"]], onConnect: onConnect))
                        while let event = try await source.next() {
                            if event.type == "node" {
                                // A node that goes down changes no service (Swarm even counts its tasks as running): every
                                // bot of ours is looked at again.
                                runtime.markChanged()
                                for event in try await runtime.allServices() { continuation.yield(event) }
                                continue
                            }
                            let name = event.attributes["name"] ?? ""
                            guard name.hasPrefix(ContainerDefaults.namePrefix), let botId = ContainerDefaults.botId(inName: name) else { continue }
                            continuation.yield(RuntimeEvent(action: event.baseAction, containerId: event.actorID, name: name, botId: botId))
                        }
                    }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: runtime.pollInterval)
                            let unsettled = runtime.seen.withLockedValue { $0.values.contains { !Self.settledFingerprint($0) } }
                            guard unsettled || runtime.pollUntil.withLockedValue({ $0 > .now }) else { continue }
                            for event in try await runtime.changedServices() { continuation.yield(event) }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    static func settledFingerprint(_ fingerprint: String) -> Bool {
        let parts = fingerprint.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == parts[1] && parts[3] != "updating" && parts[3] != "rollback_started"
    }

    /// An event for each of our services.
    private func allServices() async throws -> [RuntimeEvent] {
        try await client.listServices(filters: ["label": ["\(BotLabels.managed)=true"]]).filter { ownership($0.labels, id: $0.id) == .ours }
            .compactMap { service in
                ContainerDefaults.botId(inName: service.name).map { RuntimeEvent(action: "node", containerId: service.id, name: service.name, botId: $0) }
            }
    }

    /// One list of our services: an event for each whose tasks or spec changed since the last look.
    private func changedServices() async throws -> [RuntimeEvent] {
        let services = try await client.listServices(filters: ["label": ["\(BotLabels.managed)=true"]])
            .filter { ownership($0.labels, id: $0.id) == .ours }
        let (changed, completed) = seen.withLockedValue { seen -> ([SwarmService], [SwarmService]) in
            let changed = services.filter { seen[$0.id] != Self.fingerprint($0) }
            let completed = changed.filter { $0.updateStatus?.state == "completed" && seen[$0.id]?.hasSuffix("/completed") == false }
            let ids = Set(services.map(\.id))
            seen = seen.filter { ids.contains($0.key) }
            for service in services { seen[service.id] = Self.fingerprint(service) }
            return (changed, completed)
        }
        // An update completed: its previous spec's secrets (kept for Swarm's rollback) go now.
        for service in completed { if let botId = ContainerDefaults.botId(inName: service.name) { await removeUnusedObjects(botId: botId, keepingPrevious: false) } }
        return changed.compactMap { service in
            ContainerDefaults.botId(inName: service.name).map { RuntimeEvent(action: "tasks", containerId: service.id, name: service.name, botId: $0) }
        }
    }

    // MARK: - Images: checked and pulled on the manager's engine

    public func image(_ reference: String) async throws(ContainerError) -> ImageInfo? { try await local.image(reference) }

    public func pullImage(_ reference: ImageReference, auth: String?, timeout: TimeInterval,
                          progress: @escaping @Sendable (PullEvent) -> Void) async throws(ContainerError) {
        try await local.pullImage(reference, auth: auth, timeout: timeout, progress: progress)
    }

    public func registryDigest(_ reference: ImageReference, auth: String?) async throws(ContainerError) -> String {
        try await local.registryDigest(reference, auth: auth)
    }

    public func removeImage(_ image: String) async throws(ContainerError) { try await local.removeImage(image) }

    public func imagesInUse() async throws(ContainerError) -> Set<String> { try await local.imagesInUse() }

    // MARK: - The instance's claim: a Swarm config, cluster-wide

    var claimName: String { "botmaker.claim.\(instance)" }

    public func instanceClaim() async throws(ContainerError) -> InstanceClaim? {
        do {
            return try await client.listSwarmObjects(.configs, filters: ["name": [claimName]]).first { $0.name == claimName }
                .map { DockerService.claim(fromLabels: $0.labels) }
        } catch {
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    public func claimInstance(_ claim: InstanceClaim) async throws(ContainerError) -> InstanceClaim {
        let since = ISO8601DateFormatter().string(from: claim.since ?? Date())
        do {
            _ = try await client.createSwarmObject(.configs, name: claimName, data: Data("botmaker claim\n".utf8), labels: [
                BotLabels.claim: "true", BotLabels.instance: instance, BotLabels.owner: claim.owner,
                BotLabels.claimPath: claim.databasePath, BotLabels.claimHost: claim.host, BotLabels.claimSince: since,
            ])
        } catch {
            // Whoever created it first holds the claim.
            if error.httpStatus != 409 { throw wrapDockerError(error, botId: nil, fallback: .observeFailed) }
        }
        guard let held = try await instanceClaim() else {
            throw ContainerError(.observeFailed, "the claim \(claimName) was made but is not listed")
        }
        return held
    }

    public func releaseInstanceClaim() async throws(ContainerError) {
        do {
            for config in try await client.listSwarmObjects(.configs, filters: ["name": [claimName]]) where config.name == claimName {
                try await client.removeSwarmObject(.configs, config.id)
            }
        } catch {
            if error.httpStatus == 404 { return }
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    public func adopt(_ containerIds: Set<String>) async {
        adopted.withLockedValue { $0.formUnion(containerIds) }
    }

    // MARK: - Helpers

    /// The bot's service by exact name, or nil; one with our name but not ours is an error (never touched).
    private func managedService(botId: String, fallback: ContainerError.Code) async throws(ContainerError) -> SwarmService? {
        let name = ContainerDefaults.containerName(for: botId)
        let service: SwarmService
        do {
            guard let found = try await client.listServices(filters: ["name": [name]]).first(where: { $0.name == name }) else { return nil }
            service = found
        } catch {
            throw wrapDockerError(error, botId: botId, fallback: fallback)
        }
        let ownership = ownership(service.labels, id: service.id)
        guard ownership.allows(botId: botId, labels: service.labels) else {
            let code: ContainerError.Code
            if case .otherOwner = ownership { code = .ownerConflict } else { code = .notManaged }
            throw ContainerError(code, "service \(name) (\(service.id.prefix(12))) is not this database's (no matching \(BotLabels.managed), "
                                 + "\(BotLabels.instance) and \(BotLabels.owner) labels); it is left alone", botId: botId)
        }
        return service
    }
}
