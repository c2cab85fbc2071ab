import Foundation

/// A host reachable only over a veth pair: a network namespace with 203.0.113.2/30 inside and 203.0.113.1/30 on the
/// host side (TEST-NET-3, never routed; this machine's own 192.0.2.0/24 and private ranges are avoided). Taking the
/// host side down partitions it. Created and removed by name (`ip netns`, `ip link`); needs root.
public final class TestNetworkNamespace {
    public let name: String
    public let hostAddress = "203.0.113.1"
    public let namespaceAddress = "203.0.113.2"
    /// The host side of the veth pair: `ip link set <hostLink> down` partitions the namespace.
    public let hostLink: String
    private let peerLink: String
    private let lock = NSLock()
    private var removed = false

    static let ip = "/usr/sbin/ip"

    public init() throws {
        try Services.require([Self.ip])
        let tag = "\(getpid() % 100_000)\(Int.random(in: 0..<100))"
        name = "cdns\(tag)"
        hostLink = "cdh\(tag)"
        peerLink = "cdp\(tag)"
        do {
            try Self.ip(["netns", "add", name])
            try Self.ip(["link", "add", hostLink, "type", "veth", "peer", "name", peerLink])
            try Self.ip(["link", "set", peerLink, "netns", name])
            try Self.ip(["addr", "add", "\(hostAddress)/30", "dev", hostLink])
            try Self.ip(["link", "set", hostLink, "up"])
            try Self.ip(["netns", "exec", name, Self.ip, "addr", "add", "\(namespaceAddress)/30", "dev", peerLink])
            try Self.ip(["netns", "exec", name, Self.ip, "link", "set", peerLink, "up"])
            try Self.ip(["netns", "exec", name, Self.ip, "link", "set", "lo", "up"])
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    /// Runs a command inside the namespace, to its end.
    public func run(_ executable: String, _ arguments: [String]) throws -> ProcessResult {
        try ProcessRunner.run(Self.ip, ["netns", "exec", name, executable] + arguments, timeout: 30)
    }

    /// Brings the host side of the link up or down (down: nothing on the host reaches the namespace).
    public func setLink(up: Bool) throws {
        try Self.ip(["link", "set", hostLink, up ? "up" : "down"])
    }

    /// Deletes the link and the namespace; idempotent.
    public func remove() {
        let first = lock.withLock { () -> Bool in
            defer { removed = true }
            return !removed
        }
        guard first else { return }
        _ = try? ProcessRunner.run(Self.ip, ["link", "del", hostLink], timeout: 10)
        _ = try? ProcessRunner.run(Self.ip, ["netns", "del", name], timeout: 10)
    }

    private static func ip(_ arguments: [String]) throws {
        let result = try ProcessRunner.run(ip, arguments, timeout: 10)
        guard result.status == 0 else {
            throw HarnessError("ip \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
    }
}
