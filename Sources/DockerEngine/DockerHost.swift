import Foundation

/// Where the Docker Engine listens, parsed from a `DOCKER_HOST`-style string.
public struct DockerHost: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        case unixSocket(path: String)
        case tcp(host: String, port: Int)
    }

    public static let defaultSocketPath = "/var/run/docker.sock"

    public let transport: Transport

    public init(transport: Transport) {
        self.transport = transport
    }

    /// Parses `unix:///path/to/docker.sock` or `tcp://host:port`; nil or empty means the default socket.
    public init(parsing value: String?) throws(DockerEngineError) {
        guard let value, !value.isEmpty else {
            self.init(transport: .unixSocket(path: Self.defaultSocketPath))
            return
        }
        if value.hasPrefix("unix://") {
            let path = String(value.dropFirst("unix://".count))
            guard path.hasPrefix("/") else {
                throw .invalidHost("DOCKER_HOST \(value): a unix socket path must be absolute (unix:///path)")
            }
            self.init(transport: .unixSocket(path: path))
        } else if value.hasPrefix("tcp://") {
            let rest = String(value.dropFirst("tcp://".count)).split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
            guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
                  (1...65535).contains(port), colon != rest.startIndex
            else {
                throw .invalidHost("DOCKER_HOST \(value): expected tcp://host:port")
            }
            var host = String(rest[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self.init(transport: .tcp(host: host, port: port))
        } else {
            throw .invalidHost("DOCKER_HOST \(value): only unix:// and tcp:// are supported")
        }
    }

    /// The host from the `DOCKER_HOST` environment variable, or the default socket.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(DockerEngineError) -> DockerHost {
        try DockerHost(parsing: environment["DOCKER_HOST"])
    }

    /// The base URL AsyncHTTPClient understands for this transport (no trailing slash).
    var baseURL: String {
        switch transport {
        case .unixSocket(let path):
            let encoded = path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? path
            return "http+unix://\(encoded)"
        case .tcp(let host, let port):
            return host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
        }
    }

    public var description: String {
        switch transport {
        case .unixSocket(let path): "unix://\(path)"
        case .tcp(let host, let port): host.contains(":") ? "tcp://[\(host)]:\(port)" : "tcp://\(host):\(port)"
        }
    }
}
