/// Whether the bots that should run are ready: running and, where they have a health check, healthy
/// (`reconcile --wait`, like `docker compose up --wait`). Pure.
public struct Readiness: Sendable, Equatable {
    /// Bot id → why it is not ready yet (starting, health check starting, no container).
    public var pending: [String: String] = [:]
    /// Bot id → why it will not become ready without help (unhealthy, exited, crash loop).
    public var failed: [String: String] = [:]

    public var isReady: Bool { pending.isEmpty && failed.isEmpty }

    public static func of(_ botIds: [String], in observed: ObservedContainers) -> Readiness {
        let byName = Dictionary(observed.managed.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var readiness = Readiness()
        for id in botIds {
            guard let container = byName[ContainerDefaults.containerName(for: id)] else {
                readiness.pending[id] = "no container"
                continue
            }
            switch container.state {
            case .running:
                switch container.health {
                case nil, .healthy?: break
                case .starting?: readiness.pending[id] = "health check starting"
                case .unhealthy?: readiness.failed[id] = "unhealthy"
                }
            case .restarting:
                readiness.failed[id] = "restarting (crash loop)" + (container.exitCode.map { ", last exit code \($0)" } ?? "")
            case .exited, .dead:
                readiness.failed[id] = container.state.rawValue + (container.exitCode.map { " (exit code \($0))" } ?? "")
            case .created where container.nodeDown:
                readiness.failed[id] = container.pending ?? "its node is down"
            case .created, .paused, .removing, .unknown:
                readiness.pending[id] = container.pending ?? container.state.rawValue
            }
        }
        return readiness
    }
}
