import Foundation
import GRDB

/// Host ports chosen for bots, and the host roots recorded at first use.
extension Store {
    /// The host ports for `ports` of `botId`: explicit ones as given; automatic ones from `range`, the same as last
    /// time when the bot had one (stable across recreates and restarts), else the lowest port that no bot holds or
    /// asks for and that `isFree` accepts. Allocations of ports the bot no longer publishes are released.
    public func publishedPorts(botId: String, ports: [PortMapping], range: ClosedRange<Int>,
                               isFree: @escaping @Sendable (PortMapping, Int) -> Bool) async throws -> [PublishedPort] {
        try await write { db in
            let wanted = Set(ports.filter { $0.hostPort == nil }.map { "\($0.containerKey)|\($0.hostIP)" })
            for row in try Row.fetchAll(db, sql: "SELECT container_port, host_ip FROM port_allocations WHERE bot_id = ?", arguments: [botId]) {
                let key: String = row["container_port"], ip: String = row["host_ip"]
                if !wanted.contains("\(key)|\(ip)") {
                    try db.execute(sql: "DELETE FROM port_allocations WHERE bot_id = ? AND container_port = ? AND host_ip = ?", arguments: [botId, key, ip])
                }
            }
            var published: [PublishedPort] = []
            var explicit: Set<String>?
            for mapping in ports {
                if let hostPort = mapping.hostPort {
                    published.append(PublishedPort(hostIP: mapping.hostIP, hostPort: hostPort, containerPort: mapping.containerPort, proto: mapping.proto))
                    continue
                }
                if let held = try Int.fetchOne(db, sql: "SELECT host_port FROM port_allocations WHERE bot_id = ? AND container_port = ? AND host_ip = ?",
                                               arguments: [botId, mapping.containerKey, mapping.hostIP]) {
                    published.append(PublishedPort(hostIP: mapping.hostIP, hostPort: held, containerPort: mapping.containerPort, proto: mapping.proto))
                    continue
                }
                let taken = Set(try Int.fetchAll(db, sql: """
                    SELECT host_port FROM port_allocations WHERE host_port BETWEEN ? AND ? AND substr(container_port, instr(container_port, '/') + 1) = ?
                    """, arguments: [range.lowerBound, range.upperBound, mapping.proto]))
                if explicit == nil { explicit = try Self.explicitHostPorts(db) }
                guard let port = range.first(where: { !taken.contains($0) && explicit?.contains("\($0)/\(mapping.proto)") != true && isFree(mapping, $0) }) else {
                    throw ContainerError(.portConflict, "no free host port left in \(range.lowerBound)-\(range.upperBound) for \(mapping.containerKey)", botId: botId)
                }
                try db.execute(sql: "INSERT INTO port_allocations (bot_id, container_port, host_ip, host_port) VALUES (?, ?, ?, ?)",
                               arguments: [botId, mapping.containerKey, mapping.hostIP, port])
                published.append(PublishedPort(hostIP: mapping.hostIP, hostPort: port, containerPort: mapping.containerPort, proto: mapping.proto))
            }
            return published
        }
    }

    /// Forgets the bot's automatic ports among `hostPorts` (something else holds them): the next create chooses anew.
    public func releaseAutomaticPorts(botId: String, hostPorts: Set<Int>) async throws {
        guard !hostPorts.isEmpty else { return }
        try await write { db in
            for port in hostPorts {
                try db.execute(sql: "DELETE FROM port_allocations WHERE bot_id = ? AND host_port = ?", arguments: [botId, port])
            }
        }
    }

    /// Sets what these bots wait for (a pull's progress), for `status`.
    public func recordWaiting(botIds: [String], waitingFor: String) async throws {
        guard !botIds.isEmpty else { return }
        try await write { db in
            // Only bots still waiting for a pull: a late progress line never marks a bot that went on.
            try db.execute(sql: """
                UPDATE bot_status SET waiting_for = ?
                WHERE in_flight_action IS NULL AND (waiting_for LIKE 'pulling%' OR waiting_for LIKE 'a pull slot%')
                  AND bot_id IN (\(Array(repeating: "?", count: botIds.count).joined(separator: ",")))
                """,
                           arguments: StatementArguments([waitingFor] + botIds))
        }
    }

