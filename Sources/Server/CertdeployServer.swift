import CertdeployAPI
import Core
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import ServerSecurity
import ServiceLifecycle
import Store
import UnixSignals

/// `certdeploy serve`: the HTTP API, the deployment workers and the key-file reloader, run as one service group
/// that shuts down gracefully on SIGTERM/SIGINT (the HTTP server stops accepting, running deployments finish).
public final class CertdeployServer: Sendable {
    /// The certdeploy release this server reports.
    public static let version = certdeployVersion

    public let store: any Store
    public let worker: DeploymentWorker
    let environment: APIEnvironment
    let keys: KeySource
    let configuration: ServerConfiguration
    let logger: Logger
    let responder: RouterResponder<APIRequestContext>
    /// Every route the router registers, as (method, path pattern) — what the public-routes test walks.
    public let routes: [(method: String, path: String)]
    private let runningGroup = NIOLockedValueBox<ServiceGroup?>(nil)
    /// Staple refresh and drift detection (tests drive their passes with their own clock).
    public var watch: TargetWatch { environment.watch }

    /// Opens the store (migrations applied), the secret vault and the API keys, and builds the router. Throws
    /// `ServerStartupError` for anything the operator must fix, naming it.
    public static func make(
        configuration: ServerConfiguration, registry: ConnectorRegistry, processEnvironment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger = Logger(label: "certdeploy"), openAPIDocument: @escaping @Sendable () -> String
    ) async throws -> CertdeployServer {
        try checkListenAddress(configuration)
        let keys = try loadKeys(processEnvironment, logger: logger)
        let store: any Store
        do {
            if let url = configuration.databaseURL {
                store = try await PostgresStore.open(url: url, logger: logger)
            } else {
                store = try await SQLiteStore.open(dataDirectory: configuration.dataDirectory, logger: logger)
            }
        } catch {
            throw ServerStartupError("cannot open the store: \(error)")
        }
        do {
            let vault = try await SecretVault.open(store: store, passphrase: try SecretVault.passphrase(environment: processEnvironment))
            if vault.box == nil {
                logger.warning("no \(SecretBox.passphraseVariable): certificates and secret target fields cannot be stored until the server is started with one")
            }
            let codec = TargetCodec(registry: registry, vault: vault)
            let metrics = ServerMetrics()
            let events = DeploymentEvents()
            let rolloutWakeups = ChangeNotifier<Int>()
            let worker = DeploymentWorker(store: store, codec: codec, configuration: configuration, events: events, metrics: metrics, logger: logger,
                                          rolloutWakeups: rolloutWakeups)
            let rollouts = RolloutDriver(store: store, events: events, metrics: metrics, wakeups: rolloutWakeups, pollInterval: configuration.pollInterval,
                                         driverID: worker.leaseOwner, logger: logger, wakeWorkers: { [weak worker] in worker?.wake() })
            let watch = TargetWatch(store: store, codec: codec, worker: worker, metrics: metrics, configuration: configuration.watch, logger: logger)
            let environment = APIEnvironment(
                store: store, registry: registry, codec: codec, events: events, worker: worker, rollouts: rollouts, metrics: metrics, configuration: configuration,
                logger: logger, openAPIDocument: openAPIDocument, watch: watch)
            let limiter = RateLimiter(unauthenticatedLimit: configuration.unauthenticatedRateLimit, authenticatedLimit: configuration.authenticatedRateLimit)
            let router = buildRouter(environment: environment, keys: keys, limiter: limiter)
            return CertdeployServer(
                store: store, worker: worker, environment: environment, keys: keys, configuration: configuration, logger: logger, router: router)
        } catch {
            try? await store.close()
            throw error
        }
    }

    private init(store: any Store, worker: DeploymentWorker, environment: APIEnvironment, keys: KeySource, configuration: ServerConfiguration,
                 logger: Logger, router: Router<APIRequestContext>) {
        self.responder = router.buildResponder()
        self.routes = router.routes.map { ($0.method.rawValue, $0.path.description) }
        self.store = store
        self.worker = worker
        self.environment = environment
        self.keys = keys
        self.configuration = configuration
        self.logger = logger
    }

