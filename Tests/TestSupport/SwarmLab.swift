import DockerEngine
import Foundation

/// The 3-node Swarm that `scripts/swarm-lab up` runs on this machine (one dockerd per network namespace). Tests read
/// its env file; `scripts/test` starts it before the tests and stops it afterwards.
public struct SwarmLab: Sendable {
    public struct Node: Sendable {
        public var index: Int
        public var host: String
        public var id: String
        public var hostname: String
    }

    public let manager: String
    public let nodes: [Node]

    public static let envFile = ProcessInfo.processInfo.environment["SWARM_LAB_ENV"] ?? "/run/swlab/env"
    public static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/swarm-lab").path

    /// The running lab, or nil when there is none and Docker tests are not required (with `BOTMAKER_REQUIRE_DOCKER=1` a
    /// missing lab is a failure).
    public static func current() throws -> SwarmLab? {
        guard let text = try? String(contentsOfFile: envFile, encoding: .utf8) else {
            if TestDocker.required { throw TestFailure("no Swarm lab (\(envFile) is missing): run `scripts/swarm-lab up`") }
            return nil
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...]).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        }
        guard let manager = values["SWARM_LAB_MANAGER"], let count = values["SWARM_LAB_COUNT"].flatMap(Int.init) else {
            throw TestFailure("\(envFile) lacks SWARM_LAB_MANAGER or SWARM_LAB_COUNT")
        }
        let nodes = (1...count).map { index in
            Node(index: index, host: values["SWARM_LAB_NODE_\(index)_HOST"] ?? "", id: values["SWARM_LAB_NODE_\(index)_ID"] ?? "",
                 hostname: values["SWARM_LAB_NODE_\(index)_HOSTNAME"] ?? "")
        }
        return SwarmLab(manager: manager, nodes: nodes)
    }

    public func node(id: String) -> Node? { nodes.first { $0.id == id } }
    public func node(hostname: String) -> Node? { nodes.first { $0.hostname == hostname } }

    /// The environment that makes botmaker drive this lab.
    public var environment: [String: String] {
        ["DOCKER_HOST": manager, "BOTMAKER_ENGINE": "swarm", "BOTMAKER_SWARM_ALLOW_PRIVILEGE_ESCALATION": "1"]
    }

    /// `docker -H <manager> <arguments>` (the witness); throws on a non-zero exit.
    @discardableResult
    public func docker(_ arguments: [String], host: String? = nil) async throws -> String {
        let output = try await runProcess(["docker", "-H", host ?? manager] + arguments)
        guard output.status == 0 else { throw TestFailure("docker \(arguments.joined(separator: " ")): \(output.stderr)") }
        return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `scripts/swarm-lab <arguments>`.
    @discardableResult
    public func script(_ arguments: [String]) async throws -> String {
        let output = try await runProcess(["bash", Self.script] + arguments)
        guard output.status == 0 else { throw TestFailure("swarm-lab \(arguments.joined(separator: " ")): \(output.stdout) \(output.stderr)") }
        return output.stdout
    }

    /// A client on the manager.
    public func withClient<T: Sendable>(_ body: (DockerClient) async throws -> T) async throws -> T {
        try await DockerClient.withClient(host: try DockerHost(parsing: manager), body)
    }

    /// Removes every service, secret, network and claim of `instance` (whatever a test left).
    public func clean(instance: String) async {
        let filter = "label=botmaker.instance=\(instance)"
        for kind in ["service", "secret", "network", "config"] {
            let ids = (try? await docker([kind, "ls", "-q", "--filter", filter]))?.split(separator: "\n").map(String.init) ?? []
            if !ids.isEmpty { _ = try? await docker([kind, "rm"] + ids) }
        }
        _ = try? await docker(["config", "rm", "botmaker.claim.\(instance)"])
    }
}
