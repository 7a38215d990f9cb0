import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One line of a pull's progress stream (`POST /images/create`).
public struct PullMessage: Decodable, Sendable, Equatable {
    public var status: String?
    /// The layer the line is about.
    public var id: String?
    public var current: Int64?
    public var total: Int64?
    public var error: String?

    enum CodingKeys: String, CodingKey { case status, id, progressDetail, error, errorDetail }
    enum DetailKeys: String, CodingKey { case current, total }
    enum ErrorKeys: String, CodingKey { case message }

    public init(status: String? = nil, id: String? = nil, current: Int64? = nil, total: Int64? = nil, error: String? = nil) {
        self.status = status
        self.id = id
        self.current = current
        self.total = total
        self.error = error
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        status = try c.decodeIfPresent(String.self, forKey: .status)
        id = try c.decodeIfPresent(String.self, forKey: .id)
        if let detail = try? c.nestedContainer(keyedBy: DetailKeys.self, forKey: .progressDetail) {
            current = try detail.decodeIfPresent(Int64.self, forKey: .current)
            total = try detail.decodeIfPresent(Int64.self, forKey: .total)
        }
        error = try c.decodeIfPresent(String.self, forKey: .error)
        if error == nil, let detail = try? c.nestedContainer(keyedBy: ErrorKeys.self, forKey: .errorDetail) {
            error = try detail.decodeIfPresent(String.self, forKey: .message)
        }
    }
}

/// `GET /distribution/{name}/json`: what the registry says a reference points to, without pulling.
public struct DistributionInspect: Decodable, Sendable, Equatable {
    public var digest: String

    enum CodingKeys: String, CodingKey { case descriptor = "Descriptor" }
    enum DescriptorKeys: String, CodingKey { case digest }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        digest = try c.nestedContainer(keyedBy: DescriptorKeys.self, forKey: .descriptor).decode(String.self, forKey: .digest)
    }
}

extension DockerClient {
    /// `POST /images/create?fromImage=…&tag=…`: pulls, reading the progress stream to its end (an error can arrive inside
    /// a 200 answer). `auth` is the `X-Registry-Auth` header value, never logged. `progress` sees every line.
    public func pullImage(fromImage: String, tag: String, auth: String?, timeoutSeconds: Double,
                          progress: @escaping @Sendable (PullMessage) -> Void) async throws(DockerEngineError) {
        let operation = "images.pull"
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeoutSeconds * 1e9))
        let response = try await open("/images/create", method: .POST, query: [("fromImage", fromImage), ("tag", tag)],
                                      headers: auth.map { [("X-Registry-Auth", $0)] } ?? [], operation: operation, deadline: deadline)
        try await Self.expectStreaming(response, operation: operation)
        // The request's deadline covers only the answer's head (dockerd sends it with the first line): the stream is
        // bounded by what is left of the timeout.
        let remaining = max(0.001, Double((deadline - .now()).nanoseconds) / 1e9)
        let failure: String?
        do {
            failure = try await withDeadline(seconds: remaining) {
                var pending = Data()
                var failure: String?
                for try await chunk in response.body {
                    pending.append(contentsOf: chunk.readableBytesView)
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = Data(pending[pending.startIndex..<newline])
                        pending.removeSubrange(pending.startIndex...newline)
                        guard let message = try? JSONDecoder().decode(PullMessage.self, from: line) else { continue }
                        if let error = message.error { failure = error }
                        progress(message)
                    }
                }
                return failure
            }
        } catch {
            throw mapTransportError(error, operation: operation, seconds: timeoutSeconds)
        }
        if let failure { throw .inStream(message: failure, operation: operation) }
    }

    /// `GET /distribution/{name}/json`: the registry's digest for a reference (no pull).
    public func distributionInspect(_ reference: String, auth: String?) async throws(DockerEngineError) -> DistributionInspect {
        let response = try await send(.GET, "/distribution/\(Self.segment(reference))/json", headers: auth.map { [("X-Registry-Auth", $0)] } ?? [],
                                      operation: "distribution.inspect", deadline: deadlines.medium)
        try response.expectSuccess()
        return try response.decode(DistributionInspect.self)
    }

    /// `DELETE /images/{id}` (not forced: an image a container uses is refused with 409).
    public func removeImage(_ id: String) async throws(DockerEngineError) {
        let response = try await send(.DELETE, "/images/\(Self.segment(id))", operation: "images.remove", deadline: deadlines.medium)
        try response.expectSuccess()
    }
}
