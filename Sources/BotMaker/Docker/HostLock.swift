import Foundation

/// An exclusive lock shared by every process on this host (`flock` on a file in the temporary directory), held for a
/// few milliseconds around an engine operation whose own duplicate check races (creating botmaker's network). Never
/// blocks a thread: it polls with `LOCK_NB`, and after `timeout` the caller goes ahead unlocked (best effort, as when
/// the file cannot be opened).
final class HostLock: Sendable {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    static func acquire(name: String, timeout: Duration = .seconds(10)) async -> HostLock? {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("\(name).lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return nil }
        let deadline = ContinuousClock.now + timeout
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, ContinuousClock.now < deadline else {
                close(fd)
                return nil
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return HostLock(fd: fd)
    }

    func release() {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }
}
