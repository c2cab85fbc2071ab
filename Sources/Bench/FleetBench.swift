import Core
import Foundation
import NginxConnector
import SSHTransport
import TestSupport

// Fleet deploy benchmark (`make bench`): N nginx-connector targets on one local sshd, C at a time,
// against the floor of one plain OpenSSH `ssh` command per target doing the same file work.

struct FleetOptions {
    var targets = 200
    var concurrency = 16
    var rounds = 1

    init(arguments: ArraySlice<String>) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--targets", "-n": targets = Int(iterator.next() ?? "") ?? targets
            case "--concurrency", "-c": concurrency = Int(iterator.next() ?? "") ?? concurrency
            case "--rounds": rounds = Int(iterator.next() ?? "") ?? rounds
            default:
                benchUsage()
            }
        }
    }
}

func runFleetBench(_ options: FleetOptions) async throws {
    let benchUser = "cdbench"
    try SystemUsers.ensureUser(benchUser, shell: "/bin/sh")
    let work = try TemporaryDirectory(prefix: "certdeploy-bench")
    let sshd = try SSHServer.start()
    defer { sshd.stop() }
    let userKey = try SSHServer.generateUserKey(type: "ed25519", in: work)
    try sshd.authorize(userKey)
    let ca = try TestCertificateAuthority()
    let leaf = try ca.issueLeaf()
    let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)

    // Target directories owned by the bench user.
    let directories: [String] = try (0..<options.targets).map { index in
        let path = try work.makeDirectory("t\(index)", mode: 0o755)
        try ProcessRunner.runChecked("/bin/chown", [benchUser, path])
        return path
    }

    let registry = try ConnectorRegistry([NginxConnector.self])
    let nginx = registry.connector(id: "nginx")!
    let ssh = SSHTarget(host: sshd.host, port: Int(sshd.port), user: benchUser, privateKey: userKey.privateKeyPEM, hostKeyFingerprint: sshd.hostKeyFingerprint)
    let connectors: [ConfiguredConnector] = try directories.map { directory in
        let config: JSONValue = .object([
            "certificatePath": .string(directory + "/cert.pem"),
            "keyPath": .string(directory + "/key.pem"),
            "validateCommand": .array([.string("true")]),
            "reloadCommand": .array([.string("true")]),
            "verify": .object(["enabled": .bool(false)]),
        ])
        return try nginx.configure(config)
    }

    print("certdeploy fleet benchmark: N=\(options.targets) targets, C=\(options.concurrency), \(ProcessInfo.processInfo.activeProcessorCount) cores")

    // certdeploy: full pipeline per target (compare, backup, temp write + fsync, rename, validate, reload).
    func runCertdeploy(round: Int) async -> (rate: Double, latencies: [Double], connections: Int, outcomes: [DeploymentOutcome: Int]) {
        let engine = DeployEngine(locks: TargetLocks())
        let started = ContinuousClock.now
        var latencies: [Double] = []
        var connections = 0
        var outcomes: [DeploymentOutcome: Int] = [:]
        await withTaskGroup(of: (Double, DeploymentResult).self) { group in
            var next = 0
            func add(_ index: Int) {
                group.addTask {
                    let begin = ContinuousClock.now
                    let result = await engine.deploy(
                        DeployRequest(targetID: directories[index], bundle: bundle, connector: connectors[index],
                                      context: PlanContext(targetID: directories[index], transportHost: sshd.host), options: DeployOptions(force: round > 0)),
                        connect: { try await SSHConnector().connect(ssh) })
                    return (seconds(ContinuousClock.now - begin), result)
                }
            }
            while next < min(options.concurrency, directories.count) { add(next); next += 1 }
            for await (latency, result) in group {
                latencies.append(latency)
                connections += result.connectionsOpened
                outcomes[result.outcome, default: 0] += 1
                if result.outcome != .succeeded, outcomes[result.outcome] == 1 {
                    print("  first \(result.outcome.rawValue): \(result.failure.map(String.init(describing:)) ?? "")")
                }
                if next < directories.count { add(next); next += 1 }
            }
        }
        let elapsed = seconds(ContinuousClock.now - started)
        return (Double(directories.count) / elapsed, latencies.sorted(), connections, outcomes)
    }

    func acceptedConnections() -> Int { sshd.log().components(separatedBy: "Accepted publickey").count - 1 }
    let floor = try await measureSSHFloor(sshd: sshd, userKey: userKey, user: benchUser, directories: directories,
                                          payload: Data(bundle.fullChainPEM.utf8), concurrency: options.concurrency)
    print(String(format: "floor (ssh + cat/mv):   %7.1f deploys/s   p50 %6.1f ms   p99 %6.1f ms",
                 floor.rate, percentile(floor.latencies, 0.5) * 1000, percentile(floor.latencies, 0.99) * 1000))

    var bestRate = 0.0
    for round in 0..<max(1, options.rounds) {
        let acceptedBefore = acceptedConnections()
        let run = await runCertdeploy(round: round)
        try await Task.sleep(for: .milliseconds(200))  // sshd's log lags the last logins slightly
        let acceptedNow = acceptedConnections()
        bestRate = max(bestRate, run.rate)
        let outcomeText = run.outcomes.map { "\($0.key.rawValue)=\($0.value)" }.sorted().joined(separator: " ")
        print(String(format: "certdeploy (round %d):   %7.1f deploys/s   p50 %6.1f ms   p99 %6.1f ms   %@",
                     round + 1, run.rate, percentile(run.latencies, 0.5) * 1000, percentile(run.latencies, 0.99) * 1000, outcomeText))
        print(String(format: "  SSH connections per deploy: %.2f (engine) / %.2f (sshd log)",
                     Double(run.connections) / Double(directories.count),
                     Double(acceptedNow - acceptedBefore) / Double(directories.count)))
    }
    print(String(format: "ratio to floor: %.2fx    peak RSS: %.1f MB", bestRate / floor.rate, peakRSSMegabytes()))
    work.remove()
}
