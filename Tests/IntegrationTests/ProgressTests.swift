import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// `botmaker reconcile` shows its work as it goes: the plan first, each result as its action ends, a live line only on
/// a terminal. Two bots are stopped: one at once, one that ignores SIGTERM and takes the whole grace period.
@Suite(.enabled(if: TestDocker.shouldRun, "no Docker engine (set BOTMAKER_REQUIRE_DOCKER=1 to make this a failure)"))
struct ProgressTests {
    static let stubborn = #"["sh","-c","trap '' TERM; while true; do sleep 1; done"]"#

    func twoRunningBots(_ deployment: Deployment) async throws {
        try await deployment.sqlite("""
            INSERT INTO bots (id, image, command) VALUES
            ('\(deployment.bot("quick"))', '\(TestDocker.image)', '["sleep","600"]'),
            ('\(deployment.bot("slow"))', '\(TestDocker.image)', '\(Self.stubborn.replacingOccurrences(of: "'", with: "''"))')
            """)
        #expect(try await deployment.botmaker(["reconcile"]).status == 0)
        try await deployment.sqlite("UPDATE bots SET desired_state = 'stopped'")
    }

    /// Through a pipe: the quick bot's result is read while the run still waits for the slow one; no terminal codes.
    @Test(.timeLimit(.minutes(2))) func resultsReachAPipeBeforeTheRunEnds() async throws {
        try await Deployment.withMigrated("pipe") { deployment, _ in
            try await twoRunningBots(deployment)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: botmakerBinary)
            process.arguments = ["reconcile", "--stop-grace", "6"] + deployment.commonArguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            let output = LockedBox("")
            let quickWhileRunning = LockedBox<Bool?>(nil)
            let quickLine = "botmaker-\(deployment.bot("quick"))"
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let chunk = String(decoding: handle.availableData, as: UTF8.self)
                output.update { $0 += chunk }
                if quickWhileRunning.value == nil,
                   output.value.split(separator: "\n").contains(where: { $0.contains(quickLine) && $0.contains("→ done") }) {
                    quickWhileRunning.update { $0 = process.isRunning }
                }
            }
            let exit = ProcessExit(process)
            try process.run()
            _ = await exit.wait()
            pipe.fileHandleForReading.readabilityHandler = nil
            output.update { $0 += String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
            let text = output.value
            #expect(process.terminationStatus == 0, "\(text)")
            #expect(quickWhileRunning.value == true, "the quick bot's result came before the run ended:\n\(text)")
            let lines = text.split(separator: "\n").map(String.init)
            let plan = try #require(lines.firstIndex { $0.hasPrefix("Plan: ") })
            let quick = try #require(lines.firstIndex { $0.contains(quickLine) && $0.contains("→ done") })
            let slow = try #require(lines.firstIndex { $0.contains("botmaker-\(deployment.bot("slow"))") && $0.contains("→ done") })
            #expect(plan < quick && quick < slow, "the plan first, then the results as they end:\n\(text)")
            #expect(lines.last == "Applied: 2 succeeded, 0 failed.")
            #expect(!text.contains("\u{1B}") && !text.contains("applying "), "no live line on a pipe")
        }
    }

    /// Under a pseudo-terminal (`script`): the same lines, and a live line redrawn in place; `--json` stays one document.
    @Test(.timeLimit(.minutes(2))) func aTerminalGetsALiveLineAndJSONStaysClean() async throws {
        try await Deployment.withMigrated("tty") { deployment, _ in
            try await twoRunningBots(deployment)
            let command = ([botmakerBinary, "reconcile", "--stop-grace", "4"] + deployment.commonArguments).joined(separator: " ")
            let terminal = try await runProcess(["script", "-qfec", command, "/dev/null"])
            #expect(terminal.status == 0, "\(terminal.stdout)")
            #expect(terminal.stdout.contains("\r\u{1B}[2Kapplying 1/2 · 1 in progress"), "\(terminal.stdout.debugDescription)")
            #expect(terminal.stdout.contains("Applied: 2 succeeded, 0 failed."))

            try await deployment.sqlite("UPDATE bots SET desired_state = 'running'")
            let json = try await runProcess(["script", "-qfec", command + " --json", "/dev/null"])
            #expect(!json.stdout.contains("\u{1B}"), "\(json.stdout.debugDescription)")
            let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect(document?["mode"] as? String == "apply")
        }
    }
}
