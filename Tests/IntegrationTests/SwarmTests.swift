@testable import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// Issue 14, botmaker driving a real 3-node Swarm (`scripts/swarm-lab`: one dockerd per network namespace), with the
/// Docker CLI against the manager as the witness. Serialized: one test kills a node, which the others would feel.
@Suite(.serialized, .enabled(if: TestDocker.shouldRun, "no Docker engine (set BOTMAKER_REQUIRE_DOCKER=1 to make this a failure)"))
struct SwarmTests {
    /// Runs `body` with a migrated deployment driving the lab; everything of its instance is removed afterwards.
    func withLab(_ prefix: String, _ body: (Deployment, SwarmLab) async throws -> Void) async throws {
        guard let lab = try SwarmLab.current() else { return }
        let deployment = try Deployment(prefix)
        defer { deployment.remove() }
        #expect(try await deployment.botmaker(["migrate"]).status == 0)
        let result: Result<Void, any Error>
        do { result = .success(try await body(deployment, lab)) } catch { result = .failure(error) }
        await lab.clean(instance: deployment.instance)
        try result.get()
    }

    func botmaker(_ deployment: Deployment, _ lab: SwarmLab, _ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessOutput {
        try await deployment.botmaker(arguments, environment: lab.environment.merging(environment) { _, new in new })
    }

    @discardableResult
    func reconcile(_ deployment: Deployment, _ lab: SwarmLab, _ extra: [String] = []) async throws -> ProcessOutput {
        let output = try await botmaker(deployment, lab, ["reconcile"] + extra)
        #expect(output.status == 0, "reconcile \(extra): \(output.stdout)\(output.stderr)")
        return output
    }

    /// This deployment's services: name → (id, version, replicas).
    func services(_ deployment: Deployment, _ lab: SwarmLab) async throws -> [String: (id: String, version: Int, replicas: Int)] {
        let text = try await lab.docker(["service", "ls", "-q", "--filter", "label=botmaker.instance=\(deployment.instance)"])
        let ids = text.split(separator: "\n").map(String.init)
        guard !ids.isEmpty else { return [:] }
        let lines = try await lab.docker(["service", "inspect", "--format", "{{.Spec.Name}} {{.ID}} {{.Version.Index}} {{.Spec.Mode.Replicated.Replicas}}"] + ids)
        var result: [String: (id: String, version: Int, replicas: Int)] = [:]
        for line in lines.split(separator: "\n") {
            let parts = line.split(separator: " ").map(String.init)
            result[parts[0]] = (parts[1], Int(parts[2]) ?? -1, Int(parts[3]) ?? -1)
        }
        return result
    }

    /// Service name → hostname of the node its running task is on, for this deployment's services with a running task.
    func runningNodes(_ deployment: Deployment, _ lab: SwarmLab) async throws -> [String: String] {
        let services = try await services(deployment, lab)
        let byId = Dictionary(services.map { ($0.value.id, $0.key) }, uniquingKeysWith: { a, _ in a })
        return try await lab.withClient { client in
            let tasks = try await client.listTasks(filters: ["desired-state": ["running"]])
            var nodes: [String: String] = [:]
            let hostnames = Dictionary(try await client.listNodes().map { ($0.id, $0.hostname) }, uniquingKeysWith: { a, _ in a })
            for task in tasks where task.status.state == "running" {
                if let name = byId[task.serviceID], let node = task.nodeID { nodes[name] = hostnames[node] ?? node }
            }
            return nodes
        }
    }

    /// The names of this deployment's Swarm secrets.
    func secrets(_ deployment: Deployment, _ lab: SwarmLab) async throws -> [String] {
        try await lab.docker(["secret", "ls", "--filter", "label=botmaker.instance=\(deployment.instance)", "--format", "{{.Name}}"])
            .split(separator: "\n").map(String.init).sorted()
    }

    func env(_ lab: SwarmLab, _ service: String) async throws -> String {
        try await lab.docker(["service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}", service])
    }

    // MARK: - Tests

    /// 20 bots converge as 20 services spread over the nodes, each shown with its node; a second pass changes nothing
    /// (no service update: versions unchanged).
    @Test(.timeLimit(.minutes(4))) func twentyBotsConvergeAcrossNodesAndASecondPassChangesNothing() async throws {
        try await withLab("sw20") { deployment, lab in
            let names = (0..<20).map { "b\($0)" }
            try await deployment.insertBots(names)
            let output = try await reconcile(deployment, lab)
            #expect(output.stdout.contains("20 to create"), "\(output.stdout)")
            try await eventually(timeout: 60, "20 tasks running") { try await runningNodes(deployment, lab).count == 20 }
            let placed = try await runningNodes(deployment, lab)
            #expect(Set(placed.values).count == lab.nodes.count, "spread over every node: \(placed)")
            let before = try await services(deployment, lab)
            #expect(before.count == 20 && before.values.allSatisfy { $0.replicas == 1 })

            let second = try await reconcile(deployment, lab, ["--detailed-exitcode"])
            #expect(second.stdout.contains("No changes"), "\(second.stdout)")
            let after = try await services(deployment, lab)
            #expect(after.mapValues(\.version) == before.mapValues(\.version), "no service was updated")
            // status and bot_overview show each bot's node.
            for name in names {
                let service = "botmaker-\(deployment.bot(name))"
                #expect(try await deployment.sqlite("SELECT node FROM bot_overview WHERE id = '\(deployment.bot(name))'") == placed[service])
            }
            #expect(try await botmaker(deployment, lab, ["status"]).stdout.contains("NODE"))
        }
    }

    /// stop, start, restart, an env change, a secret rotation and a deleted row each do what they do on one host: the
    /// service is scaled, forced, updated in place (same service) or removed; a rotated secret leaves no old one behind.
    @Test(.timeLimit(.minutes(4))) func lifecycleOperationsDoWhatTheyDoOnOneHost() async throws {
        try await withLab("swops") { deployment, lab in
            try await deployment.insertBots(["a", "b", "c"])
            _ = try await deployment.botmaker(["secrets", "set", deployment.bot("a"), "TOKEN"], stdin: "one")
            try await reconcile(deployment, lab)
            try await eventually(timeout: 60, "3 tasks running") { try await runningNodes(deployment, lab).count == 3 }
            let first = try await services(deployment, lab)
            let a = "botmaker-\(deployment.bot("a"))", b = "botmaker-\(deployment.bot("b"))", c = "botmaker-\(deployment.bot("c"))"
            let oldSecrets = try await secrets(deployment, lab)
            #expect(oldSecrets.count == 1 && oldSecrets[0].contains("TOKEN"), "\(oldSecrets)")
            // The secret is mounted at /run/secrets/TOKEN, read-only for the task.
            let mounted = try await lab.docker(["service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}", a])
            #expect(mounted.contains(#""Name":"TOKEN""#) && mounted.contains(#""Mode":256"#), "\(mounted)")

            // stop → replicas 0; start → replicas 1, the same service.
            try await deployment.sqlite("UPDATE bots SET desired_state = 'stopped' WHERE id = '\(deployment.bot("b"))'")
            try await reconcile(deployment, lab)
            #expect(try await services(deployment, lab)[b]?.replicas == 0)
            try await eventually(timeout: 30, "b's task stopped") { try await runningNodes(deployment, lab)[b] == nil }
            #expect(try await deployment.status("b", "actual_state") == "exited")
            try await deployment.sqlite("UPDATE bots SET desired_state = 'running' WHERE id = '\(deployment.bot("b"))'")
            try await reconcile(deployment, lab)
            #expect(try await services(deployment, lab)[b]?.replicas == 1)
            #expect(try await services(deployment, lab)[b]?.id == first[b]?.id)

            // restart → ForceUpdate + 1 and a new task.
            let forceBefore = try await lab.docker(["service", "inspect", "--format", "{{.Spec.TaskTemplate.ForceUpdate}}", a])
            #expect(try await deployment.botmaker(["bot", "restart", deployment.bot("a")]).status == 0)
            try await reconcile(deployment, lab)
            #expect(try await lab.docker(["service", "inspect", "--format", "{{.Spec.TaskTemplate.ForceUpdate}}", a]) == String((Int(forceBefore) ?? 0) + 1))

            // env change → updated in place.
            try await deployment.sqlite(#"UPDATE bots SET environment = '["GREETING=changed"]' WHERE id = '\#(deployment.bot("c"))'"#)
            let changed = try await reconcile(deployment, lab)
            #expect(changed.stdout.contains("reconfigure"), "\(changed.stdout)")
            #expect(try await env(lab, c).contains("GREETING=changed"))
            #expect(try await services(deployment, lab)[c]?.id == first[c]?.id, "updated in place, not removed and made again")

            // secret rotation → a new secret; the old one stays while Swarm may still roll back to it, and goes once the
            // update has completed (--update-min-uptime 2 here).
            _ = try await deployment.botmaker(["secrets", "set", deployment.bot("a"), "TOKEN"], stdin: "two")
            let rotated = try await reconcile(deployment, lab, ["--update-min-uptime", "2"])
            #expect(rotated.stdout.contains("secret files"), "\(rotated.stdout)")
            #expect(try await secrets(deployment, lab).contains(oldSecrets[0]), "kept for Swarm's rollback")
            try await eventually(timeout: 90, every: .seconds(1), "the old secret removed after the update completed") {
                try await reconcile(deployment, lab, ["--update-min-uptime", "2"])
                let now = try await secrets(deployment, lab)
                return now.count == 1 && now != oldSecrets
            }

            // row deleted → service removed, and its network and secrets with it.
            try await deployment.sqlite("DELETE FROM bots WHERE id = '\(deployment.bot("a"))'")
            try await reconcile(deployment, lab)
            #expect(try await services(deployment, lab)[a] == nil)
            try await eventually(timeout: 30, "a's secret and network removed") {
                try await reconcile(deployment, lab)
                let networks = try await lab.docker(["network", "ls", "--filter", "label=botmaker.bot-id=\(deployment.bot("a"))", "-q"])
                return try await secrets(deployment, lab).isEmpty && networks.isEmpty
            }
            #expect(try await services(deployment, lab).count == 2)
        }
    }

    /// A service edited by hand is put back; a service named like a bot but without our labels is never touched.
    @Test(.timeLimit(.minutes(3))) func handEditsArePutBackAndForeignServicesAreLeftAlone() async throws {
        try await withLab("swfor") { deployment, lab in
            try await deployment.insertBots(["mine", "taken"])
            let taken = "botmaker-\(deployment.bot("taken"))"
            try await lab.docker(["service", "create", "-d", "--no-resolve-image", "--name", taken, "--label", "someone=else", TestDocker.image,
                                  "sleep", "100000"])
            let foreignBefore = try await lab.docker(["service", "inspect", "--format", "{{.ID}} {{.Version.Index}}", taken])
            _ = try await botmaker(deployment, lab, ["reconcile"])
            #expect(try await deployment.status("taken", "last_error_code") == "ALREADY_EXISTS")
            let mine = "botmaker-\(deployment.bot("mine"))"
            try await lab.docker(["service", "update", "-d", "--env-add", "INJECTED=1", mine])
            #expect(try await env(lab, mine).contains("INJECTED=1"))
            let second = try await botmaker(deployment, lab, ["reconcile"])
            #expect(second.stdout.contains("changed outside botmaker"), "\(second.stdout)")
            #expect(try await !env(lab, mine).contains("INJECTED"))
            // Deleting the row of the blocked bot does not remove the foreign service either.
            try await deployment.sqlite("DELETE FROM bots WHERE id = '\(deployment.bot("taken"))'")
            _ = try await botmaker(deployment, lab, ["reconcile"])
            #expect(try await lab.docker(["service", "inspect", "--format", "{{.ID}} {{.Version.Index}}", taken]) == foreignBefore)
            try await lab.docker(["service", "rm", taken])
        }
    }

    /// SIGKILL of botmaker in the middle of converging 20 bots (after a secret was made for a service not yet created),
    /// then one run: exactly one service per bot and no secret that no service uses.
    @Test(.timeLimit(.minutes(4))) func aKillDuringConvergenceLeavesOneServicePerBotAndNoOrphanedSecret() async throws {
        try await withLab("swkill") { deployment, lab in
            let names = (0..<20).map { "k\($0)" }
            try await deployment.insertBots(names)
            for name in names { _ = try await deployment.botmaker(["secrets", "set", deployment.bot(name), "TOKEN"], stdin: "secret-\(name)") }
            let killed = try await botmaker(deployment, lab, ["reconcile"], environment: ["BOTMAKER_FAILPOINT": "swarm.before-create@9"])
            #expect(killed.status != 0 && killed.stderr.contains("failpoint swarm.before-create"), "\(killed.status) \(killed.stderr)")
            let partial = try await services(deployment, lab).count
            #expect(partial >= 8 && partial < 20, "killed in the middle: \(partial) services")
            try await reconcile(deployment, lab)
            let services = try await services(deployment, lab)
            #expect(services.keys.sorted() == names.map { "botmaker-\(deployment.bot($0))" }.sorted())
            let used = try await lab.docker(["service", "inspect", "--format", "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}"]
                                            + services.values.map(\.id))
                .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init).sorted()
            #expect(try await secrets(deployment, lab) == used, "every secret is used by a service")
            #expect(used.count == 20)
        }
    }

    /// botmaker refuses a worker and an engine outside a swarm with a message that says so.
    @Test func aWorkerOrAnEngineOutsideASwarmIsRefused() async throws {
        try await withLab("swref") { deployment, lab in
            try await deployment.insertBots(["x"])
            let worker = try await botmaker(deployment, lab, ["reconcile"], environment: ["DOCKER_HOST": lab.nodes[1].host])
            #expect(worker.status != 0 && worker.stderr.contains("swarm worker"), "\(worker.stderr)")
            let single = try await botmaker(deployment, lab, ["reconcile", "--dry-run"], environment: ["DOCKER_HOST": "unix:///var/run/docker.sock"])
            #expect(single.status != 0 && single.stderr.contains("not part of a swarm"), "\(single.stderr)")
            #expect(try await services(deployment, lab).isEmpty)
        }
    }

    /// A worker's dockerd killed: its floating bots run elsewhere again; a bot with state, pinned to that node, is
    /// NODE_DOWN (not moved without its data) and runs there again once the node is back.
    @Test(.timeLimit(.minutes(6))) func aDeadNodeMovesFloatingBotsAndHoldsPinnedOnes() async throws {
        try await withLab("swnode") { deployment, lab in
            let worker = lab.nodes[1]
            let names = (0..<6).map { "f\($0)" }
            try await deployment.insertBots(names)
            try await deployment.insertBots(["pinned"])
            try await deployment.sqlite(#"UPDATE bots SET mounts = '[{"name":"state","target":"/state"}]' WHERE id = '\#(deployment.bot("pinned"))'"#)
            // The pinned bot's placement is declared on the worker (as if it had first run there).
            try await deployment.sqlite("INSERT INTO swarm_placements (bot_id, node_id, pinned_at) VALUES ('\(deployment.bot("pinned"))', '\(worker.id)', '2026-01-01T00:00:00Z')")
            try await reconcile(deployment, lab)
            try await eventually(timeout: 60, "7 tasks running") { try await runningNodes(deployment, lab).count == 7 }
            let pinned = "botmaker-\(deployment.bot("pinned"))"
            #expect(try await runningNodes(deployment, lab)[pinned] == worker.hostname)
            let onWorker = try await runningNodes(deployment, lab).filter { $0.value == worker.hostname && $0.key != pinned }.map(\.key)
            #expect(!onWorker.isEmpty, "Swarm spread some floating bots onto the worker")

            try await lab.script(["kill-node", String(worker.index)])
            let killedAt = Date()
            let whileDown: Result<Void, any Error>
            do {
                try await eventually(timeout: 120, every: .milliseconds(500), "floating bots running elsewhere") {
                    let now = try await runningNodes(deployment, lab)
                    return now.filter { $0.key != pinned }.count == 6 && now.filter { $0.key != pinned }.allSatisfy { $0.value != worker.hostname }
                }
                print("swarm: \(onWorker.count) floating bots of the dead node ran elsewhere after \(String(format: "%.1f", Date().timeIntervalSince(killedAt))) s")
                try await eventually(timeout: 60, every: .milliseconds(500), "the pinned bot reported NODE_DOWN") {
                    _ = try await botmaker(deployment, lab, ["reconcile"])
                    return try await deployment.status("pinned", "last_error_code") == "NODE_DOWN"
                }
                #expect(try await deployment.status("pinned", "last_error_message").contains(worker.hostname))
                #expect(try await runningNodes(deployment, lab)[pinned] == nil, "never moved without its data")
                whileDown = .success(())
            } catch {
                whileDown = .failure(error)
            }
            // The node comes back whatever happened, so the lab is whole for the next test.
            try await lab.script(["start-node", String(worker.index)])
            try whileDown.get()
            try await eventually(timeout: 120, every: .milliseconds(500), "the pinned bot runs on its node again") {
                try await runningNodes(deployment, lab)[pinned] == worker.hostname
            }
            try await eventually(timeout: 30, every: .milliseconds(500), "NODE_DOWN cleared") {
                _ = try await botmaker(deployment, lab, ["reconcile"])
                return try await deployment.status("pinned", "last_error_code") == ""
            }
        }
    }

    /// `botmaker run` on Swarm: a new row converges through the store's change detection, and a service changed by hand
    /// (env added, scaled to 0) is put back through Swarm's service events, long before the next resync.
    @Test(.timeLimit(.minutes(3))) func theServiceFollowsEditsAndSwarmEvents() async throws {
        try await withLab("swrun") { deployment, lab in
            let service = try ServiceProcess(arguments: deployment.commonArguments + ["--resync-interval", "600", "--poll-interval", "0.1"],
                                             logPath: deployment.dir.file("run.log"), environment: lab.environment)
            defer { _ = Task { try? await service.stop() } }
            try await deployment.insertBots(["live"])
            let name = "botmaker-\(deployment.bot("live"))"
            try await eventually(timeout: 60, "the new row runs") { try await runningNodes(deployment, lab)[name] != nil }
            try await lab.docker(["service", "update", "-d", "--env-add", "INJECTED=1", name])
            try await eventually(timeout: 30, "the hand edit put back") { try await !env(lab, name).contains("INJECTED") }
            try await lab.docker(["service", "scale", "-d", "\(name)=0"])
            try await eventually(timeout: 30, "scaled back to 1") { try await services(deployment, lab)[name]?.replicas == 1 }
            try await eventually(timeout: 60, "running again") { try await runningNodes(deployment, lab)[name] != nil }
            #expect(try await service.stop() == 0, "\(service.log.suffix(2000))")
        }
    }

    /// A service changed between botmaker's read and its update ("update out of sequence", HTTP 500): read again and
    /// retried, the change applied on top of the current spec, never reported as the bot's error.
    @Test(.timeLimit(.minutes(2))) func anUpdateOutOfSequenceIsReadAgainAndRetried() async throws {
        try await withLab("swseq") { deployment, lab in
            try await deployment.insertBots(["seq"])
            try await reconcile(deployment, lab)
            let name = "botmaker-\(deployment.bot("seq"))"
            let owner = try await deployment.sqlite("SELECT owner_id FROM store_identity")
            try await lab.withClient { client in
                let stale = try await client.inspectService(name)
                // Someone updates it meanwhile: the version botmaker read is stale now.
                try await lab.docker(["service", "update", "-d", "--label-add", "other=1", name])
                let runtime = SwarmRuntime(client: client, instance: deployment.instance, owner: owner.isEmpty ? nil : owner)
                try await runtime.update(stale, botId: deployment.bot("seq"), auth: nil) { $0[path: ["Mode", "Replicated", "Replicas"]] = .number(0) }
                let now = try await client.inspectService(name)
                #expect(now.replicas == 0)
                #expect(now.labels["other"] == "1", "the change went on top of the current spec")
                // The stale version itself is refused by the engine as the issue describes.
                do {
                    try await client.updateService(stale.id, version: stale.version.index, spec: stale.spec, auth: nil)
                    Issue.record("a stale version was accepted")
                } catch let error as DockerEngineError {
                    #expect(error.httpStatus == 500 && "\(error)".contains("update out of sequence"), "\(error)")
                }
            }
        }
    }

    /// update_strategy rollback on Swarm: an update whose new task exits is rolled back by Swarm itself; botmaker records
    /// UPDATE_ROLLED_BACK, holds that target (the next pass sends no update), and tries a new target.
    @Test(.timeLimit(.minutes(3))) func aFailedUpdateIsRolledBackBySwarmAndHeld() async throws {
        try await withLab("swrb") { deployment, lab in
            try await deployment.insertBots(["rb"])
            let options = ["--update-min-uptime", "5", "--update-timeout", "60"]
            try await reconcile(deployment, lab, options)
            let name = "botmaker-\(deployment.bot("rb"))"
            try await eventually(timeout: 60, "running") { try await runningNodes(deployment, lab)[name] != nil }
            try await deployment.sqlite(#"UPDATE bots SET command = '["false"]' WHERE id = '\#(deployment.bot("rb"))'"#)
            try await reconcile(deployment, lab, options)
            try await eventually(timeout: 90, every: .milliseconds(500), "Swarm rolled the update back") {
                try await lab.docker(["service", "inspect", "--format", "{{.UpdateStatus.State}}", name]) == "rollback_completed"
            }
            // The one-shot that sent the update followed it (it held its update slot) and saw the rollback; a later pass too.
            try await eventually(timeout: 30, every: .milliseconds(500), "UPDATE_ROLLED_BACK recorded") {
                _ = try await botmaker(deployment, lab, ["reconcile"] + options)
                return try await deployment.status("rb", "last_error_code") == "UPDATE_ROLLED_BACK"
            }
            #expect(try await deployment.status("rb", "rolled_back_from_generation") == "2")
            #expect(try await lab.docker(["service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Args}}", name]) == "null",
                    "the old spec runs")
            let version = try await services(deployment, lab)[name]?.version
            _ = try await botmaker(deployment, lab, ["reconcile"] + options)
            #expect(try await services(deployment, lab)[name]?.version == version, "held: no new attempt")
            try await deployment.sqlite(#"UPDATE bots SET command = NULL, environment = '["GREETING=again"]' WHERE id = '\#(deployment.bot("rb"))'"#)
            let next = try await reconcile(deployment, lab, options)
            #expect(next.stdout.contains("reconfigure"), "a new target is tried: \(next.stdout)")
        }
    }

    /// An env change of a running fleet is paced like a switch-over on one host: with --max-parallel-updates 1, Swarm
    /// updates one service at a time (each holds its slot until Swarm completed it), and the one-shot follows them to the end.
    @Test(.timeLimit(.minutes(3))) func updatesOfAFleetArePacedOneServiceAtATime() async throws {
        try await withLab("swpace") { deployment, lab in
            let names = ["p0", "p1", "p2"]
            try await deployment.insertBots(names)
            let options = ["--update-min-uptime", "3", "--max-parallel-updates", "1"]
            try await reconcile(deployment, lab, options)
            try await eventually(timeout: 60, "3 tasks running") { try await runningNodes(deployment, lab).count == 3 }
            try await deployment.sqlite(#"UPDATE bots SET environment = '["GREETING=paced"]'"#)
            let services = names.map { "botmaker-\(deployment.bot($0))" }
            async let run = botmaker(deployment, lab, ["reconcile"] + options)
            var most = 0
            var seenUpdating = Set<String>()
            let started = Date()
            while Date().timeIntervalSince(started) < 60 {
                let states = try await lab.docker(["service", "inspect", "--format", "{{.Spec.Name}} {{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}"] + services)
                    .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
                let updating = states.filter { $0.count > 1 && $0[1] == "updating" }.map { $0[0] }
                seenUpdating.formUnion(updating)
                most = max(most, updating.count)
                if updating.isEmpty && seenUpdating.count == 3 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            let output = try await run
            #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
            #expect(most == 1, "at most one service updating at once (saw \(most))")
            #expect(seenUpdating.count == 3, "each service was updated: \(seenUpdating)")
            for service in services { #expect(try await env(lab, service).contains("GREETING=paced")) }
            let states = try await lab.docker(["service", "inspect", "--format", "{{.UpdateStatus.State}}"] + services)
            #expect(states.split(separator: "\n").allSatisfy { $0 == "completed" }, "the one-shot returned after the updates completed: \(states)")
        }
    }
}
