import Core
import Foundation
import K8sConnector
import KubernetesClient
import KubernetesTestSupport
import TestSupport
import XCTest

/// The K8s connector end to end: the real engine and the real Kubernetes client against the in-process API
/// server, which answers as the API reference says a real one does.
final class K8sEndToEndTests: XCTestCase {
    /// The vendor matrix's "tested on" is the version the fake API server reports, read through the client.
    func testDescriptorTestedVersionIsTheFakeServersVersion() async throws {
        let fixture = try await K8sFixture()
        let connection = try await KubernetesConnection.connect(try fixture.kubeconfigAccess(), options: K8sFixture.options)
        let version = connection.serverVersion
        await connection.close()
        await fixture.stop()
        let tested = K8sConnector.descriptor.vendorVersions.filter { $0.status == .tested }
        XCTAssertEqual(tested.count, 1)
        XCTAssertEqual(tested.first?.testedVersion, version, "update the descriptor's testedVersion to what the tests run against")
        XCTAssertEqual(version, FakeKubernetesAPIServer.gitVersion)
    }

    func testDeployCreatesATLSSecretAndASecondDeployChangesNothing() async throws {
        let fixture = try await K8sFixture()
        let leaf = try fixture.leaf()
        let result = try await fixture.deploy(leaf, includeRoot: true)
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        XCTAssertTrue(step(result, .connect)?.detail?.contains("Kubernetes v1.31.0") ?? false, describe(result))
        XCTAssertTrue(step(result, .compare)?.detail?.contains("does not exist; it will be created") ?? false, describe(result))
        XCTAssertTrue(step(result, .verify)?.detail?.contains("read back") ?? false, describe(result))

        let secret = try XCTUnwrap(fixture.storedSecret())
        XCTAssertEqual(secret.type, "kubernetes.io/tls")
        XCTAssertEqual(secret.data["tls.crt"], Array((leaf.certificatePEM + fixture.ca.chainPEM).utf8), "leaf + chain")
        XCTAssertFalse(String(decoding: secret.data["tls.crt"] ?? [], as: UTF8.self).contains(fixture.ca.root.certificatePEM.split(separator: "\n")[1]),
                       "the root is never in tls.crt")
        XCTAssertEqual(secret.data["tls.key"].map { String(decoding: $0, as: UTF8.self) }, leaf.privateKeyPKCS8PEM)
        XCTAssertNil(secret.data["ca.crt"], "includeCA is off by default")
        XCTAssertNil(secret.data["tls.ocsp-staple"])
        XCTAssertEqual(secret.labels, ["app.kubernetes.io/managed-by": "certdeploy"])
        XCTAssertEqual(secret.annotations["certdeploy.io/certificate-sha256"], leaf.sha256Hex)
        XCTAssertEqual(secret.annotations["certdeploy.io/sans"], "example.test,www.example.test")
        XCTAssertEqual(secret.annotations["certdeploy.io/not-after"], ISO8601DateFormatter().string(from: leaf.certificate.notValidAfter))
        XCTAssertTrue(secret.annotations["certdeploy.io/deployment-id"]?.hasPrefix("k8s-1@") ?? false, "\(secret.annotations)")

        // Every request named certdeploy and its version.
        XCTAssertFalse(fixture.server.requests.isEmpty)
        for request in fixture.server.requests {
            XCTAssertEqual(request.userAgent?.hasPrefix("certdeploy/0.1.0-test ("), true, "\(request.method) \(request.path): \(String(describing: request.userAgent))")
            XCTAssertEqual(request.user, K8sFixture.serviceAccount)
        }
        XCTAssertEqual(fixture.writes.map(\.method), ["POST"])

        // Same certificate again: unchanged, and nothing is written.
        fixture.server.clearRequests()
        let again = try await fixture.deploy(leaf, includeRoot: true)
        XCTAssertEqual(again.outcome, .unchanged, describe(again))
        XCTAssertTrue(fixture.writes.isEmpty, "\(fixture.writes)")
        XCTAssertEqual(fixture.storedSecret()?.resourceVersion, secret.resourceVersion)
        await fixture.stop()
    }

