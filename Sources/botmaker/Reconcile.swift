import ArgumentParser
import BotMaker
import DockerEngine
import Foundation
import Logging

/// Options that shape how a pass runs; shared by `reconcile` and `run`.
struct ReconcileOptions: ParsableArguments {
    @Option(help: "At most this many Docker operations at once (one per bot).")
    var concurrency: Int = 4

    @Option(help: ArgumentHelp("First retry delay after a failure, in seconds; doubles per failure.", valueName: "seconds"))
    var backoffBase: Double = 1

    @Option(help: ArgumentHelp("Longest retry delay, in seconds.", valueName: "seconds"))
    var backoffCap: Double = 300

    @Option(help: ArgumentHelp("Seconds a stopping container gets between SIGTERM and SIGKILL.", valueName: "seconds"))
    var stopGrace: Int = 10

    func validate() throws {
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64") }
        guard backoffBase > 0, backoffCap >= backoffBase else { throw ValidationError("need 0 < --backoff-base <= --backoff-cap") }
        guard (0...3600).contains(stopGrace) else { throw ValidationError("--stop-grace must be between 0 and 3600") }
    }

    func reconciler(store: Store, client: DockerClient, global: GlobalOptions, logger: Logger) -> Reconciler {
        Reconciler(
            store: store,
            docker: DockerService(client: client, stopGraceSeconds: stopGrace, instance: global.instanceName, logger: logger),
            secrets: global.secrets(),
            concurrency: concurrency,
            backoff: Backoff(base: backoffBase, cap: backoffCap),
            logger: logger)
    }
}

extension Botmaker {
    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one reconcile pass: make Docker match the database.",
            discussion: """
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

        @Flag(help: "Print one line of pass statistics on stderr: time, Docker requests by endpoint, database write transactions.")
        var stats = false

        func run() async throws {
            // Applying needs the reconciler lock (one per database); a dry run changes nothing and does not.
            let lock: ReconcilerLock?
            do { lock = dryRun ? nil : try ReconcilerLock.acquire(databasePath: global.databasePath) } catch { throw CLIError(error.message) }
            defer { withExtendedLifetime(lock) {} }
            let store = try global.openStore(readOnly: dryRun)
            let host = try global.dockerHostValue()
            let logger = Logger(label: "botmaker")
            let tally = RequestTally()
            let started = ContinuousClock.now
            defer {
                if stats {
                    let elapsed = ContinuousClock.now - started
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                    let requests = tally.counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    FileHandle.standardError.write(Data(
                        "stats: seconds=\(String(format: "%.4f", seconds)) docker_requests=\(tally.total) [\(requests)] db_write_transactions=\(store.writeTransactions)\n".utf8))
                }
            }
            let exitCode: Int32 = try await DockerClient.withClient(host: host, logger: logger, observer: tally.observer) { client in
                let reconciler = options.reconciler(store: store, client: client, global: global, logger: logger)
                let pass: Reconciler.PlannedPass
                do {
                    pass = try await reconciler.plan()
                } catch let error as ContainerError {
                    if !dryRun && error.code == .networkError { await reconciler.recordUnreachable(error) }
                    throw CLIError("cannot observe Docker: \(error.code.rawValue): \(error.message)")
                }
                if dryRun {
                    print(json ? PlanRenderer.json(pass.plan) : PlanRenderer.text(pass.plan))
                    return detailedExitcode && pass.plan.hasChanges ? 2 : 0
                }
                let report = await reconciler.apply(pass)
                print(json ? PlanRenderer.json(pass.plan, results: report.results) : PlanRenderer.text(pass.plan, results: report.results))
                if !report.failures.isEmpty { return 1 }
                return detailedExitcode && pass.plan.hasChanges ? 2 : 0
            }
            if exitCode != 0 { throw ExitCode(exitCode) }
        }
    }
}

/// Counts Docker requests by endpoint for `--stats`.
final class RequestTally: @unchecked Sendable {
    private var storage: [String: Int] = [:]
    private let lock = NSLock()

    var observer: @Sendable (DockerClient.RequestRecord) -> Void {
        { record in self.lock.withLock { self.storage[record.operation, default: 0] += 1 } }
    }

    var counts: [String: Int] { lock.withLock { storage } }
    var total: Int { counts.values.reduce(0, +) }
}