    /// (id, image) of every running bot whose `pull_policy` is `always`.
    public func runningAlwaysPullBots() async throws -> [(id: String, image: String)] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT CAST(id AS BLOB) AS id, CAST(image AS BLOB) AS image FROM bots
                WHERE pull_policy = 'always' AND desired_state = 'running' ORDER BY id
                """).map { row in
                let bot = BotRow(row: row)
                return (bot.id, bot.image ?? "")
            }
        }
    }

    /// Records an image botmaker pulled (for `images prune`).
    public func recordPulledImage(_ reference: String, id: String) async throws {
        try await write { db in
            try db.execute(sql: "INSERT INTO pulled_images (reference, image_id) VALUES (?, ?) ON CONFLICT DO UPDATE SET pulled_at = excluded.pulled_at",
                           arguments: [reference, id])
        }
    }

    /// Every image botmaker pulled: (reference, image ID).
    public func pulledImages() throws -> [(reference: String, id: String)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT reference, image_id FROM pulled_images ORDER BY pulled_at").map { ($0["reference"], $0["image_id"]) }
        }
    }

    public func forgetPulledImage(_ reference: String, id: String) throws {
        try write { db in try db.execute(sql: "DELETE FROM pulled_images WHERE reference = ? AND image_id = ?", arguments: [reference, id]) }
    }

    /// `port/proto` of every host port some bot row asks for explicitly.
    static func explicitHostPorts(_ db: Database) throws -> Set<String> {
        var ports = Set<String>()
        for text in try String.fetchAll(db, sql: "SELECT ports FROM bots WHERE ports <> '[]' AND json_valid(ports)") {
            guard case .success(let mappings) = BotValidation.parsePorts(text) else { continue }
            for mapping in mappings { if let port = mapping.hostPort { ports.insert("\(port)/\(mapping.proto)") } }
        }
        return ports
    }

    /// The host roots this database recorded (`data`, `secrets`).
    public func recordedRoots() throws -> [String: String] {
        try read { db in
            Dictionary(try Row.fetchAll(db, sql: "SELECT kind, path FROM host_roots").map { ($0["kind"], $0["path"]) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// Records the roots (replacing what was recorded).
    public func recordRoots(_ roots: [String: String]) throws {
        try write { db in
            for (kind, path) in roots {
                try db.execute(sql: """
                    INSERT INTO host_roots (kind, path) VALUES (?, ?)
                    ON CONFLICT(kind) DO UPDATE SET path = excluded.path, recorded_at = excluded.recorded_at
                    """, arguments: [kind, path])
            }
        }
    }

    /// Marks every bot whose environment uses one of the bot's secrets as changed (a new revision), so a running
    /// service looks at it at once after `secrets set` or `secrets rm`.
    public func touchBotsUsingSecrets(botId: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE bots SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = ? AND environment LIKE '%@secret:%'",
                           arguments: [botId])
        }
    }
}

/// Host roots a run uses, checked against what the database recorded at first use.
public struct HostRoots: Sendable, Equatable {
    public var data: String
    public var secrets: String

    public init(data: String, secrets: String) {
        self.data = data
        self.secrets = secrets
    }

    var byKind: [String: String] { ["data": data, "secrets": secrets] }

    /// The roots must be apart: a data root holding the secrets root (or the reverse) would let a bot's state mount,
    /// or a purge, reach other bots' secrets.
    public var overlapProblem: String? {
        func real(_ path: String) -> String { SecretsManager.realPath(path) ?? (path as NSString).standardizingPath }
        let (d, s) = (real(data), real(secrets))
        if d == s || d.hasPrefix(s + "/") || s.hasPrefix(d + "/") {
            return "the data root \(data) and the secrets root \(secrets) overlap; give them separate directories (--data-dir, --secrets-dir)"
        }
        return nil
    }

    /// Nil when these roots are the recorded ones (recording any not yet recorded when `record` is set), else why
    /// the run must stop. `move` records these roots in place of the old ones.
    public func check(against store: Store, record: Bool, move: Bool) throws -> String? {
        if let problem = overlapProblem { return problem }
        let recorded = try store.recordedRoots()
        var problems: [String] = []
        for (kind, path) in byKind.sorted(by: { $0.key < $1.key }) {
            guard let old = recorded[kind], old != path else { continue }
            let option = kind == "data" ? "--data-dir (env BOTMAKER_DATA_DIR)" : "--secrets-dir (env BOTMAKER_SECRETS_DIR)"
            problems.append("this database's \(kind) root is \(old) (recorded at first use), not \(path): run from the same directory or "
                            + "pass \(option) \(old)")
        }
        if !problems.isEmpty && !move {
            return problems.joined(separator: "; ") + "; to use the new roots on purpose, move the directories there first and pass --move-roots"
        }
        let missing = byKind.filter { recorded[$0.key] == nil || move }
        if (record || move) && !missing.isEmpty { try store.recordRoots(missing) }
        return nil
    }
}

extension Store {
    /// The bots whose rolled-back update to `imageId` counts toward pausing that image's rollout.
    public func rolloutFailures(imageId: String) async throws -> [String] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT bot_id FROM bot_status WHERE rollout_failure = 1 AND failed_update_image_id = ? ORDER BY bot_id",
                                arguments: [imageId])
        }
    }

    /// `botmaker bot retry`: forgets the bot's failed update target, so its update is tried again; the row is touched so a
    /// running service looks at the bot. False when the bot has no row.
    public func retryUpdate(botId: String) throws -> Bool {
        try write { db in
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM bots WHERE id = ?)", arguments: [botId]) == true else { return false }
            try db.execute(sql: """
                UPDATE bot_status SET failed_update_hash = NULL, failed_update_image_id = NULL, rolled_back_from_generation = NULL,
                    rollout_failure = 0, next_attempt_at = NULL, failure_count = 0,
                    last_error_code = CASE WHEN last_error_code IN ('UPDATE_ROLLED_BACK', 'ROLLOUT_PAUSED') THEN NULL ELSE last_error_code END,
                    last_error_message = CASE WHEN last_error_code IN ('UPDATE_ROLLED_BACK', 'ROLLOUT_PAUSED') THEN NULL ELSE last_error_message END
                WHERE bot_id = ?
                """, arguments: [botId])
            try db.execute(sql: "UPDATE bots SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = ?", arguments: [botId])
            return true
        }
    }

    /// `botmaker rollout resume`: the rollbacks so far stop counting toward a pause (their bots stay on their old spec), and
    /// the paused bots are touched so a running service updates them. Returns the paused bots.
    public func resumeRollouts() throws -> [String] {
        try write { db in
            let paused = try String.fetchAll(db, sql: "SELECT bot_id FROM bot_status WHERE last_error_code = 'ROLLOUT_PAUSED' ORDER BY bot_id")
            try db.execute(sql: "UPDATE bot_status SET rollout_failure = 0 WHERE rollout_failure = 1")
            try db.execute(sql: """
                UPDATE bots SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
                WHERE id IN (SELECT bot_id FROM bot_status WHERE last_error_code = 'ROLLOUT_PAUSED')
                """)
            return paused
        }
    }
}
