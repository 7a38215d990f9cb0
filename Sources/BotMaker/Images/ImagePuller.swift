import Foundation
import Logging

/// Pulls images outside the workers: one pull per image at a time (every bot waiting for it proceeds when it lands),
/// at most `concurrency` pulls at once, each bounded by `timeout`. A worker that needs a pull registers its key and
/// goes on with other bots; the key is queued again when the pull ends, and its next look takes the outcome.
public actor ImagePuller {
    /// What a finished pull left for one waiting key.
    public enum Outcome: Sendable {
        case pulled
        case failed(ContainerError)
    }

    /// Layers seen so far: bytes done and total per layer.
    public struct Progress: Sendable, Equatable {
        public var done: Int64 = 0
        public var total: Int64 = 0

        /// `pulling 42% of 260 MB`, or `pulling` before sizes are known.
        public var description: String {
            guard total > 0 else { return "pulling" }
            let percent = Int((Double(done) / Double(total) * 100).rounded(.down))
            return "pulling \(min(100, percent))% of \(Self.megabytes(total))"
        }

        static func megabytes(_ bytes: Int64) -> String {
            bytes >= 10_000_000 ? "\(bytes / 1_000_000) MB" : String(format: "%.1f MB", Double(bytes) / 1e6)
        }
    }

    private let runtime: any ContainerRuntime
    private let credentials: RegistryCredentialStore
    private let concurrency: Int
    private let timeout: TimeInterval
    private let metrics: ReconcilerMetrics
    private let logger: Logger
    /// Called with the keys to queue again when a pull ends.
    private let onFinished: @Sendable ([WorkKey]) -> Void
    /// Called now and then with the keys waiting for a pull and its progress, for `status`.
    private let onProgress: @Sendable ([WorkKey], String) -> Void
    /// Called after each successful pull (botmaker records what it pulled, for `images prune`).
    private let onPulled: @Sendable (ImageReference) async -> Void

    private var waiting: [String: Set<WorkKey>] = [:]
    private var references: [String: ImageReference] = [:]
    private var layers: [String: [String: (Int64, Int64)]] = [:]
    private var lastReported: [String: ContinuousClock.Instant] = [:]
    /// The outcome of the last pull each key waited for, with that pull's key.
    private var outcomes: [WorkKey: (pullKey: String, outcome: Outcome)] = [:]
    private var queued: [String] = []
    private var active = 0
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var completionWaiters: [String: [CheckedContinuation<ContainerError?, Never>]] = [:]

    public init(runtime: any ContainerRuntime, credentials: RegistryCredentialStore = .init(), concurrency: Int = 2, timeout: TimeInterval = 600,
                metrics: ReconcilerMetrics = .init(), logger: Logger, onFinished: @escaping @Sendable ([WorkKey]) -> Void = { _ in },
                onProgress: @escaping @Sendable ([WorkKey], String) -> Void = { _, _ in },
                onPulled: @escaping @Sendable (ImageReference) async -> Void = { _ in }) {
        self.runtime = runtime
        self.credentials = credentials
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.metrics = metrics
        self.logger = logger
        self.onFinished = onFinished
        self.onProgress = onProgress
        self.onPulled = onPulled
    }

    /// The outcome of the pull of `reference` that `key` waited for (nil when it waited for none, or it is still
    /// running). An outcome of another image's pull is dropped. It stays until ``clearOutcome(for:)``: a bot that
    /// must still wait (an update slot) keeps it, instead of pulling again.
    public func outcome(for key: WorkKey, reference: ImageReference) -> Outcome? {
        guard let stored = outcomes[key] else { return nil }
        guard stored.pullKey == reference.pullKey else {
            outcomes[key] = nil
            return nil
        }
        return stored.outcome
    }

    public func clearOutcome(for key: WorkKey) {
        outcomes[key] = nil
    }

    /// Asks for `reference` to be pulled for `key`: joins the pull in progress or queues a new one. Returns what the
    /// bot waits for (`pulling …` or `waiting for a pull slot`).
    @discardableResult
    public func request(_ reference: ImageReference, for key: WorkKey) -> String {
        let pullKey = reference.pullKey
        if waiting[pullKey] != nil {
            waiting[pullKey]?.insert(key)
            return status(of: pullKey)
        }
        waiting[pullKey] = [key]
        references[pullKey] = reference
        if active < concurrency {
            start(pullKey)
        } else {
            queued.append(pullKey)
        }
        return status(of: pullKey)
    }

    /// Pulls `reference` (joining a pull in progress) and returns when it ends: nil on success, else the error. For
    /// update checks, which wait for the new image before queueing the bots that use it.
    public func pull(_ reference: ImageReference) async -> ContainerError? {
        let pullKey = reference.pullKey
        return await withCheckedContinuation { continuation in
            completionWaiters[pullKey, default: []].append(continuation)
            if waiting[pullKey] == nil {
                waiting[pullKey] = []
                references[pullKey] = reference
                if active < concurrency { start(pullKey) } else { queued.append(pullKey) }
            }
        }
    }

    /// What bots waiting for the pull of `pullKey` wait for.
    public func status(of pullKey: String) -> String {
        guard let reference = references[pullKey] else { return "pulling" }
        if queued.contains(pullKey) { return "a pull slot for \(reference)" }
        var progress = Progress()
        for (done, total) in (layers[pullKey] ?? [:]).values {
            progress.done += done
            progress.total += total
        }
        return "\(progress.description) (\(reference))"
    }

    /// What the pulls under way are at (`pulling 42% of 260 MB (ghcr.io/openclaw/openclaw:latest)`), for a live line.
    public var activePulls: [String] {
        references.keys.filter { !queued.contains($0) && waiting[$0] != nil }.sorted().map { status(of: $0) }
    }

    /// Returns once no pull is running or queued.
    public func waitUntilIdle() async {
        if active == 0 && queued.isEmpty { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    public var isIdle: Bool { active == 0 && queued.isEmpty }

    private func start(_ pullKey: String) {
        guard let reference = references[pullKey] else { return }
        active += 1
        let runtime = self.runtime, credentials = self.credentials, timeout = self.timeout, logger = self.logger
        // Detached: the pull (and a credential helper it may run) never runs on this actor.
        Task.detached {
            let started = ContinuousClock.now
            var failure: ContainerError?
            do {
                let auth: String?
                do { auth = try await credentials.lookUp(reference.registry)?.header } catch {
                    throw ContainerError(.authFailed, "cannot read registry credentials: \((error as? RegistryCredentialError)?.message ?? "\(error)")")
                }
                try await runtime.pullImage(reference, auth: auth, timeout: timeout) { [weak self] event in
                    guard let self else { return }
                    Task { await self.record(event, for: pullKey) }
                }
            } catch let error as ContainerError {
                failure = error
            } catch {
                failure = ContainerError(.pullFailed, "\(error)")
            }
            let seconds = (ContinuousClock.now - started).seconds
            if let failure {
                logger.warning("pull failed", metadata: ["image": "\(reference)", "error.code": "\(failure.code.rawValue)", "error.message": "\(failure.message)"])
            } else {
                logger.info("pulled", metadata: ["image": "\(reference)", "seconds": "\(String(format: "%.3f", seconds))"])
            }
            await self.finish(pullKey, failure: failure, seconds: seconds)
        }
    }

    private func record(_ event: PullEvent, for pullKey: String) {
        guard waiting[pullKey] != nil, let layer = event.layer, let total = event.total, total > 0 else { return }
        layers[pullKey, default: [:]][layer] = (min(event.current ?? 0, total), total)
        if event.status == "Download complete" || event.status == "Pull complete" || event.status == "Already exists" {
            layers[pullKey]?[layer] = (total, total)
        }
        let now = ContinuousClock.now
        if let last = lastReported[pullKey], now - last < .seconds(1) { return }
        lastReported[pullKey] = now
        onProgress(Array(waiting[pullKey] ?? []), status(of: pullKey))
    }

    private func finish(_ pullKey: String, failure: ContainerError?, seconds: Double) async {
        if failure == nil, let reference = references[pullKey] { await onPulled(reference) }
        active -= 1
        metrics.pulled(result: failure?.code.rawValue ?? "ok", seconds: seconds)
        let keys = Array(waiting.removeValue(forKey: pullKey) ?? [])
        references[pullKey] = nil
        layers[pullKey] = nil
        lastReported[pullKey] = nil
        for key in keys {
            if var failure {
                failure.botId = key.botId
                outcomes[key] = (pullKey, .failed(failure))
            } else {
                outcomes[key] = (pullKey, .pulled)
            }
        }
        while active < concurrency, !queued.isEmpty { start(queued.removeFirst()) }
        for waiter in completionWaiters.removeValue(forKey: pullKey) ?? [] { waiter.resume(returning: failure) }
        onFinished(keys)
        if active == 0 && queued.isEmpty {
            let waiters = idleWaiters
            idleWaiters = []
            for waiter in waiters { waiter.resume() }
        }
    }
}

/// One line of an engine's pull progress, in engine-neutral terms.
public struct PullEvent: Sendable {
    public var status: String?
    public var layer: String?
    public var current: Int64?
    public var total: Int64?

    public init(status: String? = nil, layer: String? = nil, current: Int64? = nil, total: Int64? = nil) {
        self.status = status
        self.layer = layer
        self.current = current
        self.total = total
    }
}
