import Foundation

/// A persistent state directory: `<data root>/<bot id>/<name>` on the host, mounted read-write at `target`.
public struct StateMount: Sendable, Equatable, Codable {
    public var name: String
    public var target: String

    public init(name: String, target: String) {
        self.name = name
        self.target = target
    }
}

/// One published port in Docker's short syntax: `[[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/PROTO]`.
/// A missing host port is chosen by botmaker from its port range; a missing host IP is 127.0.0.1.
public struct PortMapping: Sendable, Equatable, Codable, Hashable {
    public var hostIP: String
    public var hostPort: Int?
    public var containerPort: Int
    public var proto: String

    public init(hostIP: String = PortMapping.defaultHostIP, hostPort: Int? = nil, containerPort: Int, proto: String = "tcp") {
        self.hostIP = hostIP
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.proto = proto
    }

    public static let defaultHostIP = "127.0.0.1"

    /// `18789/tcp`: Docker's key for the container side.
    public var containerKey: String { "\(containerPort)/\(proto)" }

    /// `127.0.0.1:19000->18789/tcp`, or `127.0.0.1:auto->18789/tcp` before a host port is chosen.
    public var description: String {
        "\(hostIP):\(hostPort.map(String.init) ?? "auto")->\(containerKey)"
    }

    /// Parses the short syntax; the message names what is wrong (ports are not secret).
    public static func parse(_ text: String) -> Result<PortMapping, WorkloadProblem> {
        var rest = Substring(text)
        var proto = "tcp"
        if let slash = rest.lastIndex(of: "/") {
            proto = String(rest[rest.index(after: slash)...])
            rest = rest[..<slash]
            guard proto == "tcp" || proto == "udp" else { return .failure(.init("\"\(text)\": protocol must be tcp or udp")) }
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func port(_ value: String, _ what: String) -> Result<Int, WorkloadProblem> {
            guard !value.isEmpty, value.count <= 5, value.allSatisfy(\.isASCIIDigit), let number = Int(value), (1...65535).contains(number) else {
                return .failure(.init("\"\(text)\": \(what) must be a number from 1 to 65535"))
            }
            return .success(number)
        }
        var mapping = PortMapping(containerPort: 0, proto: proto)
        switch parts.count {
        case 1:
            break
        case 2:
            if !parts[0].isEmpty {
                switch port(parts[0], "host port") {
                case .success(let p): mapping.hostPort = p
                case .failure(let problem): return .failure(problem)
                }
            }
        case 3:
            guard isIPv4(parts[0]) else { return .failure(.init("\"\(text)\": host IP must be an IPv4 address such as 127.0.0.1")) }
            mapping.hostIP = parts[0]
            if !parts[1].isEmpty {
                switch port(parts[1], "host port") {
                case .success(let p): mapping.hostPort = p
                case .failure(let problem): return .failure(problem)
                }
            }
        default:
            return .failure(.init("\"\(text)\": must be CONTAINER_PORT, HOST_PORT:CONTAINER_PORT or HOST_IP:HOST_PORT:CONTAINER_PORT"))
        }
        switch port(parts[parts.count - 1], "container port") {
        case .success(let p): mapping.containerPort = p
        case .failure(let problem): return .failure(problem)
        }
        return .success(mapping)
    }

    static func isIPv4(_ text: String) -> Bool {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy {
            $0.count <= 3 && !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) && Int($0)! <= 255 && ($0.count == 1 || $0.first != "0")
        }
    }
}

/// A host port bound to a container port, as created.
public struct PublishedPort: Sendable, Equatable, Codable {
    public var hostIP: String
    public var hostPort: Int
    public var containerPort: Int
    public var proto: String

    public init(hostIP: String, hostPort: Int, containerPort: Int, proto: String) {
        self.hostIP = hostIP
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.proto = proto
    }

    public var containerKey: String { "\(containerPort)/\(proto)" }
    /// `127.0.0.1:19000->18789/tcp`, as `docker ps` shows it.
    public var description: String { "\(hostIP):\(hostPort)->\(containerKey)" }
}

/// A per-bot health check replacing the image's `HEALTHCHECK`.
public struct HealthOverride: Sendable, Equatable, Codable {
    /// Exec form, run inside the container.
    public var command: [String]
    public var intervalSeconds: Int?

    public init(command: [String], intervalSeconds: Int? = nil) {
        self.command = command
        self.intervalSeconds = intervalSeconds
    }
}

/// How tightly a bot container is locked down. Both drop `NET_RAW` and `NET_ADMIN` and set `no-new-privileges`;
/// `strict` also drops every capability and makes the root filesystem read-only (with a small tmpfs at `/tmp`).
public enum SecurityProfile: String, Sendable, Codable, CaseIterable {
    case standard, strict

    public var droppedCapabilities: [String] { self == .strict ? ["ALL"] : ["NET_ADMIN", "NET_RAW"] }
    public var readOnlyRoot: Bool { self == .strict }
    /// Docker's tmpfs options for `/tmp` under `strict`.
    public static let tmpfsOptions = "rw,noexec,nosuid,size=64m"
}

/// Which network a bot joins.
public enum BotNetwork: String, Sendable, Codable, CaseIterable {
    /// botmaker's own bridge with inter-container traffic disabled: bots cannot reach each other.
    case botmaker
    /// Docker's default bridge.
    case bridge

    /// The engine's network name.
    public var dockerName: String { self == .botmaker ? Self.isolatedNetworkName : "bridge" }
    public static let isolatedNetworkName = "botmaker"
}

/// An environment entry whose value comes from a secret file: `KEY=@secret:NAME`.
public struct SecretEnvironment: Sendable, Equatable, Codable {
    public var key: String
    public var secret: String

    public init(key: String, secret: String) {
        self.key = key
        self.secret = secret
    }

    public static let prefix = "@secret:"
    /// `@@secret:` stands for a literal `@secret:`.
    public static let escapedPrefix = "@@secret:"
}

/// Why a workload field is invalid; never quotes a value that could be secret.
public struct WorkloadProblem: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
