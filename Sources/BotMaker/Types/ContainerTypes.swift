import Foundation

/// Docker's container states, plus `unknown` for anything else (e.g. Podman's `stopped`).
public enum ContainerState: String, Sendable, Codable, CaseIterable {
    case created, running, exited, paused, restarting, removing, dead, unknown

    public init(docker value: String) {
        switch value.lowercased() {
        // Podman's words: `stopped` between the runs of a container its restart policy brings back (it never says
        // `restarting`), `configured` for created.
        case "stopped": self = .restarting
        case "configured", "initialized": self = .created
        default: self = ContainerState(rawValue: value.lowercased()) ?? .unknown
        }
    }
}

/// A container's health as its health check reports it (nil where there is no health check).
public enum ContainerHealth: String, Sendable, Codable {
    case starting, healthy, unhealthy

    /// From Docker's `State.Health.Status`.
    public init?(docker value: String) {
        self.init(rawValue: value.lowercased())
    }

    /// From a human status such as `Up 5 seconds (healthy)` or `Up 1 second (health: starting)`.
    public init?(inStatus status: String) {
        if status.hasSuffix("(healthy)") { self = .healthy }
        else if status.hasSuffix("(unhealthy)") { self = .unhealthy }
        else if status.hasSuffix("(health: starting)") { self = .starting }
        else { return nil }
    }
}

/// A bot container's state as Docker reports it (`GET /containers/{id}/json`).
public struct ContainerStatus: Sendable, Equatable, Codable {
    public var id: String
    public var state: ContainerState
    public var running: Bool
    public var exitCode: Int?
    public var startedAt: Date?
    public var finishedAt: Date?
    public var restartCount: Int
    /// Docker's `State.Error`, e.g. why the last start failed.
    public var error: String?
    public var health: ContainerHealth?
    /// The output of the last health check, trimmed (what an `UNHEALTHY` error shows).
    public var healthLog: String?
    /// For a running container the engine restarted: the exit code of the run before (`exitCode` is nil while running).
    public var lastExitCode: Int?

    public init(id: String, state: ContainerState, running: Bool, exitCode: Int?, startedAt: Date?, finishedAt: Date?, restartCount: Int = 0,
                error: String? = nil, health: ContainerHealth? = nil, healthLog: String? = nil) {
        self.health = health
        self.healthLog = healthLog
        self.id = id
        self.state = state
        self.running = running
        self.exitCode = exitCode
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.restartCount = restartCount
        self.error = error
    }
}

/// A rollback an engine (Swarm) does by itself after an update failed.
public struct EngineRollback: Sendable, Equatable, Codable {
    public var inProgress: Bool
    public var message: String

    public init(inProgress: Bool, message: String) {
        self.inProgress = inProgress
        self.message = message
    }
}

/// A managed container as listed by Docker (`GET /containers/json`).
public struct ContainerInfo: Sendable, Equatable, Codable {
    public var id: String
    /// Without Docker's leading `/`.
    public var name: String
    public var botId: String
    public var state: ContainerState
    /// Docker's human status, e.g. `Exited (137) 5 minutes ago`.
    public var status: String
    public var image: String
    public var labels: [String: String]
    /// The last exit code of a container that exited, is restarting or is dead.
    public var exitCode: Int?
    /// Nil when the container has no health check (or is not running).
    public var health: ContainerHealth?
    /// The ID (`sha256:…`) of the image the container was made from, when the engine said.
    public var imageId: String?
    /// Swarm: the hostname of the node the bot's task runs on (or was placed on).
    public var node: String?
    /// Swarm: why the engine has not started the bot's task yet (placing it, pulling, a pinned node that is down).
    public var pending: String?
    /// Swarm: the bot is pinned to a node that is down (with `pending` saying which).
    public var nodeDown = false
    /// Swarm: the engine is rolling the service's last update back (`started`), or has (`completed`, `paused`), by itself;
    /// with its message. Nil otherwise.
    public var engineRollback: EngineRollback?
    /// Swarm: the engine is rolling the service's last update out (its new task not yet monitored long enough).
    public var engineUpdating = false

    /// `exitCode` defaults to the one in a human status such as `Exited (137) 5 minutes ago`.
    public init(id: String, name: String, botId: String, state: ContainerState, status: String, image: String = "",
                labels: [String: String] = [:], exitCode: Int? = nil, health: ContainerHealth? = nil, imageId: String? = nil) {
        self.imageId = imageId
        self.id = id
        self.name = name
        self.botId = botId
        self.state = state
        self.status = status
        self.image = image
        self.labels = labels
        self.exitCode = exitCode ?? Self.exitCode(inStatus: status)
        self.health = health ?? (state == .running ? ContainerHealth(inStatus: status) : nil)
    }

    /// The spec hash an engine reports for a container (Swarm: a service) changed outside botmaker since it was made.
    public static let editedOutside = "edited-outside-botmaker"

    /// The `botmaker.spec-hash` label, if the container has one.
    public var specHash: String? { labels[BotLabels.specHash] }

