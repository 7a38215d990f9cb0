import Foundation

/// Any JSON value, for specs that are read, changed in one place and written back whole (a service update must send
/// the whole spec: decoding it into a fixed shape would drop fields this client does not know).
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            // Integers (versions, nanoseconds, byte counts) must not come back as `1e+09`.
            if value == value.rounded(), abs(value) < 9.0e18 { try container.encode(Int64(value)) } else { try container.encode(value) }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The member at `key` of an object (nil for anything else).
    public subscript(key: String) -> JSONValue? {
        get { if case .object(let members) = self { members[key] } else { nil } }
        set {
            guard case .object(var members) = self else { return }
            members[key] = newValue
            self = .object(members)
        }
    }

    /// The value at a path of object keys, creating objects on the way when set.
    public subscript(path path: [String]) -> JSONValue? {
        get { path.reduce(Optional(self)) { $0?[$1] } }
        set {
            guard let first = path.first else { return }
            if path.count == 1 { self[first] = newValue; return }
            var child = self[first] ?? .object([:])
            child[path: Array(path.dropFirst())] = newValue
            self[first] = child
        }
    }

    public var intValue: Int? { if case .number(let value) = self { Int(value) } else { nil } }
    public var stringValue: String? { if case .string(let value) = self { value } else { nil } }
}

/// `GET /info`, only the parts about Swarm.
public struct EngineInfo: Decodable, Sendable {
    public var swarm: SwarmState

    public struct SwarmState: Decodable, Sendable {
        /// `inactive`, `pending`, `active`, `error`, `locked`.
        public var localNodeState: String
        /// True on a manager.
        public var controlAvailable: Bool?

        enum CodingKeys: String, CodingKey { case localNodeState = "LocalNodeState", controlAvailable = "ControlAvailable" }
    }

    enum CodingKeys: String, CodingKey { case swarm = "Swarm" }
}

/// One Swarm object's version (`?version=N` of an update).
public struct ObjectVersion: Codable, Sendable, Equatable {
    public var index: Int
    enum CodingKeys: String, CodingKey { case index = "Index" }
}

/// A service as `GET /services` and `GET /services/{id}` give it: the parts botmaker reads, and the whole spec as JSON
/// (for an update that changes one field).
public struct SwarmService: Decodable, Sendable {
    public var id: String
    public var version: ObjectVersion
    public var updatedAt: String?
    public var spec: JSONValue
    public var previousSpec: JSONValue?
    /// With `?status=true` only.
    public var serviceStatus: Status?
    public var updateStatus: UpdateStatus?

    public struct Status: Decodable, Sendable, Equatable {
        public var runningTasks: Int
        public var desiredTasks: Int
        enum CodingKeys: String, CodingKey { case runningTasks = "RunningTasks", desiredTasks = "DesiredTasks" }
    }

    public struct UpdateStatus: Decodable, Sendable, Equatable {
        /// `updating`, `paused`, `completed`, `rollback_started`, `rollback_paused`, `rollback_completed`.
        public var state: String?
        public var message: String?
        enum CodingKeys: String, CodingKey { case state = "State", message = "Message" }
    }

    enum CodingKeys: String, CodingKey {
        case id = "ID", version = "Version", updatedAt = "UpdatedAt", spec = "Spec"
        case previousSpec = "PreviousSpec", serviceStatus = "ServiceStatus", updateStatus = "UpdateStatus"
    }

    public var name: String { spec["Name"]?.stringValue ?? "" }
    public var labels: [String: String] { Self.strings(spec["Labels"]) }
    /// `Mode.Replicated.Replicas` (nil for a global service).
    public var replicas: Int? { spec[path: ["Mode", "Replicated", "Replicas"]]?.intValue }
    public var image: String { spec[path: ["TaskTemplate", "ContainerSpec", "Image"]]?.stringValue ?? "" }
    public var constraints: [String] {
        guard case .array(let values)? = spec[path: ["TaskTemplate", "Placement", "Constraints"]] else { return [] }
        return values.compactMap(\.stringValue)
    }

    static func strings(_ value: JSONValue?) -> [String: String] {
        guard case .object(let members)? = value else { return [:] }
        return members.compactMapValues(\.stringValue)
    }
}

/// `POST /services/create`'s answer.
public struct ServiceCreateResponse: Decodable, Sendable {
    public var id: String
    public var warnings: [String]?
    enum CodingKeys: String, CodingKey { case id = "ID", warnings = "Warnings" }
}

/// A task as `GET /tasks` gives it.
public struct SwarmTask: Decodable, Sendable, Equatable {
    public var id: String
    public var serviceID: String
    public var nodeID: String?
    /// `running` or `shutdown`.
    public var desiredState: String
    public var status: Status
    public var updatedAt: String?

    public struct Status: Decodable, Sendable, Equatable {
        /// `new`, `pending`, `assigned`, `accepted`, `preparing`, `ready`, `starting`, `running`, `complete`, `shutdown`,
        /// `failed`, `rejected`, `remove`, `orphaned`.
        public var state: String
        public var message: String?
        public var err: String?
        public var timestamp: String?
        public var containerStatus: ContainerStatus?

        public struct ContainerStatus: Decodable, Sendable, Equatable {
            public var containerID: String?
            public var exitCode: Int?
            enum CodingKeys: String, CodingKey { case containerID = "ContainerID", exitCode = "ExitCode" }
        }

        enum CodingKeys: String, CodingKey {
            case state = "State", message = "Message", err = "Err", timestamp = "Timestamp", containerStatus = "ContainerStatus"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id = "ID", serviceID = "ServiceID", nodeID = "NodeID", desiredState = "DesiredState", status = "Status", updatedAt = "UpdatedAt"
    }
}

/// A node as `GET /nodes` gives it.
public struct SwarmNode: Decodable, Sendable, Equatable {
    public var id: String
    public var hostname: String
    /// `unknown`, `down`, `ready`, `disconnected`.
    public var state: String
    /// `active`, `pause`, `drain`.
    public var availability: String

    enum CodingKeys: String, CodingKey { case id = "ID", description = "Description", status = "Status", spec = "Spec" }
    struct Description: Decodable { var hostname: String?; enum CodingKeys: String, CodingKey { case hostname = "Hostname" } }
    struct Status: Decodable {
        var state: String?
        enum CodingKeys: String, CodingKey { case state = "State" }
    }
    struct Spec: Decodable {
        var availability: String?
        enum CodingKeys: String, CodingKey { case availability = "Availability" }
    }

    public init(id: String, hostname: String, state: String, availability: String = "active") {
        self.id = id
        self.hostname = hostname
        self.state = state
        self.availability = availability
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        hostname = (try? container.decode(Description.self, forKey: .description))?.hostname ?? ""
        state = (try? container.decode(Status.self, forKey: .status))?.state ?? "unknown"
        availability = (try? container.decode(Spec.self, forKey: .spec))?.availability ?? "active"
    }
}

/// A secret or config as `GET /secrets` and `GET /configs` give it (never its data).
public struct SwarmObject: Decodable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var labels: [String: String]
    public var createdAt: String?

    enum CodingKeys: String, CodingKey { case id = "ID", spec = "Spec", createdAt = "CreatedAt" }
    struct Spec: Decodable {
        var name: String
        var labels: [String: String]?
        enum CodingKeys: String, CodingKey { case name = "Name", labels = "Labels" }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        let spec = try container.decode(Spec.self, forKey: .spec)
        name = spec.name
        labels = spec.labels ?? [:]
        createdAt = try container.decodeIfPresent(String.self, forKey: .createdAt)
    }
}
