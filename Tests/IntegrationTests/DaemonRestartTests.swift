import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// The Docker daemon goes away under a running service and comes back. These stop the engine, so
/// they run alone: `scripts/test` runs them in a second `swift test` with BOTMAKER_DAEMON_TESTS=1,
/// only when it started the engine itself (always the case in CI).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["BOTMAKER_DAEMON_TESTS"] == "1", "stops the Docker engine; run by scripts/test"))
struct DaemonRestartTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func stopDaemon() async throws {
        let pid = try String(contentsOfFile: "/var/run/docker.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await runProcess(["kill", pid]).status == 0)
        // Wait for the process itself to exit: a new dockerd refuses to start while the old pid file exists.
        try await eventually(timeout: 90, "engine exited") { try await runProcess(["kill", "-0", pid]).status != 0 }
    }

    static func startDaemon() async throws {
        // Not waited for: Foundation's Process sees a child end only when every holder of its status
        // socket closes it, and the new dockerd inherits that socket.
        let starter = Process()
        starter.executableURL = URL(fileURLWithPath: "/bin/bash")
        starter.arguments = ["-c", "source scripts/lib.sh && ensure_dockerd"]
        starter.currentDirectoryURL = root
        starter.standardInput = FileHandle.nullDevice
        starter.standardOutput = FileHandle.nullDevice
        starter.standardError = FileHandle.nullDevice
        try starter.run()
        try await eventually(timeout: 90, "engine back") { try await runProcess(["docker", "version"]).status == 0 }
    }

    func running(_ deployment: Deployment, _ client: DockerClient) async throws -> Int {
        try await deployment.containers(client).values.filter { $0.state == "running" }.count
    }

    /// Proves: with the daemon gone the service stays up and records NETWORK_ERROR; once it is back,
    /// bots converge and the errors clear.
    @Test(.timeLimit(.minutes(5))) func serviceSurvivesTheDaemonGoingAwayAndConvergesWhenItReturns() async throws {
        let deployment = try Deployment("daemon")
        defer { deployment.remove() }
        try await TestDocker.withClient(cleaning: deployment.tag) { client in
            #expect(try await deployment.botmaker(["migrate"]).status == 0)
            let service = try ServiceProcess(
                arguments: deployment.commonArguments + ["--poll-interval", "0.1", "--resync-interval", "2", "--log-level", "debug"],
                logPath: deployment.dir.file("run.log"))
            // Bot a says `up` at each start; an operator follows its logs through it all.
            let saysUp = #"["sh","-c","echo up; trap \"exit 0\" TERM; while true; do sleep 1 & wait $!; done"]"#
            try await deployment.sqlite("INSERT INTO bots (id, image, command) VALUES ('\(deployment.bot("a"))', '\(TestDocker.image)', '\(saysUp)')")
            try await deployment.insertBots(["b"])
            try await eventually("bots running") { try await running(deployment, client) == 2 }
            let follower = try ServiceProcess(command: ["logs", deployment.bot("a"), "-f"], arguments: deployment.commonArguments,
                                              logPath: deployment.dir.file("follow.out"), errorPath: deployment.dir.file("follow.err"))
            try await eventually(timeout: 30, "the follower shows the bot's first run") { follower.log == "up\n" }

            try await Self.stopDaemon()
            try await eventually(timeout: 60, "NETWORK_ERROR recorded") { try await deployment.status("a", "last_error_code") == "NETWORK_ERROR" }
            #expect(service.isRunning, "\(service.log)")

            try await Self.startDaemon()
            try await eventually(timeout: 90, "bots converge again") {
                let running = try await running(deployment, client)
                let errors = try await deployment.status("a", "last_error_code") + deployment.status("b", "last_error_code")
                return running == 2 && errors.isEmpty
            }
            #expect(service.isRunning)
            #expect(try await service.stop(timeout: 20) == 0, "\(service.log)")
            // The follower waited for the engine and carries on with the bot's container, which the engine's stop ended.
            let marker = #"^up\n-- botmaker: \#(deployment.bot("a")) was restarted; its logs follow --\nup\n"#
            do {
                try await eventually(timeout: 30, "the follower carries on") { follower.log.range(of: marker, options: .regularExpression) != nil }
            } catch {
                throw TestFailure("\(error); the follower wrote:\n\(follower.log)\n\((try? String(contentsOfFile: deployment.dir.file("follow.err"), encoding: .utf8)) ?? "")")
            }
            #expect(follower.isRunning, "an engine restart does not end -f")
            _ = try await follower.stop()
        }
    }

    /// Proves: the daemon restarting in the middle of a pass (20 bots being created) is survived and
    /// the pass's work is completed afterwards, with no duplicate or unlabelled container.
    @Test(.timeLimit(.minutes(5))) func daemonRestartDuringAPass() async throws {
        let deployment = try Deployment("midpass")
        defer { deployment.remove() }
        try await TestDocker.withClient(cleaning: deployment.tag) { client in
            #expect(try await deployment.botmaker(["migrate"]).status == 0)
            let service = try ServiceProcess(
                arguments: deployment.commonArguments + ["--poll-interval", "0.1", "--resync-interval", "2"],
                logPath: deployment.dir.file("run.log"))
            try await deployment.insertBots((1...20).map { "m\($0)" })
            try await eventually("the pass has begun") { try await !deployment.containers(client).isEmpty }
            try await Self.stopDaemon()
            #expect(service.isRunning, "\(service.log)")
            try await Self.startDaemon()
            try await eventually(timeout: 120, "all 20 running") { try await running(deployment, client) == 20 }
            let names = try await deployment.containers(client).values.map { $0.labels["botmaker.bot-id"] ?? "" }
            #expect(Set(names).count == names.count && names.count == 20)
            #expect(try await deployment.sqlite("PRAGMA integrity_check") == "ok")
            #expect(try await service.stop(timeout: 20) == 0, "\(service.log)")
        }
    }
}
