import Foundation

/// The engine's image events (`pull`, `tag`, …) while a test runs, from a live `docker events` subscription:
/// synchronised by marker tags, never by time (the engine's replay buffer holds only 256 events, too few when other
/// tests run at the same time).
public final class ImageEvents: @unchecked Sendable {
    private let process = Process()
    private let path: String
    private let image: String

    /// Starts listening; returns once the subscription is known to be live (a marker's `tag` event came through).
    public init(in dir: TemporaryDirectory, markerImage: String) async throws {
        path = dir.file("image-events-\(UUID().uuidString).log")
        image = markerImage
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        process.executableURL = URL(fileURLWithPath: "/usr/bin/docker")
        process.arguments = ["events", "--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}"]
        process.standardOutput = handle
        process.standardError = FileHandle.nullDevice
        try process.run()
        try await mark()
    }

    /// Lines `action id name` seen so far (a pull's id is the reference; a tag's name is the new tag).
    public var lines: [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Tags a marker and waits for its event: every event the engine emitted before it has been seen.
    public func mark() async throws {
        let marker = "botmaker-test/marker-\(UUID().uuidString.lowercased().prefix(12)):1"
        while true {
            _ = try await runProcess(["docker", "tag", image, marker])
            do {
                try await eventually(timeout: 2, "the marker's tag event") { self.lines.contains { $0.hasPrefix("tag ") && $0.hasSuffix(marker) } }
                break
            } catch {
                if !process.isRunning { throw TestFailure("docker events ended") }
            }
        }
        _ = try await runProcess(["docker", "rmi", marker])
    }

    /// Pulls of `reference` seen up to now (synchronised with a marker first).
    public func pulls(of reference: String) async throws -> Int {
        try await mark()
        return lines.filter { $0.hasPrefix("pull \(reference) ") || $0 == "pull \(reference)" }.count
    }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
