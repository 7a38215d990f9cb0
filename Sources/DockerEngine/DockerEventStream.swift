import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Docker's `/events` stream: newline-delimited JSON over a chunked response, split on `\n`
/// rather than on chunk boundaries. The request is made on the first `next()`.
public struct DockerEventStream: AsyncSequence, Sendable {
    public typealias Element = DockerEvent

    let client: DockerClient
    let query: [(String, String)]
    let onConnect: (@Sendable () -> Void)?

    public func makeAsyncIterator() -> Iterator {
        Iterator(client: client, query: query, onConnect: onConnect)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let client: DockerClient
        let query: [(String, String)]
        let onConnect: (@Sendable () -> Void)?
        private var body: HTTPClientResponse.Body.AsyncIterator?
        private var pending = Data()
        private var finished = false

        init(client: DockerClient, query: [(String, String)], onConnect: (@Sendable () -> Void)?) {
            self.client = client
            self.query = query
            self.onConnect = onConnect
        }

        public mutating func next() async throws -> DockerEvent? {
            while !finished {
                if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<newline]
                    pending.removeSubrange(pending.startIndex...newline)
                    if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { continue }
                    do {
                        return try JSONDecoder().decode(DockerEvent.self, from: Data(line))
                    } catch {
                        throw DockerEngineError.decoding(operation: "events", reason: "\(error)")
                    }
                }
                if Task.isCancelled { finished = true; return nil }
                if body == nil {
                    let response = try await client.open("/events", query: query, operation: "events")
                    try await DockerClient.expectStreaming(response, operation: "events")
                    body = response.body.makeAsyncIterator()
                    onConnect?()
                }
                do {
                    guard let chunk = try await body?.next() else {
                        finished = true
                        return nil
                    }
                    pending.append(contentsOf: chunk.readableBytesView)
                } catch {
                    finished = true
                    if Task.isCancelled || error is CancellationError { return nil }
                    throw DockerEngineError.unreachable(host: client.host.description, reason: "event stream broke: \(error)")
                }
            }
            return nil
        }
    }
}
