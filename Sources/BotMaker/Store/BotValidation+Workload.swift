import Foundation

/// Validation of the workload columns (migration 0007): what their CHECKs cannot see inside the JSON.
extension BotValidation {
    public static let maxMounts = 16
    public static let maxPorts = 32
    /// Container paths no state mount may cover: kernel interfaces and botmaker's own secrets mount.
    public static let forbiddenMountTargets = ["/proc", "/sys", "/dev", ContainerDefaults.secretsTarget]
    /// Targets that are Docker's own (files it manages) or that hold the secrets mount: refused exactly, not below.
    public static let reservedMountTargets = ["/run", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]

    /// Splits environment entries into literal ones (an escaped `@@secret:` unescaped) and `@secret:` references.
    static func splitEnvironment(_ entries: [String]) -> Result<([String], [SecretEnvironment]), Problem> {
        var literal: [String] = []
        var fromSecrets: [SecretEnvironment] = []
        for (index, entry) in entries.enumerated() {
            let key = EnvironmentEntry.key(entry)
            let value = entry.dropFirst(key.count + 1)
            if value.hasPrefix(SecretEnvironment.escapedPrefix) {
                literal.append(key + "=" + value.dropFirst())
            } else if value.hasPrefix(SecretEnvironment.prefix) {
                let name = String(value.dropFirst(SecretEnvironment.prefix.count))
                if let problem = SecretsManager.nameProblem(name) {
                    return .failure(Problem(message: "[\(index)] \(key): @secret: reference: \(problem)"))
                }
                fromSecrets.append(SecretEnvironment(key: key, secret: name))
            } else {
                literal.append(entry)
            }
        }
        return .success((literal, fromSecrets))
    }

