import Foundation

/// Whether a host port is free right now, by binding it briefly: an automatic port is never handed out while
/// something outside Docker listens on it.
public enum HostPortProbe {
    public static func isFree(ip: String, port: Int, proto: String) -> Bool {
        let fd = socket(AF_INET, Int32(proto == "udp" ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        // As Docker's proxy binds: a port in TIME_WAIT after a recent connection is free.
        var reuse: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, ip, &address.sin_addr) == 1 else { return true }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return bound == 0
    }
}
