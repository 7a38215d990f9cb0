import Foundation
import GRDB

/// A full or partial bot spec to write; nil fields are left as they are (or take their defaults on insert).
public struct BotChanges: Sendable, Equatable {
    public var image: String?
    public var environment: [String]?
    /// `.some(nil)` resets the command to the image's own.
    public var command: [String]??
    public var desiredState: DesiredState?
    public var mounts: [StateMount]?
    /// Docker short syntax, e.g. `18789` or `127.0.0.1:19001:18789`.
    public var ports: [String]?
    /// `.some(nil)` goes back to the image's HEALTHCHECK.
    public var healthCommand: [String]??
    public var healthIntervalSeconds: Int??
    public var user: String??
    public var memoryBytes: Int64??
    public var cpus: Double??
    public var pidsLimit: Int?
    public var security: SecurityProfile?
    public var network: BotNetwork?
    public var pullPolicy: PullPolicy?
    public var updateStrategy: UpdateStrategy?

    public init(image: String? = nil, environment: [String]? = nil, command: [String]?? = nil, desiredState: DesiredState? = nil) {
        self.image = image
        self.environment = environment
        self.command = command
        self.desiredState = desiredState
    }

    var isEmpty: Bool { columns.isEmpty }

    /// The columns these changes write, with their values.
    var columns: [(String, DatabaseValue)] {
        var columns: [(String, DatabaseValue)] = []
        func add(_ name: String, _ value: (any DatabaseValueConvertible)?) { columns.append((name, value?.databaseValue ?? .null)) }
        if let image { add("image", image) }
        if let environment { add("environment", Store.json(environment)) }
        if let command { add("command", command.map(Store.json)) }
        if let desiredState { add("desired_state", desiredState.rawValue) }
        if let mounts { add("mounts", Store.json(mounts)) }
        if let ports { add("ports", Store.json(ports)) }
        if let healthCommand { add("health_cmd", healthCommand.map(Store.json)) }
        if let healthIntervalSeconds { add("health_interval_seconds", healthIntervalSeconds) }
        if let user { add("user", user) }
        if let memoryBytes { add("memory_bytes", memoryBytes) }
        if let cpus { add("cpus", cpus) }
        if let pidsLimit { add("pids_limit", pidsLimit) }
        if let security { add("security", security.rawValue) }
        if let network { add("network", network.rawValue) }
        if let pullPolicy { add("pull_policy", pullPolicy.rawValue) }
        if let updateStrategy { add("update_strategy", updateStrategy.rawValue) }
        return columns
    }
}

/// A bot row with its status, for listings.
public struct BotListing: Sendable {
    public var row: BotRow
    public var status: BotStatus?
}

