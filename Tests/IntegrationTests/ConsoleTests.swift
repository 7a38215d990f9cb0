import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// Issue 15: `botmaker logs` and `botmaker exec` against the real engine, through the CLI as an operator runs them.
@Suite(.enabled(if: TestDocker.shouldRun, "no Docker engine (set BOTMAKER_REQUIRE_DOCKER=1 to make this a failure)"))
struct ConsoleTests {
    /// Prints `start $GEN`, then a line to each stream, a second later two more, then idles.
    static let chatty = #"["sh","-c","echo start $GEN; echo out-1; echo err-1 >&2; sleep 1; echo out-2; echo err-2 >&2; exec sleep 600"]"#

    func exec(_ deployment: Deployment, _ arguments: [String], stdin: String? = nil) async throws -> ProcessOutput {
        try await runProcess([botmakerBinary, "exec"] + deployment.commonArguments + arguments, stdin: stdin)
    }

    func insert(_ deployment: Deployment, _ name: String, command: String, state: String = "running") async throws {
        try await deployment.sqlite("""
            INSERT INTO bots (id, image, environment, command, desired_state)
            VALUES ('\(deployment.bot(name))', '\(TestDocker.image)', '["GEN=1"]', '\(command.replacingOccurrences(of: "'", with: "''"))', '\(state)')
            """)
    }

    /// A `chatty` bot, running, and `logs -f` on it once that has shown the bot's first lines.
    func followChattyBot(_ deployment: Deployment, _ name: String) async throws -> (id: String, follower: ServiceProcess) {
        try await insert(deployment, name, command: Self.chatty)
        #expect(try await deployment.botmaker(["reconcile"]).status == 0)
        let follower = try ServiceProcess(command: ["logs", deployment.bot(name), "-f"], arguments: deployment.commonArguments,
                                          logPath: deployment.dir.file("follow.out"), errorPath: deployment.dir.file("follow.err"))
        try await eventually(timeout: 30, "the follower shows the bot's first lines") { follower.log.contains("out-2") }
        return (deployment.bot(name), follower)
    }

