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

    /// Podman ignores `enable_icc=false`, and its per-network isolation is lost when any isolated network is torn down:
    /// each bot gets a network stack of its own (slirp4netns). Its published port answers on the host; another bot
    /// cannot reach it (no route to the host's loopback, no shared network), while it reaches its own gateway (so the
    /// check is real). busybox wget crashes under Podman here, so `nc` asks.
    @Test(.timeLimit(.minutes(2))) func botsCannotReachEachOtherWhilePublishedPortsAnswer() async throws {
        try await Deployment.withMigrated("podnet") { deployment, _ in
            let a = deployment.bot("a"), b = deployment.bot("b")
            try await deployment.sqlite("""
                INSERT INTO bots (id, image, ports) VALUES ('\(a)', '\(TestDocker.gatewayImage)', '["18789"]'), ('\(b)', '\(TestDocker.gatewayImage)', '[]')
                """)
            let first = try await deployment.botmaker(["reconcile", "--port-range", "19700-19749"])
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            #expect(try await TestDocker.networks(of: "botmaker-\(a)") == ["slirp4netns"])
            let published = try await deployment.status("a", "published_ports")
            let port = try #require(published.split(separator: ":").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) }, "\(published)")
            try await eventually(timeout: 30, "the published port answers on the host") {
                (try? await runProcess(["curl", "-s", "-m", "2", "http://127.0.0.1:\(port)/healthz"]))?.stdout == "ok\n"
            }
            let ask = { (host: String, port: Int) in "printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' | nc -w 3 \(host) \(port)" }
            try await eventually(timeout: 30, "b's own gateway answers it") {
                try await exec("botmaker-\(b)", ask("127.0.0.1", 18789)).stdout.contains("ok")
            }
            let viaHost = try await exec("botmaker-\(b)", ask("10.0.2.2", port))
            #expect(!viaHost.stdout.contains("ok") && viaHost.stderr.contains("nc: can't connect"), "b reached a through the host: \(viaHost)")
            let addresses = try await exec("botmaker-\(b)", "ip -o -4 addr show | awk '{print $4}'").stdout
            #expect(addresses.split(separator: "\n").sorted() == ["10.0.2.100/24", "127.0.0.1/8"], "b has only its own addresses: \(addresses)")
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
