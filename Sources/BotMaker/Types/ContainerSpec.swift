import Crypto
import Foundation

/// Everything that defines a bot container, in one canonical form. Its SHA-256 is the
/// `botmaker.spec-hash` label: a different hash means the container must be recreated.
///
/// Encoding rules, so that a later botmaker recreates only what it must: JSON with sorted keys, and an optional
/// field at its neutral value (nil, or an empty list) is left out. A field added later with a neutral default
/// therefore leaves every existing hash as it was; ``encodingVersion`` changes only when the meaning of existing
/// fields changes, and a container made under an older version is then updated through the paced rollout
/// (`--max-parallel-updates`).
public struct ContainerSpec: Sendable, Equatable, Codable {
    /// 1: image, environment, command, secrets mount, restart policy, network, init.
    /// 2: adds state mounts, ports, health, user, limits, hardening, log rotation, isolated network, secret env.
    public static let encodingVersion = 2

    public var version: Int = ContainerSpec.encodingVersion
    public var image: String
    public var environment: [String]?
    /// `KEY=@secret:NAME#<keyed digest of the value>`.
    public var secretEnvironment: [String]?
    public var command: [String]?
    public var secretsMount: String
    /// `NAME#<keyed digest>` per secret file, for engines that copy them (Swarm).
    public var secretFiles: [String]?
    public var restartPolicy: String
    public var networkMode: String
    public var initProcess: Bool
    /// `<host path>:<target>`.
    public var mounts: [String]?
    /// The requested ports (`127.0.0.1:auto->18789/tcp`): an automatic host port is stable, so it is not part of the spec.
    public var ports: [String]?
    public var healthCommand: [String]?
    public var healthIntervalSeconds: Int?
    public var user: String?
    public var memoryBytes: Int64?
    public var nanoCPUs: Int64?
    public var pidsLimit: Int
    public var noNewPrivileges: Bool
    public var capDrop: [String]
    public var readOnlyRoot: Bool?
    public var tmpfs: [String: String]?
    public var logging: String

    public init(config: ContainerConfig) {
        image = config.image
        environment = config.environment.isEmpty ? nil : config.environment
        secretEnvironment = config.secretEnvironment.isEmpty ? nil : config.secretEnvironment.map {
            "\($0.key)=\(SecretEnvironment.prefix)\($0.secret)#\(config.secretDigests[$0.secret] ?? "unresolved")"
        }
        command = config.command
        secretsMount = ContainerDefaults.secretsBind(config.secretsPath)
        secretFiles = config.secretFileDigests.flatMap { $0.isEmpty ? nil : $0.map { "\($0.key)#\($0.value)" }.sorted() }
        restartPolicy = ContainerDefaults.restartPolicy
        networkMode = config.network.dockerName
        initProcess = ContainerDefaults.initProcess
        mounts = config.mounts.isEmpty ? nil : config.mounts.map { "\(config.hostPath(of: $0)):\($0.target)" }
        ports = config.ports.isEmpty ? nil : config.ports.map(\.description)
        healthCommand = config.health?.command
        healthIntervalSeconds = config.health?.intervalSeconds
        user = config.user
        memoryBytes = config.memoryBytes
        nanoCPUs = config.nanoCPUs
        pidsLimit = config.pidsLimit
        noNewPrivileges = true
        capDrop = config.security.droppedCapabilities
        readOnlyRoot = config.security.readOnlyRoot ? true : nil
        tmpfs = config.security.readOnlyRoot ? ["/tmp": SecurityProfile.tmpfsOptions] : nil
        logging = ContainerDefaults.logging
    }

    /// Canonical bytes: JSON with sorted keys, slashes unescaped, neutral optionals left out.
    public var canonicalEncoding: Data {
        try! JSONEncoder.canonical.encode(self)  // strings, numbers and booleans always encode
    }

    /// Lowercase hex SHA-256 of ``canonicalEncoding``.
    public var hash: String { Self.hash(ofCanonical: canonicalEncoding) }

    /// The hash of a spec stored as its canonical encoding (`bot_status.applied_spec`).
    public static func hash(ofCanonical encoding: some DataProtocol) -> String {
        SHA256.hash(data: Data(encoding)).map { String(format: "%02x", $0) }.joined()
    }

    public static func hash(ofCanonical text: String) -> String { hash(ofCanonical: Data(text.utf8)) }

    /// Names of the fields that differ, for a human cause such as "spec changed: image, environment".
    public func differences(from other: ContainerSpec) -> [String] {
        var fields: [String] = []
        func check<T: Equatable>(_ a: T, _ b: T, _ name: String) { if a != b { fields.append(name) } }
        check(image, other.image, "image")
        check(environment, other.environment, "environment")
        // The digest part changes when a secret is rotated.
        check(secretEnvironment, other.secretEnvironment, "environment from secrets")
        check(command, other.command, "command")
        check(secretsMount, other.secretsMount, "secrets mount")
        check(secretFiles, other.secretFiles, "secret files")
        check(restartPolicy, other.restartPolicy, "restart policy")
        check(networkMode, other.networkMode, "network")
        check(initProcess, other.initProcess, "init")
        check(mounts, other.mounts, "mounts")
        check(ports, other.ports, "ports")
        check(healthCommand, other.healthCommand, "health command")
        check(healthIntervalSeconds, other.healthIntervalSeconds, "health interval")
        check(user, other.user, "user")
        check(memoryBytes, other.memoryBytes, "memory")
        check(nanoCPUs, other.nanoCPUs, "cpus")
        check(pidsLimit, other.pidsLimit, "pids limit")
        if noNewPrivileges != other.noNewPrivileges || capDrop != other.capDrop || readOnlyRoot != other.readOnlyRoot || tmpfs != other.tmpfs {
            fields.append("security")
        }
        check(logging, other.logging, "logging")
        check(version, other.version, "spec version")
        return fields
    }
}

extension ContainerConfig {
    public var spec: ContainerSpec { ContainerSpec(config: self) }
    public var specHash: String { spec.hash }
}

/// Fixed parts of every bot container.
public enum ContainerDefaults {
    public static let restartPolicy = "unless-stopped"
    /// Docker's init (tini) as PID 1 forwards SIGTERM, so a stop takes milliseconds, not the grace period.
    public static let initProcess = true
    public static let secretsTarget = "/run/secrets"
    public static let namePrefix = "botmaker-"
    public static let pidsLimit = 512
    /// Log rotation, so a chatty bot cannot fill the disk.
    public static let logDriver = "json-file"
    public static let logOptions = ["max-size": "10m", "max-file": "3"]
    static let logging = "json-file max-file=3 max-size=10m"

    public static func secretsBind(_ hostPath: String) -> String { "\(hostPath):\(secretsTarget):ro" }
    public static func containerName(for botId: String) -> String { namePrefix + botId }
    /// What an update keeps the old container as until the new one is confirmed. A bot id is a DNS label, which
    /// cannot contain a dot, so this never collides with another bot's name.
    public static let previousSuffix = ".previous"
    public static func previousName(for botId: String) -> String { namePrefix + botId + previousSuffix }
    /// The bot id a container name belongs to (`botmaker-<id>` or `botmaker-<id>.previous`), or nil.
    public static func botId(inName name: String) -> String? {
        guard name.hasPrefix(namePrefix) else { return nil }
        let rest = name.dropFirst(namePrefix.count)
        return String(rest.hasSuffix(previousSuffix) ? rest.dropLast(previousSuffix.count) : rest)
    }
}

extension JSONEncoder {
    static var canonical: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
