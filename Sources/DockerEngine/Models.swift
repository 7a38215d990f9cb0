import Foundation

/// One entry of `GET /containers/json`.
public struct ContainerSummary: Decodable, Sendable, Equatable {
    public var id: String
    public var names: [String]
    public var image: String
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    public var state: String
    /// Human status, e.g. `Exited (137) 5 minutes ago`.
    public var status: String
    public var labels: [String: String]
    /// Unix seconds.
    public var created: Int64
    /// The image's ID (`sha256:…`) the container was made from.
    public var imageId: String = ""

    enum CodingKeys: String, CodingKey {
        case id = "Id", names = "Names", image = "Image", state = "State", status = "Status", labels = "Labels", created = "Created"
        case imageId = "ImageID"
    }

    public init(id: String, names: [String], image: String, state: String, status: String, labels: [String: String], created: Int64) {
        self.id = id
        self.names = names
        self.image = image
        self.state = state
        self.status = status
        self.labels = labels
        self.created = created
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        names = try c.decodeIfPresent([String].self, forKey: .names) ?? []
        image = try c.decodeIfPresent(String.self, forKey: .image) ?? ""
        state = try c.decodeIfPresent(String.self, forKey: .state) ?? ""
        status = try c.decodeIfPresent(String.self, forKey: .status) ?? ""
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        created = try c.decodeIfPresent(Int64.self, forKey: .created) ?? 0
        imageId = try c.decodeIfPresent(String.self, forKey: .imageId) ?? ""
    }

    /// The first name without Docker's leading `/`.
    public var name: String {
        let first = names.first ?? ""
        return first.hasPrefix("/") ? String(first.dropFirst()) : first
    }
}

/// The body of `POST /containers/create` (the fields we use).
public struct ContainerCreateRequest: Encodable, Sendable, Equatable {
    public var image: String
    public var cmd: [String]?
    public var env: [String]
    public var labels: [String: String]
    public var user: String?
    public var exposedPorts: [String: EmptyObject]?
    public var healthcheck: Healthcheck?
    public var hostConfig: HostConfig

    /// `{}` in JSON (Docker's set-like maps, e.g. `ExposedPorts`).
    public struct EmptyObject: Codable, Sendable, Equatable {
        public init() {}
    }

    /// `Config.Healthcheck`; durations in nanoseconds.
    public struct Healthcheck: Codable, Sendable, Equatable {
        public var test: [String]
        public var interval: Int64?
        public var timeout: Int64?
        public var retries: Int?
        public init(test: [String], interval: Int64? = nil, timeout: Int64? = nil, retries: Int? = nil) {
            self.test = test
            self.interval = interval
            self.timeout = timeout
            self.retries = retries
        }
        enum CodingKeys: String, CodingKey { case test = "Test", interval = "Interval", timeout = "Timeout", retries = "Retries" }
    }

    public struct HostConfig: Codable, Sendable, Equatable {
        public var binds: [String]?
        public var mounts: [Mount]?
        public var portBindings: [String: [PortBinding]]?
        public var restartPolicy: RestartPolicy?
        public var networkMode: String?
        public var initProcess: Bool?
        public var memory: Int64?
        public var nanoCpus: Int64?
        public var pidsLimit: Int?
        public var securityOpt: [String]?
        public var capDrop: [String]?
        public var readonlyRootfs: Bool?
        public var tmpfs: [String: String]?
        public var logConfig: LogConfig?