    /// The `botmaker.owner` label: the id of the database that made the container (nil: an older botmaker or
    /// another BotMaker install made it).
    public var owner: String? { labels[BotLabels.owner] }

    /// The exit code in a human status such as `Exited (137) 5 minutes ago` or `Restarting (1) …`.
    static func exitCode(inStatus status: String) -> Int? {
        guard let open = status.firstIndex(of: "("), let close = status[open...].firstIndex(of: ")") else { return nil }
        return Int(status[status.index(after: open)..<close])
    }
}

/// `KEY=VALUE` environment entries.
public enum EnvironmentEntry {
    /// The part before the first `=` (the whole entry when it has none).
    public static func key(_ entry: String) -> String {
        String(entry.prefix { $0 != "=" })
    }
}

/// What a bot container should be: image, command, environment (literal and from secrets), secrets directory,
/// state mounts, ports, health check, limits, hardening and network.
public struct ContainerConfig: Sendable, Equatable, Codable {
    public var image: String
    /// Literal `KEY=VALUE` entries, in order (an escaped `@@secret:` already unescaped).
    public var environment: [String]
    /// Entries whose value is read from a secret file at create time.
    public var secretEnvironment: [SecretEnvironment]
    /// Keyed digests of the secret values `secretEnvironment` uses (name → digest), so that a rotation changes the
    /// spec hash; filled in by ``SecretsManager/resolveDigests(for:)``. Never the values themselves.
    public var secretDigests: [String: String]
    /// Keyed digests of the files in the secrets directory (file → digest), for engines that copy them (Swarm), so
    /// that a rotation changes the spec; nil elsewhere (a bind mount shows a rotated file at once).
    public var secretFileDigests: [String: String]?
    /// Absolute host path mounted read-only at `/run/secrets`.
    public var secretsPath: String
    /// Overrides the image's CMD when set.
    public var command: [String]?
    /// The bot's data directory on the host (`<data root>/<bot id>`); each mount is a directory in it.
    public var dataPath: String
    public var mounts: [StateMount]
    public var ports: [PortMapping]
    /// Nil: the image's own HEALTHCHECK.
    public var health: HealthOverride?
    /// Numeric `UID[:GID]`, or nil for the image's USER.
    public var user: String?
    public var memoryBytes: Int64?
    /// CPUs × 10⁹ (Docker's NanoCpus).
    public var nanoCPUs: Int64?
    public var pidsLimit: Int
    public var security: SecurityProfile
    public var network: BotNetwork

    public init(image: String, environment: [String] = [], secretsPath: String, command: [String]? = nil,
                secretEnvironment: [SecretEnvironment] = [], dataPath: String = "", mounts: [StateMount] = [],
                ports: [PortMapping] = [], health: HealthOverride? = nil, user: String? = nil, memoryBytes: Int64? = nil,
                nanoCPUs: Int64? = nil, pidsLimit: Int = ContainerDefaults.pidsLimit, security: SecurityProfile = .standard,
                network: BotNetwork = .botmaker) {
        self.image = image
        self.environment = environment
        self.secretEnvironment = secretEnvironment
        self.secretDigests = [:]
        self.secretsPath = secretsPath
        self.command = command
        self.dataPath = dataPath
        self.mounts = mounts
        self.ports = ports
        self.health = health
        self.user = user
        self.memoryBytes = memoryBytes
        self.nanoCPUs = nanoCPUs
        self.pidsLimit = pidsLimit
        self.security = security
        self.network = network
    }

    /// The host directory of one mount.
    public func hostPath(of mount: StateMount) -> String { (dataPath as NSString).appendingPathComponent(mount.name) }
}

/// What is resolved only when a container is created: secret values and host ports. Never logged or stored: its
/// descriptions and reflection show environment keys only.
public struct ContainerLaunch: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The literal environment followed by the entries read from secrets.
    public var environment: [String]
    /// One host port per entry of ``ContainerConfig/ports``, in order.
    public var published: [PublishedPort]
    /// The image to create from when it is not the spec's reference: the ID a repaired bot ran (a tag that moved
    /// meanwhile is deployed only by an update, never by a repair).
    public var image: String?
    /// Engines that copy secret files (Swarm): each file of the bot's secrets directory, read now with its digest.
    public var secretFiles: [SecretFile] = []
    /// Swarm: the node a bot with state is pinned to (its id).
    public var node: String?
    /// Swarm: the registry credentials header for the nodes' pulls (never logged).
    public var registryAuth: String?
    /// Swarm: how the engine handles a failed update of the service (its own rollback, or none).
    public var updateStrategy: UpdateStrategy = .rollback
    /// The bot should run: an engine that can make it running at once (Swarm: replicas 1) does, and the start that
    /// follows finds nothing to do.
    public var running = false

    public init(environment: [String], published: [PublishedPort] = [], image: String? = nil) {
        self.environment = environment
        self.published = published
        self.image = image
    }

    public var description: String {
        "ContainerLaunch(environment keys: \(environment.map(EnvironmentEntry.key)), published: \(published.map(\.description)), image: \(image ?? "-")"
            + (secretFiles.isEmpty ? "" : ", secret files: \(secretFiles.map(\.name))") + (node.map { ", node: \($0)" } ?? "") + ")"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["environmentKeys": environment.map(EnvironmentEntry.key), "published": published.map(\.description),
                                "secretFiles": secretFiles.map(\.name)])
    }
}

