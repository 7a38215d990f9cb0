import ArgumentParser
import BotMaker
import Foundation
import Logging

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("SQLite database path (env BOTMAKER_DB).", valueName: "path"))
    var db: String?

    @Option(name: .long, help: ArgumentHelp("Docker daemon: unix:///path or tcp://host:port (env DOCKER_HOST).", valueName: "url"))
    var dockerHost: String?

    @Option(name: .long, help: ArgumentHelp("Root of the per-bot secrets directories (env BOTMAKER_SECRETS_DIR; default ./secrets).", valueName: "dir"))
    var secretsDir: String?

    @Option(name: .long, help: ArgumentHelp("Root of the per-bot state directories (env BOTMAKER_DATA_DIR; default ./data).", valueName: "dir"))
    var dataDir: String?

    @Option(name: .long, help: ArgumentHelp("Instance name, when several botmaker databases share one Docker engine (env BOTMAKER_INSTANCE; default \"default\").", valueName: "name"))
    var instance: String?

    @Option(name: .long, help: ArgumentHelp("Engine: docker (one host, or Podman) or swarm (DOCKER_HOST is a Swarm manager) (env BOTMAKER_ENGINE; default docker).", valueName: "engine"))
    var engine: Engine?

    @Flag(name: .long, help: "Swarm on Engine API < 1.44 cannot set no-new-privileges on services: run bots without it instead of refusing them (env BOTMAKER_SWARM_ALLOW_PRIVILEGE_ESCALATION=1).")
    var swarmAllowPrivilegeEscalation = false

    enum Engine: String, ExpressibleByArgument, CaseIterable {
        case docker, swarm
    }

    var engineChoice: Engine {
        engine ?? ProcessInfo.processInfo.environment["BOTMAKER_ENGINE"].flatMap { Engine(rawValue: $0.lowercased()) } ?? .docker
    }

    var allowsPrivilegeEscalation: Bool {
        swarmAllowPrivilegeEscalation || ["1", "true", "yes"].contains(ProcessInfo.processInfo.environment["BOTMAKER_SWARM_ALLOW_PRIVILEGE_ESCALATION"]?.lowercased() ?? "")
    }

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (default: info for run, warning otherwise).")
    var logLevel: Logger.Level?

    @Option(name: .long, help: "Log format: text or json.")
    var logFormat: LogFormat = .text

    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    var databasePath: String {
        db ?? ProcessInfo.processInfo.environment["BOTMAKER_DB"].flatMap { $0.isEmpty ? nil : $0 } ?? "./botmaker.db"
    }

    var instanceName: String {
        instance ?? ProcessInfo.processInfo.environment["BOTMAKER_INSTANCE"].flatMap { $0.isEmpty ? nil : $0 } ?? BotLabels.defaultInstance
    }

    func validate() throws {
        if let problem = BotValidation.idProblem(instanceName) { throw ValidationError("--instance: \(problem)") }
        if engine == nil, let value = ProcessInfo.processInfo.environment["BOTMAKER_ENGINE"], !value.isEmpty, Engine(rawValue: value.lowercased()) == nil {
            throw ValidationError("BOTMAKER_ENGINE=\(value): must be docker or swarm")
        }
    }

    func bootstrapLogging(defaultLevel: Logger.Level = .warning) {
        let level = logLevel ?? defaultLevel
        let format = logFormat
        LoggingBootstrap.once {
            LoggingSystem.bootstrap { label in
                var handler: any LogHandler = format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }

    /// Opens the database. Only `migrate` creates one (`creating`): everywhere else a missing file is an
    /// error, since a mistyped `--db` (or the wrong working directory) must never look like an empty fleet.
    func openStore(readOnly: Bool = false, creating: Bool = false) throws -> Store {
        bootstrapLogging()
        if !creating { try requireDatabase() }
        do {
            return try Store.open(path: databasePath, options: .init(readOnly: readOnly))
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// This database's claim on its instance: its identity, absolute path and this host.
    func claim(for store: Store) -> InstanceClaim {
        InstanceClaim(owner: store.ownerId, databasePath: store.absolutePath, host: ProcessInfo.processInfo.hostName)
    }

    /// Holds (or takes, or refuses to take) the instance's claim before anything changes; a refusal is a one-line error.
    func ensureClaim(store: Store, runtime: any ContainerRuntime, takeOver: Bool) async throws {
        do {
            if let note = try await InstanceClaims.ensure(claim(for: store), instance: instanceName, runtime: runtime, store: store,
                                                           takeOver: takeOver) {
                FileHandle.standardError.write(Data("\(note)\n".utf8))
            }
        } catch let refused as ClaimRefused {
            throw CLIError(refused.description)
        }
    }

    /// Swarm: refuses a worker, or an engine outside a swarm, with the reason (before anything is read or changed).
    func checkEngine(_ runtime: any ContainerRuntime) async throws {
        guard engineChoice == .swarm else { return }
        do { try await runtime.ping() } catch {
            throw CLIError("\(error.code.rawValue): \(error.message)")
        }
    }

    /// Refuses a database path that names no file (checked before any lock file is made beside it).
    func requireDatabase() throws {
        guard FileManager.default.fileExists(atPath: databasePath) else {
            let absolute = URL(fileURLWithPath: databasePath).standardizedFileURL.path
            throw CLIError("no database at \(absolute); create it with `botmaker migrate` (or check --db and BOTMAKER_DB)")
        }
    }

    /// On Swarm, secret files are copied into the cluster, so their digests belong to each bot's spec.
    func secrets() -> SecretsManager {
        SecretsManager(root: SecretsManager.getSecretsRoot(option: secretsDir), digestsSecretFiles: engineChoice == .swarm)
    }

    func stateDirectories() -> StateDirectories {
        StateDirectories(root: StateDirectories.getRoot(option: dataDir))
    }

    var roots: HostRoots { HostRoots(data: stateDirectories().root, secrets: secrets().root) }

    /// Refuses roots other than the ones this database recorded at first use (recording them when `record`).
    func checkRoots(_ store: Store, record: Bool, move: Bool = false) throws {
        let problem: String?
        do { problem = try roots.check(against: store, record: record, move: move) } catch { throw CLIError("cannot check the host roots: \(error)") }
        if let problem { throw CLIError(problem) }
    }

    /// The engine: the Docker Engine API at `--docker-host` (else `DOCKER_HOST`, else the default socket).
    /// The engine for `store`'s bots: its containers carry the database's identity as `botmaker.owner`.
    /// With `--engine swarm`, a Swarm manager at that address (its updates monitored for `updateMinUptime` seconds).
    func runtime(for store: Store, stopGraceSeconds: Int = 10, updateMinUptime: Double = 10, logger: Logger,
                 observer: (@Sendable (EngineRequest) -> Void)? = nil) throws -> any ContainerRuntime {
        do {
            let adopted = (try? store.adoptedContainers()) ?? []
            if engineChoice == .swarm {
                return try SwarmRuntime.connect(host: dockerHost, stopGraceSeconds: stopGraceSeconds, instance: instanceName, owner: store.ownerId,
                                                adopted: adopted, monitorSeconds: updateMinUptime,
                                                allowsPrivilegeEscalation: allowsPrivilegeEscalation, logger: logger, observer: observer)
            }
            return try DockerService.connect(host: dockerHost, stopGraceSeconds: stopGraceSeconds, instance: instanceName,
                                             owner: store.ownerId, adopted: adopted, logger: logger, observer: observer)
        } catch {
            throw CLIError("\(error.code.rawValue): \(error.message)")
        }
    }
}

extension GlobalOptions {
    /// Options that take a value and belong to every command.
    static let valued = ["--db", "--docker-host", "--secrets-dir", "--data-dir", "--instance", "--engine", "--log-level", "--log-format"]

    /// Moves global options given before the subcommand to just after it (`botmaker --db x.db status` →
    /// `botmaker status --db x.db`), since ArgumentParser reads options per command.
    static func placingGlobalOptions(_ arguments: [String], root: any ParsableCommand.Type) -> [String] {
        var leading: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if valued.contains(argument), index + 1 < arguments.count {
                leading += [argument, arguments[index + 1]]
                index += 2
            } else if valued.contains(where: { argument.hasPrefix($0 + "=") }) {
                leading.append(argument)
                index += 1
            } else {
                break
            }
        }
        guard !leading.isEmpty else { return arguments }
        var rest = Array(arguments[index...])
        var command = root
        var position = 0
        while position < rest.count,
              let next = command.configuration.subcommands.first(where: { $0._commandName == rest[position] }) {
            command = next
            position += 1
        }
        rest.insert(contentsOf: leading, at: position)
        return rest
    }
}

enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false
    static func once(_ body: () -> Void) {
        guard !done else { return }
        done = true
        body()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A one-line error for the user; ArgumentParser prints it on stderr and exits non-zero.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension GlobalOptions {
    /// Runs `body` with the one-host engine (Docker or Podman) for `command`, shutting its client down afterwards.
    /// Swarm runs a bot's container on some node, out of a manager's reach: refused with what to use instead.
    func withOneHostEngine<T>(_ store: Store, command: String, _ body: (DockerService) async throws -> T) async throws -> T {
        guard engineChoice == .docker else {
            throw CLIError("`botmaker \(command)` needs --engine docker; on Swarm the container runs on a node: "
                           + "use `docker service logs botmaker-<id>` against the manager, or the node's engine")
        }
        guard let docker = try runtime(for: store, logger: Logger(label: "botmaker")) as? DockerService else {
            throw CLIError("`botmaker \(command)` needs the Docker engine")
        }
        do {
            let result = try await body(docker)
            await docker.shutdown()
            return result
        } catch {
            await docker.shutdown()
            throw error
        }
    }

    /// The bot's container, or exit 1 with why there is none (unknown bot, or a bot without a container).
    func requireContainer(_ docker: DockerService, store: Store, botId: String) async throws -> DockerService.ConsoleContainer {
        let container: DockerService.ConsoleContainer?
        do { container = try await docker.consoleContainer(botId: botId) } catch { throw CLIError("\(error.code.rawValue): \(error.message)") }
        if let container { return container }
        guard let row = try store.bot(id: botId) else { throw CLIError("no bot \(botId)") }
        throw CLIError("bot \(botId) has no container (desired state: \(row.desiredState ?? "invalid"); `botmaker status` says why)")
    }
}