        public init(binds: [String]? = nil, mounts: [Mount]? = nil, portBindings: [String: [PortBinding]]? = nil,
                    restartPolicy: RestartPolicy? = nil, networkMode: String? = nil, initProcess: Bool? = nil, memory: Int64? = nil,
                    nanoCpus: Int64? = nil, pidsLimit: Int? = nil, securityOpt: [String]? = nil, capDrop: [String]? = nil,
                    readonlyRootfs: Bool? = nil, tmpfs: [String: String]? = nil, logConfig: LogConfig? = nil) {
            self.binds = binds
            self.mounts = mounts
            self.portBindings = portBindings
            self.restartPolicy = restartPolicy
            self.networkMode = networkMode
            self.initProcess = initProcess
            self.memory = memory
            self.nanoCpus = nanoCpus
            self.pidsLimit = pidsLimit
            self.securityOpt = securityOpt
            self.capDrop = capDrop
            self.readonlyRootfs = readonlyRootfs
            self.tmpfs = tmpfs
            self.logConfig = logConfig
        }

        enum CodingKeys: String, CodingKey {
            case binds = "Binds", mounts = "Mounts", portBindings = "PortBindings", restartPolicy = "RestartPolicy"
            case networkMode = "NetworkMode", initProcess = "Init", memory = "Memory", nanoCpus = "NanoCpus", pidsLimit = "PidsLimit"
            case securityOpt = "SecurityOpt", capDrop = "CapDrop", readonlyRootfs = "ReadonlyRootfs", tmpfs = "Tmpfs", logConfig = "LogConfig"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            binds = try c.decodeIfPresent([String].self, forKey: .binds)
            mounts = try c.decodeIfPresent([Mount].self, forKey: .mounts)
            // Podman reads back an exposed port without a binding as `"18789/tcp": null`.
            portBindings = try c.decodeIfPresent([String: [PortBinding]?].self, forKey: .portBindings)?.compactMapValues { $0 }
            restartPolicy = try c.decodeIfPresent(RestartPolicy.self, forKey: .restartPolicy)
            networkMode = try c.decodeIfPresent(String.self, forKey: .networkMode)
            initProcess = try c.decodeIfPresent(Bool.self, forKey: .initProcess)
            memory = try c.decodeIfPresent(Int64.self, forKey: .memory)
            nanoCpus = try c.decodeIfPresent(Int64.self, forKey: .nanoCpus)
            pidsLimit = try c.decodeIfPresent(Int.self, forKey: .pidsLimit)
            securityOpt = try c.decodeIfPresent([String].self, forKey: .securityOpt)
            capDrop = try c.decodeIfPresent([String].self, forKey: .capDrop)
            readonlyRootfs = try c.decodeIfPresent(Bool.self, forKey: .readonlyRootfs)
            tmpfs = try c.decodeIfPresent([String: String].self, forKey: .tmpfs)
            logConfig = try c.decodeIfPresent(LogConfig.self, forKey: .logConfig)
        }
    }

    /// `HostConfig.Mounts[]` (bind mounts only).
    public struct Mount: Codable, Sendable, Equatable {
        public var type: String
        public var source: String
        public var target: String
        public var readOnly: Bool?
        public init(type: String = "bind", source: String, target: String, readOnly: Bool? = nil) {
            self.type = type
            self.source = source
            self.target = target
            self.readOnly = readOnly
        }
        enum CodingKeys: String, CodingKey { case type = "Type", source = "Source", target = "Target", readOnly = "ReadOnly" }
    }

    public struct PortBinding: Codable, Sendable, Equatable {
        public var hostIp: String
        public var hostPort: String
        public init(hostIp: String, hostPort: String) {
            self.hostIp = hostIp
            self.hostPort = hostPort
        }
        enum CodingKeys: String, CodingKey { case hostIp = "HostIp", hostPort = "HostPort" }
    }

    public struct LogConfig: Codable, Sendable, Equatable {
        public var type: String
        public var config: [String: String]
        public init(type: String, config: [String: String]) {
            self.type = type
            self.config = config
        }
        enum CodingKeys: String, CodingKey { case type = "Type", config = "Config" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decodeIfPresent(String.self, forKey: .type) ?? ""
            // Podman reads back `"Config": null`.
            config = try c.decodeIfPresent([String: String].self, forKey: .config) ?? [:]
        }
    }

