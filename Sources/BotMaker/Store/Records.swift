import Foundation
import GRDB

/// Desired states a bot row can declare.
public enum DesiredState: String, Sendable, Codable, CaseIterable {
    case running, stopped, absent
}

/// One `bots` row exactly as stored. Every field is read defensively: rows written by hand
/// with the `sqlite3` shell may hold anything the CHECK constraints let through.
public struct BotRow: Sendable, Equatable {
    public var id: String
    public var image: String?
    /// Raw JSON text.
    public var environment: String?
    /// Raw JSON text or nil.
    public var command: String?
    public var desiredState: String?
    public var restartRequestedAt: String?
    public var generation: Int64
    public var createdAt: String?
    public var updatedAt: String?
    /// The workload columns (migration 0007), raw text; nil when absent (an older schema) or NULL.
    public var mounts: String?
    public var ports: String?
    public var healthCmd: String?
    public var healthIntervalSeconds: String?
    public var user: String?
    public var memoryBytes: String?
    public var cpus: String?
    public var pidsLimit: String?
    public var security: String?
    public var network: String?
    public var pullPolicy: String?
    public var updateStrategy: String?

    public init(id: String, image: String?, environment: String? = "[]", command: String? = nil, desiredState: String? = "running",
                restartRequestedAt: String? = nil, generation: Int64 = 1, createdAt: String? = nil, updatedAt: String? = nil) {
        self.id = id
        self.image = image
        self.environment = environment
        self.command = command
        self.desiredState = desiredState
        self.restartRequestedAt = restartRequestedAt
        self.generation = generation
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// One pass over the row's columns (a lookup by name per field was a case-insensitive scan of every column,
    /// twice, and the row has twenty: most of a resync's CPU at 10,000 rows).
    init(row: Row) {
        func text(_ value: DatabaseValue) -> String? {
            switch value.storage {
            case .string(let s): return s
            case .int64(let i): return String(i)
            case .double(let d): return String(d)
            case .blob(let b): return String(decoding: b, as: UTF8.self)
            case .null: return nil
            }
        }
        id = ""
        generation = 0
        for (column, value) in row {
            switch column {
            case "id": id = text(value) ?? ""
            case "image": image = text(value)
            case "environment": environment = text(value)
            case "command": command = text(value)
            case "desired_state": desiredState = text(value)
            case "restart_requested_at": restartRequestedAt = text(value)
            case "generation": generation = Int64.fromDatabaseValue(value) ?? 0
            case "created_at": createdAt = text(value)
            case "updated_at": updatedAt = text(value)
            case "mounts": mounts = text(value)
            case "ports": ports = text(value)
            case "health_cmd": healthCmd = text(value)
            case "health_interval_seconds": healthIntervalSeconds = text(value)
            case "user": user = text(value)
            case "memory_bytes": memoryBytes = text(value)
            case "cpus": cpus = text(value)
            case "pids_limit": pidsLimit = text(value)
            case "security": security = text(value)
            case "network": network = text(value)
            case "pull_policy": pullPolicy = text(value)
            case "update_strategy": updateStrategy = text(value)
            case "bot_id": botIdColumn = text(value) ?? ""
            default: break
            }
        }
    }

    /// `bot_id` when the row came from `bot_status` (see ``Store/readSnapshot(_:)``).
    var botIdColumn: String = ""
}

/// A `bot_status` row: what the reconciler last observed and did for a bot.
public struct BotStatus: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "bot_status"

    public var botId: String
    public var observedGeneration: Int64?
    public var containerId: String?
    public var actualState: String?
    public var exitCode: Int?
    public var startedAt: Date?
    public var finishedAt: Date?
    public var specHash: String?
    public var appliedSpec: String?
    public var lastAction: String?
    public var lastActionAt: Date?
    public var restartObservedAt: String?
    public var lastErrorCode: String?
    public var lastErrorMessage: String?
    public var lastErrorAt: Date?
    public var failedGeneration: Int64?
    public var failureCount: Int = 0
    public var nextAttemptAt: Date?
    public var lastReconciledAt: Date?
    /// The action a worker is performing right now (`stopping`, `creating`, …), and since when.
    public var inFlightAction: String?
    public var inFlightSince: Date?
    /// What the bot waits for (no worker is held meanwhile), and until when if known.
    public var waitingFor: String?
    public var waitUntil: Date?
    /// `none`, `starting`, `healthy` or `unhealthy`, as the engine last showed it.
    public var health: String?
    /// The published ports, e.g. `127.0.0.1:19000->18789/tcp`, comma separated.
    public var publishedPorts: String?
    /// The image ID and registry digest the container was created from.
    public var imageId: String?
    public var imageDigest: String?
    /// JSON of the ``ContainerConfig`` the container was made from (secret digests, never values).
    public var appliedConfig: String?
    /// The switch-over in progress (`switching`, `confirming`, `rolling back`), since when, and what the previous
    /// container runs (restored by a rollback).
    public var updatePhase: String?
    public var updateStartedAt: Date?
    public var previousContainerId: String?
    public var previousConfig: String?
    public var previousImageId: String?
    /// The target (desired spec hash and image ID) of the last update that was rolled back: held until it changes.
    public var failedUpdateHash: String?
    public var failedUpdateImageId: String?
    public var rolledBackFromGeneration: Int64?
    /// Whether that rollback counts toward pausing the rollout of its image.
    public var rolloutFailure: Bool = false
    /// Swarm: the node (hostname) the bot's task runs on.
    public var node: String?

