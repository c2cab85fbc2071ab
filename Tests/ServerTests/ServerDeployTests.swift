import CertdeployAPI
import Core
import Foundation
import NIOHTTP1
import Server
import ServerTestSupport
import Store
import TestSupport
import XCTest

/// Deployments through the API against real nginx over real sshd: queued as jobs, run by the workers, streamed
/// live over SSE, verified by the served leaf. On SQLite (this class) and PostgreSQL (the subclass).
class ServerDeployTests: XCTestCase {
    func databaseURL() throws -> String? { nil }

    func startServer(configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        let server = try await TestServer.start(registry: try testRegistry(), databaseURL: try databaseURL(), configure: configure)
        addTeardownBlock { await server.stop() }
        return server
    }

    func testDeployThroughTheAPIStreamsStepsAndChangesTheServedLeaf() async throws {
        let site = try NginxSite()
        let server = try await startServer()
        let leaf = try site.ca.issueLeaf()
        try await server.upload(site.upload(leaf, name: "example"))
        try await server.createTarget(site.target(name: "web-1", labels: ["role": "web"], certificate: "example"))

        // Test first: a dry run that writes nothing.
        let before = try Data(contentsOf: URL(fileURLWithPath: site.certificatePath))
        let report = try await server.request(.POST, "/api/v1/targets/web-1/test", as: .deployer).decode(TargetTestReport.self)
        XCTAssertTrue(report.ok, "\(report.checks)")
        XCTAssertEqual(report.checks.map(\.name), ["config", "plan", "connect", "host_key", "auth", "paths", "validate"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: site.certificatePath)), before)

        // The stapling config the connector would emit for the bound certificate.
        let stapling = try await server.request(.GET, "/api/v1/targets/web-1/stapling-config").decode(StaplingConfigView.self)
        XCTAssertEqual(stapling.certificateVersion, 1)
        XCTAssertFalse(stapling.snippets.isEmpty)

        // Deploy by label selector (a non-admin key may deploy), follow the events.
        let accepted = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", selector: "role=web"), as: .deployer)
        XCTAssertEqual(accepted.status, 202, accepted.text)
        let deployments = try accepted.decode(ListResponse<DeploymentView>.self).items
        XCTAssertEqual(deployments.map(\.targetName), ["web-1"])
        let id = try XCTUnwrap(deployments.first?.id)
        let events = try await server.events("/api/v1/deployments/\(id.uuidString.lowercased())/events", as: .deployer)
        XCTAssertEqual(events.last?.event, DeploymentEventName.end)
        let final = try JSONDecoder.api.decode(DeploymentView.self, from: Data(try XCTUnwrap(events.last?.data).utf8))
        XCTAssertEqual(final.status, "succeeded", "\(final.failure.map(String.init(describing:)) ?? "") \(final.steps)")
        let streamedSteps = events.filter { $0.event == DeploymentEventName.step }
            .compactMap { try? JSONDecoder.api.decode(StepRecord.self, from: Data($0.data.utf8)) }
        let finishedNames = streamedSteps.filter { $0.outcome != .running }.map(\.name)
        XCTAssertEqual(finishedNames, final.steps.map(\.name), "every step is streamed as it ends")
        XCTAssertTrue(finishedNames.contains(.verify))
        let served = try await site.served(expecting: leaf.sha256Hex)
        XCTAssertEqual(served, leaf.sha256Hex)
        XCTAssertFalse(events.map(\.data).joined().contains("PRIVATE KEY"))

        // The same certificate again: unchanged. The target shows its last deployment.
        let again = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", targets: ["web-1"]))
        let againID = try XCTUnwrap(try again.decode(ListResponse<DeploymentView>.self).items.first?.id)
        await assertEqual(try await server.waitForDeployment(againID).status, "unchanged")
        let target = try await server.request(.GET, "/api/v1/targets/web-1").decode(TargetView.self)
        XCTAssertEqual(target.lastDeployment?.status, "unchanged")

