import Foundation
import NIOHTTP1

/// Docker Swarm's objects (Engine API 1.41): services, tasks, nodes, secrets, configs. Only a manager answers them; a
/// worker says 503 "not a swarm manager".
extension DockerClient {
    /// `GET /info`.
    public func info() async throws(DockerEngineError) -> EngineInfo {
        let response = try await send(.GET, "/info", operation: "info", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode(EngineInfo.self)
    }

    /// `GET /services?status=true` with Docker's filters (`name` matches prefixes: callers compare names).
    public func listServices(filters: [String: [String]] = [:]) async throws(DockerEngineError) -> [SwarmService] {
        var query = [("status", "true")]
        if !filters.isEmpty { query.append(("filters", Self.filtersJSON(filters))) }
        let response = try await send(.GET, "/services", query: query, operation: "services.list", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode([SwarmService].self)
    }

    /// `GET /services/{id}`.
    public func inspectService(_ idOrName: String) async throws(DockerEngineError) -> SwarmService {
        let response = try await send(.GET, "/services/\(Self.segment(idOrName))", operation: "services.inspect", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode(SwarmService.self)
    }

    /// `POST /services/create`. `auth` is the `X-Registry-Auth` header (never logged); no `/distribution` call is made,
    /// so the nodes use the reference as given.
    public func createService(_ spec: JSONValue, auth: String?) async throws(DockerEngineError) -> ServiceCreateResponse {
        let response = try await send(.POST, "/services/create", body: try Self.encodeBody(spec, operation: "services.create"),
                                      headers: auth.map { [("X-Registry-Auth", $0)] } ?? [], operation: "services.create",
                                      deadline: deadlines.medium)
        try response.expectSuccess()
        return try response.decode(ServiceCreateResponse.self)
    }

    /// `POST /services/{id}/update?version=N` with the whole spec. A stale version is HTTP 500 "update out of sequence".
    public func updateService(_ id: String, version: Int, spec: JSONValue, auth: String?) async throws(DockerEngineError) {
        let response = try await send(.POST, "/services/\(Self.segment(id))/update", query: [("version", String(version))],
                                      body: try Self.encodeBody(spec, operation: "services.update"),
                                      headers: auth.map { [("X-Registry-Auth", $0)] } ?? [], operation: "services.update",
                                      deadline: deadlines.medium)
        try response.expectSuccess()
    }

    /// `DELETE /services/{id}`.
    public func removeService(_ id: String) async throws(DockerEngineError) {
        let response = try await send(.DELETE, "/services/\(Self.segment(id))", operation: "services.remove", deadline: deadlines.medium)
        try response.expectSuccess()
    }

    /// `GET /tasks` with Docker's filters (`service`, `desired-state`, `node`, `label`).
    public func listTasks(filters: [String: [String]]) async throws(DockerEngineError) -> [SwarmTask] {
        let response = try await send(.GET, "/tasks", query: [("filters", Self.filtersJSON(filters))], operation: "tasks.list",
                                      deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode([SwarmTask].self)
    }

    /// `GET /nodes`.
    public func listNodes() async throws(DockerEngineError) -> [SwarmNode] {
        let response = try await send(.GET, "/nodes", operation: "nodes.list", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode([SwarmNode].self)
    }

    /// `POST /secrets/create` or `POST /configs/create` (`kind` is `secrets` or `configs`); returns the id. A name that is
    /// taken is 409.
    public func createSwarmObject(_ kind: SwarmObjectKind, name: String, data: Data, labels: [String: String]) async throws(DockerEngineError) -> String {
        let body = JSONValue.object(["Name": .string(name), "Labels": .object(labels.mapValues(JSONValue.string)),
                                     "Data": .string(data.base64EncodedString())])
        let response = try await send(.POST, "/\(kind.rawValue)/create", body: try Self.encodeBody(body, operation: "\(kind.rawValue).create"),
                                      operation: "\(kind.rawValue).create", deadline: deadlines.medium)
        try response.expectSuccess()
        struct Created: Decodable { var ID: String }
        return try response.decode(Created.self).ID
    }

    /// `GET /secrets` or `GET /configs` with Docker's filters (`name`, `label`).
    public func listSwarmObjects(_ kind: SwarmObjectKind, filters: [String: [String]]) async throws(DockerEngineError) -> [SwarmObject] {
        let response = try await send(.GET, "/\(kind.rawValue)", query: [("filters", Self.filtersJSON(filters))],
                                      operation: "\(kind.rawValue).list", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode([SwarmObject].self)
    }

    /// `DELETE /secrets/{id}` or `DELETE /configs/{id}`; one still in use is refused.
    public func removeSwarmObject(_ kind: SwarmObjectKind, _ id: String) async throws(DockerEngineError) {
        let response = try await send(.DELETE, "/\(kind.rawValue)/\(Self.segment(id))", operation: "\(kind.rawValue).remove",
                                      deadline: deadlines.medium)
        try response.expectSuccess()
    }

    static func encodeBody(_ value: JSONValue, operation: String) throws(DockerEngineError) -> Data {
        do { return try JSONEncoder.canonicalBody.encode(value) } catch {
            throw .decoding(operation: operation, reason: "cannot encode request: \(error)")
        }
    }
}

/// Swarm's immutable, cluster-wide blobs.
public enum SwarmObjectKind: String, Sendable {
    case secrets, configs
}

extension JSONEncoder {
    static var canonicalBody: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
