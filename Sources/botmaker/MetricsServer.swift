import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// The optional HTTP endpoint (`--metrics-addr`): `/metrics` (Prometheus text), `/healthz` (the
/// process answers) and `/readyz` (the database reads and Docker answers).
public enum MetricsServer {
    /// Whether the service can do its job, with a one-line reason.
    public typealias Readiness = @Sendable () async -> (ready: Bool, detail: String)

    public static func make(host: String, port: Int, registry: PrometheusCollectorRegistry, readiness: @escaping Readiness,
                            logger: Logger) -> any Service {
        let router = Router()
        router.get("metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: registry.emitToString())))
        }
        router.get("healthz") { _, _ -> String in "ok\n" }
        router.get("readyz") { _, _ -> Response in
            let (ready, detail) = await readiness()
            return Response(status: ready ? .ok : .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: detail + "\n")))
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "botmaker"),
            onServerRunning: { channel in
                logger.notice("metrics server listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
                                                                    "port": "\(channel.localAddress?.port ?? 0)"])
            },
            logger: logger)
    }

    /// Parses `HOST:PORT` (`[::1]:9090` for IPv6); nil when malformed.
    public static func parseAddress(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}
