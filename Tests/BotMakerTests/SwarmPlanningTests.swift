import BotMaker
import DockerEngine
import Foundation
import Testing

/// The Swarm engine's pure parts: what it refuses, the service spec it writes, how a service reads as a container, and
/// how the planner treats an engine that updates in place.
@Suite struct SwarmPlanningTests {
    static let swarm = RuntimeCapabilities(updatesInPlace: true, pinsStatefulBots: true, copiesSecretFiles: true, name: "swarm")
    static let now = PlannerTests.now

    static func plan(_ bot: DesiredBot, _ container: ContainerInfo?, status: BotStatus? = nil) -> Plan {
        Planner.plan(PlannerInput(desired: [bot], observed: ObservedContainers(managed: container.map { [$0] } ?? []),
                                  statuses: status.map { [$0.botId: $0] } ?? [:], now: now, capabilities: swarm))
    }

    // MARK: - Refusals

    @Test func whatSwarmCannotExpressIsRefusedNeverWeakened() {
        let engine = SwarmServiceSpec.Engine(supportsNoNewPrivileges: false, allowsPrivilegeEscalation: true)
        var config = ContainerConfig(image: "img:1", secretsPath: "/s/a")
        #expect(SwarmServiceSpec.refusal(botId: "a", config: config, engine: engine) == nil)
        // no-new-privileges needs API 1.44 unless the operator accepts running without it.
        #expect(SwarmServiceSpec.refusal(botId: "a", config: config, engine: .init())?.contains("--swarm-allow-privilege-escalation") == true)
        #expect(SwarmServiceSpec.refusal(botId: "a", config: config, engine: .init(supportsNoNewPrivileges: true)) == nil)
        config.ports = [PortMapping(hostIP: "127.0.0.1", hostPort: 18789, containerPort: 18789)]
        #expect(SwarmServiceSpec.refusal(botId: "a", config: config, engine: engine)?.contains("cannot bind 127.0.0.1") == true)
        config.ports = [PortMapping(hostIP: "0.0.0.0", hostPort: nil, containerPort: 18789)]
        #expect(SwarmServiceSpec.refusal(botId: "a", config: config, engine: engine)?.contains("fixed host port") == true)
        config.ports = [PortMapping(hostIP: "0.0.0.0", hostPort: 18789, containerPort: 18789)]
        #expect(SwarmServiceSpec.refusal(botId: "a", config: config, engine: engine) == nil)
        config.security = .strict
        #expect(SwarmServiceSpec.refusal(botId: "a", config: config, engine: engine)?.contains("tmpfs") == true)
        config.security = .standard
        let long = String(repeating: "x", count: 55)
        #expect(SwarmServiceSpec.refusal(botId: long, config: config, engine: engine)?.contains("63 characters") == true)
        #expect(SwarmServiceSpec.refusal(botId: String(long.dropLast()), config: config, engine: engine) == nil)
    }

    @Test func secretNamesAreContentAddressedAndFitSwarmsLimit() {
        let short = SwarmServiceSpec.secretName(botId: "a", file: "TOKEN", digest: "0123456789abcdef")
        #expect(short == "botmaker-a-TOKEN-0123456789ab")
        #expect(SwarmServiceSpec.secretName(botId: "a", file: "TOKEN", digest: "ffff456789abcdef") != short)
        let long = SwarmServiceSpec.secretName(botId: String(repeating: "b", count: 50), file: "GATEWAY_TOKEN", digest: "0123456789abcdef")
        #expect(long.count <= 64 && long.hasSuffix("-0123456789ab"))
        #expect(long != SwarmServiceSpec.secretName(botId: String(repeating: "c", count: 50), file: "GATEWAY_TOKEN", digest: "0123456789abcdef"))
    }

    // MARK: - The service spec

