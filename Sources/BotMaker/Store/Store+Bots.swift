import Foundation
import GRDB

/// A full or partial bot spec to write; nil fields are left as they are (or take their defaults on insert).
public struct BotChanges: Sendable, Equatable {
    public var image: String?
    public var environment: [String]?
    /// `.some(nil)` resets the command to the image's own.
    public var command: [String]??
    public var desiredState: DesiredState?

    public init(image: String? = nil, environment: [String]? = nil, command: [String]?? = nil, desiredState: DesiredState? = nil) {
        self.image = image
        self.environment = environment
        self.command = command
        self.desiredState = desiredState
    }

    var isEmpty: Bool { image == nil && environment == nil && command == nil && desiredState == nil }
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
            try db.execute(
                sql: "INSERT INTO bots (id, image, environment, command, desired_state) VALUES (?, ?, ?, ?, ?)",
                arguments: [id, image, Self.json(changes.environment ?? []), changes.command.flatMap { $0 }.map(Self.json),
                            (changes.desiredState ?? .running).rawValue])
        }
    }

    /// Changes some fields of a bot. Returns false when nothing changed.
    @discardableResult
    public func updateBot(id: String, changes: BotChanges) throws -> Bool {
        guard !changes.isEmpty else { throw StoreError("nothing to change: give --image, --env, --clear-env, --command or --state") }
        try Self.validate(id: id, changes: changes)
        return try write { db in
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM bots WHERE id = ?)", arguments: [id]) == true else {
                throw StoreError("no bot \(id)")
            }
            var sets: [String] = []
            var arguments: StatementArguments = []
            if let image = changes.image { sets.append("image = ?"); arguments += [image] }
            if let environment = changes.environment { sets.append("environment = ?"); arguments += [Self.json(environment)] }
            if let command = changes.command { sets.append("command = ?"); arguments += [command.map(Self.json)] }
            if let state = changes.desiredState { sets.append("desired_state = ?"); arguments += [state.rawValue] }
            arguments += [id]
            try db.execute(sql: "UPDATE bots SET \(sets.joined(separator: ", ")) WHERE id = ?", arguments: arguments)
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
    }

    static func json(_ strings: [String]) -> String {
        (try? JSONEncoder.canonical.encode(strings)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }
}
