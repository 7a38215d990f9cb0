import BotMaker
import DockerEngine
import Foundation

/// A botmaker "installation" for one test: a temp database and secrets dir, and an instance name of
/// its own so tests running at once never see each other's containers. Bot ids carry `tag`.
public struct Deployment: Sendable {
    public let dir: TemporaryDirectory
    public let tag: String
    public var instance: String { "t\(tag)" }
    public var db: String { dir.file("bots.db") }
    public var secretsDir: String { dir.file("secrets") }

    public init(_ prefix: String) throws {
        tag = "\(prefix)\(uniqueSuffix())"
        dir = try TemporaryDirectory(tag)
    }

    /// A bot id unique to this deployment.
    public func bot(_ name: String) -> String { "\(tag)-\(name)" }

    public var dataDir: String { dir.file("data") }

    public var commonArguments: [String] { ["--db", db, "--secrets-dir", secretsDir, "--data-dir", dataDir, "--instance", instance] }

    /// Runs `botmaker <arguments>` against this deployment.
    @discardableResult
    public func botmaker(_ arguments: [String], stdin: String? = nil, environment: [String: String]? = nil) async throws -> ProcessOutput {
        try await runProcess([botmakerBinary] + arguments + commonArguments, stdin: stdin, environment: environment)
    }

    /// Runs SQL with the real sqlite3 shell; returns its output.
    @discardableResult
    public func sqlite(_ sql: String) async throws -> String {
        let output = try await runProcess(["sqlite3", "-cmd", ".timeout 10000", db, sql])
        guard output.status == 0 else { throw TestFailure("sqlite3 failed: \(output.stderr)") }
        return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Inserts running bots using the test image.
    public func insertBots(_ names: [String], env: String = #"["GREETING=hello"]"#, state: String = "running") async throws {
        let values = names.map { "('\(bot($0))', '\(TestDocker.image)', '\(env)', '\(state)')" }.joined(separator: ",")
        try await sqlite("INSERT INTO bots (id, image, environment, desired_state) VALUES \(values)")
    }

    /// One column of `bot_status` for a bot.
    public func status(_ name: String, _ column: String) async throws -> String {
        try await sqlite("SELECT \(column) FROM bot_status WHERE bot_id = '\(bot(name))'")
    }

    /// This deployment's containers, by name.
    public func containers(_ client: DockerClient) async throws -> [String: ContainerSummary] {
        let list = try await client.listContainers(all: true, filters: ["label": ["botmaker.instance=\(instance)"]])
        return Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public func remove() { dir.remove() }

    /// Runs `body` with a new deployment whose database is migrated; its containers and directory go afterwards.
    public static func withMigrated(_ prefix: String, _ body: (Deployment, DockerClient) async throws -> Void) async throws {
        let deployment = try Deployment(prefix)
        defer { deployment.remove() }
        try await TestDocker.withClient(cleaning: deployment.tag) { client in
            let migrated = try await deployment.botmaker(["migrate"])
            guard migrated.status == 0 else { throw TestFailure("migrate failed: \(migrated.stderr)") }
            try await body(deployment, client)
        }
    }
}
