import Foundation

/// The outcome of a finished child process.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs a program to completion with optional stdin; output goes through temp files, so any size is fine.
/// Waits through the termination handler: no cooperative thread is blocked meanwhile.
@discardableResult
public func runProcess(_ arguments: [String], stdin: String? = nil, environment: [String: String]? = nil,
                       currentDirectory: String? = nil) async throws -> ProcessOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let environment {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    }
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let outURL = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("out-\(UUID().uuidString)")
    let errURL = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("err-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let outHandle = try FileHandle(forWritingTo: outURL)
    let errHandle = try FileHandle(forWritingTo: errURL)
    process.standardOutput = outHandle
    process.standardError = errHandle
    let input = Pipe()
    process.standardInput = stdin == nil ? FileHandle.nullDevice : input
    let exit = ProcessExit(process)
    try process.run()
    if let stdin {
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try? input.fileHandleForWriting.close()
    }
    await exit.wait()
    try? outHandle.close()
    try? errHandle.close()
    return ProcessOutput(
        status: process.terminationStatus,
        stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
}

/// The end of a child process, awaited through its termination handler (set before `run()`).
public final class ProcessExit: Sendable {
    private let stream: AsyncStream<Int32>
    private let status = LockedBox<Int32?>(nil)

    public init(_ process: Process) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self, bufferingPolicy: .bufferingNewest(1))
        self.stream = stream
        process.terminationHandler = { [status] ended in
            status.update { $0 = ended.terminationStatus }
            continuation.yield(ended.terminationStatus)
            continuation.finish()
        }
    }

    /// The exit status, once the process has ended.
    @discardableResult
    public func wait() async -> Int32 {
        if let known = status.value { return known }
        for await code in stream { return code }
        return status.value ?? -1
    }

    /// The exit status if the process has ended.
    public var ended: Int32? { status.value }
}

/// The `botmaker` executable built beside the test bundle (override with `BOTMAKER_BIN`).
public var botmakerBinary: String {
    if let explicit = ProcessInfo.processInfo.environment["BOTMAKER_BIN"], !explicit.isEmpty { return explicit }
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = testBinary.deletingLastPathComponent()
    // On Linux the test runner is `<build>/debug/botmakerPackageTests.xctest`; on macOS a bundle inside it.
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("botmaker").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return "botmaker"
}

/// SHA-256 of a file's bytes (via `sha256sum`), to show a file was left unchanged.
public func fileChecksum(_ path: String) async throws -> String {
    let output = try await runProcess(["sha256sum", path])
    return String(output.stdout.prefix(64))
}
