import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Free loopback TCP ports for the services the tests start.
public enum FreePort {
    /// Ports handed out by this process, so two concurrent `allocate()` calls never get the same one.
    private static let handedOut = Locked<Set<UInt16>>([])

    /// Binds 127.0.0.1:0, reads the port the kernel chose, closes the socket and returns the port.
    /// (There is an unavoidable window before the caller binds it; ports already handed out
    /// by this process are skipped.)
    public static func allocate() throws -> UInt16 {
        for _ in 0..<50 {
            let port = try bindEphemeral()
            let fresh = handedOut.withLock { set in set.insert(port).inserted }
            if fresh { return port }
        }
        throw HarnessError("FreePort: could not find an unused port")
    }

    private static func bindEphemeral() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("FreePort: socket failed: \(errnoString())") }
        defer { close(fd) }
        var addr = address("127.0.0.1", port: 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw HarnessError("FreePort: bind failed: \(errnoString())") }
        var out = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &out) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else { throw HarnessError("FreePort: getsockname failed: \(errnoString())") }
        return UInt16(bigEndian: out.sin_port)
    }

    /// True when a TCP connect to 127.0.0.1:`port` succeeds right now.
    public static func isListening(port: UInt16, host: String = "127.0.0.1") -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = address(host, port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return rc == 0
    }

    /// Connects to 127.0.0.1:`port` every 10 ms until it succeeds; throws after `timeout` seconds.
    /// Note: this opens and closes a bare TCP connection (fine for sshd and nginx; do not use it
    /// on `openssl ocsp`, which spins on an empty connection).
    public static func waitUntilListening(port: UInt16, host: String = "127.0.0.1", timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !isListening(port: port, host: host) {
            if Date() >= deadline {
                throw HarnessError("nothing listening on \(host):\(port) after \(timeout)s")
            }
            usleep(10_000)
        }
    }

    private static func address(_ host: String, port: UInt16) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr(host)
        return addr
    }
}

func errnoString() -> String {
    String(cString: strerror(errno))
}
