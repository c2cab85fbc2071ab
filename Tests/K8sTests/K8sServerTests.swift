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
}
