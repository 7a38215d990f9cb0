import Foundation

/// A TCP proxy on 127.0.0.1 that forwards to a local port and sends what comes back in small, delayed chunks: a slow
/// registry on demand (a Python child process; killed with SIGKILL when stopped).
public final class SlowProxy: @unchecked Sendable {
    public let port: Int
    private let process = Process()
    private let countPath: String

    /// Bytes sent back to clients so far.
    public var bytesForwarded: Int {
        Int((try? String(contentsOfFile: countPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
    }

    public init(upstreamPort: Int, chunk: Int = 4096, delay: Double = 0.03, in dir: TemporaryDirectory) async throws {
        let held = try HeldPort()
        port = held.port
        held.close()
        countPath = dir.file("proxy-\(port).count")
        let script = """
            import socket, threading, time, sys
            total = [0]
            lock = threading.Lock()
            def pipe(src, dst, slow):
                try:
                    while True:
                        data = src.recv(\(chunk) if slow else 65536)
                        if not data:
                            break
                        dst.sendall(data)
                        if slow:
                            with lock:
                                total[0] += len(data)
                                open("\(countPath)", "w").write(str(total[0]))
                            time.sleep(\(delay))
                except OSError:
                    pass
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", \(port)))
            server.listen(64)
            print("ready", flush=True)
            while True:
                client, _ = server.accept()
                upstream = socket.create_connection(("127.0.0.1", \(upstreamPort)))
                threading.Thread(target=pipe, args=(client, upstream, False), daemon=True).start()
                threading.Thread(target=pipe, args=(upstream, client, True), daemon=True).start()
            """
        let scriptPath = dir.file("slow-proxy-\(port).py")
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [scriptPath]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let port = self.port
        try await eventually(timeout: 10, "the proxy listens") {
            try await runProcess(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/v2/"]).stdout == "401"
        }
    }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
