import Foundation

/// A stand-in Docker engine on a unix socket (a small Python server), for faults the real engine
/// cannot be made to show on demand: a slow answer, an error on list. `/_ping` always answers API 1.41.
public final class FakeEngine: Sendable {
    public enum Behaviour: String, Sendable {
        /// Every other request: headers after 0.7 s, the body 0.7 s later.
        case slowHeadThenSlowBody = "slow"
        /// Every other request: HTTP 500 with a Docker-style error body.
        case serverError = "error500"
    }

    public let socketPath: String
    private let process: Process
    private let exit: ProcessExit

    public init(_ behaviour: Behaviour, in dir: TemporaryDirectory) async throws {
        socketPath = dir.file("fake-\(uniqueSuffix()).sock")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script, socketPath, behaviour.rawValue]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        exit = ProcessExit(process)
        try process.run()
        let path = socketPath
        try await eventually(timeout: 20, every: .milliseconds(20), "fake engine listening") {
            FileManager.default.fileExists(atPath: path)
        }
    }

    public var host: String { "unix://\(socketPath)" }

    /// SIGKILL: a child of the test runner may inherit an ignored SIGTERM.
    public func stop() async {
        kill(process.processIdentifier, SIGKILL)
        await exit.wait()
    }

    static let script = #"""
        import socket, sys, threading, time
        path, mode = sys.argv[1], sys.argv[2]
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(16)

        def handle(conn):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return conn.close()
                data += chunk
            method, target = data.split(b" ")[0:2]
            if target.startswith(b"/_ping"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            elif mode == "slow":
                time.sleep(0.7)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
                time.sleep(0.7)
                conn.sendall(b"[]")
            else:
                body = b'{"message":"the daemon broke while listing"}'
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nConnection: close\r\n"
                             + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            conn.close()

        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
        """#
}