        let listed = try await server.request(.GET, "/api/v1/deployments?target=web-1&status=succeeded").decode(ListResponse<DeploymentView>.self)
        XCTAssertEqual(listed.items.map(\.id), [id])
        let metrics = try await server.request(.GET, "/metrics").text
        XCTAssertTrue(metrics.contains(#"certdeploy_deployments_total{connector="nginx",outcome="succeeded"} 1"#), metrics)
        let audit = try await server.request(.GET, "/api/v1/audit?action=deployment.complete").decode(ListResponse<AuditEventView>.self)
        XCTAssertEqual(audit.items.count, 2)
    }

    func testAFailedValidateRollsBackAndIsFinal() async throws {
        let site = try NginxSite()
        let server = try await startServer()
        let leaf = try site.ca.issueLeaf()
        try await server.upload(site.upload(leaf, name: "example"))
        let failing: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("echo 'nginx: [emerg] broken' >&2; exit 1")])
        try await server.createTarget(site.target(name: "web-1", config: site.config(["validateCommand": failing])))
        let accepted = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", targets: ["web-1"]))
        let id = try XCTUnwrap(try accepted.decode(ListResponse<DeploymentView>.self).items.first?.id)
        let final = try await server.waitForDeployment(id)
        XCTAssertEqual(final.status, "rolled_back")
        XCTAssertEqual(final.failure?.step, .validate)
        XCTAssertEqual(final.attempts, 1, "a validate failure is never retried")
        let served = try await site.served(expecting: site.oldLeaf.sha256Hex)
        XCTAssertEqual(served, site.oldLeaf.sha256Hex)
        let metrics = try await server.request(.GET, "/metrics").text
        XCTAssertTrue(metrics.contains(#"certdeploy_rollbacks_total{connector="nginx",outcome="restored"} 1"#), metrics)
    }

    func testConnectionErrorsAreRetriedWithBackoffThenFinal() async throws {
        let site = try NginxSite()
        let server = try await startServer { configuration in
            configuration.maxConnectAttempts = 2
            configuration.retryBackoff = .seconds(1)
        }
        try await server.upload(site.upload(try site.ca.issueLeaf(), name: "example"))
        let closedPort = try FreePort.allocate()
        try await server.createTarget(site.target(name: "web-1", ssh: site.ssh(port: Int(closedPort))))
        let accepted = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", targets: ["web-1"]))
        let id = try XCTUnwrap(try accepted.decode(ListResponse<DeploymentView>.self).items.first?.id)
        let final = try await server.waitForDeployment(id, timeout: .seconds(60))
        XCTAssertEqual(final.status, "failed")
        XCTAssertEqual(final.failure?.step, .connect)
        XCTAssertEqual(final.attempts, 2)
        let released = try await server.request(.GET, "/api/v1/audit?action=deployment.release").decode(ListResponse<AuditEventView>.self)
        XCTAssertEqual(released.items.count, 1)
    }

    /// SIGTERM's path: a graceful shutdown lets the running deployment finish; it is never left half-done or `running`.
    func testGracefulShutdownFinishesTheRunningDeployment() async throws {
        let site = try NginxSite()
        let url = try databaseURL()
        let server = try await TestServer.start(registry: try testRegistry(), databaseURL: url)
        let leaf = try site.ca.issueLeaf()
        try await server.upload(site.upload(leaf, name: "example"))
        let slowReload: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("sleep 2; exec \(site.nginx.reloadCommand.joined(separator: " "))")])
        try await server.createTarget(site.target(name: "web-1", config: site.config(["reloadCommand": slowReload])))
        let accepted = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", targets: ["web-1"]))
        let id = try XCTUnwrap(try accepted.decode(ListResponse<DeploymentView>.self).items.first?.id)
        // Wait until the reload step is under way, then shut down.
        let deadline = ContinuousClock.now + .seconds(60)
        while try await !server.request(.GET, "/api/v1/deployments/\(id.uuidString)").decode(DeploymentView.self).steps.contains(where: { $0.name == .reload }) {
            guard ContinuousClock.now < deadline else { return XCTFail("the deployment never reached reload") }
            try await Task.sleep(for: .milliseconds(50))
        }
        await server.stop()
        // The store is closed with the server: reopen it to read what was recorded.
        let reopened: any Store = try await {
            if let url { return try await PostgresStore.open(url: url) }
            return try await SQLiteStore.open(dataDirectory: server.directory.file("data"))
        }()
        let recorded = try await reopened.listDeployments(DeploymentFilter(), limit: 10, cursor: nil).items
        try await reopened.close()
        let record = try XCTUnwrap(recorded.first { $0.id == id }, "\(url ?? "sqlite"): \(recorded.map(\.id)) lacks \(id)")
        XCTAssertEqual(record.status, .succeeded, "\(String(describing: record.statusNote)) \(record.stepsJSON)")
        let served = try await site.served(expecting: leaf.sha256Hex)
        XCTAssertEqual(served, leaf.sha256Hex)
    }

    func testCancelAQueuedDeployment() async throws {
        let site = try NginxSite()
        // No workers claim anything while the queue is paused by a zero-slot worker.
        let server = try await startServer { $0.workerConcurrency = 0 }
        try await server.upload(site.upload(try site.ca.issueLeaf(), name: "example"))
        try await server.createTarget(site.target(name: "web-1"))
        let accepted = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", targets: ["web-1"]))
        let id = try XCTUnwrap(try accepted.decode(ListResponse<DeploymentView>.self).items.first?.id).uuidString.lowercased()
        let cancelled = try await server.request(.POST, "/api/v1/deployments/\(id)/cancel", as: .deployer)
        XCTAssertEqual(cancelled.status, 200, cancelled.text)
        XCTAssertEqual(try cancelled.decode(DeploymentView.self).status, "cancelled")
        let again = try await server.request(.POST, "/api/v1/deployments/\(id)/cancel")
        XCTAssertEqual(again.status, 409)
        let events = try await server.events("/api/v1/deployments/\(id)/events")
        XCTAssertEqual(events.map(\.event), [DeploymentEventName.end])
    }
}

