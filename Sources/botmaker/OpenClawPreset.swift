import BotMaker
import Foundation

/// `bot add --preset openclaw`: what BotMaker and OpenClaw's Docker docs prescribe for a gateway (docs/openclaw.md
/// says where each value comes from). Options given on the command line win.
enum OpenClawPreset {
    static let image = "ghcr.io/openclaw/openclaw:latest"
    static let tokenSecret = "gateway_token"
    /// OpenClaw's docker-compose.yml: the gateway must listen beyond loopback for a published port to reach it.
    static let command = ["node", "dist/index.js", "gateway", "--bind", "lan", "--port", "18789"]
    static let environment = [
        "NODE_OPTIONS=--max-old-space-size=1536",
        "OPENCLAW_DISABLE_BONJOUR=1",
        "OPENCLAW_GATEWAY_TOKEN=\(SecretEnvironment.prefix)\(tokenSecret)",
    ]
    static let mounts = [
        StateMount(name: "state", target: "/home/node/.openclaw"),
        StateMount(name: "workspace", target: "/home/node/.openclaw/workspace"),
        StateMount(name: "config", target: "/home/node/.config/openclaw"),
    ]

    static func apply(to given: BotChanges, overridingEnvironment: [String]) -> BotChanges {
        var changes = given
        changes.image = given.image ?? image
        if given.command == nil { changes.command = .some(command) }
        let givenKeys = Set(overridingEnvironment.map(EnvironmentEntry.key))
        changes.environment = environment.filter { !givenKeys.contains(EnvironmentEntry.key($0)) } + overridingEnvironment
        changes.ports = given.ports ?? ["18789"]
        changes.mounts = given.mounts ?? mounts
        changes.user = given.user ?? .some("1000:1000")
        changes.memoryBytes = given.memoryBytes ?? .some(2 << 30)
        return changes
    }

    /// 32 random bytes, hex.
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
