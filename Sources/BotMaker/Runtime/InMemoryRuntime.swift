import Foundation
import NIOConcurrencyHelpers

/// An engine that lives in memory, driven by an injected clock: each operation can be given a latency
/// (it completes only when the clock has advanced that far) or a failure. It follows the same
/// ownership rules as the Docker implementation, records every call and the largest number of
/// operations ever in progress on one bot at once. For unit tests of scheduling, status writes and
/// planning; every engine is also tested against the real thing.
public actor InMemoryRuntime: ContainerRuntime {
    public enum Operation: String, Sendable, CaseIterable {
        case observe, status, create, start, stop, restart, remove, pull, rename
    }

    /// What a container made from an image does when it starts (a fixture for updates).
    public enum StartBehaviour: Sendable, Equatable {
        /// Has a health check that passes (health `healthy` at once).
        case healthy
        /// Has a health check that fails.
        case unhealthy
        /// Has a health check that never finishes starting.
        case starting
        /// Exits at once with this code.
        case exits(Int)
    }

    /// One container as the engine holds it.
    public struct Container: Sendable, Equatable {
        public var id: String
        public var name: String
        public var labels: [String: String]
        public var state: ContainerState
        public var exitCode: Int?
        public var config: ContainerConfig?
        public var launch: ContainerLaunch?
        /// Nil: no health check.
        public var health: ContainerHealth?
        public var startedAt: Date?
        /// The image ID it was made from.
        public var imageId: String?
    }

    public nonisolated let endpoint = "memory://"
    private let clock: any WallClock
    private let instance: String
    private let owner: String?
    private var containers: [String: Container] = [:]
    private var nextId = 0
    private var latencies: [Operation: TimeInterval] = [:]
    private var botLatencies: [String: [Operation: TimeInterval]] = [:]
    private var failures: [String: [Operation: ContainerError]] = [:]
    private var missingImages: Set<String> = []
    /// Images a pull can fetch (a missing image not in here fails to pull with `IMAGE_NOT_FOUND`).
    private var registryImages: Set<String> = []
    private var startBehaviours: [String: StartBehaviour] = [:]
    private var imageIds: [String: String] = [:]
    private var activeByBot: [String: Int] = [:]
    /// Every operation started, in order: (operation, bot id).
    public private(set) var calls: [(Operation, String)] = []
    /// The most operations ever in progress on one bot at the same time.
    public private(set) var maxConcurrentPerBot = 0
    /// Operations in progress now, and the most ever in progress at once, by kind (across bots).
    public private(set) var inProgress: [Operation: Int] = [:]
    public private(set) var maxInProgress: [Operation: Int] = [:]
    /// When true every call fails with `NETWORK_ERROR`.
    public var unreachable = false
    private let sinks = NIOLockedValueBox<[UInt64: AsyncThrowingStream<RuntimeEvent, any Error>.Continuation]>([:])
    private let sinkIds = NIOLockedValueBox<UInt64>(0)
    private let subscriberWaiters = NIOLockedValueBox<[(Int, CheckedContinuation<Void, Never>)]>([])

    public init(clock: any WallClock, instance: String = BotLabels.defaultInstance, owner: String? = nil) {
        self.clock = clock
        self.instance = instance
        self.owner = owner
    }

    // MARK: - Test controls

    /// Every `operation` takes `seconds` of the injected clock (for one bot when `botId` is given).
    public func setLatency(_ operation: Operation, _ seconds: TimeInterval, botId: String? = nil) {
        if let botId { botLatencies[botId, default: [:]][operation] = seconds } else { latencies[operation] = seconds }
    }

    /// `operation` on `botId` fails with `error` until cleared with nil.
    public func setFailure(_ operation: Operation, botId: String, _ error: ContainerError?) {
        failures[botId, default: [:]][operation] = error
    }

    /// Creating a container from `image` fails with `NOT_FOUND`, as Docker does for a missing image.
    public func setImageMissing(_ image: String, _ missing: Bool = true) {
        if missing { missingImages.insert(image) } else { missingImages.remove(image) }
    }

    public func setUnreachable(_ value: Bool) { unreachable = value }

    /// Containers made from `image` behave so when started (nil: they just run, without a health check).
    public func setStartBehaviour(image: String, _ behaviour: StartBehaviour?) { startBehaviours[image] = behaviour }

    /// The image ID the engine has under `reference` (as a tag moved to another image would change it).
    public func setImageId(_ reference: String, _ id: String) { imageIds[reference] = id }

    /// Makes `image` available to pulls (as a registry that has it).
    public func setInRegistry(_ image: String, _ present: Bool = true) {
        if present { registryImages.insert(image) } else { registryImages.remove(image) }
    }

    /// A container made outside botmaker (by hand, or by an older botmaker when `labels` say it is ours).
    @discardableResult
    public func addContainer(name: String, labels: [String: String] = [:], running: Bool = true) -> String {
        let id = makeId()
        containers[id] = Container(id: id, name: name, labels: labels, state: running ? .running : .created)
        return id
    }

    /// Changes a container behind botmaker's back (as `docker stop` or a crash would), emitting events.
    public func setState(botId: String, _ state: ContainerState, exitCode: Int? = nil) {
        guard let id = containerId(named: ContainerDefaults.containerName(for: botId)) else { return }
        containers[id]?.state = state
        containers[id]?.exitCode = exitCode
        emit(state == .running ? "start" : "die", id)
    }

    /// Sets the bot's container health as a health check would, emitting Docker's `health_status` event.
    public func setHealth(botId: String, _ health: ContainerHealth?) {
        guard let id = containerId(named: ContainerDefaults.containerName(for: botId)) else { return }
        containers[id]?.health = health
        if health != nil { emit("health_status", id) }
    }

    /// Removes a container behind botmaker's back (as `docker rm -f` would).
    public func removeExternally(botId: String) {
        guard let id = containerId(named: ContainerDefaults.containerName(for: botId)) else { return }
        emit("destroy", id)
        containers[id] = nil
    }

    public var allContainers: [Container] { containers.values.sorted { $0.name < $1.name } }

    public func container(botId: String) -> Container? {
        containerId(named: ContainerDefaults.containerName(for: botId)).flatMap { containers[$0] }
    }

    public func callCount(_ operation: Operation, botId: String? = nil) -> Int {
        calls.count { $0.0 == operation && (botId == nil || $0.1 == botId) }
    }

    // MARK: - ContainerRuntime

    public func ping() async throws(ContainerError) {
        if unreachable { throw ContainerError(.networkError, "in-memory engine set unreachable") }
    }

    public func observe() async throws(ContainerError) -> ObservedContainers {
        try await operate(.observe, botId: "*")
        var observed = ObservedContainers()
        for container in containers.values.sorted(by: { $0.name < $1.name }) {
            observed.record(info(container), as: ownership(container.labels, id: container.id))
        }
        return observed
    }

    public func observe(botId: String) async throws(ContainerError) -> ObservedContainers {
        try await operate(.observe, botId: botId)
        var observed = ObservedContainers()
        for name in [ContainerDefaults.containerName(for: botId), ContainerDefaults.previousName(for: botId)] {
            guard let id = containerId(named: name), let container = containers[id] else { continue }
            observed.record(info(container), as: ownership(container.labels, id: container.id))
        }
        return observed
    }

    public func renameContainer(botId: String, containerId: String, to name: String) async throws(ContainerError) {
        try await operate(.rename, botId: botId)
        guard let container = containers[containerId], mayManage(container.labels, botId: botId) else {
            throw ContainerError(.notManaged, "container \(containerId.prefix(12)) is not managed by botmaker", botId: botId)
        }
        if container.name == name { return }
        if self.containerId(named: name) != nil { throw ContainerError(.alreadyExists, "cannot rename to \(name): the name is taken", botId: botId) }
        containers[containerId]?.name = name
        emit("rename", containerId)
    }

    public func observe(containerId: String) async throws(ContainerError) -> ContainerInfo? {
        try await operate(.observe, botId: "*")
        guard let container = containers[containerId], owns(container.labels) else { return nil }
        return info(container)
    }

    public func createContainer(botId: String, config: ContainerConfig, launch: ContainerLaunch) async throws(ContainerError) -> String {
        try await operate(.create, botId: botId)
        let name = ContainerDefaults.containerName(for: botId)
        if missingImages.contains(config.image) {
            throw ContainerError(.notFound, "No such image: \(config.image)", botId: botId)
        }
        if let holder = containerId(named: name) {
            throw ContainerError(.alreadyExists, "\(name) is held by container \(holder.prefix(12))", botId: botId)
        }
        let id = makeId()
        containers[id] = Container(
            id: id, name: name,
            labels: [BotLabels.managed: "true", BotLabels.botId: botId, BotLabels.specHash: config.specHash, BotLabels.instance: instance,
                     BotLabels.specVersion: String(ContainerSpec.encodingVersion)]
                .merging(owner.map { [BotLabels.owner: $0] } ?? [:]) { a, _ in a },
            state: .created, config: config, launch: launch,
            imageId: launch.image ?? imageIds[config.image] ?? "sha256:" + String(config.image.utf8.count))
        emit("create", id)
        return id
    }

    public func image(_ reference: String) async throws(ContainerError) -> ImageInfo? {
        if unreachable { throw ContainerError(.networkError, "in-memory engine set unreachable") }
        return missingImages.contains(reference) ? nil : ImageInfo(id: imageIds[reference] ?? "sha256:" + String(reference.utf8.count))
    }

    public func pullImage(_ reference: ImageReference, auth: String?, timeout: TimeInterval,
                          progress: @escaping @Sendable (PullEvent) -> Void) async throws(ContainerError) {
        try await operate(.pull, botId: reference.text)
        guard registryImages.contains(reference.text) else {
            throw ContainerError(.imageNotFound, "pulling \(reference): manifest unknown")
        }
        progress(PullEvent(status: "Downloading", layer: "l1", current: 50, total: 100))
        missingImages.remove(reference.text)
    }

    private var registryDigests: [String: String] = [:]

    /// What the registry says `image` points to (for update checks).
    public func setRegistryDigest(_ image: String, _ digest: String) { registryDigests[image] = digest }

    public func registryDigest(_ reference: ImageReference, auth: String?) async throws(ContainerError) -> String {
        guard let digest = registryDigests[reference.text] else { throw ContainerError(.imageNotFound, "\(reference): manifest unknown") }
        return digest
    }

    public func removeImage(_ image: String) async throws(ContainerError) { missingImages.insert(image) }

    public func imagesInUse() async throws(ContainerError) -> Set<String> { [] }

    public func startContainer(botId: String, containerId: String?) async throws(ContainerError) {
        try await operate(.start, botId: botId)
        var id = containerId
        if id == nil { id = try requireOwned(botId: botId) }
        guard let id else { return }
        guard containers[id] != nil else { throw ContainerError(.notFound, "no such container \(id)", botId: botId) }
        if containers[id]?.state == .running { return }
        containers[id]?.state = .running
        containers[id]?.exitCode = nil
        containers[id]?.startedAt = clock.now()
        emit("start", id)
        switch containers[id]?.config.flatMap({ startBehaviours[$0.image] }) {
        case .healthy?: containers[id]?.health = .healthy
        case .unhealthy?: containers[id]?.health = .unhealthy
        case .starting?: containers[id]?.health = .starting
        case .exits(let code)?:
            containers[id]?.state = .exited
            containers[id]?.exitCode = code
            emit("die", id)
        case nil: break
        }
    }

    public func stopContainer(botId: String) async throws(ContainerError) {
        try await operate(.stop, botId: botId)
        let id = try requireOwned(botId: botId)
        stop(id)
    }

    public func restartContainer(botId: String) async throws(ContainerError) {
        try await operate(.restart, botId: botId)
        let id = try requireOwned(botId: botId)
        stop(id)
        containers[id]?.state = .running
        containers[id]?.exitCode = nil
        if containers[id]?.health != nil { containers[id]?.health = .starting }
        emit("start", id)
    }

    public func removeContainer(botId: String) async throws(ContainerError) {
        try await operate(.remove, botId: botId)
        let name = ContainerDefaults.containerName(for: botId)
        guard let id = containerId(named: name), let container = containers[id] else { return }
        guard mayManage(container.labels, botId: botId) else { throw ContainerError(.notManaged, "\(name) is not managed by botmaker", botId: botId) }
        remove(id)
    }

    public func removeManagedContainer(id: String, botId: String) async throws(ContainerError) {
        try await operate(.remove, botId: botId)
        guard let container = containers[id] else { return }
        guard owns(container.labels) else { throw ContainerError(.notManaged, "container \(id) is not managed by botmaker", botId: botId) }
        remove(id)
    }

    public func getContainerStatus(botId: String) async throws(ContainerError) -> ContainerStatus? {
        try await operate(.status, botId: botId)
        guard let id = containerId(named: ContainerDefaults.containerName(for: botId)), let container = containers[id],
              mayManage(container.labels, botId: botId) else { return nil }
        return ContainerStatus(id: id, state: container.state, running: container.state == .running,
                               exitCode: container.exitCode, startedAt: container.startedAt, finishedAt: nil, health: container.health,
                               healthLog: container.health == .unhealthy ? "exit code 1: in-memory health check failed" : nil)
    }

    public func matchesWithoutSpecHash(containerId: String, config: ContainerConfig) async -> Bool {
        containers[containerId]?.config == config
    }

    public nonisolated func events(onConnect: @escaping @Sendable () -> Void) -> AsyncThrowingStream<RuntimeEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: RuntimeEvent.self)
        let id = sinkIds.withLockedValue { $0 += 1; return $0 }
        let count = sinks.withLockedValue { $0[id] = continuation; return $0.count }
        continuation.onTermination = { [sinks] _ in _ = sinks.withLockedValue { $0.removeValue(forKey: id) } }
        onConnect()
        let ready = subscriberWaiters.withLockedValue { waiters in
            defer { waiters.removeAll { $0.0 <= count } }
            return waiters.filter { $0.0 <= count }.map(\.1)
        }
        for waiter in ready { waiter.resume() }
        return stream
    }

    /// Returns once at least `count` event streams are subscribed: how a test knows a watcher listens.
    public nonisolated func waitForSubscribers(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = subscriberWaiters.withLockedValue { waiters -> Bool in
                if sinks.withLockedValue({ $0.count }) >= count { return true }
                waiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Ends every event stream with an error, as a broken connection would.
    public nonisolated func breakEventStreams() {
        let all = sinks.withLockedValue { sinks in
            defer { sinks = [:] }
            return Array(sinks.values)
        }
        for continuation in all { continuation.finish(throwing: ContainerError(.networkError, "event stream broke")) }
    }

    private var claim: InstanceClaim?
    private var adoptedIds: Set<String> = []

    public func instanceClaim() async throws(ContainerError) -> InstanceClaim? { claim }

    public func claimInstance(_ claim: InstanceClaim) async throws(ContainerError) -> InstanceClaim {
        if let held = self.claim { return held }
        self.claim = claim
        return claim
    }

    public func releaseInstanceClaim() async throws(ContainerError) { claim = nil }

    public func adopt(_ containerIds: Set<String>) async { adoptedIds.formUnion(containerIds) }

    public func shutdown() async {}

    // MARK: - Internals

    private func operate(_ operation: Operation, botId: String) async throws(ContainerError) {
        calls.append((operation, botId))
        if unreachable { throw ContainerError(.networkError, "in-memory engine set unreachable", botId: botId) }
        activeByBot[botId, default: 0] += 1
        if botId != "*" { maxConcurrentPerBot = max(maxConcurrentPerBot, activeByBot[botId] ?? 0) }
        inProgress[operation, default: 0] += 1
        maxInProgress[operation] = max(maxInProgress[operation] ?? 0, inProgress[operation] ?? 0)
        defer {
            activeByBot[botId, default: 1] -= 1
            inProgress[operation, default: 1] -= 1
        }
        let seconds = botLatencies[botId]?[operation] ?? latencies[operation] ?? 0
        if seconds > 0 {
            do { try await clock.sleep(until: clock.now().addingTimeInterval(seconds)) } catch {
                throw ContainerError(.networkError, "cancelled", botId: botId)
            }
        }
        if let failure = failures[botId]?[operation] { throw failure }
    }

    private func ownership(_ labels: [String: String], id: String = "") -> ContainerOwnership {
        ContainerOwnership.of(labels, instance: instance, owner: owner, adopted: adoptedIds.contains(id))
    }

    private func owns(_ labels: [String: String]) -> Bool { ownership(labels) == .ours }

    private func mayManage(_ labels: [String: String], botId: String) -> Bool {
        ownership(labels).allows(botId: botId, labels: labels)
    }

    private func containerId(named name: String) -> String? {
        containers.values.first { $0.name == name }?.id
    }

    private func requireOwned(botId: String) throws(ContainerError) -> String {
        let name = ContainerDefaults.containerName(for: botId)
        guard let id = containerId(named: name), let container = containers[id] else {
            throw ContainerError(.notFound, "no container \(name)", botId: botId)
        }
        guard mayManage(container.labels, botId: botId) else { throw ContainerError(.notManaged, "\(name) is not managed by botmaker", botId: botId) }
        return id
    }

    private func stop(_ id: String) {
        guard containers[id]?.state == .running else { return }
        containers[id]?.state = .exited
        containers[id]?.exitCode = 0
        emit("die", id)
    }

    private func remove(_ id: String) {
        stop(id)
        containers[id] = nil
        emit("destroy", id)
    }

    private func makeId() -> String {
        nextId += 1
        return String(format: "%064x", nextId)
    }

    private func info(_ container: Container) -> ContainerInfo {
        let derived = container.name.hasPrefix(ContainerDefaults.namePrefix)
            ? String(container.name.dropFirst(ContainerDefaults.namePrefix.count)) : container.name
        return ContainerInfo(id: container.id, name: container.name, botId: container.labels[BotLabels.botId] ?? derived,
                      state: container.state, status: container.state.rawValue, image: container.config?.image ?? "",
                      labels: container.labels, exitCode: container.exitCode,
                      health: container.state == .running ? container.health : nil,
                      imageId: container.imageId)
    }

    private func emit(_ action: String, _ id: String) {
        guard let container = containers[id], mayManage(container.labels, botId: container.labels[BotLabels.botId] ?? "") else { return }
        let event = RuntimeEvent(action: action, containerId: id, name: container.name, botId: container.labels[BotLabels.botId] ?? "")
        for continuation in sinks.withLockedValue({ Array($0.values) }) { continuation.yield(event) }
    }
}
