import Foundation

/// A bot row that passed validation: what its container should be.
public struct DesiredBot: Sendable, Equatable {
    public var id: String
    public var config: ContainerConfig
    public var desiredState: DesiredState
    public var generation: Int64
    /// Raw text of `restart_requested_at`; a value not yet acted on asks for one restart.
    public var restartRequestedAt: String?
    /// Why an environment value from a secret cannot be read (the bot is then blocked with `SECRETS_ERROR`).
    public var secretProblem: String?
    public var pullPolicy: PullPolicy = .missing
    /// For `always` bots: the ID the engine's image under the bot's reference has now (a tag that moved is an update).
    public var resolvedImageId: String?
    public var updateStrategy: UpdateStrategy = .rollback

    public init(id: String, config: ContainerConfig, desiredState: DesiredState, generation: Int64, restartRequestedAt: String? = nil) {
        self.id = id
        self.config = config
        self.desiredState = desiredState
        self.generation = generation
        self.restartRequestedAt = restartRequestedAt
    }
}

/// A bot row that cannot become a container spec, with a precise reason that never quotes values.
public struct InvalidBot: Sendable, Equatable {
    public var id: String
    public var generation: Int64
    /// The row's desired state when that part is readable: an invalid `absent` row can still be removed.
    public var desiredState: DesiredState?
    public var message: String

    public init(id: String, generation: Int64, desiredState: DesiredState?, message: String) {
        self.id = id
        self.generation = generation
        self.desiredState = desiredState
        self.message = message
    }
}

/// Rules that turn a raw row into a ``DesiredBot`` or an ``InvalidBot``; never traps on any input.
public enum BotValidation {
    public static let maxEnvironmentEntries = 1000
    public static let maxEnvironmentEntryBytes = 32 * 1024
    public static let maxEnvironmentBytes = 256 * 1024
    public static let maxCommandArguments = 256
    public static let maxImageLength = 255

    public enum Outcome: Sendable, Equatable {
        case valid(DesiredBot)
        case invalid(InvalidBot)
    }

    /// Validates one row; the roots must be absolute (`dataRoot` nil: beside the secrets root, as `data`).
    public static func validate(_ row: BotRow, secretsRoot: String, dataRoot: String? = nil) -> Outcome {
        let state = row.desiredState.flatMap(DesiredState.init(rawValue:))
        func invalid(_ message: String) -> Outcome {
            .invalid(InvalidBot(id: row.id, generation: row.generation, desiredState: state, message: message))
        }
        if let problem = idProblem(row.id) { return invalid("id: \(problem)") }
        guard let state else { return invalid("desired_state must be running, stopped or absent") }
        guard let image = row.image else { return invalid("image is missing") }
        if let problem = imageProblem(image) { return invalid("image: \(problem)") }
        let environment: [String]
        switch parseEnvironment(row.environment) {
        case .success(let entries): environment = entries
        case .failure(let problem): return invalid("environment: \(problem.message)")
        }
        let command: [String]?
        switch parseCommand(row.command) {
        case .success(let arguments): command = arguments
        case .failure(let problem): return invalid("command: \(problem.message)")
        }
        let literal: [String], fromSecrets: [SecretEnvironment]
        switch splitEnvironment(environment) {
        case .success(let split): (literal, fromSecrets) = split
        case .failure(let problem): return invalid("environment: \(problem.message)")
        }
        let secretsPath = (secretsRoot as NSString).appendingPathComponent(row.id)
        let data = dataRoot ?? ((secretsRoot as NSString).deletingLastPathComponent as NSString).appendingPathComponent("data")
        var config = ContainerConfig(image: image, environment: literal, secretsPath: secretsPath, command: command,
                                     secretEnvironment: fromSecrets, dataPath: (data as NSString).appendingPathComponent(row.id))
        if let problem = applyWorkload(row, to: &config) { return invalid(problem.message) }
        var policy = PullPolicy.missing
        if let text = row.pullPolicy {
            guard let parsed = PullPolicy(rawValue: text) else { return invalid("pull_policy must be missing, always or never") }
            policy = parsed
        }
        var strategy = UpdateStrategy.rollback
        if let text = row.updateStrategy {
            guard let parsed = UpdateStrategy(rawValue: text) else { return invalid("update_strategy must be rollback or recreate") }
            strategy = parsed
        }
        var bot = DesiredBot(
            id: row.id,
            config: config,
            desiredState: state,
            generation: row.generation,
            restartRequestedAt: row.restartRequestedAt)
        bot.pullPolicy = policy
        bot.updateStrategy = strategy
        return .valid(bot)
    }

