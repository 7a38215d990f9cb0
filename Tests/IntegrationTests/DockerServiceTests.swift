import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// DockerService against the real engine. Each test names its containers with a unique fragment and
/// removes them afterwards, whatever happens.
@Suite(.enabled(if: TestDocker.shouldRun, "no Docker engine (set BOTMAKER_REQUIRE_DOCKER=1 to make this a failure)"))
struct DockerServiceTests {
    static func service(_ client: DockerClient, instance: String) -> DockerService {
        DockerService(client: client, stopGraceSeconds: 10, instance: instance)
    }

    static func config(_ dir: TemporaryDirectory, _ id: String, env: [String] = ["GREETING=hello"]) throws -> ContainerConfig {
        let secrets = SecretsManager(root: dir.file("secrets"))
        try secrets.set(botId: id, name: "API_TOKEN", value: Data("s3cret".utf8))
        return ContainerConfig(image: TestDocker.image, environment: env, secretsPath: try secrets.directory(for: id))
    }

    @Test(.timeLimit(.minutes(2))) func createdContainerHasLabelsPolicyNetworkAndReadOnlySecrets() async throws {
        let id = "svc-\(uniqueSuffix())"
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try await TestDocker.withClient(cleaning: id) { client in
            let docker = Self.service(client, instance: id)
            let containerId = try await docker.createContainer(botId: id, config: try Self.config(dir, id))
            let inspect = try await client.inspectContainer(containerId)
            #expect(inspect.name == "/botmaker-\(id)")
            #expect(inspect.config.labels["botmaker.managed"] == "true")
            #expect(inspect.config.labels["botmaker.bot-id"] == id)
            #expect(inspect.config.labels["botmaker.spec-hash"]?.count == 64)
            #expect(inspect.hostConfig.restartPolicy?.name == "unless-stopped")
            #expect(inspect.hostConfig.initProcess == true)
            #expect(TestDocker.binds(inspect.hostConfig.binds) == ["\(dir.file("secrets"))/\(id):/run/secrets:ro"])
            // Where bots cannot reach each other: botmaker's bridge without inter-container traffic on Docker, a network
            // stack of the bot's own on Podman (which ignores that bridge option).
            #expect(try await TestDocker.networks(of: "botmaker-\(id)") == [TestDocker.isPodman ? "slirp4netns" : "botmaker"])
            #expect(inspect.config.env.contains("GREETING=hello"))
            #expect(inspect.state.status == "created")

            try await docker.startContainer(botId: id)
            let read = try await runProcess(["docker", "exec", "botmaker-\(id)", "cat", "/run/secrets/API_TOKEN"])
            #expect(read.status == 0)
            #expect(read.stdout == "s3cret")
            let write = try await runProcess(["docker", "exec", "botmaker-\(id)", "sh", "-c", "echo x > /run/secrets/new"])
            #expect(write.status != 0)
            #expect(write.stderr.contains("Read-only file system"))
        }
    }

    @Test(.timeLimit(.minutes(2))) func lifecycleIncludingAlreadyDoneAndMissingPaths() async throws {
        let id = "life-\(uniqueSuffix())"
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try await TestDocker.withClient(cleaning: id) { client in
            let docker = Self.service(client, instance: id)
            #expect(try await docker.getContainerStatus(botId: id) == nil)
            #expect(await containerError { try await docker.startContainer(botId: id) }?.code == .notFound)
            #expect(await containerError { try await docker.stopContainer(botId: id) }?.code == .notFound)
            #expect(await containerError { try await docker.restartContainer(botId: id) }?.code == .notFound)
            try await docker.removeContainer(botId: id)  // nothing to remove is success

            let containerId = try await docker.createContainer(botId: id, config: try Self.config(dir, id))
            try await docker.startContainer(botId: id)
            try await docker.startContainer(botId: id)  // 304: already running
            var status = try #require(try await docker.getContainerStatus(botId: id))
            #expect(status.id == containerId)
            #expect(status.state == .running && status.running)
            #expect(status.exitCode == nil)
            #expect(status.startedAt != nil)
            let firstStart = status.startedAt

            try await docker.restartContainer(botId: id)
            status = try #require(try await docker.getContainerStatus(botId: id))
            #expect(status.state == .running)
            #expect(status.startedAt != firstStart)

            try await docker.stopContainer(botId: id)
            try await docker.stopContainer(botId: id)  // 304: already stopped
            status = try #require(try await docker.getContainerStatus(botId: id))
            #expect(status.state == .exited && !status.running)
            #expect(status.exitCode != nil)
            #expect(status.finishedAt != nil)

            let listed = try await docker.listManagedContainers()
            #expect(listed.contains { $0.id == containerId && $0.name == "botmaker-\(id)" && $0.botId == id && $0.state == .exited })

            try await docker.startContainer(botId: id)
            try await docker.removeContainer(botId: id)  // stops first, then removes
            #expect(try await docker.getContainerStatus(botId: id) == nil)
            try await docker.removeContainer(botId: id)  // 404 is fine
        }
    }

