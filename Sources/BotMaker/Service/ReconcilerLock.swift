import Foundation

/// One reconciler per database: an exclusive `flock` on `<database>.lock`, holding the owner's pid.
/// The kernel releases it when the process dies, so a crash never leaves a stale lock.
public final class ReconcilerLock: Sendable {
    public let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock or throws a ``LockError`` naming the lock file and the holder's pid.
    public static func acquire(databasePath: String) throws(LockError) -> ReconcilerLock {
        let path = SecretsManager.absolute(databasePath) + ".lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LockError("cannot open lock file \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let busy = errno == EWOULDBLOCK
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            let holder = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "unknown"
            if busy {
                throw LockError("another botmaker reconciler (pid \(holder)) holds \(path); only one may run per database")
            }
            throw LockError("cannot lock \(path): \(String(cString: strerror(errno)))")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        return ReconcilerLock(path: path, descriptor: fd)
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

/// The reconciler lock is held by someone else, or could not be taken.
public struct LockError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
