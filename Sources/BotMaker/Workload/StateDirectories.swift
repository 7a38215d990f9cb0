import Foundation

/// The bots' persistent state on the host: `<root>/<bot id>/<mount name>`. Directories are made before a
/// container (0700, given to the bot's user), survive every recreate, stop and `absent`, and are deleted only by
/// ``purge(botId:)``. A symlink under the root is refused with `DATA_ERROR`.
public struct StateDirectories: Sendable {
    public static let environmentVariable = "BOTMAKER_DATA_DIR"
    public let root: String

    /// `root` may be relative; it is resolved against the current directory.
    public init(root: String) {
        self.root = SecretsManager.absolute(root)
    }

    /// The root from an explicit option, else `BOTMAKER_DATA_DIR`, else `./data`; always absolute.
    public static func getRoot(option: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        SecretsManager.absolute(option ?? environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 } ?? "./data")
    }

    /// The bot's directory (not created).
    public func directory(for botId: String) -> String { (root as NSString).appendingPathComponent(botId) }

    /// Makes the root, the bot's directory and one directory per mount, and gives the mount directories to the
    /// bot's user (not recursively: what the bot wrote keeps its owners).
    public func ensure(botId: String, config: ContainerConfig) throws(ContainerError) {
        guard !config.mounts.isEmpty else { return }
        func fail(_ message: String) -> ContainerError { ContainerError(.dataError, message, botId: botId) }
        if let problem = BotValidation.idProblem(botId) { throw fail("invalid bot id: \(problem)") }
        guard config.dataPath == directory(for: botId) else {
            throw fail("the bot's data path \(config.dataPath) is not under the data root \(root)")
        }
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o711])
        } catch {
            throw fail("cannot create the data root \(root): \(error.localizedDescription)")
        }
        guard let realRoot = SecretsManager.realPath(root) else { throw fail("cannot resolve the data root \(root)") }
        let owner = config.user.map(Self.ids)
        let botDirectory = directory(for: botId)
        try make(botDirectory, realRoot: realRoot, owner: nil, fail: fail)
        let marker = (botDirectory as NSString).appendingPathComponent(Self.marker)
        if !FileManager.default.fileExists(atPath: marker), !FileManager.default.createFile(atPath: marker, contents: Data(botId.utf8)) {
            throw fail("cannot write \(marker)")
        }
        for mount in config.mounts {
            try make(config.hostPath(of: mount), realRoot: realRoot, owner: owner, fail: fail)
        }
    }

    /// Written into every bot directory botmaker makes: `purge` deletes nothing without it.
    static let marker = ".botmaker-state"

    /// Deletes the bot's data directory and everything in it (symlinks inside are removed, never followed).
    /// Returns false when there was nothing to delete.
    @discardableResult
    public func purge(botId: String) throws(ContainerError) -> Bool {
        if let problem = BotValidation.idProblem(botId) { throw ContainerError(.dataError, "invalid bot id: \(problem)", botId: botId) }
        let path = directory(for: botId)
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        guard info.st_mode & S_IFMT == S_IFDIR, FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(Self.marker)) else {
            throw ContainerError(.dataError, "\(path) was not made by botmaker (no \(Self.marker) in it); delete it yourself if it should go",
                                 botId: botId)
        }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw ContainerError(.dataError, "cannot delete \(path): \(error.localizedDescription)", botId: botId)
        }
        return true
    }

    private func make(_ path: String, realRoot: String, owner: (uid_t, gid_t)?, fail: (String) -> ContainerError) throws(ContainerError) {
        var info = stat()
        if lstat(path, &info) != 0 {
            guard errno == ENOENT else { throw fail("cannot look at \(path): \(SecretsManager.errnoText())") }
            if mkdir(path, 0o700) != 0 && errno != EEXIST { throw fail("cannot create \(path): \(SecretsManager.errnoText())") }
            guard lstat(path, &info) == 0 else { throw fail("cannot look at \(path): \(SecretsManager.errnoText())") }
        }
        // No symlinks under the root at all: one leading out of it would mount a foreign path, one leading to another
        // bot's directory would hand that bot's state over.
        if info.st_mode & S_IFMT == S_IFLNK { throw fail("\(path) is a symlink; state directories must be plain directories (refused)") }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw fail("\(path) exists and is not a directory") }
        let expected = realRoot + String(path.dropFirst(root.count))
        guard let real = SecretsManager.realPath(path), real == expected else {
            throw fail("\(path) leads out of the data root \(root); refused")
        }
        if let (uid, gid) = owner, info.st_uid != uid || info.st_gid != gid {
            if chown(path, uid, gid) != 0 { throw fail("cannot give \(path) to \(uid):\(gid): \(SecretsManager.errnoText())") }
        }
        if info.st_mode & 0o777 != 0o700, chmod(path, 0o700) != 0 { throw fail("cannot chmod \(path): \(SecretsManager.errnoText())") }
    }

    /// `UID[:GID]` (validated) as ids; a missing GID is the UID.
    static func ids(_ user: String) -> (uid_t, gid_t) {
        let parts = user.split(separator: ":")
        let uid = uid_t(parts.first.flatMap { UInt32($0) } ?? 0)
        let gid = parts.count > 1 ? gid_t(UInt32(parts[1]) ?? 0) : gid_t(uid)
        return (uid, gid)
    }
}
