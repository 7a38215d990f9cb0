import Crypto
import Foundation

/// Everything that defines a bot container, in one canonical form. Its SHA-256 is the
/// `botmaker.spec-hash` label: a different hash means the container must be recreated.
public struct ContainerSpec: Sendable, Equatable, Codable {
    /// Bumped only when the meaning of the encoding changes (that recreates every container once).
    public static let encodingVersion = 1

    public var version: Int = ContainerSpec.encodingVersion
    public var image: String
    public var environment: [String]
    public var command: [String]?
    public var secretsMount: String
    public var restartPolicy: String
    public var networkMode: String
    public var initProcess: Bool

    public init(config: ContainerConfig) {
        image = config.image
        environment = config.environment
        command = config.command
        secretsMount = ContainerDefaults.secretsBind(config.secretsPath)
        restartPolicy = ContainerDefaults.restartPolicy
        networkMode = ContainerDefaults.networkMode
        initProcess = ContainerDefaults.initProcess
    }

    /// Canonical bytes: JSON with sorted keys, no whitespace, slashes unescaped, optionals as null.
    public var canonicalEncoding: Data {
        var parts: [String] = []
        func string(_ value: String) -> String {
            let data = try! JSONEncoder.canonical.encode(value)  // a String always encodes
            return String(decoding: data, as: UTF8.self)
        }
        func array(_ values: [String]) -> String { "[" + values.map(string).joined(separator: ",") + "]" }
        parts.append("\"command\":" + (command.map(array) ?? "null"))
        parts.append("\"environment\":" + array(environment))
        parts.append("\"image\":" + string(image))
        parts.append("\"initProcess\":" + (initProcess ? "true" : "false"))
        parts.append("\"networkMode\":" + string(networkMode))
        parts.append("\"restartPolicy\":" + string(restartPolicy))
        parts.append("\"secretsMount\":" + string(secretsMount))
        parts.append("\"version\":\(version)")
        return Data(("{" + parts.joined(separator: ",") + "}").utf8)
    }

    /// Lowercase hex SHA-256 of ``canonicalEncoding``.
    public var hash: String {
        SHA256.hash(data: canonicalEncoding).map { String(format: "%02x", $0) }.joined()
    }

    /// Names of the fields that differ, for a human cause such as "spec changed: image, environment".
    public func differences(from other: ContainerSpec) -> [String] {
        var fields: [String] = []
        if image != other.image { fields.append("image") }
        if environment != other.environment { fields.append("environment") }
        if command != other.command { fields.append("command") }
        if secretsMount != other.secretsMount { fields.append("secrets mount") }
        if restartPolicy != other.restartPolicy { fields.append("restart policy") }
        if networkMode != other.networkMode { fields.append("network") }
        if initProcess != other.initProcess { fields.append("init") }
        if version != other.version { fields.append("spec version") }
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
    public static let networkMode = "bridge"
    /// Docker's init (tini) as PID 1 forwards SIGTERM, so a stop takes milliseconds, not the grace period.
    public static let initProcess = true
    public static let secretsTarget = "/run/secrets"
    public static let namePrefix = "botmaker-"

    public static func secretsBind(_ hostPath: String) -> String { "\(hostPath):\(secretsTarget):ro" }
    public static func containerName(for botId: String) -> String { namePrefix + botId }
}

extension JSONEncoder {
    static var canonical: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