    func testUpdateKeepsOtherControllersMetadataAndRemovesAStaleStaple() async throws {
        let fixture = try await K8sFixture()
        let old = try fixture.leaf()
        let owner: JSONValue = .array([.object(["apiVersion": .string("networking.k8s.io/v1"), "kind": .string("Ingress"), "name": .string("site"),
                                                "uid": .string("6f1c1c9e-0000-4000-8000-000000000001")])])
        fixture.server.putSecret(namespace: "web", name: "site-tls",
                                 data: ["tls.crt": Array(old.certificatePEM.utf8), "tls.key": Array(old.privateKeyPKCS8PEM.utf8), "tls.ocsp-staple": [0x30, 0x03, 0x0a, 0x01, 0x00]],
                                 labels: ["team": "web", "app.kubernetes.io/part-of": "shop"],
                                 annotations: ["other.example/owner": "ingress-team", "certdeploy.io/sans": "old.example.test"],
                                 extraMetadata: ["ownerReferences": owner, "finalizers": .array([.string("example.com/keep")])])
        let before = try XCTUnwrap(fixture.storedSecret())
        let leaf = try fixture.leaf()
        let result = try await fixture.deploy(leaf)
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        XCTAssertTrue(step(result, .compare)?.detail?.contains("data tls.crt") ?? false, describe(result))
        XCTAssertTrue(step(result, .compare)?.detail?.contains("data tls.ocsp-staple (to remove)") ?? false, describe(result))

        let after = try XCTUnwrap(fixture.storedSecret())
        XCTAssertEqual(after.data["tls.crt"], Array((leaf.certificatePEM + fixture.ca.chainPEM).utf8))
        XCTAssertNil(after.data["tls.ocsp-staple"], "a staple left from the old certificate is removed")
        XCTAssertEqual(after.labels, ["team": "web", "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/managed-by": "certdeploy"])
        XCTAssertEqual(after.annotations["other.example/owner"], "ingress-team")
        XCTAssertEqual(after.annotations["certdeploy.io/sans"], "example.test,www.example.test")
        XCTAssertEqual(after.object["metadata"]?["ownerReferences"], owner, "metadata certdeploy does not manage survives the replace")
        XCTAssertEqual(after.object["metadata"]?["finalizers"], .array([.string("example.com/keep")]))
        XCTAssertEqual(after.object["metadata"]?["uid"], before.object["metadata"]?["uid"])
        XCTAssertEqual(fixture.writes.map(\.method), ["PUT"])
        await fixture.stop()
    }

    func testConcurrentWriterOfTheDataIsNotClobbered() async throws {
        let fixture = try await K8sFixture()
        let old = try fixture.leaf()
        fixture.server.putSecret(namespace: "web", name: "site-tls", data: ["tls.crt": Array(old.certificatePEM.utf8), "tls.key": Array(old.privateKeyPKCS8PEM.utf8)])
        let theirs = try fixture.leaf(dnsNames: ["theirs.example.test"])
        // Between certdeploy's read and its write, another writer (cert-manager, a person) changes the data.
        fixture.server.beforeNext("PUT", pathSuffix: "/secrets/site-tls") { server in
            server.mutateSecret(namespace: "web", name: "site-tls") { $0.data["tls.crt"] = Array(theirs.certificatePEM.utf8) }
        }
        let result = try await fixture.deploy(try fixture.leaf())
        XCTAssertEqual(result.outcome, .failed, describe(result))
        XCTAssertEqual(result.failure?.step, .write)
        let message = result.failure?.message ?? ""
        XCTAssertTrue(message.contains("changed under certdeploy"), message)
        XCTAssertTrue(message.contains("data keys tls.crt"), message)
        XCTAssertTrue(message.contains("does not overwrite a concurrent writer's data"), message)
        XCTAssertEqual(fixture.storedSecret()?.data["tls.crt"], Array(theirs.certificatePEM.utf8), "their data is still there")
        XCTAssertEqual(fixture.server.requests.filter { $0.method == "PUT" }.map(\.status), [409], "one stale write, no second try")
        await fixture.stop()
    }