    /// Nil when `id` is a DNS label (1–63 of `a-z0-9-`, not starting or ending with `-`).
    public static func idProblem(_ id: String) -> String? {
        let bytes = Array(id.utf8)
        guard (1...63).contains(bytes.count) else { return "must be 1 to 63 characters, found \(bytes.count) bytes" }
        for byte in bytes {
            let ok = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-")
            if !ok { return "only a-z, 0-9 and - are allowed" }
        }
        if bytes.first == UInt8(ascii: "-") || bytes.last == UInt8(ascii: "-") { return "must not start or end with -" }
        return nil
    }

    struct Problem: Error { var message: String }

    /// Nil when `image` is a valid Docker reference: `[host[:port]/]path[:tag][@digest]`, lowercase path.
    public static func imageProblem(_ image: String) -> String? {
        if image.isEmpty { return "must not be empty" }
        if image.utf8.count > maxImageLength + 200 { return "too long (\(image.utf8.count) bytes)" }
        if image.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7f }) {
            return "must not contain whitespace or control characters"
        }
        if !image.unicodeScalars.allSatisfy({ $0.isASCII }) { return "must be ASCII" }
        var rest = Substring(image)
        var digest: Substring?
        if let at = rest.firstIndex(of: "@") {
            digest = rest[rest.index(after: at)...]
            rest = rest[..<at]
        }
        if let digest, !isDigest(digest) { return "digest must look like sha256:<64 hex digits>" }
        // A tag follows the last ':' after the last '/'.
        let lastSlash = rest.lastIndex(of: "/")
        let tagSearch = lastSlash.map { rest[rest.index(after: $0)...] } ?? rest
        if let colon = tagSearch.lastIndex(of: ":") {
            let tag = rest[rest.index(after: colon)...]
            if !isTag(tag) { return "tag must be 1-128 of A-Z a-z 0-9 _ . - and not start with . or -" }
            rest = rest[..<colon]
        }
        if rest.count > maxImageLength { return "name longer than \(maxImageLength) characters" }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard let first = components.first, !first.isEmpty else { return "name must not be empty" }
        // Like Docker: a first component is a registry host only with a '.' or ':', or as `localhost`.
        // (An uppercase first component without them is refused by dockerd: "repository name must be lowercase".)
        if components.count > 1, first.contains(".") || first.contains(":") || first == "localhost" {
            if !isDomain(first) { return "registry host is not a valid host[:port]" }
            components.removeFirst()
        }
        for component in components {
            if component.isEmpty { return "empty path component" }
            if !isPathComponent(component) {
                return "repository must be lowercase a-z 0-9 separated by . _ __ or -"
            }
        }
        return nil
    }

    private static func isLowerAlnum(_ c: Character) -> Bool {
        c.isASCII && (c.isNumber || (c.isLetter && c.isLowercase))
    }

    private static func isPathComponent(_ s: Substring) -> Bool {
        // [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
        let chars = Array(s)
        guard let first = chars.first, let last = chars.last, isLowerAlnum(first), isLowerAlnum(last) else { return false }
        var i = 0
        while i < chars.count {
            if isLowerAlnum(chars[i]) { i += 1; continue }
            var j = i
            while j < chars.count, !isLowerAlnum(chars[j]) { j += 1 }
            let separator = String(chars[i..<j])
            let ok = separator == "." || separator == "_" || separator == "__" || separator.allSatisfy { $0 == "-" }
            if !ok { return false }
            i = j
        }
        return true
    }

    private static func isDomain(_ s: Substring) -> Bool {
        var host = s
        if let colon = s.lastIndex(of: ":") {
            let port = s[s.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }), port.count <= 5 else { return false }
            host = s[..<colon]
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty && labels.allSatisfy { label in
            guard let first = label.first, let last = label.last else { return false }
            let alnum: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber) }
            return alnum(first) && alnum(last) && label.allSatisfy { alnum($0) || $0 == "-" }
        }
    }

    private static func isTag(_ s: Substring) -> Bool {
        guard (1...128).contains(s.count), let first = s.first, first != ".", first != "-" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-") }
    }

    private static func isDigest(_ s: Substring) -> Bool {
        guard let colon = s.firstIndex(of: ":") else { return false }
        let algorithm = s[..<colon], hex = s[s.index(after: colon)...]
        return !algorithm.isEmpty && algorithm.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+._-".contains($0)) }
            && hex.count >= 32 && hex.allSatisfy(\.isHexDigit)
    }

    static func parseStringArray(_ json: String, what: String) -> Result<[String], Problem> {
        guard let data = json.data(using: .utf8) else { return .failure(Problem(message: "not UTF-8")) }
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            return .failure(Problem(message: "not valid JSON"))
        }
        guard let array = value as? [Any] else { return .failure(Problem(message: "must be a JSON array of \(what)")) }
        var strings: [String] = []
        strings.reserveCapacity(array.count)
        for (index, element) in array.enumerated() {
            guard let string = element as? String else {
                return .failure(Problem(message: "[\(index)] must be a string"))
            }
            strings.append(string)
        }
        return .success(strings)
    }

    /// Parses `environment`: a JSON array of `KEY=VALUE`, KEY matching `[A-Za-z_][A-Za-z0-9_]*`, unique.
    /// Messages name the index and key, never the value.
    static func parseEnvironment(_ json: String?) -> Result<[String], Problem> {
        guard let json else { return .success([]) }
        if json.utf8.count > maxEnvironmentBytes + 4096 {
            return .failure(Problem(message: "larger than \(maxEnvironmentBytes) bytes"))
        }
        let entries: [String]
        switch parseStringArray(json, what: "\"KEY=VALUE\" strings") {
        case .success(let parsed): entries = parsed
        case .failure(let problem): return .failure(problem)
        }
        if entries.count > maxEnvironmentEntries {
            return .failure(Problem(message: "more than \(maxEnvironmentEntries) entries"))
        }
        var seen = Set<String>()
        var total = 0
        for (index, entry) in entries.enumerated() {
            total += entry.utf8.count
            guard let equals = entry.firstIndex(of: "=") else {
                return .failure(Problem(message: "[\(index)] must be KEY=VALUE (no '=' found)"))
            }
            let key = String(entry[..<equals])
            guard isEnvironmentKey(key) else {
                return .failure(Problem(message: "[\(index)] key must match [A-Za-z_][A-Za-z0-9_]*"))
            }
            if entry.utf8.contains(0) { return .failure(Problem(message: "[\(index)] \(key): value contains a NUL byte")) }
            if entry.utf8.count > maxEnvironmentEntryBytes {
                return .failure(Problem(message: "[\(index)] \(key): longer than \(maxEnvironmentEntryBytes) bytes"))
            }
            if !seen.insert(key).inserted { return .failure(Problem(message: "[\(index)] duplicate key \(key)")) }
        }
        if total > maxEnvironmentBytes { return .failure(Problem(message: "larger than \(maxEnvironmentBytes) bytes")) }
        return .success(entries)
    }

    public static func isEnvironmentKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard let first = bytes.first, bytes.count <= 256 else { return false }
        func letter(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 }
        return letter(first) && bytes.allSatisfy { letter($0) || ($0 >= 48 && $0 <= 57) }
    }

    /// Parses `command`: NULL, or a non-empty JSON array of strings without NUL bytes.
    static func parseCommand(_ json: String?) -> Result<[String]?, Problem> {
        guard let json else { return .success(nil) }
        if json.utf8.count > maxEnvironmentBytes { return .failure(Problem(message: "larger than \(maxEnvironmentBytes) bytes")) }
        switch parseStringArray(json, what: "strings") {
        case .failure(let problem): return .failure(problem)
        case .success(let arguments):
            if arguments.isEmpty { return .failure(Problem(message: "must not be empty (use NULL for the image's own command)")) }
            if arguments.count > maxCommandArguments { return .failure(Problem(message: "more than \(maxCommandArguments) arguments")) }
            if let index = arguments.firstIndex(where: { $0.utf8.contains(0) }) {
                return .failure(Problem(message: "[\(index)] contains a NUL byte"))
            }
            return .success(arguments)
        }
    }
}
