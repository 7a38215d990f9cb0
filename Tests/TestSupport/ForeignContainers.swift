import Foundation

/// Containers botmaker must never touch: created with the Docker CLI, without our labels (some with a
/// forged `botmaker.bot-id` but no `botmaker.managed`), some named like our bots. `verify()` checks,
/// through the Docker CLI rather than our code, that each one still exists unchanged.
public struct ForeignContainers: Sendable {
    public struct Entry: Sendable {
        public var name: String
        public var id: String
        public var running: Bool
    }

    public let entries: [Entry]

    /// Creates `count` containers named `foreign-<tag>-<i>`, plus one named `botmaker-<id>` for each colliding id.
    /// Every other one is started; the rest stay `created`.
    public static func make(tag: String, count: Int, colliding: [String]) async throws -> ForeignContainers {
        var names = (0..<count).map { "foreign-\(tag)-\($0)" }
        names += colliding.map { "botmaker-\($0)" }
        var entries: [Entry] = []
        for (index, name) in names.enumerated() {
            let running = index % 2 == 0
            var arguments = ["docker", running ? "run" : "create"]
            if running { arguments.append("-d") }
            arguments += ["--name", name, "--label", "test.foreign=\(tag)"]
            if index % 3 == 0 { arguments += ["--label", "botmaker.bot-id=\(tag)-forged"] }
            arguments.append(TestDocker.image)
            let output = try await runProcess(arguments)
            guard output.status == 0 else { throw TestFailure("cannot create \(name): \(output.stderr)") }
            entries.append(Entry(name: name, id: output.stdout.trimmingCharacters(in: .whitespacesAndNewlines), running: running))
        }
        return ForeignContainers(entries: entries)
    }

    /// Problems found: a container gone, replaced, stopped, started or restarted.
    public func verify() async throws -> [String] {
        var problems: [String] = []
        for entry in entries {
            let output = try await runProcess(["docker", "inspect", "-f", "{{.Id}} {{.State.Running}} {{.RestartCount}}", entry.name])
            guard output.status == 0 else { problems.append("\(entry.name) is gone"); continue }
            let fields = output.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            if fields[0] != entry.id { problems.append("\(entry.name) was replaced") }
            if fields[1] != String(entry.running) { problems.append("\(entry.name) running changed to \(fields[1])") }
            if fields[2] != "0" { problems.append("\(entry.name) was restarted") }
        }
        return problems
    }
}
