import BotMaker
import DockerEngine
import Foundation
import Logging

extension ContainerRuntime {
    /// Creates a container for a config with only literal environment values and no published ports.
    public func createContainer(botId: String, config: ContainerConfig) async throws(ContainerError) -> String {
        try await createContainer(botId: botId, config: config, launch: ContainerLaunch(environment: config.environment))
    }
}

/// Access to the real Docker engine for integration tests.
///
/// When `BOTMAKER_REQUIRE_DOCKER` is set (as in CI), tests always run and fail if the engine is
/// unreachable. Otherwise they are skipped on a machine without a running engine.
public enum TestDocker {
    public static let image = ProcessInfo.processInfo.environment["BOTMAKER_TEST_IMAGE"] ?? "botmaker-test/busybox:latest"
    /// The OpenClaw gateway stand-in: httpd on 18789 as uid 1000, a HEALTHCHECK, state under /home/node/.openclaw.
    public static let gatewayImage = ProcessInfo.processInfo.environment["BOTMAKER_GATEWAY_IMAGE"] ?? "botmaker-test/gateway:latest"

    /// The engine under test is Podman's Docker-compatible API (`BOTMAKER_TEST_ENGINE=podman`, set by scripts/test for
    /// its Podman pass, with `DOCKER_HOST` at Podman's socket).
    public static var isPodman: Bool { ProcessInfo.processInfo.environment["BOTMAKER_TEST_ENGINE"] == "podman" }

    /// Why a test that needs health checks is not run on Podman: it runs them from systemd timers, and this machine has no
    /// systemd (docs/podman.md).
    public static let podmanHasNoHealthChecks = "not run on Podman: Podman runs health checks from systemd timers, and this machine has no systemd"

    /// Binds as Docker reports them: Podman adds its default mount options.
    public static func binds(_ binds: [String]?) -> [String] {
        (binds ?? []).map { $0.replacingOccurrences(of: ",rprivate,rbind", with: "") }
    }

    /// The networks a container is attached to, by name, or its network mode when it has none (read with the docker CLI).
    public static func networks(of container: String) async throws -> [String] {
        let output = try await runProcess(["docker", "inspect", "-f",
                                           "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{else}}{{.HostConfig.NetworkMode}}{{end}}", container])
        return output.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }

    public static var required: Bool {
        let value = ProcessInfo.processInfo.environment["BOTMAKER_REQUIRE_DOCKER"] ?? ""
        return !value.isEmpty && value != "0"
    }

    /// Whether Docker tests should run: always when required, else only when the socket answers.
    public static var shouldRun: Bool {
        required || socketAnswers()
    }

    static func socketAnswers() -> Bool {
        guard let host = try? DockerHost.fromEnvironment(), case .unixSocket(let path) = host.transport else { return true }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in bytes.enumerated() { buffer[i] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }

    /// Runs `body` with a client on the engine from `DOCKER_HOST`, then force-removes every container
    /// whose name contains `prefix`, whatever happened in `body`.
    public static func withClient<T: Sendable>(
        cleaning prefix: String,
        observer: (@Sendable (DockerClient.RequestRecord) -> Void)? = nil,
        _ body: (DockerClient) async throws -> T
    ) async throws -> T {
        let client = DockerClient(host: try DockerHost.fromEnvironment(), observer: observer)
        let result: Result<T, any Error>
        do {
            try await ensureImage(client)
            result = .success(try await body(client))
        } catch {
            result = .failure(error)
        }
        await removeContainers(matching: prefix)
        try? await client.shutdown()
        return try result.get()
    }

    /// Removes the references (tags, and the digests bots were pinned to) of the images pulled from a test registry at
    /// `host` (`127.0.0.1:PORT`): untagged only, never forced by ID, since the same content is often the shared test
    /// images (and other tests run at the same time). Call it once the containers that use them are gone.
    public static func removeImageReferences(from host: String) async {
        let listed = try? await runProcess(["docker", "images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}",
                                            "--filter", "reference=\(host)/*/*"])
        var references = Set<String>()
        for line in (listed?.stdout ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count == 3 else { continue }
            if fields[1] != "<none>" { references.insert("\(fields[0]):\(fields[1])") }
            if fields[2] != "<none>" { references.insert("\(fields[0])@\(fields[2])") }
        }
        for reference in references { _ = try? await runProcess(["docker", "rmi", reference]) }
    }

    /// Force-removes every container whose name contains `fragment`, managed or not, and the instance claims
    /// (named volumes `botmaker.claim.<instance>`) whose name contains it.
    public static func removeContainers(matching fragment: String) async {
        if let volumes = try? await runProcess(["docker", "volume", "ls", "-q", "--filter", "name=botmaker.claim."]) {
            for volume in volumes.stdout.split(separator: "\n").map(String.init) where volume.contains(fragment) {
                _ = try? await runProcess(["docker", "volume", "rm", "-f", volume])
            }
        }
        guard let host = try? DockerHost.fromEnvironment() else { return }
        let client = DockerClient(host: host)
        if let containers = try? await client.listContainers(all: true, filters: ["name": [fragment]]) {
            for container in containers where container.name.contains(fragment) {
                try? await client.removeContainer(container.id, force: true)
            }
        }
        try? await client.shutdown()
    }

    /// Builds the busybox test image with the project's script if it is missing.
    public static func ensureImage(_ client: DockerClient) async throws {
        if (try? await client.inspectImage(image)) != nil { return }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let output = try await runProcess(["bash", "-c", "source scripts/lib.sh && ensure_test_image"], currentDirectory: root.path)
        guard output.status == 0 else {
            throw TestFailure("cannot build test image \(image): \(output.stderr)")
        }
    }

    /// Creates a container with the Docker CLI that botmaker does not manage.
    @discardableResult
    public static func runForeign(name: String, labels: [String: String] = [:]) async throws -> String {
        var arguments = ["docker", "run", "-d", "--name", name]
        for (key, value) in labels { arguments += ["--label", "\(key)=\(value)"] }
        arguments.append(image)
        let output = try await runProcess(arguments)
        guard output.status == 0 else { throw TestFailure("docker run \(name) failed: \(output.stderr)") }
        return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A setup step that could not be done.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Counts Docker requests by operation, for "quiet when converged" checks.
public final class RequestCounter: Sendable {
    private let counts = LockedBox<[String: Int]>([:])

    public init() {}

    public var observer: @Sendable (DockerClient.RequestRecord) -> Void {
        { [counts] record in counts.update { $0[record.operation, default: 0] += 1 } }
    }

    public var snapshot: [String: Int] { counts.value }
    public func reset() { counts.update { $0 = [:] } }
}

/// A tiny lock-protected box.
public final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()
    public init(_ value: Value) { stored = value }
    public var value: Value { lock.withLock { stored } }
    public func update(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