final class PostgresServerDeployTests: ServerDeployTests {
    override func databaseURL() throws -> String? { try SharedPostgres.freshDatabaseURL() }

    /// Two replicas on one PostgreSQL share the queue: every deployment runs exactly once.
    func testTwoReplicasShareTheQueueWithoutDoubleDeploys() async throws {
        let site = try NginxSite()
        let url = try SharedPostgres.freshDatabaseURL()
        let registry = try testRegistry()
        let first = try await TestServer.start(registry: registry, databaseURL: url) { $0.workerID = "replica-a"; $0.workerConcurrency = 4 }
        addTeardownBlock { await first.stop() }
        let second = try await TestServer.start(registry: registry, databaseURL: url, environment: ["CERTDEPLOY_API_KEYS": "admin:\(first.adminKey):admin"]) {
            $0.workerID = "replica-b"
            $0.workerConcurrency = 4
        }
        addTeardownBlock { await second.stop() }
        try await first.upload(site.upload(try site.ca.issueLeaf(), name: "example"))
        // Twelve targets writing to their own directories (dry runs: connect, plan and compare on the real sshd).
        for index in 0..<12 {
            try await first.createTarget(site.target(name: "web-\(index)", labels: ["fleet": "a"]))
        }
        let accepted = try await second.send(
            .POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", selector: "fleet=a", options: .init(dryRun: true)),
            as: .key(first.adminKey))
        XCTAssertEqual(accepted.status, 202, accepted.text)
        let ids = try accepted.decode(ListResponse<DeploymentView>.self).items.map(\.id)
        XCTAssertEqual(ids.count, 12)
        var owners: [String] = []
        for id in ids {
            let final = try await first.waitForDeployment(id)
            XCTAssertTrue(["succeeded", "unchanged"].contains(final.status), "\(final.status) \(String(describing: final.failure))")
            XCTAssertEqual(final.attempts, 1)
        }
        let completions = try await first.request(.GET, "/api/v1/audit?action=deployment.complete&limit=500").decode(ListResponse<AuditEventView>.self)
        XCTAssertEqual(completions.items.count, 12, "each deployment completed exactly once")
        // The actor is the lease owner: "<worker id>/<boot id>".
        owners = completions.items.map { $0.actor.split(separator: "/").first.map(String.init) ?? $0.actor }
        XCTAssertEqual(Set(owners).isSubset(of: ["replica-a", "replica-b"]), true, "\(owners)")
        XCTAssertTrue(completions.items.allSatisfy { $0.actor.split(separator: "/").count == 2 }, "\(completions.items.map(\.actor))")
    }
}
