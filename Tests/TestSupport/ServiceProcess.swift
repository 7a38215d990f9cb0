import Foundation

/// A `botmaker run` (or other long-running botmaker command) child process with its log in a file.
public final class ServiceProcess: @unchecked Sendable {
    public let process = Process()
    public let logPath: String
    /// Where stderr goes when it is kept apart from the log (stdout).
    public let errorPath: String?
    private let exit: ProcessExit

    public init(command: [String] = ["run"], arguments: [String], logPath: String, errorPath: String? = nil,
                environment: [String: String] = [:]) throws {
        self.logPath = logPath
        self.errorPath = errorPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: botmakerBinary)
        process.arguments = command + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = log
        if let errorPath {
            _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        } else {
            process.standardError = log
        }
        process.standardInput = FileHandle.nullDevice
        exit = ProcessExit(process)
        try process.run()
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    public var isRunning: Bool { exit.ended == nil }
    public var pid: Int32 { process.processIdentifier }

    /// The metrics port from the "metrics server listening" log line.
    public func metricsPort(timeout: TimeInterval = 20) async throws -> Int {
        var port: Int?
        try await eventually(timeout: timeout) {
            guard let range = self.log.range(of: #"port=(\d+)"#, options: .regularExpression) else { return false }
            port = Int(self.log[range].dropFirst("port=".count))
            return port != nil && port != 0
        }
        return port!
    }

    /// Sends `signal` and waits for the exit; returns the exit status, or nil if it did not exit in time.
    public func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 30) async throws -> Int32? {
        kill(process.processIdentifier, signal)
        return await waitForExit(timeout: timeout)
    }

    /// Waits (through the termination handler) for the process to end on its own; nil if it has not within `timeout`.
    public func waitForExit(timeout: TimeInterval = 30) async -> Int32? {
        await exit.wait(timeout: timeout)
    }

    deinit {
        if exit.ended == nil { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Polls `condition` until it holds or `timeout` passes; throws in the latter case.
public func eventually(timeout: TimeInterval = 30, every interval: Duration = .milliseconds(100), _ what: String = "condition",
                       _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    if try await condition() { return }
    throw TestFailure("\(what) did not hold within \(timeout) s")
}

/// `GET http://127.0.0.1:<port><path>` with curl: (HTTP status, body).
public func httpGet(port: Int, path: String) async throws -> (status: Int, body: String) {
    let output = try await runProcess(["curl", "-s", "--max-time", "10", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
    var lines = output.stdout.components(separatedBy: "\n")
    let status = Int(lines.popLast() ?? "") ?? 0
    return (status, lines.joined(separator: "\n"))
}

/// A TCP port on 127.0.0.1 held open (listening) until `close()`: makes "address already in use" on demand.
public final class HeldPort: Sendable {
    public let port: Int
    private let descriptor: Int32

    /// `port` 0: any free port.
    public init(port requested: Int = 0) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(requested).bigEndian)
        var reuse: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else { _ = Glibc.close(fd); throw TestFailure("cannot bind a port") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        descriptor = fd
    }

    public func close() { _ = Glibc.close(descriptor) }
}