    /// Parses `mounts`: a JSON array of `{"name", "target"}` objects. Names are directory names under the bot's
    /// data directory; targets are normalised absolute container paths outside kernel and secrets paths.
    static func parseMounts(_ json: String?) -> Result<[StateMount], Problem> {
        guard let json, json != "[]" else { return .success([]) }
        guard json.utf8.count <= 64 * 1024, let data = json.data(using: .utf8),
              let value = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            return .failure(Problem(message: "not valid JSON"))
        }
        guard let array = value as? [Any] else { return .failure(Problem(message: "must be a JSON array of {\"name\", \"target\"} objects")) }
        if array.count > maxMounts { return .failure(Problem(message: "more than \(maxMounts) mounts")) }
        var mounts: [StateMount] = []
        for (index, element) in array.enumerated() {
            guard let object = element as? [String: Any], let name = object["name"] as? String, let target = object["target"] as? String,
                  object.count == 2 else {
                return .failure(Problem(message: "[\(index)] must be an object with exactly \"name\" and \"target\" strings"))
            }
            if let problem = mountNameProblem(name) { return .failure(Problem(message: "[\(index)] name: \(problem)")) }
            if let problem = mountTargetProblem(target) { return .failure(Problem(message: "[\(index)] target \(target.debugDescription): \(problem)")) }
            if mounts.contains(where: { $0.name == name }) { return .failure(Problem(message: "[\(index)] duplicate name \(name)")) }
            if mounts.contains(where: { $0.target == target }) { return .failure(Problem(message: "[\(index)] duplicate target \(target)")) }
            mounts.append(StateMount(name: name, target: target))
        }
        return .success(mounts)
    }

    /// Nil when `name` is 1–63 of `a-z 0-9 _ -`, starting with a letter or digit.
    public static func mountNameProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return "must be 1 to 63 characters" }
        func alnum(_ b: UInt8) -> Bool { (b >= 97 && b <= 122) || (b >= 48 && b <= 57) }
        guard alnum(bytes[0]), bytes.allSatisfy({ alnum($0) || $0 == 95 || $0 == 45 }) else {
            return "only a-z, 0-9, _ and - are allowed, starting with a letter or digit"
        }
        return nil
    }

    /// Nil when `target` is an absolute, normalised path that is not `/` and not in a forbidden place.
    public static func mountTargetProblem(_ target: String) -> String? {
        guard target.hasPrefix("/") else { return "must be an absolute path" }
        guard target.utf8.count <= 1024 else { return "longer than 1024 bytes" }
        if target.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) { return "must not contain control characters" }
        if target.contains(":") || target.contains(",") { return "must not contain : or ," }
        let components = target.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard !components.isEmpty, components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            return target == "/" ? "must not be the root directory" : "must be normalised (no empty, . or .. components, no trailing /)"
        }
        for forbidden in forbiddenMountTargets where target == forbidden || target.hasPrefix(forbidden + "/") {
            return "must be outside \(forbidden)"
        }
        if reservedMountTargets.contains(target) { return "is managed by Docker or holds the secrets mount" }
        return nil
    }

    /// Parses `ports`: a JSON array of Docker short-syntax strings, with no host port (or automatic port of one
    /// container port and host IP) used twice.
    static func parsePorts(_ json: String?) -> Result<[PortMapping], Problem> {
        guard let json, json != "[]" else { return .success([]) }
        let strings: [String]
        switch parseStringArray(json, what: "port strings such as \"18789\" or \"19001:18789\"") {
        case .success(let parsed): strings = parsed
        case .failure(let problem): return .failure(problem)
        }
        if strings.count > maxPorts { return .failure(Problem(message: "more than \(maxPorts) ports")) }
        var mappings: [PortMapping] = []
        for (index, text) in strings.enumerated() {
            switch PortMapping.parse(text) {
            case .failure(let problem): return .failure(Problem(message: "[\(index)] \(problem.message)"))
            case .success(let mapping):
                if let hostPort = mapping.hostPort,
                   mappings.contains(where: { $0.hostPort == hostPort && $0.proto == mapping.proto && ($0.hostIP == mapping.hostIP || $0.hostIP == "0.0.0.0" || mapping.hostIP == "0.0.0.0") }) {
                    return .failure(Problem(message: "[\(index)] host port \(hostPort)/\(mapping.proto) is used twice"))
                }
                if mapping.hostPort == nil, mappings.contains(where: { $0.hostPort == nil && $0.containerKey == mapping.containerKey && $0.hostIP == mapping.hostIP }) {
                    return .failure(Problem(message: "[\(index)] \(mapping.containerKey) on \(mapping.hostIP) is published twice"))
                }
                mappings.append(mapping)
            }
        }
        return .success(mappings)
    }

    static func parseHealth(command json: String?, interval: String?) -> Result<HealthOverride?, Problem> {
        var seconds: Int?
        if let interval {
            guard let value = Int(interval), (1...3600).contains(value) else {
                return .failure(Problem(message: "health_interval_seconds must be a whole number from 1 to 3600"))
            }
            seconds = value
        }
        guard let json else {
            return seconds == nil ? .success(nil) : .failure(Problem(message: "health_interval_seconds needs health_cmd"))
        }
        switch parseCommand(json) {
        case .failure(let problem): return .failure(Problem(message: "health_cmd: \(problem.message)"))
        case .success(let command): return .success(command.map { HealthOverride(command: $0, intervalSeconds: seconds) })
        }
    }

    /// Nil when `user` is a numeric `UID` or `UID:GID` (state directories are given to it, so names are not accepted).
    public static func userProblem(_ user: String) -> String? {
        let parts = user.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count),
              parts.allSatisfy({ !$0.isEmpty && $0.count <= 10 && $0.allSatisfy(\.isASCIIDigit) && (UInt64($0) ?? .max) < 1 << 31 }) else {
            return "must be a numeric UID or UID:GID such as 1000:1000"
        }
        return nil
    }

    /// The workload fields of `row` applied to `config`, or the first problem found.
    static func applyWorkload(_ row: BotRow, to config: inout ContainerConfig) -> Problem? {
        switch parseMounts(row.mounts) {
        case .success(let mounts): config.mounts = mounts
        case .failure(let problem): return Problem(message: "mounts: \(problem.message)")
        }
        switch parsePorts(row.ports) {
        case .success(let ports): config.ports = ports
        case .failure(let problem): return Problem(message: "ports: \(problem.message)")
        }
        switch parseHealth(command: row.healthCmd, interval: row.healthIntervalSeconds) {
        case .success(let health): config.health = health
        case .failure(let problem): return problem
        }
        if let user = row.user {
            if let problem = userProblem(user) { return Problem(message: "user: \(problem)") }
            config.user = user
        }
        if let memory = row.memoryBytes {
            guard let bytes = Int64(memory), bytes >= 6 * 1024 * 1024 else { return Problem(message: "memory_bytes must be a whole number of at least 6 MiB") }
            config.memoryBytes = bytes
        }
        if let cpus = row.cpus {
            guard let value = Double(cpus), value >= 0.01, value <= 1024 else { return Problem(message: "cpus must be a number from 0.01 to 1024") }
            config.nanoCPUs = Int64((value * 1e9).rounded())
        }
        if let pids = row.pidsLimit {
            guard let value = Int(pids), (16...4_194_304).contains(value) else { return Problem(message: "pids_limit must be from 16 to 4194304") }
            config.pidsLimit = value
        }
        if let security = row.security {
            guard let profile = SecurityProfile(rawValue: security) else { return Problem(message: "security must be standard or strict") }
            config.security = profile
        }
        if let network = row.network {
            guard let choice = BotNetwork(rawValue: network) else { return Problem(message: "network must be botmaker or bridge") }
            config.network = choice
        }
        if config.security == .strict, let mount = config.mounts.first(where: { $0.target == "/tmp" || $0.target.hasPrefix("/tmp/") }) {
            return Problem(message: "mounts: target \(mount.target) collides with the tmpfs at /tmp of security strict")
        }
        return nil
    }
}
