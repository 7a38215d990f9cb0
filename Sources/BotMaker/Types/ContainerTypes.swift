import Foundation

/// Docker's container states, plus `unknown` for anything else (e.g. Podman's `stopped`).
public enum ContainerState: String, Sendable, Codable, CaseIterable {
    case created, running, exited, paused, restarting, removing, dead, unknown

    public init(docker value: String) {
        self = ContainerState(rawValue: value.lowercased()) ?? .unknown
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

    public init(id: String, state: ContainerState, running: Bool, exitCode: Int?, startedAt: Date?, finishedAt: Date?, restartCount: Int = 0, error: String? = nil) {
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

    /// `exitCode` defaults to the one in a human status such as `Exited (137) 5 minutes ago`.
    public init(id: String, name: String, botId: String, state: ContainerState, status: String, image: String = "",
                labels: [String: String] = [:], exitCode: Int? = nil) {
        self.id = id
        self.name = name
        self.botId = botId
        self.state = state
        self.status = status
        self.image = image
        self.labels = labels
        self.exitCode = exitCode ?? Self.exitCode(inStatus: status)
    }

    /// The `botmaker.spec-hash` label, if the container has one.
    public var specHash: String? { labels[BotLabels.specHash] }

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

/// What a bot container should be: image, environment and secrets directory.
public struct ContainerConfig: Sendable, Equatable, Codable {
    public var image: String
    /// `KEY=VALUE` entries, in order.
    public var environment: [String]
    /// Absolute host path mounted read-only at `/run/secrets`.
    public var secretsPath: String
    /// Overrides the image's CMD when set.
    public var command: [String]?

    public init(image: String, environment: [String] = [], secretsPath: String, command: [String]? = nil) {
        self.image = image
        self.environment = environment
        self.secretsPath = secretsPath
        self.command = command
    }
}

/// The labels botmaker puts on every container it creates.
public enum BotLabels {
    public static let managed = "botmaker.managed"
    public static let botId = "botmaker.bot-id"
    public static let specHash = "botmaker.spec-hash"
    /// Which botmaker (database) owns the container; absent means `default`.
    public static let instance = "botmaker.instance"
    public static let defaultInstance = "default"
}

/// What the engine shows: our containers, and names in our namespace held by containers we don't manage.
public struct ObservedContainers: Sendable, Equatable {
    public var managed: [ContainerInfo] = []
    /// Container name → id, for containers we don't own whose name starts with `botmaker-`.
    public var foreignNames: [String: String] = [:]

    public init(managed: [ContainerInfo] = [], foreignNames: [String: String] = [:]) {
        self.managed = managed
        self.foreignNames = foreignNames
    }
}
