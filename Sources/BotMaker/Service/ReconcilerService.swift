import DockerEngine
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The long-running controller (`botmaker run`): one reconcile loop fed by a resync timer, database
/// edits (`PRAGMA data_version`), Docker events and backoff deadlines. Passes never overlap and bursts
/// coalesce. On graceful shutdown no new pass or action starts; the running ones finish.
public final class ReconcilerService: Service, Sendable {
    public struct Settings: Sendable {
        public var resyncInterval: Duration = .seconds(30)
        public var pollInterval: Duration = .milliseconds(200)
        /// First delay before reconnecting a broken event stream; doubles up to `reconnectCap`.
        public var reconnectBase: Duration = .milliseconds(500)
        public var reconnectCap: Duration = .seconds(30)
        public init() {}
    }

    public let reconciler: Reconciler
    public let settings: Settings
    public let metrics: ReconcilerMetrics
    private let logger: Logger
    let triggers = TriggerQueue()
    private let wakeAt = NIOLockedValueBox<Date?>(nil)

    public init(reconciler: Reconciler, settings: Settings = .init(), metrics: ReconcilerMetrics = .init(), logger: Logger) {
        self.reconciler = reconciler
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    /// The pending backoff wake-up, if any.
    var pendingWake: Date? {
        get { wakeAt.withLockedValue { $0 } }
        set { wakeAt.withLockedValue { $0 = newValue } }
    }

    public func run() async throws {
        logger.info("reconciler started", metadata: [
            "resync.seconds": "\(settings.resyncInterval)", "poll.seconds": "\(settings.pollInterval)",
        ])
        triggers.fire(.startup)
        let triggers = self.triggers
        let timer = ResyncTimer(every: settings.resyncInterval) { triggers.fire(.resync) }
        defer { timer.cancel() }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.pollDatabaseAndDeadlines() }
            group.addTask { await self.watchDockerEvents() }
            for await trigger in triggers.stream.cancelOnGracefulShutdown() {
                await runPass(trigger)
            }
            group.cancelAll()
        }
        logger.info("reconciler stopped")
    }

    /// One full pass; never throws: failures are recorded and the loop goes on.
    func runPass(_ trigger: PassTrigger) async {
        let started = ContinuousClock.now
        var result = "ok"
        do {
            let pass = try await reconciler.plan()
            let report = await reconciler.apply(pass)
            for outcome in report.results {
                metrics.action(kind: outcome.action.kind.rawValue, result: outcome.succeeded ? "ok" : "error")
            }
            if !report.failures.isEmpty { result = "error" } else if pass.plan.actions.isEmpty && pass.plan.statusUpdates.isEmpty { result = "noop" }
            let wake = WakeSchedule.nextWake(plan: pass.plan, statuses: pass.snapshot.statuses, results: report.results, now: reconciler.now())
            pendingWake = wake
            recordBotGauges(pass, report: report)
            if !pass.plan.actions.isEmpty {
                logger.info("pass done", metadata: [
                    "trigger": "\(trigger.rawValue)", "actions": "\(report.results.count)", "failures": "\(report.failures.count)",
                ])
            }
        } catch {
            result = "error"
            let wrapped = wrapDockerError(error, botId: nil)
            if wrapped.code == .networkError {
                await reconciler.recordUnreachable(wrapped)
                logger.warning("Docker unreachable; will retry", metadata: ["error.code": "\(wrapped.code.rawValue)", "error.message": "\(wrapped.message)"])
            } else {
                logger.error("pass failed", metadata: ["error": "\(error)"])
            }
        }
        let elapsed = ContinuousClock.now - started
        metrics.pass(result: result, trigger: trigger, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    private func recordBotGauges(_ pass: Reconciler.PlannedPass, report: Reconciler.PassReport) {
        let actual = Dictionary(pass.observed.managed.map { ($0.botId, $0.state.rawValue) }, uniquingKeysWith: { a, _ in a })
        var counts: [[String]: Int] = [:]
        for row in pass.snapshot.bots {
            counts[[row.desiredState ?? "invalid", actual[row.id] ?? "absent"], default: 0] += 1
        }
        var inError = Set(pass.snapshot.statuses.values.filter { $0.lastErrorCode != nil }.map(\.botId))
        for status in pass.plan.statusUpdates {
            if status.lastErrorCode == nil { inError.remove(status.botId) } else { inError.insert(status.botId) }
        }
        for outcome in report.results where !outcome.action.isOrphan {
            if outcome.succeeded { inError.remove(outcome.action.botId) } else { inError.insert(outcome.action.botId) }
        }
        metrics.bots(byState: counts, inError: inError.count)
    }

    /// Polls `PRAGMA data_version` on the store's own connection (so our own writes never wake us)
    /// and fires the backoff wake-up when its time has come.
    func pollDatabaseAndDeadlines() async {
        var last = try? await reconciler.store.dataVersion()
        while !Task.isCancelled {
            do { try await Task.sleep(for: settings.pollInterval) } catch { return }
            if let version = try? await reconciler.store.dataVersion(), version != last {
                last = version
                triggers.fire(.database)
            }
            let now = reconciler.now()
            let due = wakeAt.withLockedValue { wake -> Bool in
                guard let at = wake, at <= now else { return false }
                wake = nil
                return true
            }
            if due { triggers.fire(.backoff) }
        }
    }

    /// Follows Docker's event stream for managed containers; reconnects with backoff and asks for a
    /// full pass after every reconnect (events missed meanwhile are not replayed reliably).
    func watchDockerEvents() async {
        var delay = settings.reconnectBase
        var isReconnect = false
        while !Task.isCancelled {
            let connected = NIOLockedValueBox(false)
            let triggers = self.triggers
            let announce = isReconnect
            let stream = reconciler.docker.client.events(filters: ["type": ["container"], "label": ["\(BotLabels.managed)=true"]]) {
                connected.withLockedValue { $0 = true }
                if announce { triggers.fire(.reconnect) }
            }
            do {
                for try await event in stream where Self.triggersPass(event.baseAction) {
                    logger.debug("docker event", metadata: ["event": "\(event.baseAction)", "container": "\(event.attributes["name"] ?? "")"])
                    triggers.fire(.dockerEvent)
                }
            } catch {
                logger.debug("event stream ended", metadata: ["error": "\(error)"])
            }
            if Task.isCancelled { return }
            isReconnect = true
            if connected.withLockedValue({ $0 }) { delay = settings.reconnectBase }
            metrics.eventStreamReconnected()
            do { try await Task.sleep(for: delay) } catch { return }
            delay = min(delay * 2, settings.reconnectCap)
        }
    }

    static let ignoredEvents: Set<String> = [
        "exec_create", "exec_start", "exec_die", "exec_detach", "attach", "detach", "resize", "top", "health_status",
        "archive-path", "extract-to-dir", "export", "commit", "copy",
    ]

    static func triggersPass(_ action: String) -> Bool { !ignoredEvents.contains(action) }
}

