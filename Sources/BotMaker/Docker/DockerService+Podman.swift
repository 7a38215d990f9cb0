import DockerEngine
import Foundation
import Logging

/// What differs when Podman answers the Docker API (docs/podman.md): found out once from `/version`.
extension DockerService {
    /// Docker or Podman (known from the ping that negotiated the API version).
    func engine() async throws(ContainerError) -> EngineProduct {
        do { return try await client.product() } catch { throw wrapDockerError(error, botId: nil, fallback: .observeFailed) }
    }

    public func identify() async throws(ContainerError) -> String {
        try await engine().description
    }

    /// The network the bot's container joins. Docker: botmaker's one bridge, with traffic between its containers off.
    /// Podman ignores that option (`enable_icc`), and its per-network isolation (netavark's `isolate`) is lost for every
    /// network as soon as any isolated network is torn down (measured with Podman 4.3): each bot gets its own user-mode
    /// network stack instead (`slirp4netns`, without access to the host's loopback), so bots cannot reach each other.
    /// Published ports work as on Docker.
    func network(botId: String, config: ContainerConfig) async throws(ContainerError) -> String {
        guard config.network == .botmaker else { return config.network.dockerName }
        if try await engine().isPodman { return Self.podmanIsolatedNetworkMode }
        _ = try await isolatedNetworkId(botId: botId)
        return config.network.dockerName
    }

    static let podmanIsolatedNetworkMode = "slirp4netns"
}
