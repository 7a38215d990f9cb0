import Foundation

/// Per-bot secrets on the host: `<root>/<bot id>/<NAME>`, directories 0700, files 0600 written
/// atomically. Bot ids and secret names are validated and symlinks leading out of the root are
/// refused, so no path can escape the root. Values are never logged.
public struct SecretsManager: Sendable {
    public static let environmentVariable = "BOTMAKER_SECRETS_DIR"

    public let root: String
    /// For engines that copy secret files into themselves (Swarm): the files' digests are part of each bot's spec.
    public var digestsSecretFiles: Bool

    /// `root` may be relative; it is resolved against the current directory.
    public init(root: String, digestsSecretFiles: Bool = false) {
        self.root = Self.absolute(root)
        self.digestsSecretFiles = digestsSecretFiles
    }

    /// The root from an explicit option, else `BOTMAKER_SECRETS_DIR`, else `./secrets`; always absolute.
    public static func getSecretsRoot(option: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let chosen = option ?? environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 } ?? "./secrets"
        return absolute(chosen)
    }

    static func absolute(_ path: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        let full = expanded.hasPrefix("/") ? expanded : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(expanded)
        return (full as NSString).standardizingPath
    }

    /// Nil when `name` is 1–64 of `A-Z a-z 0-9 _`.
    public static func nameProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count) else { return "secret names are 1 to 64 characters" }
        let ok = bytes.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
        return ok ? nil : "secret names use only A-Z, a-z, 0-9 and _"
    }

    /// The bot's directory path (not created).
    public func directory(for botId: String) throws(SecretsError) -> String {
        if let problem = BotValidation.idProblem(botId) { throw SecretsError("invalid bot id: \(problem)") }
        return (root as NSString).appendingPathComponent(botId)
    }

    /// Creates the root and the bot's directory (0700) if needed and checks neither leads elsewhere.
    @discardableResult
    public func ensureDirectory(for botId: String) throws(SecretsError) -> String {
        let dir = try directory(for: botId)
        try makeDirectory(root, leaf: false)
        try makeDirectory(dir, leaf: true)
        return dir
    }

    /// Writes a secret atomically with mode 0600.
    public func set(botId: String, name: String, value: Data) throws(SecretsError) {
        if let problem = Self.nameProblem(name) { throw SecretsError(problem) }
        let dir = try ensureDirectory(for: botId)
        let target = (dir as NSString).appendingPathComponent(name)
        if let kind = fileKind(target), kind != S_IFREG { throw SecretsError("\(target) exists and is not a regular file") }
        let temporary = (dir as NSString).appendingPathComponent(".\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = Foundation.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SecretsError("cannot create \(temporary): \(Self.errnoText())") }
        var failure: SecretsError?
        value.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = SecretsError("cannot write \(temporary): \(Self.errnoText())")
                    return
                }
                offset += written
            }
        }
        if failure == nil, fchmod(fd, 0o600) != 0 || fsync(fd) != 0 { failure = SecretsError("cannot sync \(temporary): \(Self.errnoText())") }
        close(fd)
        if failure == nil, rename(temporary, target) != 0 { failure = SecretsError("cannot rename into \(target): \(Self.errnoText())") }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }

    /// Secret names for a bot, sorted (never values).
    public func list(botId: String) throws(SecretsError) -> [String] {
        let dir = try directory(for: botId)
        guard fileKind(dir) != nil else { return [] }
        try checkInsideRoot(dir)
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
            throw SecretsError("cannot list \(dir): \(error.localizedDescription)")
        }
        return names.filter { Self.nameProblem($0) == nil }.sorted()
    }

    /// Removes a secret; returns false when it did not exist.
    @discardableResult
    public func remove(botId: String, name: String) throws(SecretsError) -> Bool {
        if let problem = Self.nameProblem(name) { throw SecretsError(problem) }
        let dir = try directory(for: botId)
        guard fileKind(dir) != nil else { return false }
        try checkInsideRoot(dir)
        let target = (dir as NSString).appendingPathComponent(name)
        if unlink(target) != 0 {
            if errno == ENOENT { return false }
            throw SecretsError("cannot remove \(target): \(Self.errnoText())")
        }
        return true
    }

    // MARK: - Filesystem helpers

    private func fileKind(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    private func makeDirectory(_ path: String, leaf: Bool) throws(SecretsError) {
        if fileKind(path) == nil {
            if leaf {
                if mkdir(path, 0o700) != 0 && errno != EEXIST { throw SecretsError("cannot create \(path): \(Self.errnoText())") }
            } else {
                do {
                    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                } catch {
                    throw SecretsError("cannot create \(path): \(error.localizedDescription)")
                }
            }
        }
        if leaf {
            guard fileKind(path) == S_IFDIR else { throw SecretsError("\(path) is not a directory (a symlink or file is refused)") }
            try checkInsideRoot(path)
            if chmod(path, 0o700) != 0 { throw SecretsError("cannot chmod \(path): \(Self.errnoText())") }
        } else {
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { throw SecretsError("\(path) is not a directory") }
        }
    }

    /// Refuses a path whose real location is not directly inside the root's real location.
    private func checkInsideRoot(_ path: String) throws(SecretsError) {
        guard let realRoot = Self.realPath(root), let realPath = Self.realPath(path) else {
            throw SecretsError("cannot resolve \(path)")
        }
        guard (realPath as NSString).deletingLastPathComponent == realRoot else {
            throw SecretsError("\(path) leads outside the secrets root \(root); refused")
        }
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// A secrets operation that was refused or failed.
public struct SecretsError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
