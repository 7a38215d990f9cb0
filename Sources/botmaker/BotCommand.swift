import ArgumentParser
import BotMaker
import Foundation
import Logging

extension DesiredState: ExpressibleByArgument {}
extension SecurityProfile: ExpressibleByArgument {}
extension BotNetwork: ExpressibleByArgument {}
extension PullPolicy: ExpressibleByArgument {}
extension UpdateStrategy: ExpressibleByArgument {}

extension Botmaker {
    struct BotCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bot",
            abstract: "Declare bots: add, change, remove, restart and list them.",
            discussion: "These edit the database only; `botmaker reconcile` or a running `botmaker run` makes Docker follow.",
            subcommands: [Add.self, Set.self, Remove.self, Restart.self, Retry.self, Purge.self, List.self])
    }
}

/// Spec options shared by `bot add` and `bot set`.
struct SpecOptions: ParsableArguments {
    @Option(help: "Image reference, e.g. ghcr.io/openclaw/openclaw:latest (pulled as --pull-policy says).")
    var image: String?

    @Option(name: .customLong("env"), help: ArgumentHelp("Environment entry KEY=VALUE; repeat for more. On `set`, replaces the whole list.", valueName: "KEY=VALUE"))
    var environment: [String] = []

    @Option(help: ArgumentHelp("Command overriding the image's CMD, as a JSON array: '[\"sh\",\"-c\",\"…\"]'.", valueName: "json"))
    var command: String?

    @Option(help: "Desired state: running, stopped or absent.")
    var state: DesiredState?

    @Option(name: .customLong("mount"), help: ArgumentHelp("State directory NAME=/container/path (<data root>/<id>/NAME on the host); repeat for more. On `set`, replaces the list.", valueName: "NAME=TARGET"))
    var mounts: [String] = []

    @Option(name: .customLong("port"), help: ArgumentHelp("Published port: 18789 (host port from --port-range, on 127.0.0.1), 19001:18789 or 0.0.0.0:19001:18789/tcp; repeat for more. On `set`, replaces the list.", valueName: "spec"))
    var ports: [String] = []

    @Option(help: ArgumentHelp("Health check command overriding the image's HEALTHCHECK, as a JSON array.", valueName: "json"))
    var healthCmd: String?

    @Option(help: ArgumentHelp("Seconds between health checks (with --health-cmd).", valueName: "seconds"))
    var healthInterval: Int?

    @Option(help: ArgumentHelp("Numeric user the container runs as; its state directories are given to it.", valueName: "UID[:GID]"))
    var user: String?

    @Option(help: ArgumentHelp("Memory limit: bytes, or with a suffix k, m or g (binary), e.g. 2g.", valueName: "size"))
    var memory: String?

    @Option(help: "CPU limit, e.g. 1.5.")
    var cpus: Double?

    @Option(help: "Most processes the container may have (default 512).")
    var pidsLimit: Int?

    @Option(help: "Hardening: standard (no-new-privileges, drop NET_RAW and NET_ADMIN) or strict (also drop all capabilities, read-only root, tmpfs /tmp).")
    var security: SecurityProfile?

    @Option(help: "Network: botmaker (bots cannot reach each other) or bridge (Docker's default).")
    var network: BotNetwork?

    @Option(help: "When to pull the image: missing (default), always (before every create or recreate) or never.")
    var pullPolicy: PullPolicy?

    @Option(help: "How a running bot is updated: rollback (default: switched over, rolled back unless healthy) or recreate (stop, remove, create, start).")
    var updateStrategy: UpdateStrategy?