    public struct RestartPolicy: Codable, Sendable, Equatable {
        public var name: String
        public init(name: String) { self.name = name }
        enum CodingKeys: String, CodingKey { case name = "Name" }
    }

    public init(image: String, cmd: [String]? = nil, env: [String] = [], labels: [String: String] = [:], user: String? = nil,
                exposedPorts: [String: EmptyObject]? = nil, healthcheck: Healthcheck? = nil, hostConfig: HostConfig = .init()) {
        self.image = image
        self.cmd = cmd
        self.env = env
        self.labels = labels
        self.user = user
        self.exposedPorts = exposedPorts
        self.healthcheck = healthcheck
        self.hostConfig = hostConfig
    }

    enum CodingKeys: String, CodingKey {
        case image = "Image", cmd = "Cmd", env = "Env", labels = "Labels", user = "User", exposedPorts = "ExposedPorts"
        case healthcheck = "Healthcheck", hostConfig = "HostConfig"
    }
}

/// The answer of `POST /containers/create`.
public struct ContainerCreateResponse: Decodable, Sendable {
    public var id: String
    public var warnings: [String]
    enum CodingKeys: String, CodingKey { case id = "Id", warnings = "Warnings" }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        warnings = try c.decodeIfPresent([String].self, forKey: .warnings) ?? []
    }
}

/// `GET /containers/{id}/json` (the fields we use).
public struct ContainerInspect: Decodable, Sendable, Equatable {
    public var id: String
    /// With Docker's leading `/`.
    public var name: String
    public var restartCount: Int
    public var state: State
    public var config: Config
    public var hostConfig: ContainerCreateRequest.HostConfig

    public struct State: Decodable, Sendable, Equatable {
        public var status: String
        public var running: Bool
        public var restarting: Bool
        public var exitCode: Int
        public var error: String
        public var startedAt: String
        public var finishedAt: String
        /// Absent for a container without a health check.
        public var health: Health?

        /// `State.Health`: `starting`, `healthy` or `unhealthy`, and the last checks' results.
        public struct Health: Decodable, Sendable, Equatable {
            public var status: String
            public var failingStreak: Int
            public var log: [Check]

            public struct Check: Decodable, Sendable, Equatable {
                public var exitCode: Int
                public var output: String
                enum CodingKeys: String, CodingKey { case exitCode = "ExitCode", output = "Output" }
                public init(exitCode: Int, output: String) {
                    self.exitCode = exitCode
                    self.output = output
                }
                public init(from decoder: any Decoder) throws {
                    let c = try decoder.container(keyedBy: CodingKeys.self)
                    exitCode = try c.decodeIfPresent(Int.self, forKey: .exitCode) ?? 0
                    output = try c.decodeIfPresent(String.self, forKey: .output) ?? ""
                }
            }

            enum CodingKeys: String, CodingKey { case status = "Status", failingStreak = "FailingStreak", log = "Log" }
            public init(status: String, failingStreak: Int = 0, log: [Check] = []) {
                self.status = status
                self.failingStreak = failingStreak
                self.log = log
            }
            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                status = try c.decodeIfPresent(String.self, forKey: .status) ?? ""
                failingStreak = try c.decodeIfPresent(Int.self, forKey: .failingStreak) ?? 0
                log = try c.decodeIfPresent([Check].self, forKey: .log) ?? []
            }
        }

        enum CodingKeys: String, CodingKey {
            case status = "Status", running = "Running", restarting = "Restarting", exitCode = "ExitCode", error = "Error"
            case startedAt = "StartedAt", finishedAt = "FinishedAt", health = "Health"
        }