    func testStaleResourceVersionAfterAMetadataChangeIsRetried() async throws {
        let fixture = try await K8sFixture()
        let old = try fixture.leaf()
        fixture.server.putSecret(namespace: "web", name: "site-tls", data: ["tls.crt": Array(old.certificatePEM.utf8), "tls.key": Array(old.privateKeyPKCS8PEM.utf8)])
        // A controller only adds a label meanwhile: certdeploy re-reads, keeps it, and writes on the new version.
        fixture.server.beforeNext("PUT", pathSuffix: "/secrets/site-tls") { server in
            server.mutateSecret(namespace: "web", name: "site-tls") { $0.labels["reflector.example/synced"] = "true" }
        }
        let leaf = try fixture.leaf()
        let result = try await fixture.deploy(leaf)
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        XCTAssertTrue(step(result, .write)?.detail?.contains("409 Conflict") ?? false, describe(result))
        XCTAssertEqual(fixture.server.requests.filter { $0.method == "PUT" }.map(\.status), [409, 200])
        let secret = try XCTUnwrap(fixture.storedSecret())
        XCTAssertEqual(secret.labels["reflector.example/synced"], "true")
        XCTAssertEqual(secret.annotations["certdeploy.io/certificate-sha256"], leaf.sha256Hex)
        await fixture.stop()
    }

    func testBadTokenIsUnauthorized() async throws {
        let fixture = try await K8sFixture()
        let result = try await fixture.deploy(try fixture.leaf(), access: try fixture.kubeconfigAccess(token: "expired-token"))
        XCTAssertEqual(result.outcome, .failed, describe(result))
        XCTAssertEqual(result.failure?.step, .connect)
        let message = result.failure?.message ?? ""
        XCTAssertTrue(message.contains("rejected the credentials (bearer token"), message)
        XCTAssertTrue(message.contains("401 Unauthorized"), message)
        XCTAssertFalse(message.contains("expired-token"), "the token never appears in the record")
        XCTAssertEqual(fixture.server.requests.map(\.status), [401], "401 is not retried")
        XCTAssertNil(fixture.storedSecret())
        await fixture.stop()
    }

    func testForbiddenNamesTheMissingVerbResourceAndNamespace() async throws {
        let fixture = try await K8sFixture(rbac: false)
        // May read Secrets, nothing else.
        fixture.server.grant(K8sFixture.serviceAccount, verbs: ["get"], resources: ["secrets"], namespace: "web")
        let old = try fixture.leaf()
        fixture.server.putSecret(namespace: "web", name: "site-tls", data: ["tls.crt": Array(old.certificatePEM.utf8), "tls.key": Array(old.privateKeyPKCS8PEM.utf8)])
        let result = try await fixture.deploy(try fixture.leaf())
        XCTAssertEqual(result.outcome, .failed, describe(result))
        XCTAssertEqual(result.failure?.step, .write)
        let message = result.failure?.message ?? ""
        XCTAssertTrue(message.contains("service account web/deployer lacks `update` on secrets in namespace web"), message)
        XCTAssertTrue(message.contains("User \\\"system:serviceaccount:web:deployer\\\" cannot update resource \\\"secrets\\\" in API group \\\"\\\" in the namespace \\\"web\\\"")
                      || message.contains("User \"system:serviceaccount:web:deployer\" cannot update resource \"secrets\" in API group \"\" in the namespace \"web\""), message)
        XCTAssertEqual(fixture.storedSecret()?.data["tls.crt"], Array(old.certificatePEM.utf8))

        // Without even `get`, the compare step says so.
        let other = try await K8sFixture(rbac: false)
        let refused = try await other.deploy(try other.leaf())
        XCTAssertEqual(refused.failure?.step, .compare, describe(refused))
        XCTAssertTrue(refused.failure?.message.contains("lacks `get` on secrets in namespace web") ?? false, describe(refused))
        await fixture.stop()
        await other.stop()
    }

    func testMissingNamespaceIsNamed() async throws {
        let fixture = try await K8sFixture()
        fixture.server.grant(K8sFixture.serviceAccount, verbs: ["*"], resources: ["secrets"])
        let result = try await fixture.deploy(try fixture.leaf(), config: K8sFixture.config(["namespace": .string("shop")]))
        XCTAssertEqual(result.outcome, .failed, describe(result))
        XCTAssertEqual(result.failure?.step, .write)
        XCTAssertTrue(result.failure?.message.contains("namespace shop does not exist") ?? false, describe(result))
        await fixture.stop()
    }

