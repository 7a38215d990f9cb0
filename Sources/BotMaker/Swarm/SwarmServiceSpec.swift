import Crypto
import DockerEngine
import Foundation

/// A bot as a Swarm service (Engine API 1.41), and what Swarm cannot express of it. Pure: docs/swarm.md has the table.
public enum SwarmServiceSpec {
    /// Swarm's limit on service names (a DNS label).
    public static let maxServiceName = 63
    /// Swarm's limit on secret names.
    public static let maxSecretName = 64
    /// The first Engine API version whose services take `Privileges.NoNewPrivileges`.
    public static let noNewPrivilegesAPI = APIVersion(1, 44)
    /// How long Swarm waits before restarting a bot's task that exited.
    public static let restartDelaySeconds = 2

    /// What the runtime knows of the engine when it refuses or builds a spec.
    public struct Engine: Sendable, Equatable {
        /// `Privileges.NoNewPrivileges` is available (API ≥ 1.44).
        public var supportsNoNewPrivileges: Bool
        /// The operator accepts bots without no-new-privileges on an engine that cannot set it
        /// (`--swarm-allow-privilege-escalation`).
        public var allowsPrivilegeEscalation: Bool
        /// The API version the cluster speaks (for messages), once known.
        public var apiVersion: String?

        public init(supportsNoNewPrivileges: Bool = false, allowsPrivilegeEscalation: Bool = false, apiVersion: String? = nil) {
            self.supportsNoNewPrivileges = supportsNoNewPrivileges
            self.allowsPrivilegeEscalation = allowsPrivilegeEscalation
            self.apiVersion = apiVersion
        }
    }

    /// Why this bot cannot be a Swarm service as declared, or nil.
    public static func refusal(botId: String, config: ContainerConfig, engine: Engine) -> String? {
        var problems: [String] = []
        let name = ContainerDefaults.containerName(for: botId)
        if name.count > maxServiceName {
            problems.append("the service name \(name) is longer than Swarm's \(maxServiceName) characters (bot ids of at most "
                            + "\(maxServiceName - ContainerDefaults.namePrefix.count) characters)")
        }
        for port in config.ports {
            if port.hostIP != "0.0.0.0" {
                problems.append("port \(port.description): Swarm publishes on every address of the node and cannot bind \(port.hostIP) "
                                + "(declare it as 0.0.0.0:PORT:\(port.containerPort) for this engine)")
            } else if port.hostPort == nil {
                problems.append("port \(port.description): Swarm needs a fixed host port (botmaker chooses automatic ports on one host only)")
            }
        }
        if config.security != .standard {
            problems.append("security \(config.security.rawValue): Swarm's tmpfs on API 1.41 takes no noexec/nosuid options")
        }
        if !engine.supportsNoNewPrivileges && !engine.allowsPrivilegeEscalation {
            problems.append("no-new-privileges needs Engine API \(noNewPrivilegesAPI) for services (this cluster speaks "
                            + "\(engine.apiVersion ?? "an older one")); accept running without it with `--swarm-allow-privilege-escalation`, "
                            + "or upgrade the cluster")
        }
        return problems.isEmpty ? nil : "not possible on Swarm: " + problems.joined(separator: "; ")
    }

    /// The label on a service holding ``digest(of:)`` of the spec botmaker wrote.
    public static let digestLabel = "botmaker.service-digest"

