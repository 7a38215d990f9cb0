import Foundation
import Logging
import ServiceLifecycle

/// `botmaker run --stats-interval`: every interval, one sample of each running bot (answered at the engine's next
/// collector tick, 32 at a time), turned into the `botmaker_bot_*` gauges. The CPU % compares with the sample of the
/// interval before (of the same container), so no call waits for a second sample. Off by default: an idle service then
/// makes no stats requests at all.
public final class StatsCollector: Service, Sendable {
    let docker: DockerService
    let store: Store
    let metrics: ReconcilerMetrics
    let interval: Duration
    let logger: Logger

    public init(docker: DockerService, store: Store, metrics: ReconcilerMetrics, interval: Duration, logger: Logger) {
        self.docker = docker
        self.store = store
        self.metrics = metrics
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var previous: [String: BotSample] = [:]
        while !Task.isCancelled {
            do {
                let botIds = try await store.snapshot().bots.map(\.id)
                let samples = await docker.samples(botIds: botIds, engineDelta: false)
                let stats = samples.map { sample in
                    let before = previous[sample.botId].flatMap { $0.containerId == sample.containerId ? $0.stats : nil }
                    return BotStats(botId: sample.botId, sample: sample.stats, restartCount: sample.restartCount, previous: before)
                }
                metrics.botStats(stats)
                previous = Dictionary(samples.map { ($0.botId, $0) }, uniquingKeysWith: { a, _ in a })
            } catch {
                logger.warning("cannot collect the bots' stats", metadata: ["error": "\(error)"])
            }
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) } } catch { return }
        }
    }
}
