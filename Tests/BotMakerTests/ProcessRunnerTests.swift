import Foundation
import Testing
import TestSupport

/// The test helpers' child processes: one that does not end is killed and named, never left to stall a CI run.
@Suite(.timeLimit(.minutes(1))) struct ProcessRunnerTests {
    @Test func aChildThatDoesNotEndIsKilledAndNamedWithItsOutput() async throws {
        do {
            try await runProcess(["sh", "-c", "echo started; exec sleep 600"], timeout: 1)
            Issue.record("a child sleeping 600 s returned")
        } catch let error as ProcessTimedOut {
            #expect(error.description.contains("sh -c echo started; exec sleep 600"), "\(error)")
            #expect(error.output.stdout == "started\n")
            #expect(error.output.status == SIGKILL + 128 || error.output.status == SIGKILL, "killed: \(error.output.status)")
        }
    }

    @Test func cancellingTheWaiterKillsTheChild() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let pidFile = dir.file("pid")
        let waiter = Task { try await runProcess(["sh", "-c", "echo $$ > \(pidFile); exec sleep 600"]) }
        try await eventually(timeout: 20, every: .milliseconds(20), "the child wrote its pid") {
            (try? String(contentsOfFile: pidFile, encoding: .utf8))?.hasSuffix("\n") == true
        }
        waiter.cancel()
        await #expect(throws: ProcessTimedOut.self) { try await waiter.value }
        let pid = try #require(Int32((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, 0) != 0, "the child is gone")
    }
}