    /// What a service's spec says about its task, reduced to the fields botmaker sets (Swarm fills in defaults around
    /// them), so that a spec read back digests as it was written, and a hand edit (`docker service update --env-add …`)
    /// shows.
    public static func digest(of spec: JSONValue) -> String {
        let container = spec[path: ["TaskTemplate", "ContainerSpec"]]
        let task = spec["TaskTemplate"]
        func pick(_ value: JSONValue?, _ keys: [String]) -> JSONValue {
            guard case .object(let members)? = value else { return .null }
            // Swarm drops empty lists and objects (an empty `Env`): absent and empty digest alike.
            return .object(members.filter { keys.contains($0.key) && $0.value != .null && $0.value != .array([]) && $0.value != .object([:]) })
        }
        func each(_ value: JSONValue?, _ keys: [String]) -> JSONValue {
            guard case .array(let items)? = value else { return .array([]) }
            return .array(items.map { pick($0, keys) })
        }
        let projection: JSONValue = .object([
            "container": pick(container, ["Image", "Labels", "Env", "Args", "Command", "User", "Init", "Healthcheck", "CapabilityDrop",
                                          "CapabilityAdd", "ReadOnly", "Hostname", "Dir", "Groups"]),
            "secrets": each(container?["Secrets"], ["SecretName", "File"]),
            "mounts": each(container?["Mounts"], ["Type", "Source", "Target", "ReadOnly"]),
            "limits": pick(task?["Resources"], ["Limits"]),
            "restart": pick(task?["RestartPolicy"], ["Condition", "Delay"]),
            "placement": pick(task?["Placement"], ["Constraints"]),
            "networks": each(task?["Networks"], ["Target"]),
            "log": pick(task?["LogDriver"], ["Name", "Options"]),
            "ports": each(spec[path: ["EndpointSpec", "Ports"]], ["Protocol", "TargetPort", "PublishedPort", "PublishMode"]),
            "update": pick(spec["UpdateConfig"], ["Order", "FailureAction"]),
        ])
        let data = (try? JSONEncoder.canonical.encode(projection)) ?? Data()
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The labels of a bot's service, its tasks' containers, and its secrets and networks.
    public static func labels(botId: String, instance: String, owner: String?) -> [String: String] {
        var labels = [BotLabels.managed: "true", BotLabels.botId: botId, BotLabels.instance: instance]
        if let owner { labels[BotLabels.owner] = owner }
        return labels
    }

    /// The Swarm secret name of one secret file: content-addressed by its keyed digest (secrets are immutable), hashed
    /// when the readable form would pass Swarm's 64 characters.
    public static func secretName(botId: String, file: String, digest: String) -> String {
        let readable = "\(ContainerDefaults.namePrefix)\(botId)-\(file)-\(digest.prefix(12))"
        if readable.count <= maxSecretName { return readable }
        let key = SHA256.hash(data: Data("\(botId)/\(file)".utf8)).map { String(format: "%02x", $0) }.joined()
        return "\(ContainerDefaults.namePrefix)\(key.prefix(24))-\(digest.prefix(12))"
    }

    /// The overlay network a bot on botmaker's isolated network gets alone (Swarm has no inter-container switch for
    /// overlays, so isolation is one network per bot).
    public static func networkName(botId: String) -> String { ContainerDefaults.containerName(for: botId) }

    /// The named volume (on the bot's pinned node) of one state mount.
    public static func volumeName(botId: String, mount: StateMount) -> String { "\(ContainerDefaults.namePrefix)\(botId)-\(mount.name)" }

    /// A created secret, as the service references it.
    public struct SecretReference: Sendable, Equatable {
        public var file: String
        public var id: String
        public var name: String

        public init(file: String, id: String, name: String) {
            self.file = file
            self.id = id
            self.name = name
        }
    }

    /// The whole service spec: `replicas` 1 (running) or 0 (stopped), `forceUpdate` carried over from the current spec.
    public static func make(botId: String, config: ContainerConfig, launch: ContainerLaunch, labels: [String: String], secrets: [SecretReference],
                            networkId: String?, replicas: Int, forceUpdate: Int, stopGraceSeconds: Int, monitorSeconds: Double,
                            engine: Engine) -> JSONValue {
        func string(_ value: String) -> JSONValue { .string(value) }
        func number(_ value: Int64) -> JSONValue { .number(Double(value)) }
        func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
        func map(_ values: [String: String]) -> JSONValue { .object(values.mapValues(JSONValue.string)) }
        let seconds: Int64 = 1_000_000_000
        let owner = config.user.map { String($0.prefix { $0 != ":" }) } ?? "0"
        let group = config.user.flatMap { $0.contains(":") ? String($0.split(separator: ":")[1]) : nil } ?? owner

        var container: [String: JSONValue] = [
            "Image": string(launch.image ?? config.image),
            "Labels": map(labels),
            "Env": strings(launch.environment),
            "Init": .bool(ContainerDefaults.initProcess),
            "StopGracePeriod": number(Int64(stopGraceSeconds) * seconds),
            "CapabilityDrop": strings(config.security.droppedCapabilities),
            "Secrets": .array(secrets.map { secret in
                .object(["SecretID": string(secret.id), "SecretName": string(secret.name),
                         "File": .object(["Name": string(secret.file), "UID": string(owner), "GID": string(group), "Mode": number(0o400)])])
            }),
            "Mounts": .array(config.mounts.map { mount in
                .object(["Type": string("volume"), "Source": string(volumeName(botId: botId, mount: mount)), "Target": string(mount.target),
                         "VolumeOptions": .object(["Labels": map(labels)])])
            }),
        ]
        // Swarm's Command replaces the image's ENTRYPOINT; Args replaces its CMD, as `docker run IMAGE ARGS…` does.
        if let command = config.command { container["Args"] = strings(command) }
        if let user = config.user { container["User"] = string(user) }
        if let health = config.health {
            var check: [String: JSONValue] = ["Test": strings(["CMD"] + health.command)]
            if let interval = health.intervalSeconds { check["Interval"] = number(Int64(interval) * seconds) }
            container["Healthcheck"] = .object(check)
        }
        if engine.supportsNoNewPrivileges { container["Privileges"] = .object(["NoNewPrivileges": .bool(true)]) }

        var limits: [String: JSONValue] = ["Pids": number(Int64(config.pidsLimit))]
        if let memory = config.memoryBytes { limits["MemoryBytes"] = number(memory) }
        if let cpus = config.nanoCPUs { limits["NanoCPUs"] = number(cpus) }
        var task: [String: JSONValue] = [
            "ContainerSpec": .object(container),
            "Resources": .object(["Limits": .object(limits)]),
            "RestartPolicy": .object(["Condition": string("any"), "Delay": number(Int64(restartDelaySeconds) * seconds)]),
            "LogDriver": .object(["Name": string(ContainerDefaults.logDriver), "Options": map(ContainerDefaults.logOptions)]),
            "ForceUpdate": number(Int64(forceUpdate)),
        ]
        if let node = launch.node { task["Placement"] = .object(["Constraints": strings(["node.id==\(node)"])]) }
        if let networkId { task["Networks"] = .array([.object(["Target": string(networkId)])]) }

        let update: [String: JSONValue] = [
            "Parallelism": number(1),
            // Never two copies of a bot: the old task stops before the new one starts.
            "Order": string("stop-first"),
            "FailureAction": string(launch.updateStrategy == .rollback ? "rollback" : "continue"),
            "Monitor": number(Int64(monitorSeconds * 1e9)),
        ]
        var service: JSONValue = .object([
            "Name": string(ContainerDefaults.containerName(for: botId)),
            "Labels": map(labels),
            "TaskTemplate": .object(task),
            "Mode": .object(["Replicated": .object(["Replicas": number(Int64(replicas))])]),
            "UpdateConfig": .object(update),
            "RollbackConfig": .object(["Parallelism": number(1), "Order": string("stop-first"), "FailureAction": string("pause")]),
            // No virtual IP (it needs IPVS) and no routing mesh: ports are published on the node that runs the task.
            "EndpointSpec": .object([
                "Mode": string("dnsrr"),
                "Ports": .array(launch.published.map { port in
                    .object(["Protocol": string(port.proto), "TargetPort": number(Int64(port.containerPort)),
                             "PublishedPort": number(Int64(port.hostPort)), "PublishMode": string("host")])
                }),
            ]),
        ])
        service[path: ["Labels", digestLabel]] = string(digest(of: service))
        return service
    }
}
