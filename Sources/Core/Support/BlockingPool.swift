import NIOPosix

/// A dedicated thread pool for blocking calls (libssh2, OpenSSL sockets), so they never occupy the
/// Swift cooperative pool or an event loop.
public final class BlockingPool: Sendable {
    private let pool: NIOThreadPool

    /// The process-wide pool. 64 threads: each in-flight SSH session or TLS probe holds one while it
    /// waits on the network, and idle threads cost only their stacks.
    public static let shared = BlockingPool(threads: 64)

    public init(threads: Int) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    /// Runs `body` on a pool thread and returns its result.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }
}
