import Core
import Foundation
import K8sConnector
import KubernetesTestSupport
import TestSupport
import XCTest

/// The connector's config checks and plan, and the staple and CA keys end to end.
final class K8sConnectorTests: XCTestCase {
    private func issues(_ config: JSONValue) -> [String] {
        do {
            _ = try ConnectorRegistry([K8sConnector.self]).connector(id: "k8s")!.configure(config)
            return []
        } catch let error as ConfigError {
            return error.issues.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    func testConfigIsValidatedWithJSONPointers() {
        XCTAssertEqual(issues(K8sFixture.config()), [])
        XCTAssertEqual(issues(.object(["secretName": .string("x")])), ["/namespace: is required"])
        XCTAssertTrue(issues(K8sFixture.config(["namespace": .string("Web")])).first?.hasPrefix("/namespace: \"Web\" is not a DNS-1123 label") ?? false)
        XCTAssertTrue(issues(K8sFixture.config(["namespace": .string(String(repeating: "a", count: 64))])).first?.contains("at most 63") ?? false)
        XCTAssertTrue(issues(K8sFixture.config(["secretName": .string("site_tls")])).first?.hasPrefix("/secretName: \"site_tls\" is not a DNS-1123 subdomain") ?? false)
        XCTAssertEqual(issues(K8sFixture.config(["secretName": .string("site-tls.example")])), [], "dots are allowed in a subdomain")
        let rollouts: JSONValue = .array([
            .object(["kind": .string("Deployment"), "name": .string("web")]),
            .object(["kind": .string("Deployment"), "name": .string("web")]),
            .object(["kind": .string("StatefulSet"), "name": .string("-db")]),
            .object(["kind": .string("Deployment")]),
        ])
        let found = issues(K8sFixture.config(["rollouts": rollouts]))
        XCTAssertTrue(found.contains("/rollouts/3/name: is required"), "\(found)")
        let semantic = issues(K8sFixture.config(["rollouts": .array(Array(rollouts.arrayPrefix(3)))]))
        XCTAssertTrue(semantic.contains("/rollouts/1: Deployment web is listed twice"), "\(semantic)")
        XCTAssertTrue(semantic.contains { $0.hasPrefix("/rollouts/2/name: \"-db\" is not a DNS-1123 subdomain") }, "\(semantic)")
        XCTAssertEqual(issues(K8sFixture.config(["verify": .object(["enabled": .bool(true)])])),
                       ["/verify/host: is required when verify is enabled: a Kubernetes target has no SSH host to default to"])
        XCTAssertEqual(issues(K8sFixture.config(["rolloutTimeoutSeconds": .number(0)])), ["/rolloutTimeoutSeconds: must be at least 1"])
        XCTAssertEqual(K8sConnector.descriptor.configSchema["properties"]?["rollouts"]?["items"]?["required"], .array([.string("kind"), .string("name")]))
    }

    func testIncludeCAWritesTheRootToCACrtOnly() async throws {
        let fixture = try await K8sFixture()
        let leaf = try fixture.leaf()
        let result = try await fixture.deploy(leaf, config: K8sFixture.config(["includeCA": .bool(true)]), includeRoot: true)
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        let secret = try XCTUnwrap(fixture.storedSecret())
        XCTAssertEqual(secret.data["ca.crt"], Array(fixture.ca.root.certificatePEM.utf8))
        XCTAssertEqual(secret.data["tls.crt"], Array((leaf.certificatePEM + fixture.ca.chainPEM).utf8))

        let noRoot = try await fixture.deploy(try fixture.leaf(), config: K8sFixture.config(["includeCA": .bool(true)]))
        XCTAssertEqual(noRoot.outcome, .failed)
        XCTAssertEqual(noRoot.failure?.step, .preflight)
        XCTAssertTrue(noRoot.failure?.message.contains("includeCA is on but the bundle holds no root certificate") ?? false, describe(noRoot))
        await fixture.stop()
    }

    /// With an OCSP responder, the checked response goes into tls.ocsp-staple; a redeploy keeps a staple that is
    /// still fresh instead of rewriting the Secret for every new response.
    func testStapleIsWrittenToTheSecretAndAFreshOneIsKept() async throws {
        try Services.require(["openssl"])
        let fixture = try await K8sFixture()
        let files = try fixture.ca.writeFiles(to: fixture.directory.file("ca"))
        let responder = try OCSPResponder.start(caFiles: files)
        defer { responder.stop() }
        var options = TestCertificateAuthority.LeafOptions()
        options.ocspURL = responder.url
        let leaf = try fixture.ca.issueLeaf(options)
        try TestCertificateAuthority.appendIndexEntry(path: files.index, leaf: leaf, revoked: false)

        let result = try await fixture.deploy(leaf, options: DeployOptions())
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        XCTAssertEqual(result.stapling?.mode, .stapleFile)
        let staple = try XCTUnwrap(result.staple)
        XCTAssertEqual(fixture.storedSecret()?.data["tls.ocsp-staple"], staple.der)

        let again = try await fixture.deploy(leaf, options: DeployOptions())
        XCTAssertEqual(again.outcome, .unchanged, describe(again))
        XCTAssertTrue(step(again, .compare)?.detail?.contains("still fresh and is kept") ?? false, describe(again))
        XCTAssertEqual(fixture.storedSecret()?.data["tls.ocsp-staple"], staple.der)

        // A revoked leaf never reaches the cluster.
        let revoked = try fixture.ca.issueLeaf(options)
        try TestCertificateAuthority.appendIndexEntry(path: files.index, leaf: revoked, revoked: true)
        let refused = try await fixture.deploy(revoked, options: DeployOptions())
        XCTAssertEqual(refused.failure?.step, .staple, describe(refused))
        XCTAssertEqual(fixture.storedSecret()?.data["tls.ocsp-staple"], staple.der)
        await fixture.stop()
    }
}

private extension JSONValue {
    func arrayPrefix(_ count: Int) -> [JSONValue] {
        if case .array(let items) = self { Array(items.prefix(count)) } else { [] }
    }
}