    /// The router with every route and middleware, in order: problems (outermost), metrics, auth + rate limit (+ refusal audit).
    static func buildRouter(environment env: APIEnvironment, keys: KeySource, limiter: RateLimiter) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: MetricsMiddleware(metrics: env.metrics))
        router.add(middleware: AuthMiddleware(keys: keys, limiter: limiter, audit: RefusalAudit(store: env.store), metricsToken: env.configuration.metricsToken))
        ServiceRoutes.add(to: router, environment: env)
        ConnectorRoutes.add(to: router, environment: env)
        CertificateRoutes.add(to: router, environment: env)
        TargetRoutes.add(to: router, environment: env)
        DeploymentRoutes.add(to: router, environment: env)
        RolloutRoutes.add(to: router, environment: env)
        WindowRoutes.add(to: router, environment: env)
        WatchRoutes.add(to: router, environment: env)
        AuditRoutes.add(to: router, environment: env)
        return router
    }

    /// Runs until SIGTERM/SIGINT (or until the task is cancelled). `onListening` gets the bound port.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }, gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let server: HTTPServerBuilder
        if let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
                let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                server = try .tls(.http1(), tlsConfiguration: tls)
            } catch {
                throw ServerStartupError("--tls-cert \(certificate) / --tls-key \(key): \(error)")
            }
        } else {
            server = .http1()
        }
        let scheme = configuration.tlsCertificatePath == nil ? "http" : "https"
        let logger = self.logger
        let host = configuration.host
        let watchSummary = configuration.watch.summary
        let application = Application(
            responder: responder, server: server,
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: "certdeploy/\(Self.version)"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("certdeploy \(Self.version) listening on \(scheme)://\(host):\(port)")
                logger.info("\(watchSummary)")
                await onListening(port)
            },
            logger: logger)
        // A graceful shutdown stops services in reverse order: the background services and the workers first (no new
        // claims; running deployments finish while the API still answers their event streams), the HTTP server last.
        var services: [any Service] = [application, worker, environment.rollouts]
        if configuration.watch.enabled {
            services += [StapleRefreshService(watch: environment.watch), DriftDetectionService(watch: environment.watch)] as [any Service]
        }
        if gracefulShutdownSignals.isEmpty {
            // In-process (tests): signals are the host process's business.
        } else if case .file(let reloader) = keys {
            services.append(KeyFileReloadService(reloader: reloader, path: await reloader.path, logger: logger))
        } else {
            services.append(KeyFileReloadService(reloader: nil, path: nil, logger: logger))
        }
        let group = ServiceGroup(
            configuration: .init(services: services.map { .init(service: $0) }, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger))
        runningGroup.withLockedValue { $0 = group }
        do {
            try await group.run()
        } catch {
            try? await store.close()
            throw error
        }
        try? await store.close()
    }

    /// Starts a graceful shutdown, as SIGTERM does: the HTTP server stops, running deployments finish, `run()` returns.
    public func shutdown() async {
        await runningGroup.withLockedValue { $0 }?.triggerGracefulShutdown()
    }

    // MARK: Start-up checks

    static func checkListenAddress(_ configuration: ServerConfiguration) throws {
        if (configuration.tlsCertificatePath == nil) != (configuration.tlsKeyPath == nil) {
            throw ServerStartupError("give both --tls-cert and --tls-key, or neither")
        }
        if configuration.tlsCertificatePath == nil, !ServerConfiguration.isLoopback(configuration.host), !configuration.insecureHTTP {
            throw ServerStartupError(
                "refusing to serve plain HTTP on \(configuration.host): API keys would cross the network in clear text. Serve HTTPS with --tls-cert and --tls-key, listen on 127.0.0.1 behind a TLS proxy, or pass --insecure-http to accept the risk")
        }
    }

    /// The keys from `CERTDEPLOY_API_KEYS_FILE` or `CERTDEPLOY_API_KEYS` (both set is refused as ambiguous; an empty
    /// variable counts as unset). Without keys the server does not start.
    static func loadKeys(_ environment: [String: String], logger: Logger) throws -> KeySource {
        let environment = environment.filter { !$0.value.isEmpty }
        do {
            guard let keyring = try APIKeyring.load(environment: environment) else {
                throw ServerStartupError(
                    "no API keys: set \(APIKeyring.environmentVariable)=name:key[:admin],… or \(APIKeyring.fileEnvironmentVariable)=/path/to/keys (keys of 32 characters or more)")
            }
            keyring.logRotationWindows(to: logger)
            if let path = environment[APIKeyring.fileEnvironmentVariable] {
                return .file(KeyringReloader(path: path, initial: keyring, logger: logger))
            }
            return .fixed(keyring)
        } catch let error as APIKeyringError {
            throw ServerStartupError("\(error)")
        }
    }
}

/// Re-reads the API key file on SIGHUP; a file that does not parse leaves the previous keys in force. With keys from
/// the environment there is nothing to re-read: SIGHUP is still caught (so it never kills the server) and logged.
struct KeyFileReloadService: Service {
    let reloader: KeyringReloader?
    let path: String?
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            guard let reloader, let path else {
                logger.notice(
                    "SIGHUP ignored: the API keys come from \(APIKeyring.environmentVariable); use \(APIKeyring.fileEnvironmentVariable) to rotate keys without a restart")
                continue
            }
            logger.info("SIGHUP: reloading the API keys from \(path)")
            await reloader.reload()
        }
    }
}