        public init(status: String, running: Bool, restarting: Bool = false, exitCode: Int = 0, error: String = "", startedAt: String = "", finishedAt: String = "") {
            self.status = status
            self.running = running
            self.restarting = restarting
            self.exitCode = exitCode
            self.error = error
            self.startedAt = startedAt
            self.finishedAt = finishedAt
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            status = try c.decodeIfPresent(String.self, forKey: .status) ?? ""
            running = try c.decodeIfPresent(Bool.self, forKey: .running) ?? false
            restarting = try c.decodeIfPresent(Bool.self, forKey: .restarting) ?? false
            exitCode = try c.decodeIfPresent(Int.self, forKey: .exitCode) ?? 0
            error = try c.decodeIfPresent(String.self, forKey: .error) ?? ""
            startedAt = try c.decodeIfPresent(String.self, forKey: .startedAt) ?? ""
            finishedAt = try c.decodeIfPresent(String.self, forKey: .finishedAt) ?? ""
            health = try c.decodeIfPresent(Health.self, forKey: .health)
        }

        public var startedDate: Date? { DockerTimestamp.parse(startedAt) }
        public var finishedDate: Date? { DockerTimestamp.parse(finishedAt) }
    }

    public struct Config: Decodable, Sendable, Equatable {
        public var image: String
        public var env: [String]
        public var cmd: [String]?
        public var labels: [String: String]
        public var user: String

        enum CodingKeys: String, CodingKey { case image = "Image", env = "Env", cmd = "Cmd", labels = "Labels", user = "User" }

        public init(image: String, env: [String] = [], cmd: [String]? = nil, labels: [String: String] = [:]) {
            self.image = image
            self.env = env
            self.cmd = cmd
            self.labels = labels
            self.user = ""
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            user = try c.decodeIfPresent(String.self, forKey: .user) ?? ""
            image = try c.decodeIfPresent(String.self, forKey: .image) ?? ""
            env = try c.decodeIfPresent([String].self, forKey: .env) ?? []
            cmd = try c.decodeIfPresent([String].self, forKey: .cmd)
            labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        }
    }

    /// The image's ID (`sha256:…`) the container was made from.
    public var imageId: String = ""

    enum CodingKeys: String, CodingKey {
        case id = "Id", name = "Name", restartCount = "RestartCount", state = "State", config = "Config", hostConfig = "HostConfig"
        case imageId = "Image"
    }

    public init(id: String, name: String, restartCount: Int = 0, state: State, config: Config, hostConfig: ContainerCreateRequest.HostConfig = .init()) {
        self.id = id
        self.name = name
        self.restartCount = restartCount
        self.state = state
        self.config = config
        self.hostConfig = hostConfig
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        restartCount = try c.decodeIfPresent(Int.self, forKey: .restartCount) ?? 0
        state = try c.decode(State.self, forKey: .state)
        config = try c.decodeIfPresent(Config.self, forKey: .config) ?? Config(image: "")
        hostConfig = try c.decodeIfPresent(ContainerCreateRequest.HostConfig.self, forKey: .hostConfig) ?? .init()
        imageId = try c.decodeIfPresent(String.self, forKey: .imageId) ?? ""
    }
}

/// `GET /images/{name}/json` (the fields we use).
public struct ImageInspect: Decodable, Sendable {
    public var id: String
    public var repoTags: [String]
    /// `host/repo@sha256:…` for each registry the image was pulled from or pushed to.
    public var repoDigests: [String]
    public var env: [String]

    enum CodingKeys: String, CodingKey { case id = "Id", repoTags = "RepoTags", repoDigests = "RepoDigests", config = "Config" }
    enum ConfigKeys: String, CodingKey { case env = "Env" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        repoTags = try c.decodeIfPresent([String].self, forKey: .repoTags) ?? []
        repoDigests = try c.decodeIfPresent([String].self, forKey: .repoDigests) ?? []
        if let config = try? c.nestedContainer(keyedBy: ConfigKeys.self, forKey: .config) {
            env = try config.decodeIfPresent([String].self, forKey: .env) ?? []
        } else {
            env = []
        }
    }
}

/// `GET /version` (the fields we use).
public struct VersionInfo: Decodable, Sendable {
    public var version: String
    public var apiVersion: String
    public var minAPIVersion: String?
    public var os: String?
    public var arch: String?