    func changes(clearEnvironment: Bool = false, resetCommand: Bool = false, clearMounts: Bool = false, clearPorts: Bool = false,
                 resetHealth: Bool = false) throws -> BotChanges {
        var changes = BotChanges(image: image, desiredState: state)
        if !mounts.isEmpty {
            changes.mounts = try mounts.map { text in
                guard let equals = text.firstIndex(of: "=") else { throw CLIError("--mount must be NAME=/container/path, e.g. state=/home/node/.openclaw") }
                return StateMount(name: String(text[..<equals]), target: String(text[text.index(after: equals)...]))
            }
        } else if clearMounts {
            changes.mounts = []
        }
        if !ports.isEmpty { changes.ports = ports } else if clearPorts { changes.ports = [] }
        if let healthCmd {
            guard let data = healthCmd.data(using: .utf8), let arguments = try? JSONDecoder().decode([String].self, from: data) else {
                throw CLIError("--health-cmd must be a JSON array of strings, e.g. '[\"wget\",\"-q\",\"-O-\",\"http://127.0.0.1:18789/healthz\"]'")
            }
            changes.healthCommand = .some(arguments)
        } else if resetHealth {
            changes.healthCommand = .some(nil)
            changes.healthIntervalSeconds = .some(nil)
        }
        if let healthInterval { changes.healthIntervalSeconds = .some(healthInterval) }
        if let user { changes.user = .some(user) }
        if let memory {
            guard let bytes = Self.bytes(memory) else { throw CLIError("--memory must be a number of bytes, or with k, m or g, e.g. 2g") }
            changes.memoryBytes = .some(bytes)
        }
        if let cpus { changes.cpus = .some(cpus) }
        changes.pidsLimit = pidsLimit
        changes.security = security
        changes.network = network
        changes.pullPolicy = pullPolicy
        changes.updateStrategy = updateStrategy
        if !environment.isEmpty { changes.environment = environment } else if clearEnvironment { changes.environment = [] }
        if let command {
            guard let data = command.data(using: .utf8), let arguments = try? JSONDecoder().decode([String].self, from: data) else {
                throw CLIError("--command must be a JSON array of strings, e.g. '[\"sh\",\"-c\",\"echo hi\"]'")
            }
            changes.command = .some(arguments)
        } else if resetCommand {
            changes.command = .some(nil)
        }
        return changes
    }

    /// `2g`, `512m`, `64k` (binary multiples) or plain bytes.
    static func bytes(_ text: String) -> Int64? {
        let lower = text.lowercased()
        let units: [Character: Int64] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30]
        if let unit = lower.last.flatMap({ units[$0] }) {
            guard let number = Double(lower.dropLast()), number > 0, number * Double(unit) < 1e15 else { return nil }
            return Int64((number * Double(unit)).rounded())
        }
        return Int64(lower).flatMap { $0 > 0 ? $0 : nil }
    }
}

