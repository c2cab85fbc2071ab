import CertdeployAPI
import Core
import Foundation
import K8sConnector
import KubernetesTestSupport
import ServerTestSupport
import TestSupport
import XCTest

/// A Kubernetes target through the server, as an operator registers one: `POST /targets/{id}/test` reaches the API
/// and reads the Secret the plan names (writing nothing), and a deployment through the job queue writes the Secret.
final class K8sServerTests: XCTestCase {
    func testTargetTestAndDeployThroughTheServer() async throws {
        let fixture = try await K8sFixture()
        addTeardownBlock { await fixture.stop() }
        let server = try await TestServer.start(registry: try ConnectorRegistry([K8sConnector.self]))
        addTeardownBlock { await server.stop() }
        let kubeconfig = try fixture.directory.write(
            "kubeconfig", fixture.server.kubeconfig(user: .init(name: "deployer", token: K8sFixture.token), namespace: "web"), mode: 0o600)

        let leaf = try fixture.leaf()
        let upload = try await server.send(
            .POST, "/api/v1/certificates",
            json: CertificateUpload(name: "site", certificatePEM: leaf.certificatePEM, chainPEM: fixture.ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM))
        XCTAssertEqual(upload.status, 201, upload.text)
        let target = TargetInput(
            name: "shop", connector: "k8s", labels: ["cluster": "fake"], certificate: "site",
            kubernetes: .object(["kubeconfig": .string(kubeconfig), "context": .string("fake")]), config: K8sFixture.config())
        let created = try await server.send(.POST, "/api/v1/targets", json: target)
        XCTAssertEqual(created.status, 201, created.text)
        // The wrong transport section is refused by pointer.
        var wrong = target
        wrong.name = "shop-2"
        wrong.kubernetes = nil
        wrong.ssh = .object(["host": .string("h"), "user": .string("u")])
        let refused = try await server.send(.POST, "/api/v1/targets", json: wrong)
        XCTAssertEqual(refused.status, 422, refused.text)
        XCTAssertEqual(try refused.problem().errors?.first?.pointer, "/ssh")

        // Test: the API answers and the Secret can be read; nothing is written.
        let report = try await server.request(.POST, "/api/v1/targets/shop/test", as: .deployer).decode(TargetTestReport.self)
        XCTAssertTrue(report.ok, "\(report.checks)")
        XCTAssertEqual(report.checks.map(\.name), ["config", "plan", "api", "secret"])
        XCTAssertTrue(report.checks.last?.detail.contains("does not exist yet") ?? false, "\(report.checks)")
        XCTAssertNil(fixture.storedSecret())

        // Deploy through the queue: the Secret holds the leaf and chain; no token in the record.
        let accepted = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "site", selector: "cluster=fake"))
        XCTAssertEqual(accepted.status, 202, accepted.text)
        let id = try XCTUnwrap(try accepted.decode(ListResponse<DeploymentView>.self).items.first?.id)
        let final = try await server.waitForDeployment(id)
        XCTAssertEqual(final.status, "succeeded", "\(String(describing: final.failure)) \(final.steps)")
        let secret = try XCTUnwrap(fixture.storedSecret())
        XCTAssertEqual(secret.data["tls.crt"], Array((leaf.certificatePEM + fixture.ca.chainPEM).utf8))
        let record = try await server.request(.GET, "/api/v1/deployments/\(id.uuidString)").text
        XCTAssertFalse(record.contains(K8sFixture.token))
        XCTAssertFalse(record.contains("PRIVATE KEY"))
    }

    /// A staple refresh through the server writes only `tls.ocsp-staple` of the Secret (one write, the certificate and
    /// key untouched), driven with a simulated time past the staple's half-life.
    func testStapleRefreshRewritesOnlyTheStapleKey() async throws {
        try Services.require(["openssl"])
        let fixture = try await K8sFixture()
        addTeardownBlock { await fixture.stop() }
        let files = try fixture.ca.writeFiles(to: fixture.directory.file("ca"))
        let responder = try OCSPResponder.start(caFiles: files, validityMinutes: 10)
        defer { responder.stop() }
        let server = try await TestServer.start(registry: try ConnectorRegistry([K8sConnector.self])) { configuration in
            configuration.watch.enabled = false
            configuration.watch.refreshJitter = .zero
            configuration.watch.refreshFloor = .zero
        }
        addTeardownBlock { await server.stop() }
        let kubeconfig = try fixture.directory.write(
            "kubeconfig", fixture.server.kubeconfig(user: .init(name: "deployer", token: K8sFixture.token), namespace: "web"), mode: 0o600)
        var options = TestCertificateAuthority.LeafOptions()
        options.ocspURL = responder.url
        let leaf = try fixture.ca.issueLeaf(options)
        try TestCertificateAuthority.appendIndexEntry(path: files.index, leaf: leaf, revoked: false)
        let upload = try await server.send(
            .POST, "/api/v1/certificates",
            json: CertificateUpload(name: "site", certificatePEM: leaf.certificatePEM, chainPEM: fixture.ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM))
        XCTAssertEqual(upload.status, 201, upload.text)
        let created = try await server.send(.POST, "/api/v1/targets", json: TargetInput(
            name: "shop", connector: "k8s", certificate: "site",
            kubernetes: .object(["kubeconfig": .string(kubeconfig), "context": .string("fake")]), config: K8sFixture.config()))
        XCTAssertEqual(created.status, 201, created.text)
        let accepted = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "site", targets: ["shop"]))
        let id = try XCTUnwrap(try accepted.decode(ListResponse<DeploymentView>.self).items.first?.id)
        let deployed = try await server.waitForDeployment(id)
        XCTAssertEqual(deployed.status, "succeeded", "\(String(describing: deployed.failure))")
        let before = try XCTUnwrap(fixture.storedSecret())
        let firstStaple = try XCTUnwrap(before.data["tls.ocsp-staple"])
        let writesBefore = fixture.writes.count

        try await Task.sleep(for: .milliseconds(1100))  // a newer response has a later thisUpdate (one-second resolution)
        let report = await server.server.watch.refreshStaples(now: Date().addingTimeInterval(6 * 60))
        XCTAssertEqual(report.fetches, 1)
        let queued = try XCTUnwrap(report.queued.first, "a refresh is queued past the half-life")
        let refresh = try await server.waitForDeployment(queued)
        XCTAssertEqual(refresh.status, "succeeded", "\(String(describing: refresh.failure)) \(refresh.steps)")
        XCTAssertEqual(refresh.actor, "staple-refresh")
        let after = try XCTUnwrap(fixture.storedSecret())
        XCTAssertNotEqual(after.data["tls.ocsp-staple"], firstStaple, "a new staple")
        XCTAssertEqual(after.data["tls.crt"], before.data["tls.crt"])
        XCTAssertEqual(after.data["tls.key"], before.data["tls.key"])
        XCTAssertEqual(fixture.writes.count - writesBefore, 1, "one write: \(fixture.writes.suffix(2).map(\.method))")
        let compare = try XCTUnwrap(refresh.steps.first { $0.name == .compare }?.detail)
        XCTAssertTrue(compare.contains("tls.ocsp-staple") && !compare.contains("tls.crt"), compare)
    }
}
