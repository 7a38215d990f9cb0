import Foundation
import GRDB

extension Store {
    /// Swarm: the node (id) a bot with state is pinned to, or nil.
    public func pinnedNode(botId: String) async throws -> String? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT node_id FROM swarm_placements WHERE bot_id = ?", arguments: [botId])
        }
    }

    /// Pins the bot to `nodeId` unless it is pinned already; returns the pin in force.
    public func pin(botId: String, nodeId: String) async throws -> String {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO swarm_placements (bot_id, node_id, pinned_at) VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                ON CONFLICT (bot_id) DO NOTHING
                """, arguments: [botId, nodeId])
            return try String.fetchOne(db, sql: "SELECT node_id FROM swarm_placements WHERE bot_id = ?", arguments: [botId]) ?? nodeId
        }
    }

    /// Forgets where the bot's state lives (`bot purge`).
    public func forgetPlacement(botId: String) throws {
        try write { db in try db.execute(sql: "DELETE FROM swarm_placements WHERE bot_id = ?", arguments: [botId]) }
    }
}