    func testExistingSecretOfAnotherTypeIsRefused() async throws {
        let fixture = try await K8sFixture()
        fixture.server.putSecret(namespace: "web", name: "site-tls", type: "Opaque", data: ["password": Array("hunter2".utf8)])
        let result = try await fixture.deploy(try fixture.leaf())
        XCTAssertEqual(result.outcome, .failed, describe(result))
        XCTAssertEqual(result.failure?.step, .compare)
        let message = result.failure?.message ?? ""
        XCTAssertTrue(message.contains("exists with type Opaque"), message)
        XCTAssertTrue(message.contains("type is immutable"), message)
        XCTAssertTrue(fixture.writes.isEmpty)
        XCTAssertEqual(fixture.storedSecret()?.data, ["password": Array("hunter2".utf8)])
        await fixture.stop()
    }

    func testInvalidAnswerIsSurfacedWithItsCause() async throws {
        let fixture = try await K8sFixture()
        let old = try fixture.leaf()
        fixture.server.putSecret(namespace: "web", name: "site-tls", data: ["tls.crt": Array(old.certificatePEM.utf8), "tls.key": Array(old.privateKeyPKCS8PEM.utf8)], immutable: true)
        let result = try await fixture.deploy(try fixture.leaf())
        XCTAssertEqual(result.outcome, .failed, describe(result))
        XCTAssertEqual(result.failure?.step, .write)
        let message = result.failure?.message ?? ""
        XCTAssertTrue(message.contains("as Invalid (422)"), message)
        XCTAssertTrue(message.contains("Secret \"site-tls\" is invalid: data: Forbidden: field is immutable when `immutable` is set"), message)
        await fixture.stop()
    }

