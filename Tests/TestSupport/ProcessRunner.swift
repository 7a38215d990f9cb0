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

/// A child process that did not end within its time (or whose test was cancelled, e.g. by its time limit): it was
/// killed, and the error shows the command and what it had printed, so a hang names itself instead of stalling the run.
public struct ProcessTimedOut: Error, CustomStringConvertible {
    public var arguments: [String]
    public var seconds: TimeInterval
    public var output: ProcessOutput

    public var description: String {
        "`\(arguments.joined(separator: " "))` did not end within \(Int(seconds)) s (or its test was cancelled) and was killed;"
            + " its stdout:\n\(output.stdout.suffix(4_000))\nits stderr:\n\(output.stderr.suffix(4_000))"
    }
}

/// Runs a program to completion with optional stdin; output goes through temp files, so any size is fine.
/// Waits through the termination handler: no cooperative thread is blocked meanwhile. A program still running after
/// `timeout` seconds, or when the calling task is cancelled, is killed and `ProcessTimedOut` thrown.
@discardableResult
public func runProcess(_ arguments: [String], stdin: String? = nil, environment: [String: String]? = nil,
                       currentDirectory: String? = nil, timeout: TimeInterval = 300) async throws -> ProcessOutput {
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
    let status = await exit.wait(timeout: timeout)
    if status == nil {
        kill(process.processIdentifier, SIGKILL)
        await exit.waitUntilEnded()
    }
    try? outHandle.close()
    try? errHandle.close()
    let output = ProcessOutput(
        status: process.terminationStatus,
        stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    guard status != nil else { throw ProcessTimedOut(arguments: arguments, seconds: timeout, output: output) }
    return output
}

/// The end of a child process, awaited through its termination handler (set before `run()`); any number of waiters.
public final class ProcessExit: Sendable {
    private struct State {
        var status: Int32?
        var waiters: [UUID: CheckedContinuation<Int32?, Never>] = [:]
        var cancelled: Set<UUID> = []
    }

    private let state = LockedBox(State())

    public init(_ process: Process) {
        process.terminationHandler = { [state] ended in
            let code = ended.terminationStatus
            var waiters: [CheckedContinuation<Int32?, Never>] = []
            state.update { state in
                state.status = code
                waiters = Array(state.waiters.values)
                state.waiters = [:]
            }
            for waiter in waiters { waiter.resume(returning: code) }
        }
    }

    /// The exit status once the process has ended; -1 when the waiting task is cancelled first.
    @discardableResult
    public func wait() async -> Int32 {
        await waitOrCancel() ?? -1
    }

    /// The exit status, or nil when `timeout` seconds pass or the waiting task is cancelled first.
    public func wait(timeout: TimeInterval) async -> Int32? {
        await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await self.waitOrCancel() }
            group.addTask {
                try? await Task.sleep(for: .seconds(timeout))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? ended
        }
    }

    /// Waits for the end whatever happens (not cancellable): for a process that was just killed.
    @discardableResult
    public func waitUntilEnded() async -> Int32 {
        let id = UUID()
        return await withCheckedContinuation { (waiter: CheckedContinuation<Int32?, Never>) in
            var known: Int32?
            state.update { state in
                if let status = state.status { known = status } else { state.waiters[id] = waiter }
            }
            if let known { waiter.resume(returning: known) }
        } ?? -1
    }

    /// The exit status if the process has ended.
    public var ended: Int32? { state.value.status }

    private func waitOrCancel() async -> Int32? {
        let id = UUID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Int32?, Never>) in
                var now: Int32??
                state.update { state in
                    if let status = state.status { now = .some(status) } else if state.cancelled.remove(id) != nil { now = .some(nil) } else {
                        state.waiters[id] = waiter
                    }
                }
                if let now { waiter.resume(returning: now) }
            }
        } onCancel: {
            var waiter: CheckedContinuation<Int32?, Never>?
            // Marked only when the wait has not begun; the wait takes the mark away (unless the process ends first).
            state.update { state in
                if let registered = state.waiters.removeValue(forKey: id) { waiter = registered } else if state.status == nil { state.cancelled.insert(id) }
            }
            waiter?.resume(returning: nil)
        }
    }
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

extension Task where Failure == any Error {
    /// The task's value; cancelling the waiting task (a test's time limit) cancels this one too, which `value` does not.
    public var valueCancellingWithTheWaiter: Success {
        get async throws { try await withTaskCancellationHandler { try await value } onCancel: { cancel() } }
    }
}
