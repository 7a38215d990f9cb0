import DockerEngine
import Foundation
import Logging

/// What an operator asks of one bot's container (`botmaker logs`, `exec`, `status --stats`): only ever of a container
/// that is ours, found by the bot's name.
extension DockerService {
    /// The bot's container as the console needs it, or nil when it has none.
    public struct ConsoleContainer: Sendable, Equatable {
        public var id: String
        public var state: ContainerState
        public var exitCode: Int?
        public var restartCount: Int
        public var memoryLimit: Int64?
        /// When its current (or last) run started, by the engine's clock.
        public var startedAt: Date?
    }

    public func consoleContainer(botId: String) async throws(ContainerError) -> ConsoleContainer? {
        guard let container = try await managedContainer(botId: botId, fallback: .observeFailed) else { return nil }
        let status = Self.status(of: container)
        return ConsoleContainer(id: container.id, state: status.state, exitCode: status.exitCode, restartCount: status.restartCount,
                                memoryLimit: container.hostConfig.memory.flatMap { $0 > 0 ? $0 : nil }, startedAt: status.startedAt)
    }

    /// The container's stdout and stderr, frame by frame, until the engine ends the stream.
    public func logs(containerId: String, _ options: DockerClient.LogOptions,
                     onFrame: (StreamFrame) async throws -> Void) async throws(ContainerError) {
        do { try await client.containerLogs(containerId, options, onFrame: onFrame) } catch {
            throw wrapDockerError(error, botId: nil, fallback: .observeFailed)
        }
    }

    /// The bot's logs from `options` on; with `options.follow`, until cancelled, carried on across a restart (after the
    /// last entry shown, or from the new run's start when none was), a recreate (the new container's logs from its
    /// start, after a `marker`) and a switch back to a container already followed (a rollback: after its last entry
    /// shown). `onFrame` gets each frame with the engine's timestamp removed unless `options.timestamps` asked for it.
    /// Begins with `container`, as ``consoleContainer(botId:)`` found it.
    public func followLogs(botId: String, from container: ConsoleContainer, _ options: DockerClient.LogOptions,
                           onFrame: (StreamFrame) async throws -> Void, marker: (String) async throws -> Void) async throws(ContainerError) {
        var current = container
        var request = options
        request.timestamps = true
        var shown: [String: LogResumePoint] = [:]
        var waitingSaid = false
        while true {
            let id = current.id
            var filter = shown[id, default: LogResumePoint()].resumedRead()
            do {
                try await logs(containerId: id, request) { frame in
                    let (stamp, payload) = LogTimestamp.split(frame.bytes)
                    if let stamp {
                        guard filter.isNew(stamp, frame.stream, payload) else { return }
                        shown[id, default: LogResumePoint()].shown(stamp, frame.stream, payload)
                    }
                    try await onFrame(options.timestamps || stamp == nil ? frame : StreamFrame(frame.stream, payload))
                }
            } catch {
                // Following, a broken stream (the engine restarting) is picked up again below, after the last line shown.
                guard options.follow, error.code == .networkError else { throw error }
            }
            guard options.follow else { return }
            // The engine ended the stream: the container stopped or is gone. Wait for it, or its successor, to run:
            // looked at once the engine has accepted a watch of the bot's container events, then at each event.
            let wakes = containerWakeups(botId: botId)
            defer { wakes.cancel() }
            for await _ in wakes.stream {
                // An engine slow to answer, or restarting, is waited for: a follower does not give up on a hiccup.
                let next: ConsoleContainer?
                do { next = try await consoleContainer(botId: botId) } catch {
                    guard error.code == .networkError else { throw error }
                    try? await Task.sleep(for: .seconds(1))
                    wakes.wake()
                    continue
                }
                // A new container once it has run (one that exits at once still has logs); the same one once it runs again.
                let hasRun = next.map { $0.state == .running || ($0.state != .created && $0.startedAt != nil) } ?? false
                if let next, next.id != current.id ? hasRun : next.state == .running {
                    if next.id == current.id, next.startedAt == current.startedAt {
                        // The same run, whose stream the engine ended (it broke, or Podman saw an earlier stop late):
                        // nothing changed for the reader, so no marker; a second's pause keeps an engine that keeps
                        // ending a live stream from being asked in a loop.
                        try? await Task.sleep(for: .seconds(1))
                    } else {
                        let what = next.id == current.id ? "was restarted"
                            : shown[next.id]?.stamp != nil
                            ? "is back on container \(next.id.prefix(12))" : "was recreated (container \(current.id.prefix(12)) → \(next.id.prefix(12)))"
                        try await wrapping { try await marker("-- botmaker: \(botId) \(what); its logs follow --") }
                    }
                    // After the last line shown of that container; a container followed before but with nothing shown
                    // yet, from its new run's start; a new container, from its start.
                    request.since = shown[next.id]?.stamp?.date.map { $0.addingTimeInterval(-0.001) }
                        ?? (next.id == current.id ? next.startedAt.map { $0.addingTimeInterval(-0.001) } : nil)
                    request.tail = nil
                    current = next
                    break
                }
                if next == nil, !waitingSaid {
                    waitingSaid = true
                    try await wrapping { try await marker("-- botmaker: \(botId) has no container now; waiting for one --") }
                }
            }
            if Task.isCancelled { return }
        }
    }

