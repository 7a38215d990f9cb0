import Foundation

/// A `botmaker run` child process with its log in a file.
public final class ServiceProcess: @unchecked Sendable {
    public let process = Process()
    public let logPath: String

    public init(arguments: [String], logPath: String, environment: [String: String] = [:]) throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: botmakerBinary)
        process.arguments = ["run"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    public var isRunning: Bool { process.isRunning }
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
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
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
public func httpGet(port: Int, path: String) throws -> (status: Int, body: String) {
    let output = try runProcess(["curl", "-s", "--max-time", "10", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
    var lines = output.stdout.components(separatedBy: "\n")
    let status = Int(lines.popLast() ?? "") ?? 0
    return (status, lines.joined(separator: "\n"))
}