    enum CodingKeys: String, CodingKey {
        case version = "Version", apiVersion = "ApiVersion", minAPIVersion = "MinAPIVersion", os = "Os", arch = "Arch"
    }
}

/// The engine behind the Docker API, from the `Server` header of `/_ping`: `Docker/20.10.24+dfsg1 (linux)` or
/// `Libpod/4.3.1 (linux)` (Podman). Cheaper than `/version`, which Podman answers slowly under load.
public struct EngineProduct: Sendable, Equatable, CustomStringConvertible {
    public var isPodman: Bool
    public var version: String
    public var apiVersion: APIVersion

    public init(server: String?, apiVersion: APIVersion) {
        let product = (server ?? "").split(separator: " ").first.map(String.init) ?? ""
        let parts = product.split(separator: "/", maxSplits: 1).map(String.init)
        isPodman = parts.first == "Libpod"
        version = parts.count > 1 ? parts[1] : "?"
        self.apiVersion = apiVersion
    }

    /// `Docker 20.10.24+dfsg1 (API 1.41)` or `Podman 4.3.1 (API 1.41)`.
    public var description: String { "\(isPodman ? "Podman" : "Docker") \(version) (API \(apiVersion))" }
}

/// One message of the `/events` stream.
public struct DockerEvent: Decodable, Sendable, Equatable {
    public var type: String
    public var action: String
    public var actorID: String
    public var attributes: [String: String]
    /// Nanoseconds since the epoch.
    public var timeNano: Int64

    enum CodingKeys: String, CodingKey { case type = "Type", action = "Action", actor = "Actor", timeNano, time }
    enum ActorKeys: String, CodingKey { case id = "ID", attributes = "Attributes" }

    public init(type: String, action: String, actorID: String, attributes: [String: String], timeNano: Int64) {
        self.type = type
        self.action = action
        self.actorID = actorID
        self.attributes = attributes
        self.timeNano = timeNano
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? ""
        action = try c.decodeIfPresent(String.self, forKey: .action) ?? ""
        if let actor = try? c.nestedContainer(keyedBy: ActorKeys.self, forKey: .actor) {
            actorID = try actor.decodeIfPresent(String.self, forKey: .id) ?? ""
            attributes = try actor.decodeIfPresent([String: String].self, forKey: .attributes) ?? [:]
        } else {
            actorID = ""
            attributes = [:]
        }
        if let nano = try c.decodeIfPresent(Int64.self, forKey: .timeNano) {
            timeNano = nano
        } else {
            timeNano = (try c.decodeIfPresent(Int64.self, forKey: .time) ?? 0) * 1_000_000_000
        }
    }

    /// The base action: Docker reports e.g. `exec_start: sh` or `health_status: healthy`.
    public var baseAction: String {
        String(action.prefix(while: { $0 != ":" }))
    }
}

/// The `message` field of a Docker error body.
struct DockerErrorBody: Decodable {
    var message: String
}

/// `GET /volumes/{name}` (the fields we use).
public struct VolumeInspect: Decodable, Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    public var createdAt: String

    enum CodingKeys: String, CodingKey { case name = "Name", labels = "Labels", createdAt = "CreatedAt" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        createdAt = try c.decodeIfPresent(String.self, forKey: .createdAt) ?? ""
    }
}

/// `GET /networks/{id}` (the fields we use).
public struct NetworkInspect: Decodable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var labels: [String: String]
    public var options: [String: String]
    public var driver: String
    public var created: String?

    enum CodingKeys: String, CodingKey { case id = "Id", name = "Name", labels = "Labels", options = "Options", driver = "Driver", created = "Created" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id) ?? ""
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        options = try c.decodeIfPresent([String: String].self, forKey: .options) ?? [:]
        driver = try c.decodeIfPresent(String.self, forKey: .driver) ?? ""
        created = try c.decodeIfPresent(String.self, forKey: .created)
    }
}
