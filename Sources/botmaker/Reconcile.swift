import ArgumentParser
import BotMaker
import Foundation
import Logging

/// Options that shape how bots are reconciled; shared by `reconcile` and `run`.
struct ReconcileOptions: ParsableArguments {
    @Option(help: "Workers: at most this many Docker operations at once (never two on one bot).")
    var concurrency: Int = 4

    @Option(help: ArgumentHelp("First retry delay after a failure, in seconds; doubles per failure.", valueName: "seconds"))
    var backoffBase: Double = 1

    @Option(help: ArgumentHelp("Longest retry delay, in seconds.", valueName: "seconds"))
    var backoffCap: Double = 300

    @Option(help: ArgumentHelp("Seconds a stopping container gets between SIGTERM and SIGKILL.", valueName: "seconds"))
    var stopGrace: Int = 10

    @Flag(help: "Take this instance over from the database that holds it (stop that database's service first).")
    var takeOver = false

    @Option(help: "At most this many running bots are recreated at once (spec changes, botmaker upgrades); the rest wait their turn.")
    var maxParallelUpdates: Int = 1

    @Option(help: ArgumentHelp("A switch-over's new container without a health check is kept once it has stayed up this long.", valueName: "seconds"))
    var updateMinUptime: Double = 10

    @Option(help: ArgumentHelp("A switch-over's new container not confirmed (healthy, or up --update-min-uptime) this long after it started is rolled back.",
                               valueName: "seconds"))
    var updateTimeout: Double = 120

    @Option(help: "The rollout of an image pauses (ROLLOUT_PAUSED) after this many of its updates were rolled back; `botmaker rollout resume`.")
    var maxFailedUpdates: Int = 2

    @Option(help: ArgumentHelp("Host ports for ports given without one, e.g. 19000-19999.", valueName: "from-to"))
    var portRange: String = "19000-19999"

    @Flag(help: "Use --data-dir and --secrets-dir although the database recorded other roots (move the directories first).")
    var moveRoots = false

    @Option(help: "Image pulls at once; pulls never hold a worker.")
    var pullConcurrency: Int = 2

    @Option(help: ArgumentHelp("Seconds one pull may take (PULL_FAILED after).", valueName: "seconds"))
    var pullTimeout: Double = 600

    @Option(help: ArgumentHelp("Docker config.json with registry credentials (default $DOCKER_CONFIG/config.json, else ~/.docker/config.json).", valueName: "path"))
    var registryConfig: String?

    var parsedPortRange: ClosedRange<Int>? {
        let parts = portRange.split(separator: "-")
        guard parts.count == 2, let low = Int(parts[0]), let high = Int(parts[1]), 1 <= low, low <= high, high <= 65535 else { return nil }
        return low...high
    }

    var updatePolicy: UpdatePolicy {
        UpdatePolicy(minUptime: updateMinUptime, timeout: updateTimeout, maxFailedUpdates: maxFailedUpdates)
    }

    func validate() throws {
        guard (1...64).contains(maxParallelUpdates) else { throw ValidationError("--max-parallel-updates must be between 1 and 64") }
        try Seconds.check("--update-min-uptime", updateMinUptime, in: 0...3_600)
        try Seconds.check("--update-timeout", updateTimeout, in: 1...86_400)
        guard updateTimeout >= updateMinUptime else { throw ValidationError("--update-timeout must be at least --update-min-uptime") }
        guard (1...10_000).contains(maxFailedUpdates) else { throw ValidationError("--max-failed-updates must be between 1 and 10000") }
        guard (1...16).contains(pullConcurrency) else { throw ValidationError("--pull-concurrency must be between 1 and 16") }
        try Seconds.check("--pull-timeout", pullTimeout, in: 1...86_400)
        guard parsedPortRange != nil else { throw ValidationError("--port-range must be FROM-TO within 1-65535, e.g. 19000-19999") }
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64") }
        try Seconds.check("--backoff-base", backoffBase, in: 0.001...86_400)
        try Seconds.check("--backoff-cap", backoffCap, in: backoffBase...86_400)
        guard (0...3600).contains(stopGrace) else { throw ValidationError("--stop-grace must be between 0 and 3600") }
    }

    func controller(store: Store, runtime: any ContainerRuntime, global: GlobalOptions, metrics: ReconcilerMetrics = .init(),
                    allowMassRemoval: Bool = false, logger: Logger) -> Controller {
        var settings = Controller.Settings(concurrency: concurrency, backoff: Backoff(base: backoffBase, cap: backoffCap))
        settings.allowMassRemoval = allowMassRemoval
        settings.maxParallelUpdates = maxParallelUpdates
        settings.updatePolicy = updatePolicy
        settings.portRange = parsedPortRange ?? settings.portRange
        settings.pullConcurrency = pullConcurrency
        settings.pullTimeout = pullTimeout
        settings.registryCredentials = RegistryCredentialStore(path: registryConfig)
        return Controller(store: store, runtime: runtime, secrets: global.secrets(), state: global.stateDirectories(), settings: settings,
                          metrics: metrics, logger: logger)
    }
}