    func testThrottlingIsRetriedAfterRetryAfter() async throws {
        let fixture = try await K8sFixture()
        fixture.server.throttle(next: 2, retryAfterSeconds: 1)
        let started = ContinuousClock.now
        let result = try await fixture.deploy(try fixture.leaf())
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        XCTAssertEqual(fixture.server.requests.prefix(3).map(\.status), [429, 429, 200])
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .seconds(2), "Retry-After: 1 was honoured twice")
        await fixture.stop()
    }

    func testRolloutsAreRestartedAndAwaited() async throws {
        let fixture = try await K8sFixture()
        fixture.server.addWorkload(.deployments, namespace: "web", name: "frontend", replicas: 3)
        fixture.server.addWorkload(.statefulsets, namespace: "web", name: "cache", replicas: 2)
        let config = K8sFixture.config(["rollouts": .array([
            .object(["kind": .string("Deployment"), "name": .string("frontend")]),
            .object(["kind": .string("StatefulSet"), "name": .string("cache")]),
        ]), "rolloutTimeoutSeconds": .number(10)])
        let started = ContinuousClock.now
        let result = try await fixture.deploy(try fixture.leaf(), config: config)
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .milliseconds(300), "the rollout was awaited")
        XCTAssertTrue(step(result, .reload)?.detail?.contains("restarted Deployment frontend, StatefulSet cache") ?? false, describe(result))
        let verify = step(result, .verify)?.detail ?? ""
        XCTAssertTrue(verify.contains("Deployment frontend rolled out (3/3 updated and available)"), verify)
        XCTAssertTrue(verify.contains("StatefulSet cache rolled out (2/2"), verify)
        for (kind, name) in [(FakeKubernetesAPIServer.WorkloadKind.deployments, "frontend"), (.statefulsets, "cache")] {
            let workload = try XCTUnwrap(fixture.server.workload(kind, namespace: "web", name: name))
            XCTAssertEqual(workload["metadata"]?["generation"], .number(2))
            XCTAssertNotNil(workload["spec"]?["template"]?["metadata"]?["annotations"]?["certdeploy.io/restartedAt"])
        }
        XCTAssertEqual(fixture.writes.filter { $0.method == "PATCH" }.map(\.contentType), Array(repeating: "application/strategic-merge-patch+json", count: 2))
        await fixture.stop()
    }

    func testRolloutDeadlineRollsTheSecretBack() async throws {
        let fixture = try await K8sFixture()
        let old = try fixture.leaf(dnsNames: ["old.example.test"])
        fixture.server.putSecret(namespace: "web", name: "site-tls", data: ["tls.crt": Array(old.certificatePEM.utf8), "tls.key": Array(old.privateKeyPKCS8PEM.utf8)],
                                 labels: ["team": "web"], annotations: ["note": "before"])
        let before = try XCTUnwrap(fixture.storedSecret())
        fixture.server.addWorkload(.deployments, namespace: "web", name: "frontend", replicas: 3, stuck: true)
        let config = K8sFixture.config(["rollouts": .array([.object(["kind": .string("Deployment"), "name": .string("frontend")])]),
                                        "rolloutTimeoutSeconds": .number(1)])
        let result = try await fixture.deploy(try fixture.leaf(), config: config)
        XCTAssertEqual(result.outcome, .rolledBack, describe(result))
        XCTAssertEqual(result.failure?.step, .verify)
        XCTAssertTrue(result.failure?.message.contains("Deployment frontend did not finish its rollout within 1.0 seconds") ?? false, describe(result))
        XCTAssertTrue(result.failure?.message.contains("1/3 updated") ?? false, describe(result))
        XCTAssertTrue(step(result, .rollback)?.detail?.contains("restored the previous data, labels and annotations") ?? false, describe(result))
        XCTAssertTrue(step(result, .rollback)?.detail?.contains("restarted Deployment frontend again") ?? false, describe(result))
        let after = try XCTUnwrap(fixture.storedSecret())
        XCTAssertEqual(after.data, before.data, "exactly the previous data")
        XCTAssertEqual(after.labels, before.labels)
        XCTAssertEqual(after.annotations, before.annotations)
        XCTAssertEqual(fixture.writes.map(\.method), ["PUT", "PATCH", "PUT", "PATCH"])
        await fixture.stop()
    }

    func testVerifyByHandshakeThroughAnIngressAndRollbackDeletesACreatedSecret() async throws {
        let fixture = try await K8sFixture()
        let ingress = try await FakeIngress.start(serving: fixture.server, namespace: "web", secretName: "site-tls")
        let leaf = try fixture.leaf()
        let verified = try await fixture.deploy(leaf, config: K8sFixture.config(["ocspStaple": .bool(false), "verify": .object([
            "enabled": .bool(true), "host": .string("127.0.0.1"), "port": .number(Double(ingress.port)), "timeoutSeconds": .number(5),
        ])]))
        XCTAssertEqual(verified.outcome, .succeeded, describe(verified))
        XCTAssertTrue(step(verified, .verify)?.detail?.contains("serves the new leaf") ?? false, describe(verified))
        XCTAssertTrue(step(verified, .verify)?.detail?.contains("(SNI example.test)") ?? false, describe(verified))
        await ingress.stop()

        // Nothing serves the Secret: verify fails, and the Secret this deploy created is deleted again.
        let second = try await K8sFixture()
        let closed = try FreePort.allocate()
        let result = try await second.deploy(try second.leaf(), config: K8sFixture.config(["verify": .object([
            "enabled": .bool(true), "host": .string("127.0.0.1"), "port": .number(Double(closed)), "timeoutSeconds": .number(1),
        ])]))
        XCTAssertEqual(result.outcome, .rolledBack, describe(result))
        XCTAssertEqual(result.failure?.step, .verify)
        XCTAssertTrue(step(result, .rollback)?.detail?.contains("deleted Secret web/site-tls, which did not exist before this deploy") ?? false, describe(result))
        XCTAssertNil(second.storedSecret())
        XCTAssertEqual(second.writes.map(\.method), ["POST", "DELETE"])
        await fixture.stop()
        await second.stop()
    }

    func testClientCertificateAuthentication() async throws {
        let fixture = try await K8sFixture()
        let client = try fixture.server.ca.issue(commonName: "certdeploy-deployer", organizations: ["deployers"], clientAuth: true)
        K8sFixture.grantMinimalRole(fixture.server, to: "certdeploy-deployer")
        let text = fixture.server.kubeconfig(user: .init(name: "mtls", clientCertificateData: Array(client.certificatePEM.utf8), clientKeyData: Array(client.keyPEM.utf8)))
        let access = try KubernetesAccess.kubeConfig(KubeConfig.parse(text, path: fixture.directory.file("config")))
        let result = try await fixture.deploy(try fixture.leaf(), access: access)
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        XCTAssertTrue(step(result, .connect)?.detail?.contains("authenticated by client certificate") ?? false, describe(result))
        XCTAssertEqual(Set(fixture.server.requests.map(\.authentication)), ["x509"])
        XCTAssertEqual(Set(fixture.server.requests.compactMap(\.user)), ["certdeploy-deployer"])

        // A certificate from another CA does not get through the handshake.
        let stranger = try FakeClusterCA(name: "other-ca").issue(commonName: "certdeploy-deployer", clientAuth: true)
        let strangerText = fixture.server.kubeconfig(user: .init(name: "mtls", clientCertificateData: Array(stranger.certificatePEM.utf8), clientKeyData: Array(stranger.keyPEM.utf8)))
        let refused = try await fixture.deploy(try fixture.leaf(), access: try KubernetesAccess.kubeConfig(KubeConfig.parse(strangerText)))
        XCTAssertEqual(refused.outcome, .failed, describe(refused))
        XCTAssertEqual(refused.failure?.step, .connect)
        await fixture.stop()
    }

    /// A bound service account token rotates: the client reads the token file again for every request.
    func testInClusterTokenFileIsReadAgainForEveryRequest() async throws {
        let fixture = try await K8sFixture()
        let mount = try fixture.directory.makeDirectory("serviceaccount")
        let tokenPath = try fixture.directory.write("serviceaccount/token", K8sFixture.token, mode: 0o600)
        try fixture.directory.write("serviceaccount/ca.crt", fixture.server.ca.certificatePEM)
        try fixture.directory.write("serviceaccount/namespace", "web")
        let access = try KubernetesAccess.inCluster(directory: mount, server: fixture.server.url)
        XCTAssertEqual(access.namespace, "web")
        // After GET /version, the kubelet rotates the token; before the write, the old one is revoked.
        fixture.server.beforeNext("GET", pathSuffix: "/secrets/site-tls") { server in
            try? "deployer-token-2\n".write(toFile: tokenPath, atomically: true, encoding: .utf8)
            server.addToken("deployer-token-2", user: K8sFixture.serviceAccount)
        }
        fixture.server.beforeNext("POST", pathSuffix: "/secrets") { server in
            server.revokeToken(K8sFixture.token)
        }
        let result = try await fixture.deploy(try fixture.leaf(), access: access)
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        let tokens = fixture.server.requests.map { $0.token ?? "-" }
        XCTAssertEqual(tokens.first, K8sFixture.token)
        XCTAssertEqual(tokens.dropFirst(2).first, "deployer-token-2", "the rotated token was read from the file: \(tokens)")
        XCTAssertEqual(Set(fixture.server.requests.map(\.status)).subtracting([200, 201, 404]), [], "\(fixture.server.requests.map(\.status))")
        await fixture.stop()
    }

    func testKubeconfigTokenFileIsReadAgainToo() async throws {
        let fixture = try await K8sFixture()
        let tokenPath = try fixture.directory.write("token", K8sFixture.token, mode: 0o600)
        let text = fixture.server.kubeconfig(user: .init(name: "deployer", tokenFile: "token"))
        let configPath = try fixture.directory.write("kubeconfig", text)
        let access = try KubernetesAccess.kubeConfig(path: configPath)
        fixture.server.beforeNext("GET", pathSuffix: "/secrets/site-tls") { server in
            try? "deployer-token-2".write(toFile: tokenPath, atomically: true, encoding: .utf8)
            server.addToken("deployer-token-2", user: K8sFixture.serviceAccount)
        }
        fixture.server.beforeNext("POST", pathSuffix: "/secrets") { server in
            server.revokeToken(K8sFixture.token)
        }
        let result = try await fixture.deploy(try fixture.leaf(), access: access)
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        XCTAssertTrue(step(result, .connect)?.detail?.contains("token file \(tokenPath)") ?? false, describe(result))
        XCTAssertEqual(fixture.server.requests.map { $0.token ?? "-" }.dropFirst(2).first, "deployer-token-2")
        await fixture.stop()
    }

    func testDryRunWritesNothing() async throws {
        let fixture = try await K8sFixture()
        let result = try await fixture.deploy(try fixture.leaf(), options: DeployOptions(dryRun: true, checkOCSP: false))
        XCTAssertEqual(result.outcome, .succeeded, describe(result))
        XCTAssertTrue(result.dryRun)
        XCTAssertTrue(step(result, .write)?.detail?.contains("dry run: would create Secret web/site-tls") ?? false, describe(result))
        XCTAssertTrue(fixture.writes.isEmpty)
        XCTAssertNil(fixture.storedSecret())
        await fixture.stop()
    }
}
