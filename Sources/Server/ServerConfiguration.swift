import Foundation
import ServerSecurity

/// Everything `certdeploy serve` is told on its command line and environment.
public struct ServerConfiguration: Sendable {
    /// Address to listen on. Plain HTTP is refused on anything but loopback unless `insecureHTTP` is set.
    public var host: String = "127.0.0.1"
    /// 0 picks a free port (tests); `onListening` reports the one bound.
    public var port: Int = 8080
    /// Where the SQLite database lives when no `databaseURL` is given.
    public var dataDirectory: String = "./data"
    /// `postgres://user:pass@host:port/db?sslmode=…`: use PostgreSQL instead of SQLite.
    public var databaseURL: String?
    /// Serve HTTPS with this certificate chain and key (PEM files).
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// Allow plain HTTP on a non-loopback address (API keys then travel in clear text).
    public var insecureHTTP = false
    /// Deployments this replica runs at once.
    public var workerConcurrency = 8
    /// How long a claimed deployment stays leased without a heartbeat.
    public var leaseDuration: Duration = .seconds(60)
    /// How often idle workers look for queued deployments (they are also woken at once by local enqueues).
    public var pollInterval: Duration = .seconds(1)
    /// Attempts for a deployment that fails to connect, before it is final.
    public var maxConnectAttempts = 3
    /// First retry delay after a connection error; doubles per attempt.
    public var retryBackoff: Duration = .seconds(5)
    /// Largest request body accepted.
    public var maxBodyBytes = 1 << 20
    /// Rate limits: unauthenticated callers by source address, authenticated ones by key name.
    public var unauthenticatedRateLimit: RateLimit
    public var authenticatedRateLimit: RateLimit?
    /// When set, `GET /metrics` also accepts `Authorization: Bearer <this>` (a scraper token that is no API key).
    public var metricsToken: String?
    /// Worker id prefix in leases and audit events; the host name and pid by default.
    public var workerID: String = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    /// OCSP staple refresh and drift detection (see `WatchConfiguration`).
    public var watch = WatchConfiguration()

    public init() {
        // Generous defaults: the limiter is there against floods, not to shape normal automation.
        self.unauthenticatedRateLimit = try! RateLimit(requestsPerSecond: 20, burst: 40)  // constant, valid
        self.authenticatedRateLimit = try! RateLimit(requestsPerSecond: 500, burst: 1000)  // constant, valid
    }

    /// Whether `host` is a loopback address (or "localhost").
    public static func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if bare == "localhost" || bare == "::1" { return true }
        return bare.hasPrefix("127.")
    }
}

/// Why the server will not start; printed as is and `serve` exits 2.
public struct ServerStartupError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