    public init(botId: String) {
        self.botId = botId
    }

    /// Records that the bot's name now holds container `id`. When that is the update's previous container, renamed back
    /// (a rollback finished after a crash), the status describes what it was made from again; another container's origin
    /// is not known.
    public mutating func noteContainer(_ id: String, imageId: String?) {
        guard containerId != id else { return }
        startedAt = nil
        finishedAt = nil
        if id == previousContainerId, let config = previousConfig {
            appliedConfig = config
            appliedSpec = (try? JSONDecoder().decode(ContainerConfig.self, from: Data(config.utf8))).map {
                String(decoding: $0.spec.canonicalEncoding, as: UTF8.self)
            }
            self.imageId = previousImageId ?? imageId
            imageDigest = nil
        } else {
            appliedSpec = nil
            appliedConfig = nil
            // What it runs is what a repair would come back on.
            if containerId != nil {
                self.imageId = imageId
                imageDigest = nil
            }
        }
        containerId = id
    }

    /// Forgets the switch-over in progress.
    public mutating func clearUpdate() {
        updatePhase = nil
        updateStartedAt = nil
        previousContainerId = nil
        previousConfig = nil
        previousImageId = nil
    }

    /// Forgets the failed update target (a new target was confirmed, or `bot retry`).
    public mutating func clearFailedUpdate() {
        failedUpdateHash = nil
        failedUpdateImageId = nil
        rolledBackFromGeneration = nil
        rolloutFailure = false
    }

    /// Forgets the last error and its backoff.
    public mutating func clearError() {
        lastErrorCode = nil
        lastErrorMessage = nil
        lastErrorAt = nil
        failedGeneration = nil
        failureCount = 0
        nextAttemptAt = nil
    }

    enum CodingKeys: String, CodingKey {
        case botId = "bot_id", observedGeneration = "observed_generation", containerId = "container_id"
        case actualState = "actual_state", exitCode = "exit_code", startedAt = "started_at", finishedAt = "finished_at"
        case specHash = "spec_hash", appliedSpec = "applied_spec", lastAction = "last_action", lastActionAt = "last_action_at"
        case restartObservedAt = "restart_observed_at", lastErrorCode = "last_error_code"
        case lastErrorMessage = "last_error_message", lastErrorAt = "last_error_at", failedGeneration = "failed_generation"
        case failureCount = "failure_count", nextAttemptAt = "next_attempt_at", lastReconciledAt = "last_reconciled_at"
        case inFlightAction = "in_flight_action", inFlightSince = "in_flight_since", waitingFor = "waiting_for", waitUntil = "wait_until"
        case health, publishedPorts = "published_ports", imageId = "image_id", imageDigest = "image_digest"
        case updatePhase = "update_phase", updateStartedAt = "update_started_at", previousContainerId = "previous_container_id"
        case appliedConfig = "applied_config", previousConfig = "previous_config", previousImageId = "previous_image_id", failedUpdateHash = "failed_update_hash"
        case failedUpdateImageId = "failed_update_image_id", rolledBackFromGeneration = "rolled_back_from_generation"
        case rolloutFailure = "rollout_failure", node
    }

    /// The fields a pass compares to decide whether a write is needed (times of the write itself excluded).
    public func sameObservation(as other: BotStatus) -> Bool {
        var a = self, b = other
        a.lastReconciledAt = nil
        b.lastReconciledAt = nil
        a.lastErrorAt = nil
        b.lastErrorAt = nil
        // Start/finish times come from inspect only; a list-only pass does not know them.
        a.startedAt = nil
        b.startedAt = nil
        a.finishedAt = nil
        b.finishedAt = nil
        return a == b
    }
}

/// A `bot_events` row: one action or error, append-only.
public struct BotEvent: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "bot_events"

    public var id: Int64?
    public var at: Date
    public var botId: String
    public var action: String
    /// `ok` or `error`.
    public var result: String
    public var errorCode: String?
    public var message: String?

    public init(at: Date, botId: String, action: String, result: String, errorCode: String? = nil, message: String? = nil) {
        self.at = at
        self.botId = botId
        self.action = action
        self.result = result
        self.errorCode = errorCode
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case id, at, botId = "bot_id", action, result, errorCode = "error_code", message
    }
}
