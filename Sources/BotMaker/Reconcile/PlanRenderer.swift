import Foundation

/// Renders plans and pass results for people (one line per action) and machines (stable JSON).
/// Environment values are never shown: only keys.
public enum PlanRenderer {
    public static let jsonFormatVersion = 1

    /// Human plan: `<symbol> <container>  <cause>` lines, details for creates, then a summary line.
    public static func text(_ plan: Plan, results: [ActionResult]? = nil) -> String {
        var lines: [String] = []
        let outcomes = Dictionary((results ?? []).map { (key(of: $0.action), $0) }, uniquingKeysWith: { a, _ in a })
        let width = nameWidth(plan)
        for action in plan.actions {
            lines.append(line(action, width: width, result: outcomes[key(of: action)]))
            if action.kind == .create || action.kind == .recreate || action.kind == .reconfigure || (action.kind == .update && action.previousContainerId == nil), let bot = action.desired {
                // Environment from secrets shows its source (`KEY=@secret:NAME`), never a value.
                let fromSecrets = bot.config.secretEnvironment.map { " \($0.key)=\(SecretEnvironment.prefix)\($0.secret)" }.joined()
                lines.append("      image: \(bot.config.image)  env: \(maskedEnvironment(bot.config.environment))\(fromSecrets)")
            }
        }
        lines.append(summary(plan, results: results))
        return lines.joined(separator: "\n")
    }

    /// One action's line, `<symbol> <container>  <kind>: <cause>`, with its result when it has one (and how long it
    /// took when `timed`).
    public static func line(_ action: PlannedAction, width: Int, result: ActionResult? = nil, timed: Bool = false) -> String {
        let symbol = action.kind.symbol.padding(toLength: 3, withPad: " ", startingAt: 0)
        let name = action.containerName.padding(toLength: max(width, action.containerName.count), withPad: " ", startingAt: 0)
        var line = "\(symbol) \(name)  \(action.kind.rawValue): \(action.cause)"
        if let node = action.node { line += " (node \(node))" }
        if let code = action.errorCode { line += " [\(code.rawValue)]" }
        if let result {
            let time = timed ? String(format: " %.1f s", result.seconds) : ""
            line += result.error.map { " → FAILED \($0.code.rawValue): \($0.message)" } ?? " → done\(time)"
        }
        return line
    }

    /// The width `text` pads container names to.
    public static func nameWidth(_ plan: Plan) -> Int { min(40, plan.actions.map(\.containerName.count).max() ?? 0) }

    public static func summary(_ plan: Plan, results: [ActionResult]? = nil) -> String {
        if plan.actions.isEmpty { return "No changes. Containers match the desired state." }
        var text = "Plan: \(plan.count(.create)) to create, \(plan.count(.start)) to start, \(plan.count(.stop)) to stop, "
            + "\(plan.count(.restart)) to restart, \(plan.count(.recreate)) to recreate, \(plan.count(.remove)) to remove"
            + (plan.count(.reconfigure) > 0 ? ", \(plan.count(.reconfigure)) to update in place" : "")
            + (plan.count(.update) + plan.count(.confirm) + plan.count(.rollback) > 0
               ? ", \(plan.count(.update)) to update, \(plan.count(.confirm)) to confirm, \(plan.count(.rollback)) to roll back" : "") + "; "
            + "\(plan.count(.invalid)) invalid, \(plan.count(.blocked)) blocked, \(plan.count(.wait)) waiting"
            + (plan.count(.unowned) > 0 ? "; \(plan.count(.unowned)) unowned (left alone)." : ".")
        if let results {
            let failed = results.count { !$0.succeeded }
            text += "\nApplied: \(results.count - failed) succeeded, \(failed) failed."
        }
        return text
    }

    /// `KEY=***` for each entry.
    public static func maskedEnvironment(_ environment: [String]) -> String {
        if environment.isEmpty { return "(none)" }
        return environment.map { EnvironmentEntry.key($0) + "=***" }.joined(separator: " ")
    }

    /// The JSON document for a plan or an applied pass (`mode` is `plan` or `apply`).
    public static func json(_ plan: Plan, results: [ActionResult]? = nil) -> String {
        let outcomes = Dictionary((results ?? []).map { (key(of: $0.action), $0) }, uniquingKeysWith: { a, _ in a })
        let document = Document(
            formatVersion: jsonFormatVersion,
            mode: results == nil ? "plan" : "apply",
            changes: plan.hasChanges,
            summary: Dictionary(uniqueKeysWithValues: PlannedAction.Kind.allCases.map { ($0.rawValue, plan.count($0)) }),
            actions: plan.actions.map { action in
                let outcome = outcomes[key(of: action)]
                return Document.Action(
                    botId: action.botId,
                    container: action.containerName,
                    kind: action.kind.rawValue,
                    symbol: action.kind.symbol,
                    cause: action.cause,
                    containerId: action.containerId,
                    node: action.node,
                    errorCode: action.errorCode?.rawValue,
                    image: action.desired?.config.image,
                    environmentKeys: action.desired.map { $0.config.environment.map(EnvironmentEntry.key) + $0.config.secretEnvironment.map(\.key) },
                    result: outcome.map { $0.succeeded ? "ok" : "error" },
                    error: outcome?.error.map { .init(code: $0.code.rawValue, message: $0.message) },
                    seconds: outcome?.seconds)
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return (try? encoder.encode(document)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    private static func key(of action: PlannedAction) -> String { action.containerName + "|" + (action.containerId ?? "") }

    struct Document: Encodable {
        var formatVersion: Int
        var mode: String
        var changes: Bool
        var summary: [String: Int]
        var actions: [Action]

        struct Action: Encodable {
            var botId: String
            var container: String
            var kind: String
            var symbol: String
            var cause: String
            var containerId: String?
            var node: String?
            var errorCode: String?
            var image: String?
            var environmentKeys: [String]?
            var result: String?
            var error: ErrorInfo?
            var seconds: Double?

            enum CodingKeys: String, CodingKey {
                case botId = "bot_id", container, kind, symbol, cause, containerId = "container_id", node, errorCode = "error_code"
                case image, environmentKeys = "environment_keys", result, error, seconds
            }
        }

        struct ErrorInfo: Encodable {
            var code: String
            var message: String
        }

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version", mode, changes, summary, actions
        }
    }
}
