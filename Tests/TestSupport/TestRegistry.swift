import Foundation

/// A real registry for one test: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 and a free port, with
/// htpasswd (bcrypt) auth and its access log in a file. Docker treats 127.0.0.0/8 registries as insecure, so no TLS.
/// Images are pushed with the Docker CLI under a `DOCKER_CONFIG` of the test's own (never /root/.docker).
public final class TestRegistry: @unchecked Sendable {
    public let dir: TemporaryDirectory
    public let port: Int
    public let user = "botmaker"
    public let password: String
    private let process = Process()

    public var host: String { "127.0.0.1:\(port)" }
    /// A Docker config directory logged in to this registry (for pushes, and as botmaker's `--registry-config`).
    public var dockerConfig: String { dir.file("docker-config") }
    public var configJSON: String { (dockerConfig as NSString).appendingPathComponent("config.json") }
    public var logPath: String { dir.file("registry.log") }
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Requests the registry has logged (one access-log line each).
    public var requestCount: Int { log.components(separatedBy: "\n").filter { $0.contains("\"GET /v2") || $0.contains("\"HEAD /v2") }.count }

    public init() async throws {
        dir = try TemporaryDirectory("registry")
        password = "pw-\(UUID().uuidString)"
        let held = try HeldPort()
        port = held.port
        held.close()
        let htpasswd = try await runProcess(["htpasswd", "-Bbn", user, password])
        guard htpasswd.status == 0 else { throw TestFailure("htpasswd failed: \(htpasswd.stderr)") }
        try htpasswd.stdout.write(toFile: dir.file("htpasswd"), atomically: true, encoding: .utf8)
        let config = """
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: \(dir.file("data"))
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
            auth:
              htpasswd:
                realm: botmaker-test
                path: \(dir.file("htpasswd"))
            """
        try config.write(toFile: dir.file("config.yml"), atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        process.arguments = ["serve", dir.file("config.yml")]
        process.standardOutput = logHandle
        process.standardError = logHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try await eventually(timeout: 20, "the registry answers") {
            let answer = try await runProcess(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://\(self.host)/v2/"])
            return answer.stdout == "401"
        }
        try FileManager.default.createDirectory(atPath: dockerConfig, withIntermediateDirectories: true)
        let login = try await runProcess(["docker", "--config", dockerConfig, "login", host, "-u", user, "--password-stdin"], stdin: password)
        guard login.status == 0 else { throw TestFailure("docker login failed: \(login.stderr)") }
    }

    /// Tags a local image as `host/repository:tag`, pushes it, and removes the local tag (so the engine must pull it).
    @discardableResult
    public func push(_ localImage: String, as repository: String, tag: String) async throws -> String {
        let reference = "\(host)/\(repository):\(tag)"
        for step in [["tag", localImage, reference], ["--config", dockerConfig, "push", reference], ["rmi", reference]] {
            let output = try await runProcess(["docker"] + step)
            guard output.status == 0 else { throw TestFailure("docker \(step.joined(separator: " ")) failed: \(output.stderr)") }
        }
        return reference
    }

    /// Pushes an image with content of its own (`localImage` plus a label, and `randomBytes` of random data in a layer
    /// of its own when asked), so that its ID, and its layer, are unique to the test. The local copy is removed.
    @discardableResult
    public func pushVariant(of localImage: String, label: String, randomBytes: Int = 0, as repository: String, tag: String) async throws -> String {
        let variant = "botmaker-test/variant-\(label.lowercased()):latest"
        let context = dir.file("context-\(label)")
        try FileManager.default.createDirectory(atPath: context, withIntermediateDirectories: true)
        var dockerfile = "FROM \(localImage)\nLABEL botmaker.test.variant=\(label)\n"
        if randomBytes > 0 {
            var generator = SystemRandomNumberGenerator()
            try Data((0..<randomBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: context + "/blob"))
            dockerfile += "COPY blob /blob\n"
        }
        try dockerfile.write(toFile: context + "/Dockerfile", atomically: true, encoding: .utf8)
        let built = try await runProcess(["docker", "build", "-q", "-t", variant, context])
        guard built.status == 0 else { throw TestFailure("docker build failed: \(built.stderr)") }
        let reference = try await push(variant, as: repository, tag: tag)
        _ = try await runProcess(["docker", "rmi", variant])
        return reference
    }

    /// A config.json for the same registry with another password.
    public func wrongPasswordConfig() throws -> String {
        let auth = Data("\(user):wrong-\(password.suffix(4))".utf8).base64EncodedString()
        let path = dir.file("wrong.json")
        try #"{"auths":{"\#(host)":{"auth":"\#(auth)"}}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit {
        stop()
        dir.remove()
    }
}
