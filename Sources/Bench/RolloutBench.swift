import AsyncHTTPClient
import CertdeployAPI
import Core
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NginxConnector
import Server
import ServerSecurity
import TestSupport

// Rollout benchmark (`make bench`): a rollout of N targets through the HTTP API (default strategy: one canary, then
// waves of 25 % of the rest; validate and reload `true`, verify off) on a server in this process (SQLite, C deployment
// workers), against the one-`ssh`-per-target floor measured in the same run. The waves' barriers are included: a
// wave starts only when the one before has finished.

/// Takes the fleet benchmark's options: targets, workers (`--concurrency`), rounds.
func runRolloutBench(_ options: FleetOptions) async throws {
    let benchUser = "cdbench"
    try SystemUsers.ensureUser(benchUser, shell: "/bin/sh")
    let work = try TemporaryDirectory(prefix: "certdeploy-rollout-bench")
    defer { work.remove() }
    let sshd = try SSHServer.start()
    defer { sshd.stop() }
    let userKey = try SSHServer.generateUserKey(type: "ed25519", in: work)
    try sshd.authorize(userKey)
    let ca = try TestCertificateAuthority()
    let directories: [String] = try (0..<options.targets).map { index in
        let path = try work.makeDirectory("t\(index)", mode: 0o755)
        try ProcessRunner.runChecked("/bin/chown", [benchUser, path])
        return path
    }
    print("certdeploy rollout benchmark: N=\(options.targets) targets, C=\(options.concurrency) workers, "
          + "\(ProcessInfo.processInfo.activeProcessorCount) cores")
    let firstLeaf = try ca.issueLeaf()
    let floor = try await measureSSHFloor(sshd: sshd, userKey: userKey, user: benchUser, directories: directories,
                                          payload: Data((firstLeaf.certificatePEM + ca.chainPEM).utf8), concurrency: options.concurrency)
    print(String(format: "floor (ssh + cat/mv):   %7.1f deploys/s   p50 %6.1f ms   p99 %6.1f ms",
                 floor.rate, percentile(floor.latencies, 0.5) * 1000, percentile(floor.latencies, 0.99) * 1000))

    // The server, in this process: what the CPU figure counts is the server (the benchmark's own polling is a
    // handful of requests per second).
    let adminKey = (0..<40).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
    var configuration = ServerConfiguration()
    configuration.port = 0
    configuration.dataDirectory = work.file("data")
    configuration.workerConcurrency = options.concurrency
    configuration.authenticatedRateLimit = try RateLimit(requestsPerSecond: 1_000_000, burst: 1_000_000)
    configuration.watch.enabled = false
    var logger = Logger(label: "certdeploy.rollout-bench")
    logger.logLevel = .warning
    let registry = try ConnectorRegistry([NginxConnector.self])
    let server = try await CertdeployServer.make(
        configuration: configuration, registry: registry,
        processEnvironment: ["CERTDEPLOY_API_KEYS": "bench:\(adminKey):admin", "CERTDEPLOY_SECRET_KEY": "rollout benchmark passphrase, long enough"],
        logger: logger, openAPIDocument: { OpenAPIDocument.yaml(registry: registry, version: CertdeployServer.version) })
    let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let serverTask = Task {
        defer { portContinuation.finish() }
        try await server.run(onListening: { portContinuation.yield($0) }, gracefulShutdownSignals: [])
    }
    var portIterator = portStream.makeAsyncIterator()
    guard let port = await portIterator.next() else { throw HarnessError("the benchmark server did not start") }
    let api = BenchAPIClient(http: HTTPClient(eventLoopGroupProvider: .singleton), baseURL: "http://127.0.0.1:\(port)", key: adminKey)
    defer { Task { try? await api.http.shutdown() } }

    for index in directories.indices {
        let target = TargetInput(
            name: String(format: "t%04d", index), connector: "nginx", labels: ["bench": "rollout"], certificate: nil,
            ssh: .object(["host": .string(sshd.host), "port": .number(Double(sshd.port)), "user": .string(benchUser),
                          "privateKey": .string(userKey.privateKeyPEM), "hostKeyFingerprint": .string(sshd.hostKeyFingerprint)]),
            config: .object([
                "certificatePath": .string(directories[index] + "/cert.pem"), "keyPath": .string(directories[index] + "/key.pem"),
                "validateCommand": .array([.string("true")]), "reloadCommand": .array([.string("true")]),
                "verify": .object(["enabled": .bool(false)]),
            ]))
        _ = try api.decode(TargetView.self, try await api.send(.POST, "/api/v1/targets", body: json(target)), expecting: 201, "create target")
    }

    var bestRate = 0.0
    for round in 0..<max(1, options.rounds) {
        let leaf = round == 0 ? firstLeaf : try ca.issueLeaf()
        let upload = CertificateUpload(name: "bench", certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        _ = try api.decode(CertificateVersionView.self, try await api.send(.POST, "/api/v1/certificates", body: json(upload)), expecting: 201, "upload")
        let cpuBefore = cpuSeconds()
        let started = ContinuousClock.now
        let rollout = try api.decode(RolloutView.self, try await api.send(.POST, "/api/v1/rollouts",
                                                                          body: json(DeploymentRequest(certificate: "bench", selector: "bench=rollout"))),
                                     expecting: 202, "start the rollout")
        var view = rollout
        while !view.isFinished {
            try await Task.sleep(for: .milliseconds(100))
            view = try api.decode(RolloutView.self, try await api.send(.GET, "/api/v1/rollouts/\(rollout.id.lowercasedText)"), expecting: 200, "read the rollout")
        }
        let elapsed = seconds(ContinuousClock.now - started)
        let cpu = cpuSeconds() - cpuBefore
        let rate = Double(options.targets) / elapsed
        bestRate = max(bestRate, rate)
        let waveTimes = view.waves.compactMap { wave -> String? in
            guard let start = wave.startedAt, let end = wave.finishedAt else { return nil }
            return String(format: "%.2f", end.timeIntervalSince(start))
        }
        print(String(format: "rollout (round %d):      %7.1f deploys/s   %.2f s for %d targets in %d waves (%@ s per wave)   %@   %.2fx floor",
                     round + 1, rate, elapsed, options.targets, view.waves.count, waveTimes.joined(separator: " / "), view.state, rate / floor.rate))
        print(String(format: "  server CPU per child deployment: %.1f ms (user + system, whole process)", cpu / Double(options.targets) * 1000))
    }
    print(String(format: "rollout ratio to floor: %.2fx    peak RSS: %.1f MB", bestRate / floor.rate, peakRSSMegabytes()))
    await server.shutdown()
    _ = try? await serverTask.value
}

private func json(_ value: some Encodable) throws -> ByteBuffer { ByteBuffer(bytes: try JSONEncoder.api.encode(value)) }
