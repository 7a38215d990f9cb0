import ArgumentParser
import BotMaker
import DockerEngine
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
                Passes run at start, every --resync-interval, within about --poll-interval of a database edit made
                by another connection (sqlite3, botmaker bot …), on Docker events for managed containers, and when a
                bot's backoff ends. One reconciler per database: a second one exits with the holder's pid.
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: ReconcileOptions

        @Option(help: ArgumentHelp("Seconds between full passes.", valueName: "seconds"))
        var resyncInterval: Double = 30

        @Option(help: ArgumentHelp("Seconds between checks for database edits.", valueName: "seconds"))
        var pollInterval: Double = 0.2

        @Option(help: ArgumentHelp("Seconds in-flight Docker calls get to finish after SIGTERM.", valueName: "seconds"))
        var shutdownGrace: Double = 15

        @Option(help: ArgumentHelp("Serve /metrics, /healthz and /readyz on HOST:PORT (off by default).", valueName: "host:port"))
        var metricsAddr: String?

        func validate() throws {
            guard resyncInterval >= 1 else { throw ValidationError("--resync-interval must be at least 1 second") }
            guard pollInterval >= 0.01, pollInterval <= 60 else { throw ValidationError("--poll-interval must be between 0.01 and 60 seconds") }
            guard shutdownGrace >= 0 else { throw ValidationError("--shutdown-grace must not be negative") }
            if let metricsAddr, MetricsServer.parseAddress(metricsAddr) == nil {
                throw ValidationError("--metrics-addr must be HOST:PORT, e.g. 127.0.0.1:9464")
            }
        }

        func run() async throws {
            global.bootstrapLogging(defaultLevel: .info)
            let logger = Logger(label: "botmaker")
            let lock: ReconcilerLock
            do { lock = try ReconcilerLock.acquire(databasePath: global.databasePath) } catch { throw CLIError(error.message) }
            let store = try global.openStore()

            let registry = PrometheusCollectorRegistry()
            if metricsAddr != nil { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
            let client = DockerClient(host: try global.dockerHostValue(), logger: logger, observer: ReconcilerMetrics.dockerRequestObserver)
            let reconciler = options.reconciler(store: store, client: client, global: global, logger: logger)
            var settings = ReconcilerService.Settings()
            settings.resyncInterval = .milliseconds(Int(resyncInterval * 1000))
            settings.pollInterval = .milliseconds(Int(pollInterval * 1000))
            let service = ReconcilerService(reconciler: reconciler, settings: settings, logger: logger)

            var services: [any Service] = []
            if let metricsAddr, let (host, port) = MetricsServer.parseAddress(metricsAddr) {
                services.append(MetricsServer.make(host: host, port: port, registry: registry, readiness: {
                    do { _ = try await store.dataVersion() } catch { return (false, "database: \(error)") }
                    do { try await client.ping() } catch { return (false, "docker: \(error)") }
                    return (true, "ready")
                }, logger: logger))
            }
            services.append(service)  // last in, first to shut down
            var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            configuration.maximumGracefulShutdownDuration = .milliseconds(Int(shutdownGrace * 1000))
            configuration.maximumCancellationDuration = .seconds(5)
            let group = ServiceGroup(configuration: configuration)
            logger.info("botmaker run", metadata: [
                "db": "\(store.path)", "instance": "\(global.instanceName)", "lock": "\(lock.path)", "docker.host": "\(client.host)",
            ])
            do {
                try await group.run()
            } catch {
                // Past the grace period in-flight calls are cancelled: still a requested, clean stop.
                logger.warning("shutdown did not finish within the grace period", metadata: ["error": "\(error)"])
            }
            try? await client.shutdown()
            withExtendedLifetime(lock) {}
            logger.info("botmaker stopped")
        }
    }
}