extension Botmaker.BotCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a bot (desired state running unless --state says otherwise).")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id: a DNS label (a-z, 0-9, -; 1 to 63 characters).") var id: String
        @OptionGroup var spec: SpecOptions
        @Option(help: "Fill in a known workload's defaults (other options override them): openclaw.") var preset: Preset?

        enum Preset: String, ExpressibleByArgument, CaseIterable {
            case openclaw
        }

        func run() async throws {
            let store = try global.openStore()
            var changes = try spec.changes()
            // The token is written before the row, so a running service never sees the bot without it.
            var wroteToken = false
            if preset == .openclaw {
                changes = OpenClawPreset.apply(to: changes, overridingEnvironment: spec.environment)
                if try store.bot(id: id) != nil { throw CLIError("bot \(id) already exists; use `botmaker bot set`") }
                let secrets = global.secrets()
                do {
                    if try !secrets.list(botId: id).contains(OpenClawPreset.tokenSecret) {
                        try secrets.set(botId: id, name: OpenClawPreset.tokenSecret, value: Data(OpenClawPreset.newToken().utf8))
                        wroteToken = true
                    }
                } catch {
                    throw CLIError("cannot write the gateway token: \(error.message)")
                }
            }
            do {
                try store.addBot(id: id, changes: changes)
            } catch let error as StoreError {
                if wroteToken { _ = try? global.secrets().remove(botId: id, name: OpenClawPreset.tokenSecret) }
                throw CLIError(error.message)
            }
            if preset == .openclaw {
                print("added bot \(id) (OpenClaw preset; gateway token in secret \(OpenClawPreset.tokenSecret): `botmaker secrets ls \(id)`)")
                return
            }
            print("added bot \(id)")
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a bot's image, environment, command or desired state.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String
        @OptionGroup var spec: SpecOptions
        @Flag(help: "Remove every environment entry.") var clearEnv = false
        @Flag(help: "Go back to the image's own command.") var resetCommand = false
        @Flag(help: "Remove every state mount (the directories stay until `bot purge`).") var clearMounts = false
        @Flag(help: "Remove every published port.") var clearPorts = false
        @Flag(help: "Go back to the image's own HEALTHCHECK.") var resetHealth = false

        func run() async throws {
            let store = try global.openStore()
            let changed: Bool
            do {
                changed = try store.updateBot(id: id, changes: try spec.changes(
                    clearEnvironment: clearEnv, resetCommand: resetCommand, clearMounts: clearMounts, clearPorts: clearPorts, resetHealth: resetHealth))
            } catch let error as StoreError {
                throw CLIError(error.message)
            }
            print(changed ? "updated bot \(id)" : "bot \(id) unchanged")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Delete a bot's row; the next pass removes its container.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String

        func run() async throws {
            let store = try global.openStore()
            guard try store.deleteBot(id: id) else { throw CLIError("no bot \(id)") }
            print("removed bot \(id)")
        }
    }

    struct Restart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask for one restart of a running bot (sets restart_requested_at).")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String

        func run() async throws {
            let store = try global.openStore()
            do { try store.requestRestart(id: id) } catch let error as StoreError { throw CLIError(error.message) }
            print("restart requested for bot \(id)")
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Try a rolled-back update again (forgets the failed target; the bot is updated on the next pass).")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String

        func run() async throws {
            let store = try global.openStore()
            guard try store.retryUpdate(botId: id) else { throw CLIError("no bot \(id)") }
            print("bot \(id): its update will be tried again on the next pass")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a bot's state directories (<data root>/<id>): its config, sessions and workspace. Irreversible.",
            discussion: "Refused while the bot has a container, or while its row exists and is not absent: delete the row (`bot rm`) or set it absent, reconcile, then purge.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Bot id.") var id: String

        func run() async throws {
            if let problem = BotValidation.idProblem(id) { throw CLIError("invalid bot id: \(problem)") }
            let store = try global.openStore()
            try global.checkRoots(store, record: false)
            if let row = try store.bot(id: id), row.desiredState != DesiredState.absent.rawValue {
                throw CLIError("bot \(id) is \(row.desiredState ?? "?"); delete its row (`botmaker bot rm \(id)`) or set it absent first")
            }
            let logger = Logger(label: "botmaker")
            let runtime = try global.runtime(for: store, logger: logger)
            let observed: ObservedContainers
            do { observed = try await runtime.observe(botId: id) } catch {
                await runtime.shutdown()
                throw CLIError("cannot check for the bot's container: \(error.code.rawValue): \(error.message)")
            }
            await runtime.shutdown()
            if let container = observed.managed.first ?? observed.foreignNames.values.first.map({ ContainerInfo(id: $0, name: "", botId: id, state: .unknown, status: "") }) {
                throw CLIError("bot \(id) still has a container (\(container.id.prefix(12))); reconcile first so it is removed")
            }
            let state = global.stateDirectories()
            if let node = try? await store.pinnedNode(botId: id) {
                try store.forgetPlacement(botId: id)
                print("forgot the bot's Swarm placement on node \(node.prefix(12)); its volumes there stay until `docker volume rm` on that node")
            }
            do {
                if try state.purge(botId: id) {
                    try? await store.record(statuses: [], events: [BotEvent(at: Date(), botId: id, action: "purge", result: "ok", message: "state directories deleted")])
                    print("purged \(state.directory(for: id))")
                } else {
                    print("nothing to purge: \(state.directory(for: id)) does not exist")
                }
            } catch {
                throw CLIError("\(error.code.rawValue): \(error.message)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List bots and their desired state.")

        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON (environment keys only, never values).") var json = false

        func run() async throws {
            let store = try global.openStore(readOnly: true)
            let bots = try store.listBots()
            if json {
                print(Output.json(bots.map(BotSummary.init)))
                return
            }
            if bots.isEmpty { print("no bots"); return }
            var rows = [["ID", "DESIRED", "ACTUAL", "IMAGE", "ENV KEYS", "GEN"]]
            for bot in bots.map(BotSummary.init) {
                rows.append([bot.id, bot.desiredState ?? "?", bot.actualState ?? "-", bot.image ?? "?",
                             bot.environmentKeys?.joined(separator: ",") ?? "(invalid)", String(bot.generation)])
            }
            print(Output.table(rows))
        }
    }
}

/// One bot as `bot ls --json` shows it.
struct BotSummary: Encodable {
    var id: String
    var image: String?
    var environmentKeys: [String]?
    var command: [String]?
    var desiredState: String?
    var actualState: String?
    var generation: Int64
    var restartRequestedAt: String?
    var createdAt: String?
    var updatedAt: String?

    init(_ listing: BotListing) {
        let row = listing.row
        id = row.id
        image = row.image
        if let data = row.environment?.data(using: .utf8), let entries = try? JSONDecoder().decode([String].self, from: data) {
            environmentKeys = entries.map(EnvironmentEntry.key)
        }
        if let data = row.command?.data(using: .utf8) { command = try? JSONDecoder().decode([String].self, from: data) }
        desiredState = row.desiredState
        actualState = listing.status?.actualState
        generation = row.generation
        restartRequestedAt = row.restartRequestedAt
        createdAt = row.createdAt
        updatedAt = row.updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, image, environmentKeys = "environment_keys", command, desiredState = "desired_state", actualState = "actual_state"
        case generation, restartRequestedAt = "restart_requested_at", createdAt = "created_at", updatedAt = "updated_at"
    }
}

enum Output {
    /// Writes to stdout at once (unbuffered, so a pipe sees each line as it is written, in order with other writes).
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    static func table(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
