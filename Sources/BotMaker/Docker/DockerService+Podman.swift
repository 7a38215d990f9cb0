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
    /// Podman ignores that option (`enable_icc`), so each bot gets a network of its own (`botmaker-<id>`, isolated from
    /// the engine's other networks): bots still cannot reach each other.
    func network(botId: String, config: ContainerConfig) async throws(ContainerError) -> String {
        guard config.network == .botmaker else { return config.network.dockerName }
        guard try await engine().isPodman else {
            _ = try await isolatedNetworkId(botId: botId)
            return config.network.dockerName
        }
        return try await podmanNetwork(botId: botId)
    }

    /// The bot's own network on Podman, made if missing; one of that name not made for this bot is refused.
    func podmanNetwork(botId: String) async throws(ContainerError) -> String {
        let name = Self.podmanNetworkName(for: botId)
        do {
            let found = try await client.listNetworks(filters: ["name": [name]]).filter { $0.name == name }
            if let existing = found.first {
                guard existing.labels[BotLabels.managed] == "true", existing.labels[BotLabels.botId] == botId else {
                    throw ContainerError(.configError, "network \(name) exists but was not made by botmaker for this bot; rename or remove it, "
                                         + "or set the bot's network to bridge", botId: botId)
                }
                return name
            }
            do {
                try await client.createNetwork(name: name, options: ["isolate": "true"],
                                               labels: [BotLabels.managed: "true", BotLabels.botId: botId, BotLabels.instance: instance])
            } catch {
                // Made meanwhile by another worker of the same bot (an update's switch-over): fine.
                guard wrapDockerError(error, botId: botId).code == .alreadyExists else { throw error }
            }
            return name
        } catch let error as ContainerError {
            throw error
        } catch {
            throw wrapDockerError(error, botId: botId, fallback: .networkError)
        }
    }

    static func podmanNetworkName(for botId: String) -> String { "botmaker-\(botId)" }

    /// Podman: removes the bot's own network once none of the bot's containers is left (Podman's API removes a network
    /// even while a container uses it, which then cannot start). Best effort.
    func removeBotNetworkIfUnused(botId: String) async {
        guard (try? await engine())?.isPodman == true else { return }
        let name = Self.podmanNetworkName(for: botId)
        do {
            guard try await client.listContainers(all: true, filters: ["label": ["\(BotLabels.botId)=\(botId)"]]).isEmpty else { return }
            let ours = try await client.listNetworks(filters: ["name": [name], "label": ["\(BotLabels.botId)=\(botId)"]]).filter { $0.name == name }
            for network in ours where network.labels[BotLabels.managed] == "true" { try await client.removeNetwork(network.id) }
        } catch {
            logger.debug("the bot's network stays for now", metadata: ["bot.id": "\(botId)", "error": "\(error)"])
        }
    }
}
