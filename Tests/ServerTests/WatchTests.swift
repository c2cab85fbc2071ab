import CertdeployAPI
import ConnectorTestSupport
import Core
import Foundation
import NIOHTTP1
import Server
import ServerTestSupport
import TestSupport
import XCTest

/// Staple refresh and drift detection through a real server, against real daemons over real sshd, with a real OCSP
/// responder whose responses are valid for one minute. Passes either run on the real clock (the background
/// services) or are driven by the test with a simulated time (`server.watch.refreshStaples(now:)`).
final class WatchTests: XCTestCase {
    private func startServer(_ configure: @escaping (inout WatchConfiguration) -> Void) async throws -> TestServer {
        let server = try await TestServer.start(registry: try watchRegistry()) { configuration in
            configure(&configuration.watch)
        }
        addTeardownBlock { await server.stop() }
        return server
    }

    /// Issue 7's "done when" on the real clock for HAProxy, left alone for several refresh cycles while a client handshakes
    /// all the time and checks the staple as a browser would. A Must-Staple certificate on HAProxy in reload and in
    /// hot-update mode, from a responder whose answers last six minutes (HAProxy stops stapling a response five minutes
    /// before its nextUpdate, so it is refreshed at a tenth of its validity, every ~40 s): never a handshake without a
    /// valid staple, one OCSP request per cycle for both targets, the hot-update one never reloaded. nginx, which fetches
    /// its own staples, serves the same certificate and is neither refreshed nor reloaded.
    func testHAProxyStaplesStayFreshAcrossRefreshCyclesWithOneResponderRequestPerCycle() async throws {
        let harness = try DeployHarness(prefix: "certdeploy-watch-lb", ocspValidityMinutes: 6)
        let reloading = try WatchedHAProxy()
        let hot = try WatchedHAProxy()
        let nginxDirectory = try harness.directory.makeDirectory("nginx", mode: 0o755)
        let old = try TestCertificateAuthority.selfSigned(commonName: "old.example.test", dnsNames: ["example.test"])
        _ = try harness.directory.write("nginx/example.pem", old.certificatePEM)
        _ = try harness.directory.write("nginx/example.key", old.privateKeyPKCS8PEM, mode: 0o600)
        _ = try harness.directory.write("nginx/certdeploy.conf", "ssl_certificate \(nginxDirectory)/example.pem;\nssl_certificate_key \(nginxDirectory)/example.key;\n")
        let nginx = try NginxServer.start(certificatePath: nginxDirectory + "/example.pem", keyPath: nginxDirectory + "/example.key",
                                          includeSnippetPath: nginxDirectory + "/certdeploy.conf", in: harness.directory)
        defer { nginx.stop() }
        let server = try await startServer { watch in
            watch.refreshFraction = 0.1
            watch.refreshCheckInterval = .seconds(2)
            watch.refreshJitter = .seconds(2)
            watch.refreshFloor = .seconds(5)
            watch.retryBackoff = .seconds(2)
            watch.stapleExpiringMargin = .seconds(15)
            watch.driftInterval = .seconds(3600)
        }
        let leaf = try harness.issueLeaf(mustStaple: true)
        try await server.upload(harness.upload(leaf, name: "site"))
        try await server.createTarget(reloading.target("haproxy-reload", harness: harness, certificate: "site"))
        try await server.createTarget(hot.target("haproxy-hot", harness: harness, certificate: "site", hotUpdate: true))
        try await server.createTarget(TargetInput(name: "nginx", connector: "nginx", certificate: "site", ssh: harness.sshJSON, config: .object([
            "certificatePath": .string(nginxDirectory + "/example.pem"), "keyPath": .string(nginxDirectory + "/example.key"),
            "snippetPath": .string(nginxDirectory + "/certdeploy.conf"), "validateCommand": .array(nginx.validateCommand.map(JSONValue.string)),
            "reloadCommand": .array(nginx.reloadCommand.map(JSONValue.string)), "verify": harness.verifyJSON(port: nginx.port),
        ])))
        for deployment in try await server.deployAndWait("site", to: ["haproxy-reload", "haproxy-hot", "nginx"]) {
            XCTAssertEqual(deployment.status, "succeeded", "\(deployment.targetName ?? ""): \(String(describing: deployment.failure))")
        }
        let requestsAfterDeploy = harness.ocsp.requestCount
        let nginxWorkers = nginx.settledWorkerPIDs()
        let hotWorkers = hot.haproxy.workerPIDs()

        let loop = HandshakeLoop(port: hot.haproxy.port, leaf: leaf.derBytes, issuer: harness.ca.intermediate.derBytes)
        // Past the stapling window of the first staples (HAProxy: nextUpdate - 5 min = 60 s after thisUpdate).
        try await Task.sleep(for: .seconds(135))
        let observed = await loop.stop()
        XCTAssertEqual(observed.problems, [], "serving with a valid staple never stops")
        XCTAssertGreaterThan(observed.handshakes, 200)

        var refreshCounts: [String: Int] = [:]
        for name in ["haproxy-reload", "haproxy-hot", "nginx"] {
            let refreshes = try await server.deployments(of: name).filter { $0.actor == TargetWatch.refreshActor }
            XCTAssertTrue(refreshes.allSatisfy { ["succeeded", "unchanged", "queued", "running"].contains($0.status) },
                          "\(name): \(refreshes.map { "\($0.status) \(String(describing: $0.failure))" })")
            refreshCounts[name] = refreshes.filter { $0.status == "succeeded" }.count
        }
        XCTAssertEqual(refreshCounts["nginx"], 0, "nginx fetches its own staples: no refresh, no reload")
        for name in ["haproxy-reload", "haproxy-hot"] {
            XCTAssertGreaterThanOrEqual(refreshCounts[name] ?? 0, 3, "\(name): \(refreshCounts)")
        }
        let requests = harness.ocsp.requestCount - requestsAfterDeploy
        let cycles = refreshCounts["haproxy-hot"] ?? 0
        XCTAssertLessThanOrEqual(requests, cycles + 1, "one OCSP request per cycle for the two targets sharing the certificate")
        XCTAssertGreaterThanOrEqual(requests, cycles)
        XCTAssertEqual(nginx.workerPIDs(), nginxWorkers, "nginx is never reloaded by a staple refresh")
        XCTAssertEqual(hot.haproxy.workerPIDs(), hotWorkers, "HAProxy in hot-update mode gets its staples through the runtime API")

        // What a refresh deployment did: the staple file only, with the response checked as at deploy time.
        let refreshes = try await server.deployments(of: "haproxy-reload")
        let refresh = try XCTUnwrap(refreshes.first { $0.actor == TargetWatch.refreshActor && $0.status == "succeeded" })
        let compare = try XCTUnwrap(refresh.steps.first { $0.name == .compare })
        XCTAssertTrue(compare.detail?.contains("1 of 3 paths differ: \(reloading.pemPath).ocsp") ?? false, "\(String(describing: compare.detail))")
        XCTAssertTrue(refresh.steps.first { $0.name == .staple }?.detail?.contains("supplied") ?? false)
        // In hot-update mode the staple alone goes through the runtime API (no ssl cert transaction, no reload).
        let hotDeployments = try await server.deployments(of: "haproxy-hot")
        let hotRefresh = try XCTUnwrap(hotDeployments.first { $0.actor == TargetWatch.refreshActor && $0.status == "succeeded" })
        let activation = try XCTUnwrap(hotRefresh.steps.first { $0.name == .reload }?.detail)
        XCTAssertTrue(activation.contains("set ssl ocsp-response"), activation)
        XCTAssertFalse(activation.contains("commit ssl cert"), activation)
        let served = try await harness.served(port: reloading.haproxy.port, expecting: leaf.sha256Hex, requireStaple: true)
        XCTAssertNil(try harness.checkStaple(served, for: leaf).problem(at: Date(), skew: 0))

        // Status and metrics: both HAProxy targets good, with nextUpdate ahead; nginx has no staple state.
        for name in ["haproxy-reload", "haproxy-hot"] {
            let view = try await server.target(name)
            let status = try XCTUnwrap(view.status, name)
            XCTAssertEqual(status.staple, "good", "\(name): \(String(describing: status.stapleDetail))")
            XCTAssertGreaterThan(try XCTUnwrap(status.stapleNextUpdate), Date())
        }
        let nginxView = try await server.target("nginx")
        XCTAssertNil(nginxView.status?.staple)
        let metrics = try await server.request(.GET, "/metrics").text
        XCTAssertTrue(metrics.contains("certdeploy_staple_next_update_seconds{target="), metrics)
        XCTAssertTrue(metrics.contains("certdeploy_certificate_expiry_seconds{target="), metrics)
        XCTAssertTrue(metrics.contains(#"certdeploy_staple_refreshes_total{outcome="refreshed"}"#), metrics)
        XCTAssertFalse(metrics.contains("haproxy-hot"), "target names are no metric labels")
    }

    /// The same for Envoy with `MUST_STAPLE`, from a responder whose answers last one minute (refreshed at half-life):
    /// across several refresh cycles — each staple expiring a minute after it was made — a handshake loop sees no failure.
    func testEnvoyMustStapleKeepsServingAcrossRefreshCycles() async throws {
        let harness = try DeployHarness(prefix: "certdeploy-watch-envoy", ocspValidityMinutes: 1)
        let envoy = try WatchedEnvoy(harness: harness, policy: "MUST_STAPLE")
        let server = try await startServer { watch in
            watch.refreshCheckInterval = .seconds(2)
            watch.refreshJitter = .seconds(2)
            watch.refreshFloor = .seconds(5)
            watch.retryBackoff = .seconds(2)
            watch.stapleExpiringMargin = .seconds(15)
            watch.driftInterval = .seconds(3600)
        }
        let leaf = try harness.issueLeaf(mustStaple: true)
        try await server.upload(harness.upload(leaf, name: "site"))
        try await server.createTarget(envoy.target("envoy", harness: harness, certificate: "site", policy: "MUST_STAPLE"))
        let deployed = try await server.deployAndWait("site", to: ["envoy"]).map(\.status)
        XCTAssertEqual(deployed, ["succeeded"])
        let loop = HandshakeLoop(port: envoy.envoy.port, leaf: leaf.derBytes, issuer: harness.ca.intermediate.derBytes)
        // Until three refreshes have landed and the first two staples are past their nextUpdate (one minute each).
        let started = ContinuousClock.now
        var refreshes: [DeploymentView] = []
        while ContinuousClock.now - started < .seconds(150) {
            try await Task.sleep(for: .seconds(2))
            refreshes = try await server.deployments(of: "envoy").filter { $0.actor == TargetWatch.refreshActor }
            if refreshes.filter({ $0.status == "succeeded" }).count >= 3, ContinuousClock.now - started > .seconds(95) { break }
        }
        let observed = await loop.stop()
        XCTAssertEqual(observed.problems.prefix(5), [], "serving never stops (\(observed.problems.count) problems)")
        XCTAssertGreaterThan(observed.handshakes, 100)
        XCTAssertGreaterThanOrEqual(refreshes.filter { $0.status == "succeeded" }.count, 3,
                                    "\(refreshes.map { "\($0.status) \(String(describing: $0.failure))" })")
        XCTAssertTrue(refreshes.allSatisfy { ["succeeded", "unchanged", "queued", "running"].contains($0.status) },
                      "\(refreshes.map { "\($0.status) \(String(describing: $0.failure))" })")
        let envoyView = try await server.target("envoy")
        let status = try XCTUnwrap(envoyView.status)
        XCTAssertEqual(status.staple, "good", "\(String(describing: status.stapleDetail))")
    }

    /// Responder down on a simulated clock: the old staple stays; `staple_expiring` inside the margin, `staple_expired`
    /// after nextUpdate, each warned about once (audit + counter); once the responder answers again the target gets
    /// a fresh staple and is `good` again.
    func testResponderDownKeepsTheOldStapleThenExpiringThenExpiredThenRecovers() async throws {
        let harness = try DeployHarness(prefix: "certdeploy-watch-down", ocspValidityMinutes: 6)
        let haproxy = try WatchedHAProxy()
        let server = try await startServer { watch in
            watch.enabled = false
            watch.refreshJitter = .zero
            watch.refreshFloor = .zero
            watch.retryBackoff = .seconds(1)
            watch.retryBackoffLimit = .seconds(2)
            watch.stapleExpiringMargin = .seconds(15)
        }
        let leaf = try harness.issueLeaf()
        try await server.upload(harness.upload(leaf, name: "site"))
        try await server.createTarget(haproxy.target("lb", harness: harness, certificate: "site"))
        let observed4 = try await server.deployAndWait("site", to: ["lb"]).map(\.status)
        XCTAssertEqual(observed4, ["succeeded"])

        // Right after the deploy: nothing due, state good.
        let first = await server.server.watch.refreshStaples(now: Date())
        XCTAssertEqual(first.fetches, 0)
        let observed5 = try await server.target("lb").status
        let deployed = try XCTUnwrap(observed5)
        XCTAssertEqual(deployed.staple, "good")
        let thisUpdate = try XCTUnwrap(deployed.stapleThisUpdate)
        let nextUpdate = try XCTUnwrap(deployed.stapleNextUpdate)
        let stapleBefore = try XCTUnwrap(haproxy.staple)

        harness.ocsp.setMode(.down)
        // Half-life passed: a fetch, which fails; the staple is still valid, so still good (with the failure said).
        let halfway = await server.server.watch.refreshStaples(now: thisUpdate.addingTimeInterval(181))
        XCTAssertEqual(halfway.fetches, 1)
        XCTAssertEqual(halfway.queued, [])
        let observed6 = try await server.target("lb").status
        let failing = try XCTUnwrap(observed6)
        XCTAssertEqual(failing.staple, "good")
        XCTAssertTrue(failing.stapleDetail?.contains("last refresh failed") ?? false, "\(String(describing: failing.stapleDetail))")

        // Inside the margin: staple_expiring, once.
        await server.server.watch.refreshStaples(now: nextUpdate.addingTimeInterval(-10))
        await server.server.watch.refreshStaples(now: nextUpdate.addingTimeInterval(-8))
        let observed7 = try await server.target("lb").status?.staple
        XCTAssertEqual(observed7, "staple_expiring")
        // Past nextUpdate: staple_expired.
        await server.server.watch.refreshStaples(now: nextUpdate.addingTimeInterval(1))
        let observed8 = try await server.target("lb").status
        let expired = try XCTUnwrap(observed8)
        XCTAssertEqual(expired.staple, "staple_expired")
        XCTAssertEqual(haproxy.staple, stapleBefore, "the old staple stays in place")
        let observed9 = try await server.deployments(of: "lb").filter { $0.actor == TargetWatch.refreshActor }.count
        XCTAssertEqual(observed9, 0)
        let observed10 = try await server.audit("staple.expiring").count
        XCTAssertEqual(observed10, 1)
        let expiredEvents = try await server.audit("staple.expired")
        XCTAssertEqual(expiredEvents.count, 1)
        XCTAssertTrue(expiredEvents.first?.detail?.contains("Must-Staple") == false)
        let metrics = try await server.request(.GET, "/metrics").text
        XCTAssertTrue(metrics.contains(#"certdeploy_staple_warnings_total{state="staple_expiring"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"certdeploy_staple_warnings_total{state="staple_expired"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"certdeploy_staple_refreshes_total{outcome="failed"}"#), metrics)

        // The responder is back: the next pass (past the backoff) fetches, queues a refresh, and the target recovers.
        harness.ocsp.setMode(.normal)
        let wait = thisUpdate.addingTimeInterval(6).timeIntervalSinceNow
        if wait > 0 { try await Task.sleep(for: .seconds(wait)) }
        let recovery = await server.server.watch.refreshStaples(now: nextUpdate.addingTimeInterval(4))
        XCTAssertEqual(recovery.fetches, 1)
        let queued = try XCTUnwrap(recovery.queued.first)
        let observed11 = try await server.waitForDeployment(queued).status
        XCTAssertEqual(observed11, "succeeded")
        XCTAssertNotEqual(haproxy.staple, stapleBefore)
        await server.server.watch.refreshStaples(now: Date())
        let observed12 = try await server.target("lb").status?.staple
        XCTAssertEqual(observed12, "good")
        let observed13 = try await server.audit("staple.recovered").count
        XCTAssertEqual(observed13, 1)
    }

    /// Revoked at the CA: one responder request flags every target serving the certificate, loudly.
    func testRevocationIsFlaggedOnEveryTargetServingTheCertificate() async throws {
        let harness = try DeployHarness(prefix: "certdeploy-watch-revoked", ocspValidityMinutes: 6)
        let first = try WatchedHAProxy()
        let second = try WatchedHAProxy()
        let server = try await startServer { watch in
            watch.enabled = false
            watch.refreshJitter = .zero
            watch.refreshFloor = .zero
        }
        let leaf = try harness.issueLeaf()
        try await server.upload(harness.upload(leaf, name: "site"))
        try await server.createTarget(first.target("lb-1", harness: harness, certificate: "site"))
        try await server.createTarget(second.target("lb-2", harness: harness, certificate: "site", hotUpdate: true))
        let observed14 = try await server.deployAndWait("site", to: ["lb-1", "lb-2"]).map(\.status)
        XCTAssertEqual(observed14, ["succeeded", "succeeded"])
        await server.server.watch.refreshStaples(now: Date())
        let observed15 = try await server.target("lb-1").status?.stapleThisUpdate
        let thisUpdate = try XCTUnwrap(observed15)

        try harness.revoke(leaf)
        let requests = harness.ocsp.requestCount
        let report = await server.server.watch.refreshStaples(now: thisUpdate.addingTimeInterval(185))
        XCTAssertEqual(report.fetches, 1)
        XCTAssertEqual(harness.ocsp.requestCount - requests, 1, "one request for both targets")
        XCTAssertEqual(report.queued, [], "a revoked answer is never deployed")
        for name in ["lb-1", "lb-2"] {
            let observed16 = try await server.target(name).status
            let status = try XCTUnwrap(observed16)
            XCTAssertEqual(status.staple, "revoked", name)
            XCTAssertTrue(status.stapleDetail?.contains("revoked") ?? false)
        }
        let observed17 = try await server.audit("certificate.revoked").count
        XCTAssertEqual(observed17, 2)
        let metrics = try await server.request(.GET, "/metrics").text
        XCTAssertTrue(metrics.contains(#"certdeploy_staple_refreshes_total{outcome="revoked"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"certdeploy_staple_warnings_total{state="revoked"} 2"#), metrics)
    }

    /// A file replaced by hand: `POST …/verify` says drifted (status, list, metrics, audit); with auto-remediation on,
    /// the next check queues a forced redeploy that restores the deployed leaf.
    func testHandReplacedFileIsDriftedAndRemediationRestoresIt() async throws {
        let site = try NginxSite()
        let server = try await startServer { watch in watch.enabled = false }
        let leaf = try site.ca.issueLeaf()
        try await server.upload(site.upload(leaf, name: "example"))
        try await server.createTarget(site.target(name: "web-1", certificate: "example"))

        let before = try await server.request(.POST, "/api/v1/targets/web-1/verify", as: .deployer).decode(TargetStatusView.self)
        XCTAssertEqual(before.sync, "not_deployed")
        let observed18 = try await server.deployAndWait("example", to: ["web-1"]).map(\.status)
        XCTAssertEqual(observed18, ["succeeded"])
        let synced = try await server.request(.POST, "/api/v1/targets/web-1/verify", as: .deployer).decode(TargetStatusView.self)
        XCTAssertEqual(synced.sync, "in_sync", "\(String(describing: synced.detail))")
        XCTAssertEqual(synced.servedSHA256, leaf.sha256Hex)
        XCTAssertEqual(synced.expectedSHA256, leaf.sha256Hex)

        // Someone copies the old certificate back and reloads.
        try Data(site.oldLeaf.certificatePEM.utf8).write(to: URL(fileURLWithPath: site.certificatePath))
        try Data(site.oldLeaf.privateKeyPKCS8PEM.utf8).write(to: URL(fileURLWithPath: site.keyPath))
        XCTAssertTrue(try site.nginx.reload().succeeded)
        _ = try await site.served(expecting: site.oldLeaf.sha256Hex)
        let drifted = try await server.request(.POST, "/api/v1/targets/web-1/verify", as: .deployer).decode(TargetStatusView.self)
        XCTAssertEqual(drifted.sync, "drifted")
        XCTAssertEqual(drifted.servedSHA256, site.oldLeaf.sha256Hex)
        let listed = try await server.request(.GET, "/api/v1/targets").decode(ListResponse<TargetView>.self).items
        XCTAssertEqual(listed.first?.status?.sync, "drifted")
        XCTAssertEqual(listed.first?.autoRemediate, false)
        let observed19 = try await server.request(.GET, "/metrics").text.contains("certdeploy_targets_drifted 1")
        XCTAssertTrue(observed19)
        let observed20 = try await server.audit("target.drift").map(\.outcome)
        XCTAssertEqual(observed20, ["drifted"])
        let observed21 = try await server.deployments(of: "web-1").count
        XCTAssertEqual(observed21, 1, "remediation is off by default")

        // Turn remediation on (PUT keeps everything else), check again: a forced redeploy puts the leaf back.
        var input = site.target(name: "web-1", certificate: "example")
        input.autoRemediate = true
        let updated = try await server.send(.PUT, "/api/v1/targets/web-1", json: input)
        XCTAssertEqual(updated.status, 200, updated.text)
        XCTAssertEqual(try updated.decode(TargetView.self).autoRemediate, true)
        // Inside a freeze the remediation waits (audited once), and nothing is deployed.
        let freeze = WindowRequest(name: "freeze", target: "web-1", freeze: .init(from: "2020-01-01", until: "2999-12-31"))
        await assertEqual(try await server.send(.POST, "/api/v1/windows", json: freeze).status, 201)
        for _ in 0..<2 { _ = try await server.request(.POST, "/api/v1/targets/web-1/verify", as: .deployer) }
        let deferred = try await server.audit("target.drift.remediate")
        XCTAssertEqual(deferred.map(\.outcome), ["deferred"])
        XCTAssertTrue(deferred.first?.detail?.contains("frozen by freeze until 3000-01-01T00:00:00Z") == true, deferred.first?.detail ?? "")
        let stillOne = try await server.deployments(of: "web-1").count
        XCTAssertEqual(stillOne, 1, "no remediation inside the freeze")
        await assertEqual(try await server.request(.DELETE, "/api/v1/windows/freeze").status, 204)
        _ = try await server.request(.POST, "/api/v1/targets/web-1/verify", as: .deployer)
        let observed22 = try await server.deployments(of: "web-1").first { $0.actor == TargetWatch.remediationActor }
        let remediation = try XCTUnwrap(observed22)
        XCTAssertEqual(remediation.options.force, true)
        let observed23 = try await server.waitForDeployment(remediation.id).status
        XCTAssertEqual(observed23, "succeeded")
        _ = try await site.served(expecting: leaf.sha256Hex)
        let restored = try await server.request(.POST, "/api/v1/targets/web-1/verify", as: .deployer).decode(TargetStatusView.self)
        XCTAssertEqual(restored.sync, "in_sync")
        let observed24 = try await server.request(.GET, "/metrics").text.contains("certdeploy_targets_drifted 0")
        XCTAssertTrue(observed24)
        let observed25 = try await server.audit("target.drift.remediate").map(\.outcome)
        XCTAssertEqual(observed25, ["queued", "deferred"])
        let observed26 = try await server.audit("target.drift.resolved").count
        XCTAssertEqual(observed26, 1)
    }
}

extension WatchTests {
    /// "Renewed but not live": a target bound to a certificate whose newest version it does not serve, longer than the
    /// policy's `behindAfter` after that version's upload, is `behind` (listed, counted, audited) until it serves it.
    func testARenewedCertificateThatIsNotLiveAfterItsGracePeriodIsBehind() async throws {
        let site = try NginxSite()
        let clock = WatchTestClock()
        let server = try await TestServer.start(registry: try watchRegistry()) { configuration in
            configuration.watch.enabled = false
            configuration.watch.now = { clock.now }
        }
        addTeardownBlock { await server.stop() }
        let first = try site.ca.issueLeaf()
        try await server.upload(site.upload(first, name: "example"))
        try await server.createTarget(site.target(name: "web-1", certificate: "example"))
        let deployed = try await server.deployAndWait("example", to: ["web-1"]).map(\.status)
        XCTAssertEqual(deployed, ["succeeded"])
        let renewed = try site.ca.issueLeaf()
        try await server.upload(site.upload(renewed, name: "example"))
        let policy = try await server.send(.PUT, "/api/v1/certificates/example/policy", json: CertificatePolicyRequest(
            autoRollout: false, behindAfter: RolloutDuration(seconds: 3600)))
        XCTAssertEqual(policy.status, 200, policy.text)
        // Just uploaded: not behind yet.
        let fresh = try await server.request(.POST, "/api/v1/targets/web-1/verify", as: .deployer).decode(TargetStatusView.self)
        XCTAssertEqual(fresh.sync, "in_sync", fresh.detail ?? "")
        // Two hours later it still serves v1: behind.
        clock.advance(by: 2 * 3600)
        let behind = try await server.request(.POST, "/api/v1/targets/web-1/verify", as: .deployer).decode(TargetStatusView.self)
        XCTAssertEqual(behind.sync, "behind")
        XCTAssertTrue(behind.detail?.contains("serves example v1, but example v2 was uploaded at") == true, behind.detail ?? "")
        XCTAssertTrue(behind.detail?.contains("more than 1h ago, and is not live on it") == true, behind.detail ?? "")
        let listed = try await server.request(.GET, "/api/v1/targets").decode(ListResponse<TargetView>.self).items
        XCTAssertEqual(listed.first?.status?.sync, "behind")
        let metrics = try await server.request(.GET, "/metrics").text
        XCTAssertTrue(metrics.contains("certdeploy_targets_behind 1"), metrics)
        let audited = try await server.audit("target.drift").map(\.outcome)
        XCTAssertEqual(audited, ["behind"])
        // Deploying the new version ends it.
        let caughtUp = try await server.deployAndWait("example", to: ["web-1"]).map(\.status)
        XCTAssertEqual(caughtUp, ["succeeded"])
        let synced = try await server.request(.POST, "/api/v1/targets/web-1/verify", as: .deployer).decode(TargetStatusView.self)
        XCTAssertEqual(synced.sync, "in_sync", synced.detail ?? "")
        let resolved = try await server.audit("target.drift.resolved").map(\.outcome)
        XCTAssertEqual(resolved, ["in_sync"])
        let after = try await server.request(.GET, "/metrics").text
        XCTAssertTrue(after.contains("certdeploy_targets_behind 0"), after)
    }
}

/// A clock a test moves by hand (for the watch's `now`).
final class WatchTestClock: @unchecked Sendable {
    // @unchecked: `offset` is only read and written under `lock`.
    private let lock = NSLock()
    private var offset: TimeInterval = 0
    var now: Date { lock.withLock { Date().addingTimeInterval(offset) } }
    func advance(by seconds: TimeInterval) { lock.withLock { offset += seconds } }
}

/// Handshakes with one endpoint all the time, asking for the staple and checking it as a browser would.
final class HandshakeLoop: Sendable {
    private let flag = StopFlag()
    private let task: Task<(handshakes: Int, problems: [String]), Never>

    init(port: UInt16, leaf: [UInt8], issuer: [UInt8]) {
        let flag = flag
        task = Task.detached {
            var handshakes = 0
            var problems: [String] = []
            while !flag.isSet {
                do {
                    let seen = try await OpenSSLTLSProber().probe(host: "127.0.0.1", port: Int(port), serverName: "example.test", requestStaple: true, timeout: .seconds(5))
                    handshakes += 1
                    if let der = seen.stapleDER {
                        let staple = try OCSPStaple.check(der: der, leafDER: leaf, issuerDER: issuer)
                        if let problem = staple.problem(at: Date(), skew: 0) { problems.append("\(Date()): \(problem)") }
                    } else {
                        problems.append("\(Date()): no staple")
                    }
                } catch {
                    problems.append("\(Date()): \(error)")
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return (handshakes, problems)
        }
    }

    func stop() async -> (handshakes: Int, problems: [String]) {
        flag.set()
        return await task.value
    }
}
