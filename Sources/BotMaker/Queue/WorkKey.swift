/// What the work queue holds: a bot (its row, its container named `botmaker-<id>`, or both), or a
/// container of ours whose name belongs to no bot (a stray), which only ever needs removing.
public enum WorkKey: Hashable, Sendable, CustomStringConvertible {
    case bot(String)
    case container(String)

    /// The key for a container of ours: its bot when it carries the bot's name, else the container itself.
    /// The bot's id for a bot key.
    public var botId: String? {
        if case .bot(let id) = self { return id }
        return nil
    }

    public static func forContainer(named name: String, botId: String, id: String) -> WorkKey {
        name == ContainerDefaults.containerName(for: botId) || name == ContainerDefaults.previousName(for: botId) ? .bot(botId) : .container(id)
    }

    public var description: String {
        switch self {
        case .bot(let id): "bot \(id)"
        case .container(let id): "container \(id.prefix(12))"
        }
    }
}