    @Test(.timeLimit(.minutes(2))) func logsSplitTheStreamsAndHonourTailSinceAndTimestamps() async throws {
        try await Deployment.withMigrated("logs") { deployment, _ in
            let id = deployment.bot("c")
            try await insert(deployment, "c", command: Self.chatty)
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            try await insert(deployment, "never", command: Self.chatty, state: "stopped")
            try await eventually(timeout: 30, every: .milliseconds(300), "the bot printed its second lines") {
                try await deployment.botmaker(["logs", id]).stderr.contains("err-2")
            }
            let all = try await deployment.botmaker(["logs", id])
            #expect(all.status == 0)
            #expect(all.stdout == "start 1\nout-1\nout-2\n")
            #expect(all.stderr == "err-1\nerr-2\n")

            let last = try await deployment.botmaker(["logs", id, "--tail", "2"])
            #expect(last.stdout == "out-2\n" && last.stderr == "err-2\n", "the last two entries, one per stream: \(last)")

            let stamped = try await deployment.botmaker(["logs", id, "--timestamps"])
            let lines = stamped.stdout.split(separator: "\n")
            #expect(lines.count == 3 && lines.allSatisfy { $0.range(of: #"^20\d\d-\d\d-\d\dT[0-9:.]+Z "#, options: .regularExpression) != nil },
                    "\(stamped.stdout)")
            // --since the time of the second pair (the earlier of out-2 and err-2, to the millisecond, rounded down: the
            // engine stamps each stream as it reads it, in either order): out-2 and err-2 only, not what came a second before.
            let out2 = try #require(lines.last.map(String.init))
            let err2 = try #require(stamped.stderr.split(separator: "\n").last.map(String.init))
            let since = min(String(out2.prefix(23)), String(err2.prefix(23))) + "Z"
            let recent = try await deployment.botmaker(["logs", id, "--since", since])
            #expect(recent.stdout == "out-2\n" && recent.stderr == "err-2\n", "since \(since): \(recent)")
            #expect(try await deployment.botmaker(["logs", id, "--since", "1h"]).stdout == all.stdout)

            let unknown = try await deployment.botmaker(["logs", deployment.bot("nobody")])
            #expect(unknown.status == 1 && unknown.stderr.contains("no bot \(deployment.bot("nobody"))"), "\(unknown)")
            let noContainer = try await deployment.botmaker(["logs", deployment.bot("never")])
            #expect(noContainer.status == 1 && noContainer.stderr.contains("has no container"), "\(noContainer)")
        }
    }

    /// 1.1 MB to stdout and 0.6 MB to stderr written at the same time, in numbered 1000-byte lines: every byte arrives,
    /// in order within its stream. (Lines, not a flood of tiny entries: Podman's log file keeps 10 MB with its
    /// per-entry overhead, so 250,000 short lines would rotate away.)
    @Test(.timeLimit(.minutes(2))) func aLargeBurstIsDemultiplexedWithoutLossOrReordering() async throws {
        try await Deployment.withMigrated("burst") { deployment, _ in
            let id = deployment.bot("b")
            let burst = #"["sh","-c","awk 'BEGIN{for(i=1;i<=1100;i++) printf \"%06d %0992d\\n\", i, 0}' & awk 'BEGIN{for(i=1;i<=600;i++) printf \"e%05d %0992d\\n\", i, 0}' >&2; wait; echo done; exec sleep 600"]"#
            try await insert(deployment, "b", command: burst)
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            let zeros = String(repeating: "0", count: 992)
            let expectedOut = (1...1100).map { String(format: "%06d ", $0) + zeros + "\n" }.joined() + "done\n"
            let expectedErr = (1...600).map { String(format: "e%05d ", $0) + zeros + "\n" }.joined()
            // Each stream is complete when it has its last line. Not `--tail 1` == "done": the engine may log the end of
            // stderr's pipe backlog after stdout's "done" (Podman did in CI), so which entry is last overall is not fixed.
            var logs = ProcessOutput(status: -1, stdout: "", stderr: "")
            do {
                try await eventually(timeout: 60, every: .milliseconds(500), "the burst is written") {
                    logs = try await deployment.botmaker(["logs", id])
                    return logs.stdout.hasSuffix("\ndone\n") && logs.stderr.utf8.count >= expectedErr.utf8.count
                }
            } catch {
                throw TestFailure("\(error); the last read: \(logs.status), \(logs.stdout.utf8.count) bytes of stdout ending \(logs.stdout.suffix(200)), \(logs.stderr.utf8.count) of stderr ending \(logs.stderr.suffix(200))")
            }
            #expect(logs.stdout.utf8.count == expectedOut.utf8.count)
            #expect(logs.stdout == expectedOut)
            #expect(logs.stderr == expectedErr)
        }
    }

    /// `logs -f` goes on across an update (a new container): a marker line, then the new container's output.
    @Test(.timeLimit(.minutes(2))) func followCarriesOnAcrossARecreate() async throws {
        try await Deployment.withMigrated("follow") { deployment, _ in
            let (id, follower) = try await followChattyBot(deployment, "f")
            try await deployment.sqlite("UPDATE bots SET environment = '[\"GEN=2\"]' WHERE id = '\(id)'")
            let updated = try await deployment.botmaker(["reconcile", "--update-min-uptime", "1"])
            #expect(updated.status == 0, "\(updated.stdout)\(updated.stderr)")
            do {
                try await eventually(timeout: 60, "the follower shows the new container's output") { follower.log.contains("start 2\nout-1\nout-2\n") }
            } catch {
                throw TestFailure("\(error); the follower wrote:\n\(follower.log)\n\((try? String(contentsOfFile: deployment.dir.file("follow.err"), encoding: .utf8)) ?? "")")
            }
            // Podman may show the moment the bot had no container (between the old one's rename and the new one's create).
            let output = follower.log.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("-- botmaker: \(id) has no container now") }.joined(separator: "\n")
            let marker = try #require(output.range(of: "-- botmaker: \(id) was recreated"))
            #expect(output[..<marker.lowerBound] == "start 1\nout-1\nout-2\n", "\(output)")
            #expect(output[marker.upperBound...].contains("start 2\nout-1\nout-2\n"))
            #expect(follower.isRunning, "-f keeps following")
            _ = try await follower.stop()
        }
    }

    /// `logs -f` waits through a stop (the engine ends the stream; the bot's container events wake the follower) and goes
    /// on when the same container runs again: a marker, then the new run's output, each line once.
    @Test(.timeLimit(.minutes(2))) func followWaitsThroughAStopAndCarriesOnAtTheRestart() async throws {
        try await Deployment.withMigrated("restart") { deployment, _ in
            let (id, follower) = try await followChattyBot(deployment, "r")
            try await deployment.sqlite("UPDATE bots SET desired_state = 'stopped' WHERE id = '\(id)'")
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            #expect(try await deployment.status("r", "actual_state") == "exited")
            try await deployment.sqlite("UPDATE bots SET desired_state = 'running' WHERE id = '\(id)'")
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            let marker = "-- botmaker: \(id) was restarted; its logs follow --"
            let run = ["start 1", "out-1", "out-2"]
            func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }
            func errors() -> String { (try? String(contentsOfFile: deployment.dir.file("follow.err"), encoding: .utf8)) ?? "" }
            do {
                try await eventually(timeout: 60, "the follower shows the second run's output") {
                    lines(follower.log).filter { $0 != marker }.sorted() == (run + run).sorted() && lines(errors()) == ["err-1", "err-2", "err-1", "err-2"]
                }
            } catch {
                throw TestFailure("\(error); the follower wrote:\n\(follower.log)\n\(errors())")
            }
            if TestDocker.isPodman {
                // Podman's follow stream can carry on into the next run for a moment and give only some of its lines (the
                // rest, and the marker, then come after), and it stamps to the second: each line is still shown once
                // (above), the marker once.
                #expect(lines(follower.log).filter { $0 == marker }.count == 1, "\(follower.log)")
            } else {
                #expect(lines(follower.log) == run + [marker] + run, "each run's output once, the marker between: \(follower.log)")
            }
            _ = try await follower.stop()
        }
    }

    @Test(.timeLimit(.minutes(2))) func execPassesExitCodesStdinAndIsRecordedWithoutArguments() async throws {
        try await Deployment.withMigrated("exec") { deployment, _ in
            let id = deployment.bot("e")
            try await insert(deployment, "e", command: #"["sleep","600"]"#)
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)

            let ok = try await exec(deployment, [id, "--", "sh", "-c", "echo hi; echo oops >&2"])
            #expect(ok.status == 0 && ok.stdout == "hi\n" && ok.stderr == "oops\n", "\(ok)")
            let three = try await exec(deployment, [id, "--", "sh", "-c", "echo approve-123456; exit 3"])
            #expect(three.status == 3 && three.stdout == "approve-123456\n", "\(three)")
            let input = (1...2000).map { "line \($0)\n" }.joined()
            let echoed = try await exec(deployment, ["-i", id, "--", "cat"], stdin: input)
            #expect(echoed.status == 0 && echoed.stdout == input, "stdin with -i reaches the command and its end ends it")
            let withoutI = try await exec(deployment, [id, "--", "cat"], stdin: "ignored\n")
            #expect(withoutI.status == 0 && withoutI.stdout.isEmpty, "without -i the command's stdin is empty")

            let history = try await deployment.sqlite("SELECT result || ' ' || message FROM bot_events WHERE bot_id = '\(id)' AND action = 'exec' ORDER BY id")
            #expect(history == "ok sh: exit code 0\nok sh: exit code 3\nok cat: exit code 0\nok cat: exit code 0", "\(history)")
            #expect(!(try await deployment.sqlite("SELECT group_concat(message) FROM bot_events")).contains("123456"),
                    "arguments (which may hold codes) are never recorded")

            try await deployment.sqlite("UPDATE bots SET desired_state = 'stopped' WHERE id = '\(id)'")
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            let refused = try await exec(deployment, [id, "--", "true"])
            #expect(refused.status == 1 && refused.stderr.contains("NOT_RUNNING: bot \(id) is not running (its container is exited"), "\(refused)")
            #expect(try await deployment.sqlite("SELECT result || ' ' || error_code FROM bot_events WHERE bot_id = '\(id)' AND action = 'exec' ORDER BY id DESC LIMIT 1")
                    == "error NOT_RUNNING")
            #expect(try await exec(deployment, [deployment.bot("nobody"), "--", "true"]).stderr.contains("no bot"))
        }
    }

    /// `status --stats`: a bot that fills 40 MiB of tmpfs and spins (held to 0.2 CPU, so the other tests keep the machine)
    /// shows that memory (under its 256 MiB limit) and CPU use; an idle one little CPU; a stopped one none. `/metrics` gauges appear with `--stats-interval` and go with the bot.
    @Test(.timeLimit(.minutes(3))) func statsArePlausibleAndTheGaugesFollowTheBot() async throws {
        try await Deployment.withMigrated("stats") { deployment, _ in
            let hog = deployment.bot("hog"), idle = deployment.bot("idle"), off = deployment.bot("off")
            try await deployment.sqlite("""
                INSERT INTO bots (id, image, command, memory_bytes, cpus) VALUES
                ('\(hog)', '\(TestDocker.image)', '["sh","-c","dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 && touch /tmp/filled; while true; do :; done"]', 268435456, 0.2),
                ('\(idle)', '\(TestDocker.image)', '["sleep","600"]', NULL, NULL);
                INSERT INTO bots (id, image, command, desired_state) VALUES ('\(off)', '\(TestDocker.image)', '["sleep","600"]', 'stopped');
                """)
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            try await eventually(timeout: 30, every: .milliseconds(300), "the hog filled its tmpfs") {
                try await exec(deployment, [hog, "--", "test", "-f", "/tmp/filled"]).status == 0
            }
            let output = try await deployment.botmaker(["status", "--stats", "--json"])
            #expect(output.status == 0, "\(output.stderr)")
            struct Row: Decodable {
                var id: String
                var cpu_percent: Double?
                var memory_used_bytes: UInt64?
                var memory_limit_bytes: UInt64?
                var restart_count: Int?
            }
            let rows = Dictionary(try JSONDecoder().decode([Row].self, from: Data(output.stdout.utf8)).map { ($0.id, $0) }) { a, _ in a }
            let hogRow = try #require(rows[hog])
            #expect(hogRow.memory_limit_bytes == 268_435_456)
            #expect((40 << 20...256 << 20).contains(hogRow.memory_used_bytes ?? 0), "\(hogRow)")
            #expect((1...30).contains(hogRow.cpu_percent ?? -1), "a spinning bot uses its 0.2 CPU: \(hogRow)")
            #expect(hogRow.restart_count == 0)
            let idleRow = try #require(rows[idle])
            #expect((0..<(hogRow.cpu_percent ?? 0)).contains(idleRow.cpu_percent ?? -1) && (idleRow.memory_used_bytes ?? 0) < 40 << 20,
                    "an idle bot uses less: \(idleRow)")
            #expect((idleRow.memory_limit_bytes ?? 0) > 256 << 20, "no limit: the host's memory")
            #expect(rows[off]?.restart_count == nil && rows[off]?.cpu_percent == nil, "a stopped bot has no stats")
            let table = try await deployment.botmaker(["status", "--stats"]).stdout
            #expect(table.contains("CPU") && table.contains("/ 256MiB"), "\(table)")

            let service = try ServiceProcess(arguments: deployment.commonArguments + ["--metrics-addr", "127.0.0.1:0", "--stats-interval", "1"],
                                             logPath: deployment.dir.file("run.log"))
            let port = try await service.metricsPort()
            let gauge = "botmaker_bot_memory_used_bytes{bot=\"\(hog)\"}"
            try await eventually(timeout: 30, "the gauges appear") {
                let metrics = try await httpGet(port: port, path: "/metrics").body
                return metrics.contains(gauge) && metrics.contains("botmaker_bot_cpu_percent{bot=\"\(hog)\"}")
                    && metrics.contains("botmaker_bot_restarts{bot=\"\(idle)\"}")
            }
            #expect(!(try await httpGet(port: port, path: "/metrics").body.contains("bot=\"\(off)\"")))
            try await deployment.sqlite("DELETE FROM bots WHERE id = '\(hog)'")
            try await eventually(timeout: 30, "the gauges go with the bot") {
                !(try await httpGet(port: port, path: "/metrics").body.contains("bot=\"\(hog)\""))
            }
            #expect(try await httpGet(port: port, path: "/metrics").body.contains("botmaker_bot_restarts{bot=\"\(idle)\"}"))
            #expect(try await service.stop() == 0)
        }
    }
}