    @Test(.timeLimit(.minutes(2))) func missingImageAndNameConflict() async throws {
        let id = "err-\(uniqueSuffix())"
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try await TestDocker.withClient(cleaning: id) { client in
            let docker = Self.service(client, instance: id)
            var config = try Self.config(dir, id)
            config.image = "botmaker-test/does-not-exist:\(uniqueSuffix())"
            let missing = await containerError { _ = try await docker.createContainer(botId: id, config: config) }
            #expect(missing?.code == .notFound)
            #expect(missing?.message.lowercased().contains("no such image") == true, "\(String(describing: missing))")
            let good = try Self.config(dir, id)
            _ = try await docker.createContainer(botId: id, config: good)
            #expect(await containerError { _ = try await docker.createContainer(botId: id, config: good) }?.code == .alreadyExists)
        }
    }

    @Test(.timeLimit(.minutes(2))) func unmanagedContainerWithOurNameSurvivesEveryCall() async throws {
        let id = "foreign-\(uniqueSuffix())"
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try await TestDocker.withClient(cleaning: id) { client in
            let foreignId = try await TestDocker.runForeign(name: "botmaker-\(id)")
            let docker = Self.service(client, instance: id)
            let config = try Self.config(dir, id)
            let create = await containerError { _ = try await docker.createContainer(botId: id, config: config) }
            #expect(create?.code == .alreadyExists)
            #expect(create?.message.contains("not managed") == true)
            #expect(await containerError { try await docker.startContainer(botId: id) }?.code == .notManaged)
            #expect(await containerError { try await docker.stopContainer(botId: id) }?.code == .notManaged)
            #expect(await containerError { try await docker.restartContainer(botId: id) }?.code == .notManaged)
            #expect(await containerError { try await docker.removeContainer(botId: id) }?.code == .notManaged)
            #expect(await containerError { _ = try await docker.getContainerStatus(botId: id) }?.code == .notManaged)
            #expect(await containerError { try await docker.removeManagedContainer(id: foreignId, botId: id) }?.code == .notManaged)
            let listed = try await docker.listManagedContainers()
            #expect(!listed.contains { $0.id == foreignId })
            let after = try await client.inspectContainer(foreignId)
            #expect(after.state.running)
            #expect(after.restartCount == 0)
            let observed = try await docker.observe()
            #expect(observed.foreignNames["botmaker-\(id)"] == foreignId)
        }
    }

    @Test(.timeLimit(.minutes(2))) func anotherInstancesContainerIsNotOurs() async throws {
        let id = "inst-\(uniqueSuffix())"
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try await TestDocker.withClient(cleaning: id) { client in
            let mine = Self.service(client, instance: "a\(id)")
            let theirs = Self.service(client, instance: "b\(id)")
            _ = try await theirs.createContainer(botId: id, config: try Self.config(dir, id))
            let error = await containerError { try await mine.removeContainer(botId: id) }
            #expect(error?.code == .notManaged)
            #expect(error?.message.contains("belongs to botmaker instance b\(id)") == true)
            #expect(try await theirs.getContainerStatus(botId: id) != nil)
            #expect(try await mine.observe().managed.allSatisfy { !$0.name.contains(id) })
        }
    }

    @Test(.timeLimit(.minutes(3))) func missingSocketIsANetworkErrorNotAHang() async throws {
        let client = DockerClient(host: DockerHost(transport: .unixSocket(path: "/nonexistent/\(uniqueSuffix())/docker.sock")))
        let docker = DockerService(client: client)
        let error = await containerError { _ = try await docker.listManagedContainers() }
        #expect(error?.code == .networkError)
        #expect(error?.message.contains("No such file or directory") == true)
        try await client.shutdown()
    }