/// Checks duration options: a finite number of seconds within a range (so `inf` or `1e20` never reach a conversion that traps).
enum Seconds {
    static func check(_ option: String, _ value: Double, in range: ClosedRange<Double>) throws {
        guard value.isFinite, range.contains(value) else {
            throw ValidationError("\(option) must be a number of seconds from \(format(range.lowerBound)) to \(format(range.upperBound))")
        }
    }

    static func duration(_ value: Double) -> Duration { .nanoseconds(Int64((value * 1e9).rounded())) }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

extension Botmaker {
    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make Docker match the database once, then exit.",
            discussion: """
                Runs one full comparison (one store read, one container list), queues every bot that needs work, and
                returns when no bot has immediate work left; bots waiting for a backoff are shown as waiting.
                Exit codes: 0 success (or nothing to do); 1 error (a failed action, Docker unreachable, a bad database);
                with --detailed-exitcode, 2 when changes are pending (dry run) or were made.
                Plan symbols: + create, ~ start/stop/restart, -/+ recreate, - remove, ! invalid or blocked, … waiting.
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: ReconcileOptions

        @Flag(help: "Only show the plan: no Docker change, no database write.")
        var dryRun = false

        @Flag(help: "Print the plan or the results as JSON.")
        var json = false

        @Flag(help: "Exit 2 when there are changes (Terraform's convention).")
        var detailedExitcode = false

        @Flag(help: "Print one line of statistics on stderr: time, Docker requests by endpoint, database write transactions.")
        var stats = false

        @Flag(help: "Let removals the mass-removal guard would hold go ahead this once.")
        var allowMassRemoval = false

        @Flag(help: "After applying, wait until every running bot runs and, where it has a health check, is healthy (exit 1 naming those that are not).")
        var wait = false

        @Option(help: ArgumentHelp("Seconds --wait waits at most (1 to 3600).", valueName: "seconds"))
        var waitTimeout: Double = 120

        @Flag(help: "Ask the registries whether the images of pull_policy always bots moved; pull and update them (with --dry-run: only report).")
        var checkImages = false

        func validate() throws {
            try Seconds.check("--wait-timeout", waitTimeout, in: 1...3600)
            if wait && dryRun { throw ValidationError("--wait applies changes and cannot be combined with --dry-run") }
        }

        func run() async throws {
            // Applying needs the reconciler lock (one per database); a dry run changes nothing and does not.
            try global.requireDatabase()
            let lock: ReconcilerLock?
            do { lock = dryRun ? nil : try ReconcilerLock.acquire(databasePath: global.databasePath) } catch { throw CLIError(error.message) }
            defer { withExtendedLifetime(lock) {} }
            let store = try global.openStore(readOnly: dryRun)
            try global.checkRoots(store, record: !dryRun, move: options.moveRoots && !dryRun)
            let logger = Logger(label: "botmaker")
            let tally = RequestTally()
            let runtime = try global.runtime(for: store, stopGraceSeconds: options.stopGrace, updateMinUptime: options.updateMinUptime, logger: logger, observer: tally.observer)
            let started = ContinuousClock.now
            defer {
                if stats {
                    let seconds = (ContinuousClock.now - started).seconds
                    let requests = tally.counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    FileHandle.standardError.write(Data(
                        "stats: seconds=\(String(format: "%.4f", seconds)) docker_requests=\(tally.total) [\(requests)] db_write_transactions=\(store.writeTransactions)\n".utf8))
                }
            }
            let exitCode: Int32
            do {
                try await global.checkEngine(runtime)
                exitCode = try await dryRun ? preview(store: store, runtime: runtime) : apply(store: store, runtime: runtime, logger: logger)
            } catch {
                await runtime.shutdown()
                throw error
            }
            await runtime.shutdown()
            if exitCode != 0 { throw ExitCode(exitCode) }
        }

        /// The dry run: only reads (the store is opened read-only, the engine is only listed).
        private func preview(store: Store, runtime: any ContainerRuntime) async throws -> Int32 {
            let mine = global.claim(for: store)
            if let held = try? await runtime.instanceClaim(), !held.sameHolder(as: mine), !options.takeOver {
                FileHandle.standardError.write(Data("refused: \(ClaimRefused(holder: held, mine: mine, instance: global.instanceName))\n".utf8))
                return 1
            }
            let view: FleetView
            do {
                view = try await FleetView.load(store: store, runtime: runtime, secrets: global.secrets(), state: global.stateDirectories(),
                                                now: Date(), allowMassRemoval: allowMassRemoval, updatePolicy: options.updatePolicy)
            } catch let error as ContainerError {
                throw CLIError("cannot observe Docker: \(error.code.rawValue): \(error.message)")
            }
            print(json ? PlanRenderer.json(view.plan) : PlanRenderer.text(view.plan))
            var updates = false
            if checkImages {
                // Only reads: the registry's digest and the engine's image; nothing is pulled.
                let controller = options.controller(store: store, runtime: runtime, global: global, logger: Logger(label: "botmaker"))
                for update in try await controller.checkImages(pull: false) {
                    FileHandle.standardError.write(Data("\(update.description)\n".utf8))
                    updates = updates || update.isAvailable
                }
            }
            if let reason = view.removalGuard { FileHandle.standardError.write(Data("REMOVAL_GUARD: \(reason)\n".utf8)) }
            return detailedExitcode && (view.plan.hasChanges || updates) ? 2 : 0
        }

        private func apply(store: Store, runtime: any ContainerRuntime, logger: Logger) async throws -> Int32 {
            let controller = options.controller(store: store, runtime: runtime, global: global, allowMassRemoval: allowMassRemoval,
                                                logger: logger)
            let outcome: (view: FleetView, reports: [KeyReport])
            // Text output goes as the pass goes; the JSON document is written once, at the end.
            let printer = json ? nil : ProgressPrinter()
            do {
                try await global.ensureClaim(store: store, runtime: runtime, takeOver: options.takeOver)
                if checkImages {
                    for update in try await controller.checkImages(pull: true) where update.isAvailable || update.error != nil {
                        FileHandle.standardError.write(Data("\(update.description)\n".utf8))
                    }
                }
                outcome = try await controller.reconcileOnce(observer: printer)
            } catch let error as ContainerError {
                await controller.recordUnreachable(error)
                throw CLIError("cannot observe Docker: \(error.code.rawValue): \(error.message)")
            }
            let plan = outcome.view.merging(outcome.reports)
            let results = outcome.reports.flatMap(\.results)
            if let printer { printer.finish(results: results) } else { Output.write(PlanRenderer.json(plan, results: results) + "\n") }
            if let reason = outcome.view.removalGuard {
                FileHandle.standardError.write(Data("REMOVAL_GUARD: \(reason)\n".utf8))
                return 1
            }
            if results.contains(where: { !$0.succeeded }) { return 1 }
            if wait {
                let ready = try await waitUntilReady(store: store, runtime: runtime, controller: controller)
                // What the wait saw (health, state) is what `status` shows next.
                if let seen = try? await FleetView.load(store: store, runtime: runtime, secrets: global.secrets(), state: global.stateDirectories(),
                                                        now: Date()) {
                    try? await store.record(statuses: seen.plan.statusUpdates, events: seen.plan.events)
                }
                if !ready { return 1 }
            }
            return detailedExitcode && plan.hasChanges ? 2 : 0
        }

        /// `--wait`: looks at the fleet (one list call) until every running bot is ready, one fails, or the time is up.
        private func waitUntilReady(store: Store, runtime: any ContainerRuntime, controller: Controller) async throws -> Bool {
            let deadline = ContinuousClock.now + Seconds.duration(waitTimeout)
            let secretsRoot = global.secrets().root
            let bots = try await store.snapshot().bots.compactMap { row -> DesiredBot? in
                guard case .valid(let bot) = BotValidation.validate(row, secretsRoot: secretsRoot), bot.desiredState == .running else { return nil }
                return bot
            }
            let running = bots.map(\.id)
            var announced: [String: String] = [:]
            while true {
                let readiness: Readiness
                do { readiness = Readiness.of(running, in: try await runtime.observe()) } catch {
                    throw CLIError("cannot observe Docker: \(error.code.rawValue): \(error.message)")
                }
                if readiness.isReady {
                    if !json { Output.write("ready: \(running.count) running bot\(running.count == 1 ? "" : "s")\n") }
                    return true
                }
                let timedOut = ContinuousClock.now >= deadline
                if !readiness.failed.isEmpty || timedOut {
                    var problems = readiness.failed.isEmpty ? readiness.pending : readiness.failed
                    // An unhealthy bot's last check says why (a refused connection, a check that timed out).
                    for bot in bots where problems[bot.id] == "unhealthy" {
                        if let log = await controller.lastHealthCheck(botId: bot.id, desired: bot) { problems[bot.id]! += " (last check: \(log))" }
                    }
                    let lines = problems.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)" }.joined(separator: "\n")
                    FileHandle.standardError.write(Data(("not ready" + (timedOut && readiness.failed.isEmpty ? " after \(Int(waitTimeout)) s" : "")
                                                         + ":\n" + lines + "\n").utf8))
                    return false
                }
                // Says what it waits for, again whenever that changes (a bot became ready, or its reason changed).
                if announced != readiness.pending && !json {
                    let shown = readiness.pending.sorted { $0.key < $1.key }.prefix(5).map { "\($0.key) (\($0.value))" }
                    Output.write("waiting for \(readiness.pending.count) bot\(readiness.pending.count == 1 ? "" : "s") to be ready: "
                                 + shown.joined(separator: ", ") + (readiness.pending.count > 5 ? ", …" : "") + "\n")
                    announced = readiness.pending
                }
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }
}

/// Counts engine requests by endpoint for `--stats`.
final class RequestTally: @unchecked Sendable {
    private var storage: [String: Int] = [:]
    private let lock = NSLock()

    var observer: @Sendable (EngineRequest) -> Void {
        { request in self.lock.withLock { self.storage[request.operation, default: 0] += 1 } }
    }

    var counts: [String: Int] { lock.withLock { storage } }
    var total: Int { counts.values.reduce(0, +) }
}
