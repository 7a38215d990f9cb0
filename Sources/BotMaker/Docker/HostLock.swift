import Foundation

/// An exclusive lock shared by every process on this host (`flock` on a file in the temporary directory), held for
/// a few milliseconds around an engine operation whose own duplicate check races (creating botmaker's network).
/// Best effort: if the file cannot be opened the caller goes ahead unlocked.
final class HostLock {
    private var fd: Int32

    init(name: String) {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("\(name).lock")
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { while flock(fd, LOCK_EX) != 0 && errno == EINTR {} }
    }

    func release() {
        guard fd >= 0 else { return }
        _ = flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
