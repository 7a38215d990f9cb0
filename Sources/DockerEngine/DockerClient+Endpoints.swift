import Foundation
import NIOHTTP1

extension DockerClient {
    /// `GET /version`.
    public func version() async throws(DockerEngineError) -> VersionInfo {
        let response = try await send(.GET, "/version", operation: "version", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode(VersionInfo.self)
    }

    /// `GET /containers/json`. `filters` is Docker's filter map, e.g. `["label": ["botmaker.managed=true"]]`.
    public func listContainers(all: Bool = true, filters: [String: [String]] = [:]) async throws(DockerEngineError) -> [ContainerSummary] {
        var query = [("all", all ? "1" : "0")]
        if !filters.isEmpty { query.append(("filters", Self.filtersJSON(filters))) }
        let response = try await send(.GET, "/containers/json", query: query, operation: "containers.list", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode([ContainerSummary].self)
    }

    /// `POST /containers/create?name=…`; returns the new container's id.
    public func createContainer(name: String, _ request: ContainerCreateRequest) async throws(DockerEngineError) -> ContainerCreateResponse {
        let body: Data
        do { body = try JSONEncoder().encode(request) } catch {
            throw .decoding(operation: "containers.create", reason: "cannot encode request: \(error)")
        }
        let response = try await send(
            .POST, "/containers/create", query: [("name", name)], body: body,
            operation: "containers.create", deadline: deadlines.medium)
        try response.expectSuccess()
        return try response.decode(ContainerCreateResponse.self)
    }

    /// `POST /containers/{id}/start`. Returns false when it was already running (304).
    @discardableResult
    public func startContainer(_ id: String) async throws(DockerEngineError) -> Bool {
        let response = try await send(.POST, "/containers/\(Self.segment(id))/start", operation: "containers.start", deadline: deadlines.medium)
        try response.expectSuccess(allowing: [304])
        return response.status != 304
    }

    /// `POST /containers/{id}/stop?t=…`. Returns false when it was already stopped (304).
    @discardableResult
    public func stopContainer(_ id: String, timeoutSeconds: Int) async throws(DockerEngineError) -> Bool {
        let response = try await send(
            .POST, "/containers/\(Self.segment(id))/stop", query: [("t", String(timeoutSeconds))],
            operation: "containers.stop", deadline: Double(timeoutSeconds) + deadlines.stopMargin)
        try response.expectSuccess(allowing: [304])
        return response.status != 304
    }

    /// `POST /containers/{id}/restart?t=…`.
    public func restartContainer(_ id: String, timeoutSeconds: Int) async throws(DockerEngineError) {
        let response = try await send(
            .POST, "/containers/\(Self.segment(id))/restart", query: [("t", String(timeoutSeconds))],
            operation: "containers.restart", deadline: Double(timeoutSeconds) + deadlines.stopMargin)
        try response.expectSuccess()
    }

    /// `POST /containers/{id}/rename?name=…`: 409 when the name is taken.
    public func renameContainer(_ id: String, to name: String) async throws(DockerEngineError) {
        let response = try await send(
            .POST, "/containers/\(Self.segment(id))/rename", query: [("name", name)],
            operation: "containers.rename", deadline: deadlines.short)
        try response.expectSuccess()
    }

    /// `DELETE /containers/{id}`.
    public func removeContainer(_ id: String, force: Bool = false) async throws(DockerEngineError) {
        let response = try await send(
            .DELETE, "/containers/\(Self.segment(id))", query: [("force", force ? "1" : "0")],
            operation: "containers.remove", deadline: deadlines.medium)
        try response.expectSuccess()
    }

    /// `GET /containers/{id}/json`. Docker resolves names, then unique id prefixes: callers check `name`.
    public func inspectContainer(_ idOrName: String) async throws(DockerEngineError) -> ContainerInspect {
        let response = try await send(.GET, "/containers/\(Self.segment(idOrName))/json", operation: "containers.inspect", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode(ContainerInspect.self)
    }

    /// `GET /images/{name}/json`.
    public func inspectImage(_ name: String) async throws(DockerEngineError) -> ImageInspect {
        let response = try await send(.GET, "/images/\(Self.segment(name))/json", operation: "images.inspect", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode(ImageInspect.self)
    }

    /// `POST /volumes/create`. Docker answers an existing name with that volume, unchanged: callers inspect it.
    public func createVolume(name: String, labels: [String: String]) async throws(DockerEngineError) -> VolumeInspect {
        let body: Data
        do { body = try JSONEncoder().encode(["Name": AnyEncodable.string(name), "Labels": .labels(labels)]) } catch {
            throw .decoding(operation: "volumes.create", reason: "cannot encode request: \(error)")
        }
        let response = try await send(.POST, "/volumes/create", body: body, operation: "volumes.create", deadline: deadlines.medium)
        try response.expectSuccess()
        return try response.decode(VolumeInspect.self)
    }

    /// `GET /volumes/{name}`.
    public func inspectVolume(_ name: String) async throws(DockerEngineError) -> VolumeInspect {
        let response = try await send(.GET, "/volumes/\(Self.segment(name))", operation: "volumes.inspect", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode(VolumeInspect.self)
    }

    /// `DELETE /volumes/{name}`.
    public func removeVolume(_ name: String) async throws(DockerEngineError) {
        let response = try await send(.DELETE, "/volumes/\(Self.segment(name))", operation: "volumes.remove", deadline: deadlines.medium)
        try response.expectSuccess()
    }

    /// `POST /networks/create` (a bridge network unless `driver` says otherwise); a name already taken is a 409 (callers
    /// inspect it).
    public func createNetwork(name: String, driver: String = "bridge", options: [String: String], labels: [String: String]) async throws(DockerEngineError) {
        let body: Data
        do {
            body = try JSONEncoder().encode(["Name": AnyEncodable.string(name), "Driver": .string(driver), "CheckDuplicate": .bool(true),
                                             "Options": .labels(options), "Labels": .labels(labels)])
        } catch {
            throw .decoding(operation: "networks.create", reason: "cannot encode request: \(error)")
        }
        let response = try await send(.POST, "/networks/create", body: body, operation: "networks.create", deadline: deadlines.medium)
        try response.expectSuccess()
    }

    /// `GET /networks` with Docker's filters (the `name` filter matches substrings: callers compare names).
    public func listNetworks(filters: [String: [String]] = [:]) async throws(DockerEngineError) -> [NetworkInspect] {
        var query: [(String, String)] = []
        if !filters.isEmpty { query.append(("filters", Self.filtersJSON(filters))) }
        let response = try await send(.GET, "/networks", query: query, operation: "networks.list", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode([NetworkInspect].self)
    }

    /// `DELETE /networks/{id}`.
    public func removeNetwork(_ id: String) async throws(DockerEngineError) {
        let response = try await send(.DELETE, "/networks/\(Self.segment(id))", operation: "networks.remove", deadline: deadlines.medium)
        try response.expectSuccess()
    }

    /// `GET /networks/{name}`.
    public func inspectNetwork(_ name: String) async throws(DockerEngineError) -> NetworkInspect {
        let response = try await send(.GET, "/networks/\(Self.segment(name))", operation: "networks.inspect", deadline: deadlines.short)
        try response.expectSuccess()
        return try response.decode(NetworkInspect.self)
    }

    /// `GET /events` as an async sequence of decoded events. It has no idle timeout and ends when
    /// the consuming task is cancelled or the daemon closes the stream. `onConnect` runs once the
    /// daemon has accepted the subscription (the request is made on the first `next()`). With `until`, the daemon
    /// sends the past events up to then and ends the stream.
    public func events(filters: [String: [String]] = [:], since: Date? = nil, until: Date? = nil,
                       onConnect: (@Sendable () -> Void)? = nil) -> DockerEventStream {
        var query: [(String, String)] = []
        if !filters.isEmpty { query.append(("filters", Self.filtersJSON(filters))) }
        if let since { query.append(("since", String(format: "%.9f", since.timeIntervalSince1970))) }
        if let until { query.append(("until", String(format: "%.9f", until.timeIntervalSince1970))) }
        return DockerEventStream(client: self, query: query, onConnect: onConnect)
    }

    static func filtersJSON(_ filters: [String: [String]]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(filters)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// The shapes of value a volume- or network-create body has.
enum AnyEncodable: Encodable {
    case string(String)
    case bool(Bool)
    case labels([String: String])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .labels(let value): try container.encode(value)
        }
    }
}