    static func spec(_ config: ContainerConfig, launch: ContainerLaunch? = nil, replicas: Int = 1) -> JSONValue {
        SwarmServiceSpec.make(botId: "a", config: config, launch: launch ?? ContainerLaunch(environment: config.environment),
                              labels: ["botmaker.managed": "true"], secrets: [.init(file: "TOKEN", id: "sid", name: "botmaker-a-TOKEN-0123")],
                              networkId: "net", replicas: replicas, forceUpdate: 3, stopGraceSeconds: 10, monitorSeconds: 10, engine: .init())
    }

    @Test func theServiceSpecCarriesTheBotsFields() {
        var config = ContainerConfig(image: "img:1", environment: ["A=1"], secretsPath: "/s/a", command: ["sleep", "9"],
                                     mounts: [StateMount(name: "state", target: "/state")], user: "1000:1001", memoryBytes: 1 << 28)
        config.health = HealthOverride(command: ["true"], intervalSeconds: 5)
        var launch = ContainerLaunch(environment: ["A=1", "TOKEN=x"], published: [PublishedPort(hostIP: "0.0.0.0", hostPort: 18789, containerPort: 8080, proto: "tcp")])
        launch.node = "node-2"
        launch.updateStrategy = .recreate
        let spec = Self.spec(config, launch: launch, replicas: 0)
        let container = spec[path: ["TaskTemplate", "ContainerSpec"]]
        #expect(spec["Name"] == .string("botmaker-a"))
        #expect(spec[path: ["Mode", "Replicated", "Replicas"]] == .number(0))
        #expect(container?["Args"] == .array([.string("sleep"), .string("9")]))
        #expect(container?["Env"] == .array([.string("A=1"), .string("TOKEN=x")]))
        #expect(container?["User"] == .string("1000:1001"))
        #expect(container?["Init"] == .bool(true))
        #expect(container?[path: ["Healthcheck", "Interval"]] == .number(5e9))
        #expect(container?["Secrets"] == .array([.object(["SecretID": .string("sid"), "SecretName": .string("botmaker-a-TOKEN-0123"),
                                                          "File": .object(["Name": .string("TOKEN"), "UID": .string("1000"), "GID": .string("1001"),
                                                                           "Mode": .number(256)])])]))
        #expect(container?[path: ["Mounts"]] == .array([.object(["Type": .string("volume"), "Source": .string("botmaker-a-state"),
                                                                 "Target": .string("/state"),
                                                                 "VolumeOptions": .object(["Labels": .object(["botmaker.managed": .string("true")])])])]))
        #expect(spec[path: ["TaskTemplate", "Placement", "Constraints"]] == .array([.string("node.id==node-2")]))
        #expect(spec[path: ["TaskTemplate", "Resources", "Limits", "MemoryBytes"]] == .number(Double(1 << 28)))
        #expect(spec[path: ["TaskTemplate", "RestartPolicy", "Condition"]] == .string("any"))
        #expect(spec[path: ["TaskTemplate", "ForceUpdate"]] == .number(3))
        #expect(spec[path: ["UpdateConfig", "Order"]] == .string("stop-first"))
        #expect(spec[path: ["UpdateConfig", "FailureAction"]] == .string("continue"))
        #expect(spec[path: ["EndpointSpec", "Mode"]] == .string("dnsrr"))
        #expect(spec[path: ["EndpointSpec", "Ports"]] == .array([.object(["Protocol": .string("tcp"), "TargetPort": .number(8080),
                                                                          "PublishedPort": .number(18789), "PublishMode": .string("host")])]))
        #expect(spec[path: ["Labels", SwarmServiceSpec.digestLabel]] == .string(SwarmServiceSpec.digest(of: spec)))
    }

    /// Swarm fills in defaults around what botmaker writes: the digest of a spec read back is the one written; an edit of a
    /// field botmaker sets is not.
    @Test func theDigestIgnoresSwarmsDefaultsButNotEdits() {
        let written = Self.spec(ContainerConfig(image: "img:1", environment: ["A=1"], secretsPath: "/s/a"))
        var readBack = written
        readBack[path: ["TaskTemplate", "ContainerSpec", "Isolation"]] = .string("default")
        readBack[path: ["TaskTemplate", "Runtime"]] = .string("container")
        readBack[path: ["TaskTemplate", "RestartPolicy", "MaxAttempts"]] = .number(0)
        readBack[path: ["UpdateConfig", "MaxFailureRatio"]] = .number(0)
        readBack[path: ["TaskTemplate", "ForceUpdate"]] = .number(9)
        readBack[path: ["Mode", "Replicated", "Replicas"]] = .number(0)
        #expect(SwarmServiceSpec.digest(of: Self.spec(ContainerConfig(image: "img:1", secretsPath: "/s/a"))) == {
            var spec = Self.spec(ContainerConfig(image: "img:1", secretsPath: "/s/a"))
            spec[path: ["TaskTemplate", "ContainerSpec", "Env"]] = nil
            return SwarmServiceSpec.digest(of: spec)
        }(), "Swarm drops an empty Env")
        #expect(SwarmServiceSpec.digest(of: readBack) == SwarmServiceSpec.digest(of: written))
        var edited = written
        edited[path: ["TaskTemplate", "ContainerSpec", "Env"]] = .array([.string("A=1"), .string("INJECTED=1")])
        #expect(SwarmServiceSpec.digest(of: edited) != SwarmServiceSpec.digest(of: written))
    }

    // MARK: - The planner with an engine that updates in place

    @Test func aChangedSpecIsAnUpdateInPlaceNeverARemoveAndCreate() {
        let old = PlannerTests.bot("a", env: ["K=1"])
        let new = PlannerTests.bot("a", env: ["K=2"], generation: 2)
        for state in [ContainerState.running, .exited] {
            let plan = Self.plan(new, PlannerTests.container(old, state))
            #expect(plan.actions.map(\.kind) == [.reconfigure], "\(state)")
            #expect(plan.actions.first?.kind.symbol == "~")
            #expect(plan.actions.first?.isUpdate == (state == .running), "a running bot's update is paced")
        }
    }

    @Test func aPendingTaskIsWaitedForAndAPinnedBotOnADeadNodeIsNodeDown() {
        let bot = PlannerTests.bot("a")
        var pending = PlannerTests.container(bot, .created)
        pending.pending = "Swarm is placing or starting the task (task preparing)"
        #expect(Self.plan(bot, pending).actions.map(\.kind) == [.wait])
        pending.nodeDown = true
        pending.pending = "pinned to node swlab2 (its state is there), which is down; it runs again when the node is back"
        let plan = Self.plan(bot, pending)
        #expect(plan.actions.map(\.kind) == [.blocked])
        #expect(plan.actions.first?.errorCode == .nodeDown)
        #expect(plan.statusUpdates.first?.lastErrorCode == "NODE_DOWN")
        #expect(plan.statusUpdates.first?.lastErrorMessage?.contains("swlab2") == true)
    }

    /// Swarm rolled a failed update back by itself (it forgets the failed spec): the update botmaker last applied is
    /// recorded as UPDATE_ROLLED_BACK and held; the next pass tries nothing; `bot retry` (the held target forgotten) sends
    /// it again, and so does a new target.
    @Test func anUpdateTheEngineRolledBackIsRecordedAndHeld() {
        let old = PlannerTests.bot("a", env: ["K=1"])
        let new = PlannerTests.bot("a", env: ["K=2"], generation: 2)
        var container = PlannerTests.container(old, .running)
        container.engineRollback = EngineRollback(inProgress: true, message: "rollback started")
        var applied = BotStatus(botId: "a")
        applied.containerId = container.id
        applied.appliedSpec = String(decoding: new.config.spec.canonicalEncoding, as: UTF8.self)
        #expect(Self.plan(new, container, status: applied).actions.map(\.kind) == [.wait], "waits while Swarm rolls back")
        container.engineRollback = EngineRollback(inProgress: false, message: "rollback completed")
        let first = Self.plan(new, container, status: applied)
        #expect(first.actions.map(\.kind) == [.blocked])
        #expect(first.actions.first?.errorCode == .updateRolledBack)
        let status = first.statusUpdates.first
        #expect(status?.failedUpdateHash == new.config.specHash && status?.rolledBackFromGeneration == 2)
        let second = Self.plan(new, container, status: status)
        #expect(second.actions.map(\.kind) == [.blocked] && second.actions.first?.errorCode == .updateRolledBack)
        var retried = status!
        retried.clearFailedUpdate()
        #expect(Self.plan(new, container, status: retried).actions.map(\.kind) == [.reconfigure], "bot retry sends it again")
        // A rollback of an update botmaker did not write (someone's `docker service rollback`) is a drift put back.
        #expect(Self.plan(new, container, status: BotStatus(botId: "a")).actions.map(\.kind) == [.reconfigure])
        let newer = PlannerTests.bot("a", env: ["K=3"], generation: 3)
        #expect(Self.plan(newer, container, status: status).actions.map(\.kind) == [.reconfigure])
    }

    /// While Swarm updates (or rolls back) a service by itself, the bot waits, and its update keeps its slot.
    @Test func anUpdateUnderWayHoldsItsSlot() {
        let bot = PlannerTests.bot("a")
        var container = PlannerTests.container(bot, .running)
        container.engineUpdating = true
        let plan = Self.plan(bot, container)
        #expect(plan.actions.map(\.kind) == [.wait] && plan.actions.first?.holdsUpdateSlot == true)
        container.engineUpdating = false
        #expect(Self.plan(bot, container).actions.isEmpty)
    }

    @Test func aStoppedBotWhoseTaskIsStillStartingIsScaledToZero() {
        let bot = PlannerTests.bot("a", .stopped)
        var pending = PlannerTests.container(bot, .created)
        pending.pending = "Swarm is placing or starting the task (task preparing)"
        #expect(Self.plan(bot, pending).actions.map(\.kind) == [.stop])
        pending.pending = nil
        #expect(Self.plan(bot, pending).actions.isEmpty)
    }

    @Test func plansShowTheNode() {
        let bot = PlannerTests.bot("a", restart: "2026-01-01")
        var container = PlannerTests.container(bot, .running)
        container.node = "swlab3"
        let plan = Self.plan(bot, container)
        #expect(plan.actions.first?.node == "swlab3")
        #expect(PlanRenderer.text(plan).contains("(node swlab3)"))
        #expect(PlanRenderer.json(plan).contains(#""node" : "swlab3""#))
        // A converged bot's status row records its node.
        let converged = PlannerTests.bot("a")
        var running = PlannerTests.container(converged, .running)
        running.node = "swlab3"
        #expect(Self.plan(converged, running).statusUpdates.first?.node == "swlab3")
    }
}

