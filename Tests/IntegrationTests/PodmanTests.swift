import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// What only Podman needs (scripts/test's Podman pass; DockerServiceTests, ReconcileTests and ConsoleTests run there too).
@Suite(.enabled(if: TestDocker.shouldRun && TestDocker.isPodman, "only against Podman (scripts/test's Podman pass)"))
struct PodmanTests {
    func exec(_ container: String, _ shell: String) async throws -> ProcessOutput {
        try await runProcess(["docker", "exec", container, "sh", "-c", shell])
    }

    func address(of container: String) async throws -> String {
        try await runProcess(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Podman ignores `enable_icc=false`: each bot gets a network of its own, so one bot cannot reach another's gateway
    /// (busybox wget crashes under Podman here, so `nc` asks), and the network goes with the bot.
    @Test(.timeLimit(.minutes(2))) func botsCannotReachEachOtherAndTheirNetworksGoWithThem() async throws {
        try await Deployment.withMigrated("podnet") { deployment, _ in
            let a = deployment.bot("a"), b = deployment.bot("b")
            try await deployment.sqlite("""
                INSERT INTO bots (id, image) VALUES ('\(a)', '\(TestDocker.gatewayImage)'), ('\(b)', '\(TestDocker.gatewayImage)')
                """)
            let first = try await deployment.botmaker(["reconcile"])
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            #expect(try await TestDocker.networks(of: "botmaker-\(a)") == ["botmaker-\(a)"])
            #expect(try await TestDocker.networks(of: "botmaker-\(b)") == ["botmaker-\(b)"])
            let target = try await address(of: "botmaker-\(a)")
            let ask = "printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' | nc -w 3 \(target) 18789"
            try await eventually(timeout: 30, "the gateway answers on its own network") {
                try await exec("botmaker-\(a)", ask).stdout.contains("ok")
            }
            let across = try await exec("botmaker-\(b)", ask)
            #expect(!across.stdout.contains("ok"), "one bot reached another's gateway: \(across)")

            try await deployment.sqlite("DELETE FROM bots WHERE id = '\(a)'")
            #expect(try await deployment.botmaker(["reconcile"]).status == 0)
            let networks = try await runProcess(["docker", "network", "ls", "--format", "{{.Name}}"]).stdout
            #expect(!networks.contains("botmaker-\(a)\n") && networks.contains("botmaker-\(b)\n"), "\(networks)")
        }
    }

    /// A network named like a bot's that botmaker did not make is never used nor changed: the bot is refused.
    @Test(.timeLimit(.minutes(2))) func aForeignNetworkWithTheBotsNameIsRefusedAndUntouched() async throws {
        try await Deployment.withMigrated("podforeign") { deployment, _ in
            let id = deployment.bot("f")
            let made = try await runProcess(["docker", "network", "create", "botmaker-\(id)"])
            #expect(made.status == 0, "\(made.stderr)")
            try await deployment.insertBots(["f"])
            let output = try await deployment.botmaker(["reconcile"])
            #expect(output.status == 1)
            #expect(try await deployment.status("f", "last_error_code") == "CONFIG_ERROR")
            #expect(try await deployment.status("f", "last_error_message").contains("was not made by botmaker"))
            let inspect = try await runProcess(["docker", "network", "inspect", "-f", "{{.Id}}", "botmaker-\(id)"])
            #expect(inspect.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == made.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(try await runProcess(["docker", "network", "rm", "botmaker-\(id)"]).status == 0)
        }
    }

    /// The service says which engine it drives, in its log and on /readyz.
    @Test(.timeLimit(.minutes(2))) func theEngineIsNamedInTheLogAndOnReadyz() async throws {
        try await Deployment.withMigrated("podready") { deployment, _ in
            let service = try ServiceProcess(arguments: deployment.commonArguments + ["--metrics-addr", "127.0.0.1:0"],
                                             logPath: deployment.dir.file("run.log"))
            let port = try await service.metricsPort()
            try await eventually(timeout: 30, "ready") { try await httpGet(port: port, path: "/readyz").status == 200 }
            #expect(try await httpGet(port: port, path: "/readyz").body.hasPrefix("ready: Podman "))
            try await eventually(timeout: 10, "the engine is logged") { service.log.contains("engine=Podman ") }
            #expect(try await service.stop() == 0)
        }
    }
}
