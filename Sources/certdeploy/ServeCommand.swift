import ArgumentParser
import Core
import Foundation
import Logging
import Server
import ServerSecurity

/// `certdeploy serve`: the HTTP API and the deployment workers.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the certdeploy server: the HTTP API and the deployment workers.",
        discussion: """
        API keys: CERTDEPLOY_API_KEYS=name:key[:admin],… or CERTDEPLOY_API_KEYS_FILE=path (re-read on SIGHUP). \
        Secrets at rest: CERTDEPLOY_SECRET_KEY=passphrase or CERTDEPLOY_SECRET_KEY_FILE=path. \
        SIGTERM/SIGINT stop gracefully: no new work is claimed and running deployments finish.
        """
    )

    @Option(help: "Address to listen on. Plain HTTP is refused on a non-loopback address without --insecure-http.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port).")
    var port = 8080

    @Option(help: "Directory for the SQLite database (used when --database-url is not given).")
    var dataDir = "./data"

    @Option(help: "PostgreSQL URL (postgres://user:password@host:port/db?sslmode=disable|require|verify-full&sslrootcert=…); default: SQLite in --data-dir. Also CERTDEPLOY_DATABASE_URL.")
    var databaseURL: String?

    @Option(help: "Serve HTTPS with this certificate chain (PEM).")
    var tlsCert: String?

    @Option(help: "The private key (PEM) for --tls-cert.")
    var tlsKey: String?

    @Flag(help: "Allow plain HTTP on a non-loopback address (API keys then cross the network unencrypted).")
    var insecureHTTP = false

    @Option(help: "Deployments this server runs at once.")
    var workers = 8

    @Option(help: "Seconds a claimed deployment stays leased without a heartbeat; another replica takes over a dead worker's deployments after this.")
    var leaseSeconds = 60

    @Option(help: "This replica's name in leases, stable across restarts, so a restart takes back its own interrupted deployments at once (default: <host name>:<port>; unique per replica).")
    var workerId: String?

    @Option(help: "Largest request body, in bytes.")
    var maxBodyBytes = 1 << 20

    @Option(help: "Requests per second per source address for unauthenticated callers (burst twice that).")
    var rateLimit: Double = 20

    @Option(help: "Requests per second per API-key name (burst twice that).")
    var authenticatedRateLimit: Double = 500

    @Flag(help: "Do not refresh OCSP staples or check targets for drift in the background (POST …/verify still works).")
    var noWatch = false

    @Option(help: "Refresh a staple at this fraction of its validity (thisUpdate → nextUpdate), 0.05…0.95.")
    var stapleRefreshFraction = 0.5

    @Option(help: "Flag a staple staple_expiring when it is this many hours from its nextUpdate with no fresh one fetched.")
    var stapleExpiringHours = 24

    @Option(help: "Seconds between drift checks of every target (a TLS handshake each), 30 or more.")
    var driftIntervalSeconds = 900

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard workers >= 1, workers <= 256 else { throw ValidationError("--workers must be 1…256") }
        guard leaseSeconds >= 5 else { throw ValidationError("--lease-seconds must be 5 or more") }
        if let workerId, workerId.isEmpty || workerId.contains("/") || workerId.count > 200 {
            throw ValidationError("--worker-id must be 1…200 characters without '/'")
        }
        guard maxBodyBytes >= 1024 else { throw ValidationError("--max-body-bytes must be 1024 or more") }
        guard (0.05...0.95).contains(stapleRefreshFraction) else { throw ValidationError("--staple-refresh-fraction must be 0.05…0.95 (0.5 is a staple's half-life)") }
        guard stapleExpiringHours >= 1 else { throw ValidationError("--staple-expiring-hours must be 1 or more") }
        guard driftIntervalSeconds >= 30 else { throw ValidationError("--drift-interval-seconds must be 30 or more") }
    }

    func run() async throws {
        var logger = Logger(label: "certdeploy")
        logger.logLevel = logLevel
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.dataDirectory = dataDir
        configuration.databaseURL = databaseURL ?? ProcessInfo.processInfo.environment["CERTDEPLOY_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.tlsCertificatePath = tlsCert
        configuration.tlsKeyPath = tlsKey
        configuration.insecureHTTP = insecureHTTP
        configuration.workerConcurrency = workers
        configuration.leaseDuration = .seconds(leaseSeconds)
        // With port 0 the port changes on every start, so the pid stands in (no take-over across restarts then).
        let hostName = ProcessInfo.processInfo.hostName
        configuration.workerID = workerId ?? (port == 0 ? "\(hostName)-\(ProcessInfo.processInfo.processIdentifier)" : "\(hostName):\(port)")
        configuration.maxBodyBytes = maxBodyBytes
        configuration.watch.enabled = !noWatch
        configuration.watch.refreshFraction = stapleRefreshFraction
        configuration.watch.stapleExpiringMargin = .seconds(stapleExpiringHours * 3600)
        configuration.watch.driftInterval = .seconds(driftIntervalSeconds)
        configuration.metricsToken = ProcessInfo.processInfo.environment["CERTDEPLOY_METRICS_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        do {
            configuration.unauthenticatedRateLimit = try RateLimit(requestsPerSecond: rateLimit, burst: max(1, Int(rateLimit * 2)))
            configuration.authenticatedRateLimit = try RateLimit(requestsPerSecond: authenticatedRateLimit, burst: max(1, Int(authenticatedRateLimit * 2)))
        } catch {
            throw ValidationError("\(error)")
        }
        do {
            let registry = try BuiltinConnectors.registry()
            let server = try await CertdeployServer.make(
                configuration: configuration, registry: registry, logger: logger,
                openAPIDocument: { OpenAPIDocument.yaml(registry: registry, version: CertdeployServer.version) })
            try await server.run()
        } catch let error as ServerStartupError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
