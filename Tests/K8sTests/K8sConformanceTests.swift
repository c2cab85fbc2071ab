import ConnectorTestSupport
import Core
import Foundation
import K8sConnector
import KubernetesTestSupport
import TestSupport
import XCTest

/// The conformance suite every connector passes, with the fake API server as the live target and a fake
/// ingress (serving the Secret) as what must serve the new leaf.
final class K8sConformanceTests: XCTestCase {
    func testStaticConformance() throws {
        try ConnectorConformance.checkStatic(K8sConnector.self)
        // The Secret plan is as deterministic as a file plan.
        let ca = try TestCertificateAuthority()
        let leaf = try ca.issueLeaf()
        let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        let configured = try ConnectorRegistry([K8sConnector.self]).connector(id: "k8s")!.configure(K8sConnector.descriptor.sampleConfig)
        let context = PlanContext(targetID: "conformance", now: Date(timeIntervalSince1970: 1_800_000_000))
        let first = try configured.plan(for: bundle, context: context)
        XCTAssertEqual(first.secret, try configured.plan(for: bundle, context: context).secret)
        XCTAssertTrue(first.files.isEmpty)
        XCTAssertEqual(first.secret?.deploymentAnnotations, ["certdeploy.io/deployment-id": "conformance@20270115T080000Z"])
    }

    func testLiveConformance() async throws {
        let fixture = try await K8sFixture()
        let ingress = try await FakeIngress.start(serving: fixture.server, namespace: "web", secretName: "site-tls")
        let verify: JSONValue = .object(["enabled": .bool(true), "host": .string("127.0.0.1"), "port": .number(Double(ingress.port)),
                                         "timeoutSeconds": .number(5), "consecutiveMatches": .number(1)])
        let closed = try FreePort.allocate()
        let target = ConnectorConformance.LiveTarget(
            config: { overrides in
                var config: [String: JSONValue] = ["namespace": .string("web"), "secretName": .string("site-tls"), "verify": verify]
                config.merge(overrides) { $1 }
                return .object(config)
            },
            deploy: { config, leaf in try await fixture.deploy(leaf, config: config) },
            servedLeaf: { expected in
                var last = ""
                for _ in 0..<20 {
                    let probe = try await OpenSSLTLSProber().probe(host: "127.0.0.1", port: ingress.port, serverName: "example.test", requestStaple: false, timeout: .seconds(2))
                    last = probe.leafSHA256
                    if last == expected { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return last
            },
            issueLeaf: { try fixture.leaf() },
            failingValidate: nil,
            // A rollout of a Deployment that does not exist: the restart is refused (404) after the write.
            failingReload: ["rollouts": .array([.object(["kind": .string("Deployment"), "name": .string("missing")])])],
            failingVerify: ["verify": .object(["enabled": .bool(true), "host": .string("127.0.0.1"), "port": .number(Double(closed)), "timeoutSeconds": .number(1)])])
        try await ConnectorConformance.checkLive(target, id: "k8s")
        await ingress.stop()
        await fixture.stop()
    }
}