    @Test(.timeLimit(.minutes(3))) func refusedSocketIsANetworkError() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // A socket file nobody listens on: connect() gets ECONNREFUSED.
        let path = dir.file("dead.sock")
        let made = try await runProcess(["python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])", path])
        #expect(made.status == 0)
        let client = DockerClient(host: DockerHost(transport: .unixSocket(path: path)), deadlines: .init(short: 2))
        do {
            try await client.ping()
            Issue.record("ping through a dead socket succeeded")
        } catch {
            #expect(error.isUnreachable)
            #expect(wrapDockerError(error, botId: nil).code == .networkError)
        }
        try await client.shutdown()
    }

    @Test(.timeLimit(.minutes(3))) func versionIsNegotiatedWithinOurRange() async throws {
        try await TestDocker.withClient(cleaning: "version-\(uniqueSuffix())") { client in
            let negotiated = try await client.apiVersion()
            #expect(negotiated >= DockerClient.minimumAPIVersion)
            #expect(negotiated <= DockerClient.maximumAPIVersion)
            let version = try await client.version()
            #expect(!version.version.isEmpty)
            #expect(try await client.inspectImage(TestDocker.image).id.hasPrefix("sha256:"))
        }
    }

    /// The runtime's event stream: our containers' lifecycle in order, another instance's never, and it
    /// ends cleanly on cancel. Synchronised on the subscription and on the `destroy` event, not on time.
    @Test(.timeLimit(.minutes(2))) func eventStreamDeliversOurLifecycleOnlyAndEndsOnCancel() async throws {
        let id = "events-\(uniqueSuffix())"
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try await TestDocker.withClient(cleaning: id) { client in
            let docker = Self.service(client, instance: id)
            let other = Self.service(client, instance: "\(id)-other")
            let (connected, connection) = AsyncStream.makeStream(of: Void.self)
            let listener = Task {
                var seen: [String] = []
                for try await event in docker.events(onConnect: { connection.yield() }) {
                    #expect(event.botId == id, "another instance's event reached us: \(event)")
                    seen.append(event.action)
                    if event.action == "destroy" { break }
                }
                return seen
            }
            for await _ in connected { break }
            _ = try await other.createContainer(botId: id + "-x", config: try Self.config(dir, id + "-x"))
            try await other.removeContainer(botId: id + "-x")
            _ = try await docker.createContainer(botId: id, config: try Self.config(dir, id))
            try await docker.startContainer(botId: id)
            try await docker.removeContainer(botId: id)
            let seen = try await listener.valueCancellingWithTheWaiter
            #expect(seen.first == "create" && seen.last == "destroy", "\(seen)")
            #expect(Set(seen).isSuperset(of: ["create", "start", "die", "destroy"]), "\(seen)")

            // Cancelling a connected consumer of an idle stream ends it without an error.
            let (subscribed, subscription) = AsyncStream.makeStream(of: Void.self)
            let idle = Task { for try await _ in docker.events(onConnect: { subscription.yield() }) {} }
            for await _ in subscribed { break }
            idle.cancel()
            if case .failure(let error) = await idle.result { Issue.record("stream ended with \(error)") }
        }
    }

    /// A health check runs three `exec_*` events per check and container: the engine filters them out, so a fleet with
    /// health checks does not flood botmaker, while `health_status` still comes through.
    @Test(.timeLimit(.minutes(2)), .disabled(if: TestDocker.isPodman, Comment(rawValue: TestDocker.podmanHasNoHealthChecks)))
    func healthCheckExecsAreFilteredByTheEngine() async throws {
        let id = "execs-\(uniqueSuffix())"
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try await TestDocker.withClient(cleaning: id) { client in
            let docker = Self.service(client, instance: id)
            let (connected, connection) = AsyncStream.makeStream(of: Void.self)
            let listener = Task {
                var seen: [String] = []
                for try await event in docker.events(onConnect: { connection.yield() }) {
                    seen.append(event.action)
                    if event.action == "health_status" { break }
                }
                return seen
            }
            for await _ in connected { break }
            var config = try Self.config(dir, id)
            config.image = TestDocker.gatewayImage
            _ = try await docker.createContainer(botId: id, config: config)
            try await docker.startContainer(botId: id)
            let seen = try await listener.valueCancellingWithTheWaiter
            #expect(seen.contains("start") && seen.last == "health_status", "\(seen)")
            #expect(!seen.contains { $0.hasPrefix("exec") }, "a health check's exec events reached botmaker: \(seen)")
            try await docker.removeContainer(botId: id)
        }
    }
}