/// How a service and its tasks read as a container.
@Suite struct SwarmObservationTests {
    static func service(replicas: Int, running: Int, constraint: String? = nil, update: String? = nil) throws -> SwarmService {
        let placement = constraint.map { #","Placement":{"Constraints":["\#($0)"]}"# } ?? ""
        let updateStatus = update.map { #","UpdateStatus":{"State":"\#($0)","Message":"rolled back"}"# } ?? ""
        let json = """
            {"ID":"svc1","Version":{"Index":7},"Spec":{"Name":"botmaker-a","Labels":{"botmaker.managed":"true","botmaker.bot-id":"a","botmaker.spec-hash":"new"},
             "TaskTemplate":{"ContainerSpec":{"Image":"img:1"}\(placement)},"Mode":{"Replicated":{"Replicas":\(replicas)}}},
             "PreviousSpec":{"Name":"botmaker-a","Labels":{"botmaker.spec-hash":"failed"}},
             "ServiceStatus":{"RunningTasks":\(running),"DesiredTasks":\(replicas)}\(updateStatus)}
            """
        return try JSONDecoder().decode(SwarmService.self, from: Data(json.utf8))
    }

    static func task(_ state: String, desired: String = "running", node: String = "n2", exit: Int? = nil, at: String = "2026-01-01T00:00:01Z") throws -> SwarmTask {
        let status = exit.map { #","ContainerStatus":{"ExitCode":\#($0)}"# } ?? ""
        let json = #"{"ID":"t\#(at)\#(state)","ServiceID":"svc1","NodeID":"\#(node)","DesiredState":"\#(desired)","Status":{"State":"\#(state)","Err":"task: non-zero exit (\#(exit ?? 0))","Timestamp":"\#(at)"\#(status)}}"#
        return try JSONDecoder().decode(SwarmTask.self, from: Data(json.utf8))
    }

    static let nodes = ["n1": SwarmNode(id: "n1", hostname: "swlab1", state: "ready"), "n2": SwarmNode(id: "n2", hostname: "swlab2", state: "down")]

    @Test func servicesReadAsContainers() throws {
        let running = SwarmRuntime.info(try Self.service(replicas: 1, running: 1), tasks: [try Self.task("running", node: "n1")], nodes: Self.nodes)
        #expect(running.state == .running && running.node == "swlab1" && running.pending == nil && running.specHash == "new")
        let stopped = SwarmRuntime.info(try Self.service(replicas: 0, running: 0), tasks: [], nodes: Self.nodes)
        #expect(stopped.state == .exited && stopped.node == nil)
        let starting = SwarmRuntime.info(try Self.service(replicas: 1, running: 0), tasks: [try Self.task("preparing", node: "n1")], nodes: Self.nodes)
        #expect(starting.state == .created && starting.pending?.contains("preparing") == true && !starting.nodeDown)
        let pinned = SwarmRuntime.info(try Self.service(replicas: 1, running: 0, constraint: "node.id==n2"), tasks: [try Self.task("pending")],
                                       nodes: Self.nodes)
        #expect(pinned.nodeDown && pinned.pending?.contains("swlab2") == true && pinned.pending?.contains("down") == true)
        // While a node is down, Swarm still counts its task as running (and shows it so): it does not count.
        let stale = SwarmRuntime.info(try Self.service(replicas: 1, running: 1, constraint: "node.id==n2"), tasks: [
            try Self.task("running", desired: "shutdown", at: "2026-01-01T00:00:01Z"), try Self.task("pending", at: "2026-01-01T00:00:02Z"),
        ], nodes: Self.nodes)
        #expect(stale.state == .created && stale.nodeDown)
        let floating = SwarmRuntime.info(try Self.service(replicas: 1, running: 1), tasks: [try Self.task("running")], nodes: Self.nodes)
        #expect(floating.state == .created && !floating.nodeDown && floating.pending?.contains("another node") == true)
        let crashing = SwarmRuntime.info(try Self.service(replicas: 1, running: 0), tasks: [
            try Self.task("failed", desired: "shutdown", node: "n1", exit: 3, at: "2026-01-01T00:00:03Z"),
            try Self.task("failed", desired: "shutdown", node: "n1", exit: 3, at: "2026-01-01T00:00:01Z"),
            try Self.task("ready", node: "n1", at: "2026-01-01T00:00:04Z"),
        ], nodes: Self.nodes)
        #expect(crashing.state == .restarting && crashing.exitCode == 3)
        let rolledBack = SwarmRuntime.info(try Self.service(replicas: 1, running: 1, update: "rollback_completed"),
                                           tasks: [try Self.task("running", node: "n1")], nodes: Self.nodes)
        #expect(rolledBack.engineRollback == EngineRollback(inProgress: false, message: "rolled back"))
        let rolling = SwarmRuntime.info(try Self.service(replicas: 1, running: 1, update: "rollback_started"),
                                        tasks: [try Self.task("running", node: "n1")], nodes: Self.nodes)
        #expect(rolling.engineRollback?.inProgress == true)
    }
}
