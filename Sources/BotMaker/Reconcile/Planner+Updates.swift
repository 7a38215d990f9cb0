import Foundation

/// The switch-over state machine (docs/reconciliation.md, "Updates"): every combination of a bot's containers that
/// an update, or a crash in the middle of one, can leave on the engine has exactly one next step. Pure.
extension Planner {
    /// A running bot's spec (or, for `always` bots, its image) changed.
    static func updateDecision(bot: DesiredBot, cause: String, input: PlannerInput) -> Decision {
        if input.capabilities.updatesInPlace {
            return .act(.reconfigure, cause + (bot.updateStrategy == .rollback ? " (the engine rolls back on failure)" : ""))
        }
        guard bot.updateStrategy == .rollback else { return .act(.recreate, cause) }
        let previousName = ContainerDefaults.previousName(for: bot.id)
        if let holder = input.observed.foreignNames[previousName] {
            return .blocked(.alreadyExists, "\(previousName), which an update keeps the old container as, is held by container "
                            + "\(holder.prefix(12)), which this botmaker database does not manage")
        }
        return .update(.begin, cause + " (rollback on failure)")
    }

    /// The next step for a bot whose previous container (`botmaker-<id>.previous`) exists.
    static func decideSwitchOver(bot: DesiredBot, current: ContainerInfo?, previous: ContainerInfo, input: PlannerInput) -> Decision {
        let status = input.statuses[bot.id]
        if previous.state == .running || previous.state == .restarting || previous.state == .paused {
            // Never two copies: someone started the previous container by hand. It is what the bot runs now.
            return .rollback("the previous container is \(previous.state.rawValue) (started outside botmaker): it is kept, the new one goes",
                             failure: false)
        }
        guard bot.desiredState == .running else {
            return .rollback("desired \(bot.desiredState.rawValue) during the update: the previous container is put back", failure: false)
        }
        if let problem = bot.secretProblem {
            return .rollback("the new spec cannot be built (\(problem)): the previous container is put back", failure: false)
        }
        let target = bot.config.specHash
        if previous.specHash == target && !(bot.pullPolicy == .always && bot.resolvedImageId != nil && bot.resolvedImageId != previous.imageId) {
            return .rollback("the desired spec is the previous container's again", failure: false)
        }
        let failed = isFailedTarget(bot, status)
        // Killed after the confirmation was recorded, before the previous container was removed: finish it.
        if let current, status?.updatePhase == "confirmed", status?.containerId == current.id {
            return .act(.confirm, "finishing the confirmed update")
        }
        guard let current else {
            if failed { return .rollback("finishing the rollback of the failed update", failure: false) }
            return .update(.create, "update in progress: the new container is made (rollback on failure)")
        }
        if current.state == .removing { return .waitForDocker("container is being removed") }
        guard current.specHash == target else {
            return .update(.replace, "the target changed during the update: the unconfirmed container is replaced (rollback on failure)")
        }
        if failed { return .rollback("finishing the rollback of the failed update", failure: false) }
        let exit = current.exitCode.map { " (exit code \($0))" } ?? ""
        switch current.state {
        case .created:
            return .update(.start, "update in progress: the new container is started (rollback on failure)")
        case .exited, .dead:
            return .rollback("the new container \(current.state.rawValue)\(exit)", failure: true)
        case .restarting:
            return .rollback("the new container keeps restarting\(exit)", failure: true)
        case .paused, .unknown, .removing:
            return .rollback("the new container is \(current.state.rawValue)", failure: true)
        case .running:
            break
        }
        let probe = input.probes[bot.id]
        if let probe, probe.restartCount > 0 {
            return .rollback("the new container exited and Docker restarted it (\(probe.restartCount)×)"
                             + ((probe.lastExitCode ?? probe.exitCode).map { "; last exit code \($0)" } ?? ""), failure: true)
        }
        let health = probe?.health ?? current.health
        let started = probe?.startedAt ?? status?.updateStartedAt ?? input.now
        let deadline = started.addingTimeInterval(input.updatePolicy.timeout)
        switch health {
        case .healthy?:
            return .act(.confirm, "the new container is healthy")
        case .unhealthy?:
            return .rollback("the new container is unhealthy" + (probe?.healthLog.map { "; last check: \($0)" } ?? ""), failure: true)
        case nil:
            let confirmedAt = started.addingTimeInterval(input.updatePolicy.minUptime)
            if input.now >= confirmedAt { return .act(.confirm, "the new container has stayed up \(Int(input.updatePolicy.minUptime)) s") }
            return .waitForConfirmation("the new container must stay up until \(format(confirmedAt))", until: min(confirmedAt, deadline))
        case .starting?:
            if input.now >= deadline {
                return .rollback("the new container was not healthy \(Int(input.updatePolicy.timeout)) s after it started (health: starting)",
                                 failure: true)
            }
            return .waitForConfirmation("the new container's health check must pass before \(format(deadline))",
                                        until: min(deadline, input.now.addingTimeInterval(1)))
        }
    }

    /// Whether the bot's target (desired spec hash, and image ID when known) is the one whose update was rolled back.
    static func isFailedTarget(_ bot: DesiredBot, _ status: BotStatus?) -> Bool {
        guard let hash = status?.failedUpdateHash, hash == bot.config.specHash else { return false }
        guard let failedImage = status?.failedUpdateImageId, let target = bot.resolvedImageId else { return true }
        return failedImage == target
    }

    static func heldMessage(bot: DesiredBot, status: BotStatus?) -> String {
        "update to generation \(status?.rolledBackFromGeneration.map(String.init) ?? "?") was rolled back; it is not tried again "
            + "until the row or the image changes, or `botmaker bot retry \(bot.id)`"
    }

    /// A held bot without a usable container comes back on the config it had (never on the failed target).
    static func restoreDecision(bot: DesiredBot, status: BotStatus?) -> Decision {
        guard let text = status?.appliedConfig, let config = try? JSONDecoder().decode(ContainerConfig.self, from: Data(text.utf8)) else {
            return .blocked(.updateRolledBack, "the container of the spec the failed update was rolled back to is gone, and botmaker "
                            + "has no record of that spec to make it again; `botmaker bot retry \(bot.id)` deploys the new target")
        }
        return .restore(config)
    }
}