extension Store {
    /// Inserts a bot. Input is validated first so errors are precise; the CHECKs still guard the table.
    public func addBot(id: String, changes: BotChanges) throws {
        guard let image = changes.image else { throw StoreError("a new bot needs --image") }
        try Self.validate(id: id, changes: changes)
        try write { db in
            if try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM bots WHERE id = ?)", arguments: [id]) == true {
                throw StoreError("bot \(id) already exists; use `botmaker bot set`")
            }
            _ = image
            let columns = changes.columns
            try db.execute(
                sql: "INSERT INTO bots (id, \(columns.map(\.0).joined(separator: ", "))) VALUES (?\(String(repeating: ", ?", count: columns.count)))",
                arguments: StatementArguments([id.databaseValue] + columns.map(\.1)))
            try Self.checkWorkload(db, id: id, changes: changes)
        }
    }

    /// Changes some fields of a bot. Returns false when nothing changed.
    @discardableResult
    public func updateBot(id: String, changes: BotChanges) throws -> Bool {
        guard !changes.isEmpty else { throw StoreError("nothing to change: give the fields to change (see `botmaker bot set --help`)") }
        try Self.validate(id: id, changes: changes)
        return try write { db in
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM bots WHERE id = ?)", arguments: [id]) == true else {
                throw StoreError("no bot \(id)")
            }
            let columns = changes.columns
            try db.execute(sql: "UPDATE bots SET \(columns.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?",
                           arguments: StatementArguments(columns.map(\.1) + [id.databaseValue]))
            try Self.checkWorkload(db, id: id, changes: changes)
            return db.changesCount > 0
        }
    }

    /// Deletes a bot row; its container is removed by the next pass. Returns false when there was none.
    @discardableResult
    public func deleteBot(id: String) throws -> Bool {
        try write { db in
            try db.execute(sql: "DELETE FROM bots WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    /// Asks for one restart by setting `restart_requested_at` to now.
    public func requestRestart(id: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE bots SET restart_requested_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = ?", arguments: [id])
            if db.changesCount == 0 { throw StoreError("no bot \(id)") }
        }
    }

    /// Every bot with its status, by id.
    public func listBots() throws -> [BotListing] {
        let snapshot = try snapshot()
        return snapshot.bots.map { BotListing(row: $0, status: snapshot.statuses[$0.id]) }
    }

    /// One bot row, or nil.
    public func bot(id: String) throws -> BotRow? {
        try read { db in try Row.fetchOne(db, sql: Self.botsQuery + " WHERE id = ?", arguments: [id]).map(BotRow.init(row:)) }
    }

    static func validate(id: String, changes: BotChanges) throws {
        if let problem = BotValidation.idProblem(id) { throw StoreError("invalid bot id \(id.debugDescription): \(problem)") }
        if let image = changes.image, let problem = BotValidation.imageProblem(image) { throw StoreError("invalid image: \(problem)") }
        if let environment = changes.environment, case .failure(let problem) = BotValidation.parseEnvironment(json(environment)) {
            throw StoreError("invalid environment: \(problem.message)")
        }
        if let command = changes.command.flatMap({ $0 }), case .failure(let problem) = BotValidation.parseCommand(json(command)) {
            throw StoreError("invalid command: \(problem.message)")
        }
        // The workload fields: the same rules the reconciler applies, on a row made of just these changes.
        var row = BotRow(id: id, image: changes.image ?? "x")
        row.mounts = changes.mounts.map(json)
        row.ports = changes.ports.map(json)
        row.healthCmd = changes.healthCommand.flatMap { $0 }.map(json)
        row.healthIntervalSeconds = changes.healthIntervalSeconds.flatMap { $0 }.map(String.init)
        if row.healthIntervalSeconds != nil && row.healthCmd == nil { row.healthCmd = "[\"true\"]" }
        row.user = changes.user.flatMap { $0 }
        row.memoryBytes = changes.memoryBytes.flatMap { $0 }.map(String.init)
        row.cpus = changes.cpus.flatMap { $0 }.map { String($0) }
        row.pidsLimit = changes.pidsLimit.map(String.init)
        var config = ContainerConfig(image: "x", secretsPath: "/")
        if let problem = BotValidation.applyWorkload(row, to: &config) { throw StoreError("invalid \(problem.message)") }
    }

    /// The workload fields of the row as written (these changes merged with what it had), checked inside the write:
    /// a change that is valid alone but not with the rest of the row (an interval without a health command) rolls back.
    static func checkWorkload(_ db: Database, id: String, changes: BotChanges) throws {
        let workload = ["mounts", "ports", "health_cmd", "health_interval_seconds", "user", "memory_bytes", "cpus", "pids_limit", "security", "network"]
        guard changes.columns.contains(where: { workload.contains($0.0) }),
              let row = try Row.fetchOne(db, sql: botsQuery + " WHERE id = ?", arguments: [id]).map(BotRow.init(row:)) else { return }
        var config = ContainerConfig(image: "x", secretsPath: "/")
        if let problem = BotValidation.applyWorkload(row, to: &config) { throw StoreError("invalid \(problem.message)") }
    }

    static func json<T: Encodable>(_ value: T) -> String {
        (try? JSONEncoder.canonical.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }
}
