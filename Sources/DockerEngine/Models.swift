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

    enum CodingKeys: String, CodingKey {
        case id = "Id", names = "Names", image = "Image", state = "State", status = "Status", labels = "Labels", created = "Created"
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
    public var hostConfig: HostConfig

    public struct HostConfig: Codable, Sendable, Equatable {
        public var binds: [String]?
        public var restartPolicy: RestartPolicy?
        public var networkMode: String?
        public var initProcess: Bool?

        public init(binds: [String]? = nil, restartPolicy: RestartPolicy? = nil, networkMode: String? = nil, initProcess: Bool? = nil) {
            self.binds = binds
            self.restartPolicy = restartPolicy
            self.networkMode = networkMode
            self.initProcess = initProcess
        }

        enum CodingKeys: String, CodingKey {
            case binds = "Binds", restartPolicy = "RestartPolicy", networkMode = "NetworkMode", initProcess = "Init"
        }
    }

    public struct RestartPolicy: Codable, Sendable, Equatable {
        public var name: String
        public init(name: String) { self.name = name }
        enum CodingKeys: String, CodingKey { case name = "Name" }
    }

    public init(image: String, cmd: [String]? = nil, env: [String] = [], labels: [String: String] = [:], hostConfig: HostConfig = .init()) {
        self.image = image
        self.cmd = cmd
        self.env = env
        self.labels = labels
        self.hostConfig = hostConfig
    }

    enum CodingKeys: String, CodingKey {
        case image = "Image", cmd = "Cmd", env = "Env", labels = "Labels", hostConfig = "HostConfig"
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

        enum CodingKeys: String, CodingKey {
            case status = "Status", running = "Running", restarting = "Restarting", exitCode = "ExitCode", error = "Error"
            case startedAt = "StartedAt", finishedAt = "FinishedAt"
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
        }

        public var startedDate: Date? { DockerTimestamp.parse(startedAt) }
        public var finishedDate: Date? { DockerTimestamp.parse(finishedAt) }
    }

    public struct Config: Decodable, Sendable, Equatable {
        public var image: String
        public var env: [String]
        public var cmd: [String]?
        public var labels: [String: String]

        enum CodingKeys: String, CodingKey { case image = "Image", env = "Env", cmd = "Cmd", labels = "Labels" }

        public init(image: String, env: [String] = [], cmd: [String]? = nil, labels: [String: String] = [:]) {
            self.image = image
            self.env = env
            self.cmd = cmd
            self.labels = labels
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            image = try c.decodeIfPresent(String.self, forKey: .image) ?? ""
            env = try c.decodeIfPresent([String].self, forKey: .env) ?? []
            cmd = try c.decodeIfPresent([String].self, forKey: .cmd)
            labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        }
    }

    enum CodingKeys: String, CodingKey {
        case id = "Id", name = "Name", restartCount = "RestartCount", state = "State", config = "Config", hostConfig = "HostConfig"
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
    }
}

/// `GET /images/{name}/json` (the fields we use).
public struct ImageInspect: Decodable, Sendable {
    public var id: String
    public var repoTags: [String]
    public var env: [String]

    enum CodingKeys: String, CodingKey { case id = "Id", repoTags = "RepoTags", config = "Config" }
    enum ConfigKeys: String, CodingKey { case env = "Env" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        repoTags = try c.decodeIfPresent([String].self, forKey: .repoTags) ?? []
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