    /// Wake-ups for a follower waiting on `botId`'s container. Looks are cheap but not free, so they come from the
    /// engine: when it accepts a watch of the bot's container events (replaying the last seconds, so a start just before
    /// is not missed) and at each such event. A failed watch is tried again a second later, with a wake-up each time (an
    /// engine that refuses the watch is looked at once a second), and a wake-up every 10 s covers an event the engine
    /// never sends. Wake-ups not yet taken are merged into one.
    private func containerWakeups(botId: String) -> ContainerWakeups {
        let (stream, waker) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let filters = ["type": ["container"], "label": ["\(BotLabels.botId)=\(botId)"], "event": RuntimeEvent.stateActions]
        let client = client
        let watch = Task {
            while !Task.isCancelled {
                do {
                    let events = client.events(filters: filters, since: Date().addingTimeInterval(-5), onConnect: { waker.yield() })
                    for try await _ in events { waker.yield() }
                } catch {}
                try? await Task.sleep(for: .seconds(1))
                waker.yield()
            }
        }
        let safety = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(10))
                waker.yield()
            }
        }
        return ContainerWakeups(stream: stream, waker: waker, tasks: [watch, safety])
    }

    private func wrapping(_ body: () async throws -> Void) async throws(ContainerError) {
        do { try await body() } catch { throw wrapDockerError(error, botId: nil, fallback: .observeFailed) }
    }

    /// Runs `command` in the bot's `container` (as ``consoleContainer(botId:)`` found it), streaming its output; returns
    /// its exit code. Refuses a container that is not running, with its state.
    public func exec<Input: AsyncSequence & Sendable>(
        botId: String, container: ConsoleContainer, command: [String], stdin: Input?,
        onFrame: @escaping @Sendable (StreamFrame) async throws -> Void
    ) async throws(ContainerError) -> Int where Input.Element == [UInt8] {
        guard container.state == .running else {
            throw ContainerError(.notRunning, "bot \(botId) is not running (its container is \(container.state.rawValue)"
                                 + (container.exitCode.map { ", exit code \($0)" } ?? "") + ")", botId: botId)
        }
        do {
            let exec = try await client.createExec(container.id, command: command, stdin: stdin != nil)
            try await client.startExec(exec, stdin: stdin, onFrame: onFrame)
            // The stream ends when the process does; the engine records the exit code a moment later.
            for _ in 0..<100 {
                let state = try await client.inspectExec(exec)
                if !state.running, let code = state.exitCode { return code }
                try? await Task.sleep(for: .milliseconds(20))
            }
            throw ContainerError(.observeFailed, "the command's output ended but the engine still reports it running", botId: botId)
        } catch let error as ContainerError {
            throw error
        } catch {
            throw wrapDockerError(error, botId: botId, fallback: .startFailed)
        }
    }
}

/// Wake-ups of a waiting log follower, from the tasks that make them (``DockerService/containerWakeups(botId:)``).
struct ContainerWakeups: Sendable {
    let stream: AsyncStream<Void>
    let waker: AsyncStream<Void>.Continuation
    let tasks: [Task<Void, Never>]

    func wake() { waker.yield() }

    func cancel() {
        for task in tasks { task.cancel() }
        waker.finish()
    }
}

