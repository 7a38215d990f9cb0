import BotMaker
import Foundation
import Testing

@Suite struct PlannerTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func bot(_ id: String = "a", _ state: DesiredState = .running, env: [String] = ["K=v"], generation: Int64 = 1,
                    restart: String? = nil) -> DesiredBot {
        DesiredBot(id: id, config: ContainerConfig(image: "img:1", environment: env, secretsPath: "/s/\(id)"),
                   desiredState: state, generation: generation, restartRequestedAt: restart)
    }

    static func container(_ bot: DesiredBot, _ state: ContainerState, hash: String?? = .none, status: String? = nil, id: String? = nil) -> ContainerInfo {
        var labels = ["botmaker.managed": "true", "botmaker.bot-id": bot.id]
        let specHash: String? = hash ?? bot.config.specHash
        if let specHash {
            labels["botmaker.spec-hash"] = specHash
            labels["botmaker.spec-version"] = String(ContainerSpec.encodingVersion)
        }
        let human = status ?? (state == .exited ? "Exited (137) 1 minute ago" : state == .restarting ? "Restarting (1) 2 seconds ago" : "Up 1 minute")
        return ContainerInfo(id: id ?? "c-\(bot.id)", name: "botmaker-\(bot.id)", botId: bot.id, state: state, status: human,
                             image: bot.config.image, labels: labels)
    }

    static func plan(_ desired: [DesiredBot], _ containers: [ContainerInfo], invalid: [InvalidBot] = [], statuses: [BotStatus] = [],
                     foreign: [String: String] = [:], adopted: [String: String] = [:]) -> Plan {
        Planner.plan(PlannerInput(
            desired: desired, invalid: invalid, observed: ObservedContainers(managed: containers, foreignNames: foreign),
            statuses: Dictionary(uniqueKeysWithValues: statuses.map { ($0.botId, $0) }), adoptedHashes: adopted, now: now))
    }

    /// Desired state × observed container state, spec matching. nil = no action.
    static let table: [(DesiredState?, ContainerState?, PlannedAction.Kind?)] = [
        (.running, nil, .create), (.running, .created, .start), (.running, .running, nil), (.running, .exited, .start),
        (.running, .paused, .blocked), (.running, .restarting, .blocked), (.running, .removing, .wait), (.running, .dead, .recreate),
        (.running, .unknown, .blocked),
        (.stopped, nil, nil), (.stopped, .created, nil), (.stopped, .running, .stop), (.stopped, .exited, nil),
        (.stopped, .paused, .stop), (.stopped, .restarting, .stop), (.stopped, .removing, .wait), (.stopped, .dead, nil),
        (.stopped, .unknown, nil),
        (.absent, nil, nil), (.absent, .created, .remove), (.absent, .running, .remove), (.absent, .exited, .remove),
        (.absent, .paused, .remove), (.absent, .restarting, .remove), (.absent, .removing, .remove), (.absent, .dead, .remove),
        // nil desired state: the row was deleted.
        (nil, nil, nil), (nil, .created, .remove), (nil, .running, .remove), (nil, .exited, .remove), (nil, .restarting, .remove),
        (nil, .dead, .remove), (nil, .paused, .remove),
    ]

    @Test(arguments: table.indices)
    func everyDesiredAndObservedCombination(_ index: Int) {
        let (desired, observed, expected) = Self.table[index]
        let bot = Self.bot("a", desired ?? .running)
        let plan = Self.plan(desired == nil ? [] : [bot], observed.map { [Self.container(bot, $0)] } ?? [])
        #expect(plan.actions.first?.kind == expected, "desired \(String(describing: desired)), observed \(String(describing: observed))")
        #expect(plan.actions.count == (expected == nil ? 0 : 1))
        if let action = plan.actions.first {
            #expect(action.containerName == "botmaker-a")
            #expect(!action.cause.isEmpty)
        }
    }

    @Test func causesAreHuman() {
        let bot = Self.bot()
        #expect(Self.plan([bot], []).actions[0].cause == "no container")
        #expect(Self.plan([bot], [Self.container(bot, .exited)]).actions[0].cause == "desired running, container exited (137)")
        #expect(Self.plan([], [Self.container(bot, .running)]).actions[0].cause == "orphan: no row in bots")
        let crash = Self.plan([bot], [Self.container(bot, .restarting)]).actions[0]
        #expect(crash.errorCode == .crashLoop)
        #expect(crash.cause.contains("last exit code 1"))
    }

    @Test func specDriftRecreatesAndNamesTheFields() {
        let old = Self.bot(env: ["K=old"])
        let new = Self.bot(env: ["K=new"], generation: 2)
        var status = BotStatus(botId: "a")
        status.containerId = "c-a"
        status.appliedSpec = String(decoding: old.config.spec.canonicalEncoding, as: UTF8.self)
        let plan = Self.plan([new], [Self.container(old, .running)], statuses: [status])
        #expect(plan.actions.map(\.kind) == [.update])
        #expect(plan.actions[0].cause == "spec changed: environment (rollback on failure)")
        // Without the applied spec the cause is still truthful.
        #expect(Self.plan([new], [Self.container(old, .running)]).actions[0].cause == "spec changed (rollback on failure)")
        #expect(plan.actions[0].isUpdate, "a switch-over of a running container is an update (paced)")
        #expect(Self.plan([new], [Self.container(old, .exited)]).actions.map(\.kind) == [.recreate], "nothing runs: no safety net needed")
        #expect(!Self.plan([new], [Self.container(old, .exited)]).actions[0].isUpdate)
        var recreating = new
        recreating.updateStrategy = .recreate
        #expect(Self.plan([recreating], [Self.container(old, .running)], statuses: [status]).actions.map(\.kind) == [.recreate])
    }

    /// A container made by a botmaker whose spec encoding was older is an upgrade, named as such.
    @Test func aContainerOfAnOlderSpecVersionIsAnUpgrade() {
        let bot = Self.bot(env: ["K=v"])
        var container = Self.container(bot, .running, hash: .some("0ld"))
        container.labels["botmaker.spec-version"] = nil
        let action = Self.plan([bot], [container]).actions[0]
        #expect(action.kind == .update)
        #expect(action.isUpdate)
        #expect(action.cause.hasPrefix("botmaker upgrade: spec version 1 → \(ContainerSpec.encodingVersion)"), "\(action.cause)")
    }

    /// Health: an unhealthy container is restarted as UNHEALTHY, with backoff; one whose check is starting again after
    /// such a restart keeps the error (and so the backoff) until it is healthy.
    @Test func unhealthyIsRestartedWithBackoffAndHealedOnlyWhenHealthy() {
        let bot = Self.bot(env: ["K=v"])
        let unhealthy = Self.container(bot, .running, status: "Up 2 minutes (unhealthy)")
        #expect(unhealthy.health == .unhealthy)
        let first = Self.plan([bot], [unhealthy]).actions[0]
        #expect(first.kind == .restart)
        #expect(first.errorCode == .unhealthy)

        var status = BotStatus(botId: bot.id)
        status.containerId = unhealthy.id
        status.lastErrorCode = "UNHEALTHY"
        status.failureCount = 2
        status.failedGeneration = bot.generation
        status.nextAttemptAt = Self.now.addingTimeInterval(4)
        #expect(Self.plan([bot], [unhealthy], statuses: [status]).actions[0].kind == .wait)

        let starting = Self.plan([bot], [Self.container(bot, .running, status: "Up 1 second (health: starting)")], statuses: [status])
        #expect(starting.actions.isEmpty)
        #expect(starting.statusUpdates.first?.lastErrorCode == "UNHEALTHY")
        #expect(starting.statusUpdates.first?.failureCount == 2)
        #expect(starting.statusUpdates.first?.health == "starting")

        // Healthy again, but for less than the window since the restart: the error (and its backoff) stays, and the
        // bot is looked at again when the window ends (a bot that flaps keeps backing off).
        status.lastErrorAt = Self.now.addingTimeInterval(-10)
        let early = Self.plan([bot], [Self.container(bot, .running, status: "Up 9 seconds (healthy)")], statuses: [status])
        #expect(early.statusUpdates.first?.lastErrorCode == "UNHEALTHY")
        #expect(early.actions.map(\.kind) == [.wait])
        #expect(early.actions.first?.retryAt == Self.now.addingTimeInterval(Planner.healthyWindow - 10))

        status.lastErrorAt = Self.now.addingTimeInterval(-Planner.healthyWindow - 1)
        let healthy = Self.plan([bot], [Self.container(bot, .running, status: "Up 9 seconds (healthy)")], statuses: [status])
        #expect(healthy.statusUpdates.first?.lastErrorCode == nil)
        #expect(healthy.statusUpdates.first?.failureCount == 0)
        #expect(healthy.statusUpdates.first?.health == "healthy")
    }

    /// A secret the environment needs is missing: the bot is blocked with SECRETS_ERROR and its container left alone.
    @Test func aMissingSecretBlocksWithoutTouchingTheContainer() {
        var bot = Self.bot(env: ["K=v"])
        let container = Self.container(bot, .running)
        bot.secretProblem = "secret gateway_token for environment: /s/a/gateway_token does not exist"
        let action = Self.plan([bot], [container]).actions[0]
        #expect(action.kind == .blocked)
        #expect(action.errorCode == .secretsError)
        #expect(action.cause.contains("gateway_token"))
    }

    @Test func stoppedBotsIgnoreDriftAndNeverCreate() {
        let old = Self.bot("a", .stopped, env: ["K=old"])
        let new = Self.bot("a", .stopped, env: ["K=new"])
        #expect(Self.plan([new], [Self.container(old, .exited)]).actions.isEmpty)
        #expect(Self.plan([new], []).actions.isEmpty)
    }

    @Test func containerWithoutHashIsRecreatedUnlessAdopted() {
        let bot = Self.bot()
        let legacy = Self.container(bot, .running, hash: .some(nil))
        #expect(Self.plan([bot], [legacy]).actions.map(\.kind) == [.update])
        let adopted = Self.plan([bot], [legacy], adopted: [legacy.id: bot.config.specHash])
        #expect(adopted.actions.isEmpty)
        #expect(adopted.statusUpdates.first?.specHash == bot.config.specHash)
    }

    @Test func foreignNameHolderBlocksWithAlreadyExists() {
        let bot = Self.bot()
        let plan = Self.plan([bot], [], foreign: ["botmaker-a": "f00d"])
        #expect(plan.actions.map(\.kind) == [.blocked])
        #expect(plan.actions[0].errorCode == .alreadyExists)
        #expect(plan.statusUpdates.first?.lastErrorCode == "ALREADY_EXISTS")
        #expect(plan.events.map(\.errorCode) == ["ALREADY_EXISTS"])
        // Recorded once: the same situation next pass writes nothing.
        let again = Self.plan([bot], [], statuses: plan.statusUpdates, foreign: ["botmaker-a": "f00d"])
        #expect(again.statusUpdates.isEmpty && again.events.isEmpty)
    }

    @Test func backoffWaitsUntilItsTimeOrANewGeneration() {
        let bot = Self.bot()
        var status = BotStatus(botId: "a")
        status.lastErrorCode = "NOT_FOUND"
        status.failureCount = 3
        status.failedGeneration = 1
        status.nextAttemptAt = Self.now.addingTimeInterval(30)
        #expect(Self.plan([bot], [], statuses: [status]).actions.map(\.kind) == [.wait])
        status.nextAttemptAt = Self.now.addingTimeInterval(-1)
        #expect(Self.plan([bot], [], statuses: [status]).actions.map(\.kind) == [.create])
        status.nextAttemptAt = Self.now.addingTimeInterval(30)
        #expect(Self.plan([Self.bot(generation: 2)], [], statuses: [status]).actions.map(\.kind) == [.create])
    }

    @Test func invalidRowsAreReportedAndTheirContainersLeftAlone() {
        let bot = Self.bot()
        let invalid = InvalidBot(id: "a", generation: 2, desiredState: .running, message: "environment: [0] must be KEY=VALUE (no '=' found)")
        let plan = Self.plan([], [Self.container(bot, .running)], invalid: [invalid])
        #expect(plan.actions.map(\.kind) == [.invalid])
        #expect(plan.actions[0].errorCode == .invalidSpec)
        #expect(plan.statusUpdates.first?.lastErrorCode == "INVALID_SPEC")
        #expect(plan.statusUpdates.first?.containerId == "c-a")
        let absent = InvalidBot(id: "a", generation: 2, desiredState: .absent, message: "bad")
        #expect(Self.plan([], [Self.container(bot, .running)], invalid: [absent]).actions.map(\.kind) == [.remove])
    }

    @Test func oneBadRowDoesNotBlockOthers() {
        let good = Self.bot("good")
        let invalid = InvalidBot(id: "bad", generation: 1, desiredState: .running, message: "image: must not be empty")
        let plan = Self.plan([good], [], invalid: [invalid])
        #expect(plan.actions.map(\.kind) == [.invalid, .create])
    }

    @Test func restartRequestHappensOnce() {
        let bot = Self.bot(restart: "2026-11-29 10:00:00")
        #expect(Self.plan([bot], [Self.container(bot, .running)]).actions.map(\.kind) == [.restart])
        var status = BotStatus(botId: "a")
        status.restartObservedAt = "2026-11-29 10:00:00"
        #expect(Self.plan([bot], [Self.container(bot, .running)], statuses: [status]).actions.allSatisfy { $0.kind != .restart })
        let newer = Self.bot(restart: "2026-11-29 11:00:00")
        #expect(Self.plan([newer], [Self.container(newer, .running)], statuses: [status]).actions.map(\.kind) == [.restart])
    }

    @Test func straysAndDuplicatesAreRemoved() {
        let bot = Self.bot()
        var stray = Self.container(bot, .running, id: "other")
        stray.name = "renamed"
        let plan = Self.plan([bot], [Self.container(bot, .running), stray])
        #expect(plan.actions.map(\.kind) == [.remove])
        #expect(plan.actions[0].containerId == "other")
        #expect(plan.actions[0].isOrphan)
        #expect(plan.actions[0].cause.hasPrefix("stray"))
    }

    @Test func convergedPassWritesNothingOnceStatusIsCurrent() {
        let bots = (0..<5).map { Self.bot("b\($0)") }
        let containers = bots.map { Self.container($0, .running) }
        let first = Self.plan(bots, containers)
        #expect(first.actions.isEmpty)
        #expect(first.statusUpdates.count == 5)
        let second = Self.plan(bots, containers, statuses: first.statusUpdates)
        #expect(second.actions.isEmpty && second.statusUpdates.isEmpty && second.events.isEmpty)
    }

    @Test func successClearsAnOldErrorWhenConverged() {
        let bot = Self.bot()
        var status = BotStatus(botId: "a")
        status.lastErrorCode = "CRASH_LOOP"
        status.failureCount = 2
        status.containerId = "c-a"
        status.actualState = "restarting"
        let plan = Self.plan([bot], [Self.container(bot, .running)], statuses: [status])
        #expect(plan.statusUpdates.first?.lastErrorCode == nil)
        #expect(plan.statusUpdates.first?.failureCount == 0)
        #expect(plan.statusUpdates.first?.actualState == "running")
    }

    @Test func actionsAreSortedByContainerName() {
        let bots = ["c", "a", "b"].map { Self.bot($0) }
        #expect(Self.plan(bots, []).actions.map(\.botId) == ["a", "b", "c"])
    }

    /// With a database identity: ours (owner label) are managed as always; a container without an owner label is
    /// adopted only when it is exactly a bot's, else reported as unowned and never removed; another database's
    /// container holding a bot's name blocks it with OWNER_CONFLICT.
    @Test func ownershipDecidesWhatMayBeTouched() {
        let owner = String(repeating: "a", count: 32)
        func labelled(_ container: ContainerInfo, owner: String?, botIdLabel: String? = nil) -> ContainerInfo {
            var copy = container
            copy.labels["botmaker.owner"] = owner
            if let botIdLabel { copy.labels["botmaker.bot-id"] = botIdLabel; copy.botId = botIdLabel }
            return copy
        }
        let kept = Self.bot("kept")
        let orphanOurs = labelled(Self.container(Self.bot("gone"), .running), owner: owner)
        let orphanUnowned = labelled(Self.container(Self.bot("old"), .running), owner: nil)
        let adopted = labelled(Self.container(kept, .exited), owner: nil)
        let upstream = labelled(Self.container(Self.bot("sales"), .running), owner: nil, botIdLabel: "5b0c1f7e")
        let plan = Planner.plan(PlannerInput(
            desired: [kept, Self.bot("sales"), Self.bot("theirs")], observed: ObservedContainers(
                managed: [orphanOurs, orphanUnowned, adopted, upstream],
                foreignNames: ["botmaker-theirs": "c-theirs"], otherOwners: ["botmaker-theirs": String(repeating: "b", count: 32)]),
            ownerId: owner, now: Self.now))
        func kinds(_ name: String) -> [PlannedAction.Kind] { plan.actions.filter { $0.containerName == name }.map(\.kind) }
        #expect(kinds("botmaker-gone") == [.remove])
        #expect(kinds("botmaker-old") == [.unowned])
        #expect(kinds("botmaker-kept") == [.start])
        // The bot "sales" is blocked by the upstream container, which is itself reported as unowned.
        #expect(Set(kinds("botmaker-sales")) == [.blocked, .unowned])
        #expect(plan.actions.first { $0.containerName == "botmaker-sales" && $0.kind == .blocked }?.errorCode == .alreadyExists)
        #expect(plan.actions.first { $0.containerName == "botmaker-theirs" }?.errorCode == .ownerConflict)
        #expect(!plan.actions.contains { $0.kind == .remove && $0.containerId != orphanOurs.id })
    }
}