/// One secret file's content, for engines that copy it (Swarm). Never logged: descriptions show the name only.
public struct SecretFile: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var name: String
    public var data: Data
    /// The keyed digest of `data` (as in the spec), never the plain hash of a value.
    public var digest: String

    public init(name: String, data: Data, digest: String) {
        self.name = name
        self.data = data
        self.digest = digest
    }

    public var description: String { "SecretFile(\(name))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["name": name]) }
}

/// The labels botmaker puts on every container it creates.
public enum BotLabels {
    public static let managed = "botmaker.managed"
    public static let botId = "botmaker.bot-id"
    public static let specHash = "botmaker.spec-hash"
    /// The ``ContainerSpec/encodingVersion`` the spec hash was made with (absent: 1).
    public static let specVersion = "botmaker.spec-version"
    /// Which botmaker (database) owns the container; absent means `default`.
    public static let instance = "botmaker.instance"
    public static let defaultInstance = "default"
    /// The id of the database whose botmaker made the container (`store_identity.owner_id`).
    public static let owner = "botmaker.owner"
    /// On the instance's claim volume: the claimant's database path, host and time.
    public static let claim = "botmaker.claim"
    public static let claimPath = "botmaker.db-path"
    public static let claimHost = "botmaker.host"
    public static let claimSince = "botmaker.since"
    /// Swarm: which of the bot's secret files a Swarm secret holds.
    public static let secretFile = "botmaker.secret-file"
}

/// What the engine shows: our containers, and names in our namespace held by containers we don't manage.
public struct ObservedContainers: Sendable, Equatable {
    /// Containers of our instance that we made (our owner label) or that carry no owner label at all (made by
    /// an older botmaker or another BotMaker install: used only when they are exactly one of our bots').
    public var managed: [ContainerInfo] = []
    /// Container name → id, for containers we don't own whose name starts with `botmaker-`.
    public var foreignNames: [String: String] = [:]
    /// Container name → owner id, for those of `foreignNames` that are our instance's but another database's.
    public var otherOwners: [String: String] = [:]

    public init(managed: [ContainerInfo] = [], foreignNames: [String: String] = [:], otherOwners: [String: String] = [:]) {
        self.managed = managed
        self.foreignNames = foreignNames
        self.otherOwners = otherOwners
    }

    /// Files one container where its ownership puts it (every runtime observes through this).
    public mutating func record(_ container: ContainerInfo, as ownership: ContainerOwnership) {
        switch ownership {
        case .ours, .unowned:
            managed.append(container)
        case .otherOwner(let other):
            foreignNames[container.name] = container.id
            otherOwners[container.name] = other
        case .foreign:
            if container.name.hasPrefix(ContainerDefaults.namePrefix) { foreignNames[container.name] = container.id }
        }
    }

    /// What observing one container shows.
    public static func of(_ container: ContainerInfo, as ownership: ContainerOwnership) -> ObservedContainers {
        var observed = ObservedContainers()
        observed.record(container, as: ownership)
        return observed
    }
}

/// How botmaker relates to a container, from its labels alone.
public enum ContainerOwnership: Sendable, Equatable {
    /// Made by this database's botmaker: ours to manage.
    case ours
    /// Our instance, but no owner label (an older botmaker, or another BotMaker install, made it): used only as
    /// exactly one of our bots' container (name `botmaker-<id>` and bot-id label `<id>`), never removed as an orphan.
    case unowned
    /// Our instance, another database's (another `botmaker.owner`): never touched.
    case otherOwner(String)
    /// Not ours at all: no `botmaker.managed=true`, or another instance.
    case foreign

    /// Whether a runtime may act on the container for `botId`: ours, or unowned and exactly that bot's (the caller
    /// has matched the name; the bot-id label, when there is one, must agree).
    public func allows(botId: String, labels: [String: String]) -> Bool {
        switch self {
        case .ours: true
        case .unowned: (labels[BotLabels.botId] ?? botId) == botId
        case .otherOwner, .foreign: false
        }
    }

    /// `owner` nil: an engine used without a database identity (the engine's own tests) treats every container
    /// of its instance as its own, as before identities existed.
    /// `adopted`: the container was taken over from another database (`--take-over`) and is ours.
    public static func of(_ labels: [String: String], instance: String, owner: String?, adopted: Bool = false) -> ContainerOwnership {
        guard labels[BotLabels.managed] == "true", (labels[BotLabels.instance] ?? BotLabels.defaultInstance) == instance else {
            return .foreign
        }
        guard let owner, !adopted else { return .ours }
        switch labels[BotLabels.owner] {
        case nil: return .unowned
        case owner?: return .ours
        case let other?: return .otherOwner(other)
        }
    }
}
