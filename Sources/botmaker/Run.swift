import ArgumentParser
import BotMaker
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

extension Botmaker {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the reconciler as a service until SIGTERM or SIGINT.",
            discussion: """
                A full comparison runs at start, every --resync-interval and after the Docker event stream reconnects.
                In between, work is per bot: within about --poll-interval of a database edit made by another connection
                (sqlite3, botmaker bot …) only the changed rows are queued; a Docker event queues only its container's bot;
                a bot in backoff comes back at its deadline. Up to --concurrency workers act at once, one per bot, so a slow
                stop never delays another bot. One reconciler per database: a second one exits with the holder's pid.
                Exits non-zero when the service fails (e.g. --metrics-addr cannot be bound), so a supervisor restarts it.
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: ReconcileOptions

        @Option(help: ArgumentHelp("Seconds between full comparisons (1 to 86400).", valueName: "seconds"))
        var resyncInterval: Double = 30

        @Option(help: ArgumentHelp("Seconds between checks for database edits (0.01 to 60); each check is one PRAGMA.", valueName: "seconds"))
        var pollInterval: Double = 0.1

        @Option(help: ArgumentHelp("Seconds in-flight Docker calls get to finish after SIGTERM (0 to 3600).", valueName: "seconds"))
        var shutdownGrace: Double = 15

        @Option(help: ArgumentHelp("Serve /metrics, /healthz and /readyz on HOST:PORT (off by default).", valueName: "host:port"))
        var metricsAddr: String?

        @Option(help: ArgumentHelp("Seconds between checks of pull_policy always bots' images against their registries (0: never).", valueName: "seconds"))
        var imageCheckInterval: Double = 900

        @Option(help: ArgumentHelp("Seconds between samples of each running bot's CPU, memory and restarts for /metrics (0: off; needs --metrics-addr).",
                                   valueName: "seconds"))
        var statsInterval: Double = 0

        func validate() throws {
            try Seconds.check("--resync-interval", resyncInterval, in: 1...86_400)
            try Seconds.check("--stats-interval", statsInterval, in: 0...86_400)
            if statsInterval > 0, statsInterval < 1 { throw ValidationError("--stats-interval must be 0 (off) or at least 1 second") }
            if statsInterval > 0, metricsAddr == nil { throw ValidationError("--stats-interval needs --metrics-addr (the stats are /metrics gauges)") }
            if statsInterval > 0, global.engineChoice == .swarm { throw ValidationError("--stats-interval needs --engine docker") }
            try Seconds.check("--poll-interval", pollInterval, in: 0.01...60)
            try Seconds.check("--shutdown-grace", shutdownGrace, in: 0...3600)
            try Seconds.check("--image-check-interval", imageCheckInterval, in: 0...604_800)
            if let metricsAddr, MetricsServer.parseAddress(metricsAddr) == nil {
                throw ValidationError("--metrics-addr must be HOST:PORT, e.g. 127.0.0.1:9464")
            }
        }

        func run() async throws {
            global.bootstrapLogging(defaultLevel: .info)
            let logger = Logger(label: "botmaker")
            try global.requireDatabase()
            let lock: ReconcilerLock
            do { lock = try ReconcilerLock.acquire(databasePath: global.databasePath) } catch { throw CLIError(error.message) }
            let store = try global.openStore()
            try global.checkRoots(store, record: true, move: options.moveRoots)

            let registry = PrometheusCollectorRegistry()
            if metricsAddr != nil { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
            let runtime = try global.runtime(for: store, stopGraceSeconds: options.stopGrace, updateMinUptime: options.updateMinUptime, logger: logger,
                                             observer: ReconcilerMetrics.engineRequestObserver)
            let controller = options.controller(store: store, runtime: runtime, global: global, logger: logger)
            var settings = ReconcilerService.Settings()
            settings.resyncInterval = Seconds.duration(resyncInterval)
            settings.pollInterval = Seconds.duration(pollInterval)
            settings.imageCheckInterval = imageCheckInterval > 0 ? Seconds.duration(imageCheckInterval) : nil
            let global = self.global, takeOver = options.takeOver
            let service = ReconcilerService(controller: controller, settings: settings, logger: logger) {
                try await global.checkEngine(runtime)
                if let engine = try? await runtime.identify() { logger.info("engine", metadata: ["engine": "\(engine)"]) }
                try await global.ensureClaim(store: store, runtime: runtime, takeOver: takeOver)
            }

            var services: [any Service] = []
            if let metricsAddr, let (host, port) = MetricsServer.parseAddress(metricsAddr) {
                services.append(MetricsServer.make(host: host, port: port, registry: registry, readiness: {
                    do { _ = try await store.dataVersion() } catch { return (false, "database: \(error)") }
                    do { try await runtime.ping() } catch { return (false, "docker: \(error)") }
                    return (true, "ready: " + ((try? await runtime.identify()) ?? runtime.capabilities.name))
                }, logger: logger))
            }
            if statsInterval > 0, let docker = runtime as? DockerService {
                services.append(StatsCollector(docker: docker, store: store, metrics: controller.metrics, interval: Seconds.duration(statsInterval),
                                               logger: logger))
            }
            services.append(service)  // last in, first to shut down
            var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            configuration.maximumGracefulShutdownDuration = Seconds.duration(shutdownGrace)
            configuration.maximumCancellationDuration = .seconds(5)
            let group = ServiceGroup(configuration: configuration)
            logger.info("botmaker run", metadata: [
                "db": "\(store.path)", "instance": "\(global.instanceName)", "lock": "\(lock.path)", "docker.host": "\(runtime.endpoint)", "engine": "\(runtime.capabilities.name)",
            ])
            var failure: (any Error)?
            do {
                try await group.run()
            } catch is CancellationError {
                // Past the grace period in-flight calls are cancelled: still a requested, clean stop.
                logger.warning("shutdown did not finish within the grace period; in-flight calls were cancelled")
            } catch {
                failure = error
            }
            await runtime.shutdown()
            withExtendedLifetime(lock) {}
            if let failure {
                logger.critical("botmaker failed", metadata: ["error": "\(failure)"])
                throw CLIError("the service failed: \(failure)")
            }
            logger.info("botmaker stopped")
        }
    }
}
