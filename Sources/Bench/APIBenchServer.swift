import Core
import Foundation
import Logging
import NginxConnector
import Server
import ServerSecurity

/// `certdeploy-bench api-server --data-dir D [--database-url U]`: the server the API benchmark measures, run as a
/// child process so its RSS is the server's alone. It is `certdeploy serve` with what the CLI does not offer: no
/// deployment workers (`workerConcurrency` 0, so the enqueued dry runs stay queued instead of trying to reach
/// 10,000 SSH hosts) and an authenticated rate limit out of the way. API keys and the secrets passphrase come from
/// the environment as for `serve`. Prints `listening <port>` on stdout once it accepts connections; stops on SIGTERM.
func runAPIBenchServer(arguments: ArraySlice<String>) async throws {
    var configuration = ServerConfiguration()
    configuration.port = 0
    configuration.workerConcurrency = 0
    configuration.authenticatedRateLimit = try RateLimit(requestsPerSecond: 1_000_000, burst: 1_000_000)
    configuration.maxBodyBytes = 16 << 20
    var iterator = arguments.makeIterator()
    while let argument = iterator.next() {
        switch argument {
        case "--data-dir": configuration.dataDirectory = iterator.next() ?? configuration.dataDirectory
        case "--database-url": configuration.databaseURL = iterator.next()
        default: benchUsage()
        }
    }
    // Logs go to stderr: stdout carries only the port line the parent waits for.
    LoggingSystem.bootstrap(StreamLogHandler.standardError)
    var logger = Logger(label: "certdeploy.bench-server")
    logger.logLevel = .warning
    let registry = try ConnectorRegistry([NginxConnector.self])
    let server = try await CertdeployServer.make(
        configuration: configuration, registry: registry, processEnvironment: ProcessInfo.processInfo.environment, logger: logger,
        openAPIDocument: { OpenAPIDocument.yaml(registry: registry, version: CertdeployServer.version) })
    try await server.run(onListening: { port in
        print("listening \(port)")
        fflush(nil)  // all streams; naming `stdout` is a non-Sendable global in Swift 6
    })
}
