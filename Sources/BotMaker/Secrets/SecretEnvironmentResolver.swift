import Crypto
import Foundation

/// Environment values from secret files (`KEY=@secret:NAME`): their digests for the spec hash, and their values at
/// create time. A digest is an HMAC keyed with a random key kept in the secrets root (`.digest-key`, 0600), so the
/// database and container labels never hold anything a weak secret could be guessed from.
extension SecretsManager {
    static let digestKeyName = ".digest-key"
    /// Values larger than this are refused (Docker's environment is not the place for files).
    public static let maxEnvironmentValueBytes = 32 * 1024

    /// Fills in `config.secretDigests`, or returns the first problem (naming the secret, never its value).
    /// `createKey`: make the digest key if there is none (false for side-effect-free previews).
    public func resolveDigests(for botId: String, config: inout ContainerConfig, createKey: Bool) -> String? {
        config.secretDigests = [:]
        config.secretFileDigests = nil
        guard !config.secretEnvironment.isEmpty || digestsSecretFiles else { return nil }
        let key: SymmetricKey?
        do { key = try digestKey(create: createKey) } catch { return error.message }
        if digestsSecretFiles {
            do {
                let files = try secretFiles(for: botId, key: key)
                config.secretFileDigests = files.isEmpty ? nil : Dictionary(uniqueKeysWithValues: files.map { ($0.name, $0.digest) })
            } catch {
                return error.message
            }
        }
        for reference in config.secretEnvironment where config.secretDigests[reference.secret] == nil {
            switch readValue(botId: botId, name: reference.secret) {
            case .failure(let error): return error.message
            case .success(let value):
                guard let key else { config.secretDigests[reference.secret] = "no-digest-key"; continue }
                let mac = HMAC<SHA256>.authenticationCode(for: value, using: key)
                config.secretDigests[reference.secret] = mac.map { String(format: "%02x", $0) }.joined()
            }
        }
        return nil
    }

    /// Swarm takes secrets of fewer than 512,000 bytes.
    public static let maxSecretFileBytes = 512_000

    /// Every secret file of the bot (regular files with valid names), read now with its keyed digest; for engines that
    /// copy them. A bot without a secrets directory has none.
    public func secretFiles(for botId: String, createKey: Bool = true) throws(SecretsError) -> [SecretFile] {
        try secretFiles(for: botId, key: try digestKey(create: createKey))
    }

    func secretFiles(for botId: String, key: SymmetricKey?) throws(SecretsError) -> [SecretFile] {
        var files: [SecretFile] = []
        for name in try list(botId: botId) {
            let data: Data
            switch readFile(botId: botId, name: name, what: "secret file", limit: Self.maxSecretFileBytes - 1) {
            case .failure(let error): throw error
            case .success(let value): data = value
            }
            guard !data.isEmpty else { throw SecretsError("secret file \(name) is empty, which a Swarm secret cannot be") }
            let digest = key.map { HMAC<SHA256>.authenticationCode(for: data, using: $0).map { String(format: "%02x", $0) }.joined() } ?? "no-digest-key"
            files.append(SecretFile(name: name, data: data, digest: digest))
        }
        return files
    }

    /// Resolves the digests of the bot's secret environment values, recording a problem on the bot.
    public func resolve(_ bot: inout DesiredBot, createKey: Bool) {
        bot.secretProblem = resolveDigests(for: bot.id, config: &bot.config, createKey: createKey)
    }

    /// `text` (a health check's output, which may echo the environment, e.g. a `curl -v` with a token) with the bot's
    /// secret values replaced by `[secret]`.
    public func scrub(_ text: String, for botId: String, config: ContainerConfig) -> String {
        guard !config.secretEnvironment.isEmpty, let environment = try? resolveEnvironment(for: botId, config: config) else { return text }
        return environment.suffix(config.secretEnvironment.count).reduce(text) { text, entry in
            let value = String(entry.dropFirst(EnvironmentEntry.key(entry).count + 1))
            return value.isEmpty ? text : text.replacingOccurrences(of: value, with: "[secret]")
        }
    }

    /// The container's environment: the literal entries, then each `@secret:` entry with its value.
    public func resolveEnvironment(for botId: String, config: ContainerConfig) throws(SecretsError) -> [String] {
        var environment = config.environment
        for reference in config.secretEnvironment {
            switch readValue(botId: botId, name: reference.secret) {
            case .failure(let error): throw error
            case .success(let value): environment.append(reference.key + "=" + String(decoding: value, as: UTF8.self))
            }
        }
        return environment
    }

    /// A secret's value as an environment value: one trailing newline (as `echo` leaves) is dropped.
    func readValue(botId: String, name: String) -> Result<Data, SecretsError> {
        readFile(botId: botId, name: name, what: "secret \(name) for environment", limit: Self.maxEnvironmentValueBytes).flatMap { value in
            var value = value
            if value.last == 0x0a { value.removeLast() }
            if value.last == 0x0d { value.removeLast() }
            if value.contains(0) { return .failure(SecretsError("secret \(name) contains a NUL byte and cannot be an environment value")) }
            return .success(value)
        }
    }

    /// A secret file's bytes: a regular file (never through a symlink) of at most `limit` bytes.
    private func readFile(botId: String, name: String, what: String, limit: Int) -> Result<Data, SecretsError> {
        let path: String
        do { path = (try directory(for: botId) as NSString).appendingPathComponent(name) } catch { return .failure(error) }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = errno == ENOENT ? "does not exist" : errno == ELOOP ? "is a symlink (refused)" : Self.errnoText()
            return .failure(SecretsError("\(what): \(path) \(reason); set it with `botmaker secrets set \(botId) \(name)`"))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            return .failure(SecretsError("\(what): \(path) is not a regular file"))
        }
        guard info.st_size <= limit else { return .failure(SecretsError("\(what) is larger than \(limit) bytes")) }
        var value = Data(count: Int(info.st_size))
        let count = value.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count >= 0 else { return .failure(SecretsError("cannot read \(what): \(Self.errnoText())")) }
        return .success(value.prefix(count))
    }

    /// The digest key, made (32 random bytes, 0600) when missing and `create` is set.
    func digestKey(create: Bool) throws(SecretsError) -> SymmetricKey? {
        let path = (root as NSString).appendingPathComponent(Self.digestKeyName)
        if let data = FileManager.default.contents(atPath: path), data.count == 32 { return SymmetricKey(data: data) }
        guard create else { return nil }
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = SymmetricKey(size: .bits256)
        // Written whole under a temporary name, then linked into place: a crash never leaves a short key behind, and
        // the first of two processes to link wins (the other reads its key).
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SecretsError("cannot create \(temporary): \(Self.errnoText())") }
        let bytes = key.withUnsafeBytes { Data($0) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        defer { unlink(temporary) }
        guard written == 32, synced else { throw SecretsError("cannot write \(temporary): \(Self.errnoText())") }
        if link(temporary, path) != 0 {
            if errno == EEXIST, let data = FileManager.default.contents(atPath: path), data.count == 32 { return SymmetricKey(data: data) }
            throw SecretsError("cannot create \(path): \(Self.errnoText())")
        }
        return key
    }
}