/// The time the engine puts before each log entry when asked: `2026-11-29T22:40:01.123456789Z ` (Docker, fixed width),
/// `2026-11-29T22:40:01Z ` or with an offset (Podman). Two of one shape compare as text, cheaply; others by time.
public struct LogTimestamp: Sendable, Comparable {
    public let text: String

    public init(text: String) { self.text = text }

    /// As text when both have one shape (the engines' usual case: Docker's fixed-width UTC, Podman's whole seconds in
    /// one zone); by time otherwise (the log file's zone changed, or a fraction was trimmed).
    public static func < (a: LogTimestamp, b: LogTimestamp) -> Bool {
        if a.text.utf8.count == b.text.utf8.count, a.zone.elementsEqual(b.zone) { return a.text < b.text }
        guard let x = a.date, let y = b.date else { return a.text < b.text }
        return x < y
    }

    /// `Z`, or the offset (`+01:00`).
    private var zone: Substring.UTF8View { text.hasSuffix("Z") ? text.suffix(1).utf8 : text.suffix(6).utf8 }

    /// The entry's timestamp and the entry without it; no timestamp when the entry does not start with one.
    public static func split(_ bytes: [UInt8]) -> (LogTimestamp?, [UInt8]) {
        guard let space = bytes.prefix(40).firstIndex(of: UInt8(ascii: " ")), space >= 20,
              bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":")
        else { return (nil, bytes) }
        return (LogTimestamp(text: String(decoding: bytes[..<space], as: UTF8.self)), Array(bytes[(space + 1)...]))
    }

    /// The time; parsed only when asked, since a burst has many entries.
    public var date: Date? { DockerTimestamp.parse(text) }
}

extension DockerService {
    /// A sample of each of `botIds`' running containers, `concurrency` at a time; bots without a running container (or
    /// whose sample failed) are left out. With `engineDelta` the CPU % is over about a second: Docker waits for a
    /// second sample and fills `precpu_stats` in (about 2 s, its collector ticks once a second); Podman answers at once
    /// and leaves them empty, so those bots are sampled again a second later (`BotSample/earlier`). Without it, the
    /// engine answers at its next tick and the caller compares with a sample of its own.
    public func samples(botIds: [String], engineDelta: Bool, concurrency: Int = 32) async -> [BotSample] {
        let first = await sampleRound(botIds.map { ($0, nil) }, engineDelta: engineDelta, concurrency: concurrency)
        let lacking = first.filter { engineDelta && ($0.stats.precpu.systemUsage ?? 0) == 0 }
        guard !lacking.isEmpty else { return first }
        try? await Task.sleep(for: .seconds(1))
        let again = await sampleRound(lacking.map { ($0.botId, $0) }, engineDelta: false, concurrency: concurrency)
        let byBot = Dictionary(again.map { ($0.botId, $0) }, uniquingKeysWith: { a, _ in a })
        return first.map { byBot[$0.botId] ?? $0 }
    }

    private func sampleRound(_ bots: [(String, BotSample?)], engineDelta: Bool, concurrency: Int) async -> [BotSample] {
        await withTaskGroup(of: BotSample?.self) { group in
            var pending = bots[...]
            var results: [BotSample] = []
            func next() -> Bool {
                guard let (botId, earlier) = pending.popFirst() else { return false }
                group.addTask {
                    guard var sample = await self.sample(botId: botId, engineDelta: engineDelta) else { return nil }
                    if let earlier, earlier.containerId == sample.containerId { sample.earlier = earlier.stats }
                    return sample
                }
                return true
            }
            for _ in 0..<max(1, concurrency) where !next() { break }
            while let result = await group.next() {
                if let result { results.append(result) }
                _ = next()
            }
            return results.sorted { $0.botId < $1.botId }
        }
    }

    private func sample(botId: String, engineDelta: Bool) async -> BotSample? {
        do {
            guard let container = try await consoleContainer(botId: botId), container.state == .running else { return nil }
            let stats = try await client.containerStats(container.id, oneShot: !engineDelta)
            return BotSample(botId: botId, containerId: container.id, stats: stats, restartCount: container.restartCount)
        } catch {
            logger.debug("no stats for the bot", metadata: ["bot.id": "\(botId)", "error": "\(error)"])
            return nil
        }
    }
}
