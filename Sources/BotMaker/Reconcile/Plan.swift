import Foundation

/// What a pass intends to do for one bot (or one orphan container).
public struct PlannedAction: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Create the container, then start it.
        case create
        case start
        case stop
        case restart
        /// Stop and remove the container, create it anew, start it.
        case recreate
        /// Stop and remove the container.
        case remove
        /// The row cannot become a spec; nothing is done to its container.
        case invalid
        /// Something outside botmaker prevents progress (a foreign container holds the name, a crash loop, …).
        case blocked
        /// The bot is backing off after a failure, or Docker is busy with its container.
        case wait
        /// A container of our instance without an owner label that is none of our bots': reported, never touched.
        case unowned
        /// The switch-over to a changed spec, or its next step after a crash: stop the old container and rename it
        /// `botmaker-<id>.previous`, create and start the new one (confirmed later, or rolled back).
        case update
        /// The new container is confirmed: the previous one is removed.
        case confirm
        /// The new container failed (or the update is no longer wanted): it is removed and the previous one comes back.
        case rollback
        /// The engine applies the changed spec to the bot's service in place (Swarm's service update).
        case reconfigure

        /// True for kinds that call Docker to change something.
        public var isMutating: Bool {
            switch self {
            case .create, .start, .stop, .restart, .recreate, .remove, .update, .confirm, .rollback, .reconfigure: true
            case .invalid, .blocked, .wait, .unowned: false
            }
        }

        /// How `status` names the action while a worker performs it.
        public var inFlightName: String {
            switch self {
            case .create: "creating"
            case .start: "starting"
            case .stop: "stopping"
            case .restart: "restarting"
            case .recreate: "recreating"
            case .remove: "removing"
            case .update: "updating"
            case .confirm: "confirming"
            case .rollback: "rolling back"
            case .reconfigure: "updating the service"
            case .invalid, .blocked, .wait, .unowned: rawValue
            }
        }

        /// The plan symbol: `+` create, `~` start/stop/restart or an update in place, `-/+` recreate or update, `-` remove (and a confirmed
        /// update's previous container), `<-` rollback, `!` invalid or blocked, `…` wait, `?` unowned.
        public var symbol: String {
            switch self {
            case .create: "+"
            case .start, .stop, .restart, .reconfigure: "~"
            case .recreate, .update: "-/+"
            case .remove, .confirm: "-"
            case .rollback: "<-"
            case .invalid, .blocked: "!"
            case .wait: "…"
            case .unowned: "?"
            }
        }
    }

    public var botId: String
    public var containerName: String
    public var kind: Kind
    public var cause: String
    /// The container acted on, when one exists.
    public var containerId: String?
    /// The desired bot, for create/start/stop/restart/recreate and bots whose row still exists.
    public var desired: DesiredBot?
    /// For `invalid` and `blocked`: the error recorded on the bot.
    public var errorCode: ContainerError.Code?
    /// True when the container has no bot row (orphan or stray): there is no status row to write.
    public var isOrphan: Bool
    /// For `wait`: when to look at the bot again (nil: as soon as an event says something changed, or shortly).
    public var retryAt: Date?
    /// A recreate of a running container, or a switch-over: an update, paced by `--max-parallel-updates`.
    public var isUpdate = false
    /// Where a switch-over goes on from.
    public enum UpdateStep: String, Sendable, Codable {
        /// The old container runs under the bot's name: stop it, rename it to the previous name, make the new one.
        case begin
        /// Only the previous container exists: make the new one.
        case create
        /// The new container exists but never started: start it.
        case start
        /// The new container is of an older target, unconfirmed: remove it, make the new one.
        case replace
    }

    /// For `update`: which step.
    public var updateStep: UpdateStep?
    /// For the steps of a switch-over: the previous container (`botmaker-<id>.previous`), when it exists.
    public var previousContainerId: String?
    /// For `rollback`: the new container failed (recorded as `UPDATE_ROLLED_BACK`, its target held); false when the
    /// update is only no longer wanted, or the rollback was already recorded.
    public var isFailure = false
    /// For a failed update's `rollback`: whether it counts toward pausing its image's rollout (a health, exit or timeout
    /// failure does; a bot's own problem, such as a port someone holds, does not).
    public var countsTowardRolloutPause = true
    /// For a `create` of a bot whose update was rolled back: the config its container had (never the failed target).
    public var restoring: ContainerConfig?
    /// Swarm: the node the bot's task runs on.
    public var node: String?
    /// A wait for the engine's own update (or rollback) of the bot's service: the update keeps its slot
    /// (`--max-parallel-updates`) until it completes.
    public var holdsUpdateSlot = false

    public init(botId: String, containerName: String, kind: Kind, cause: String, containerId: String? = nil,
                desired: DesiredBot? = nil, errorCode: ContainerError.Code? = nil, isOrphan: Bool = false, retryAt: Date? = nil) {
        self.retryAt = retryAt
        self.botId = botId
        self.containerName = containerName
        self.kind = kind
        self.cause = cause
        self.containerId = containerId
        self.desired = desired
        self.errorCode = errorCode
        self.isOrphan = isOrphan
    }
}

/// The outcome of planning: user-visible actions plus the status rows that change without any Docker call.
extension PlannedAction {
    /// The work-queue key this action belongs to.
    public var workKey: WorkKey {
        containerId.map { WorkKey.forContainer(named: containerName, botId: botId, id: $0) } ?? .bot(botId)
    }
}

public struct Plan: Sendable, Equatable {
    /// One entry per bot or orphan that needs attention, sorted by container name.
    public var actions: [PlannedAction] = []
    /// Status rows to write (already compared with the stored ones: only real changes).
    public var statusUpdates: [BotStatus] = []
    /// Events for errors newly recorded by those status updates.
    public var events: [BotEvent] = []

    public init(actions: [PlannedAction] = [], statusUpdates: [BotStatus] = [], events: [BotEvent] = []) {
        self.actions = actions
        self.statusUpdates = statusUpdates
        self.events = events
    }

    public var mutatingActions: [PlannedAction] { actions.filter(\.kind.isMutating) }
    public var hasChanges: Bool { actions.contains { $0.kind.isMutating } }

    public func count(_ kind: PlannedAction.Kind) -> Int { actions.count { $0.kind == kind } }

    /// Sorts actions the way plans are shown: by container name, then container id.
    public mutating func sortActions() {
        actions.sort { ($0.containerName, $0.containerId ?? "") < ($1.containerName, $1.containerId ?? "") }
    }
}
