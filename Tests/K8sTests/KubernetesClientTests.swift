import Core
import Foundation
@testable import KubernetesClient
import KubernetesTestSupport
import TestSupport
import XCTest

/// The client against the fake API server, call by call: every API answer it must understand.
final class KubernetesClientTests: XCTestCase {
    private func connect(_ fixture: K8sFixture, access: KubernetesAccess? = nil, options: KubernetesClientOptions = K8sFixture.options) async throws -> KubernetesConnection {
        try await KubernetesConnection.connect(try access ?? fixture.kubeconfigAccess(), options: options)
    }

    private func clusterError(_ body: () async throws -> Void) async -> ClusterError? {
        do {
            try await body()
            return nil
        } catch let error as ClusterError {
            return error
        } catch {
            XCTFail("not a ClusterError: \(error)")
            return nil
        }
    }

    func testSecretValidationFailuresCarryTheirCauses() async throws {
        let fixture = try await K8sFixture()
        let connection = try await connect(fixture)
        let missingKey = await clusterError {
            _ = try await connection.createSecret(ClusterSecret(namespace: "web", name: "half", type: "kubernetes.io/tls", data: ["tls.crt": Array("x".utf8)]))
        }
        XCTAssertEqual(missingKey?.code, .invalid)
        XCTAssertEqual(missingKey?.status, 422)
        XCTAssertTrue(missingKey?.message.contains("Secret \"half\" is invalid: data[tls.key]: Required value") ?? false, "\(String(describing: missingKey))")

        let created = try await connection.createSecret(ClusterSecret(namespace: "web", name: "site-tls", type: "kubernetes.io/tls",
                                                                      data: ["tls.crt": [1], "tls.key": [2]]))
        var opaque = created
        opaque.type = "Opaque"
        let typeChange = await clusterError { _ = try await connection.replaceSecret(opaque, resourceVersion: created.resourceVersion) }
        XCTAssertEqual(typeChange?.code, .invalid)
        XCTAssertTrue(typeChange?.message.contains("type: Invalid value: \"Opaque\": field is immutable") ?? false, "\(String(describing: typeChange))")

        var badKey = created
        badKey.data["bad key!"] = [3]
        let invalidKey = await clusterError { _ = try await connection.replaceSecret(badKey, resourceVersion: created.resourceVersion) }
        XCTAssertTrue(invalidKey?.message.contains("data[bad key!]: Invalid value: \"bad key!\": a valid config key must consist of alphanumeric characters") ?? false,
                      "\(String(describing: invalidKey))")
        await connection.close()
        await fixture.stop()
    }

    func testOptimisticConcurrency() async throws {
        let fixture = try await K8sFixture()
        let connection = try await connect(fixture)
        let secret = ClusterSecret(namespace: "web", name: "site-tls", type: "kubernetes.io/tls", data: ["tls.crt": [1], "tls.key": [2]], labels: ["a": "b"])
        let created = try await connection.createSecret(secret)
        XCTAssertFalse(created.resourceVersion.isEmpty)
        XCTAssertEqual(created.labels, ["a": "b"])
        let again = await clusterError { _ = try await connection.createSecret(secret) }
        XCTAssertEqual(again?.code, .alreadyExists)
        XCTAssertTrue(again?.message.contains("secrets \"site-tls\" already exists") ?? false, "\(String(describing: again))")

        var changed = created
        changed.data["tls.crt"] = [9]
        let replaced = try await connection.replaceSecret(changed, resourceVersion: created.resourceVersion)
        XCTAssertGreaterThan(Int(replaced.resourceVersion) ?? 0, Int(created.resourceVersion) ?? 0)
        // The same content again is a no-op: the resourceVersion stays.
        let same = try await connection.replaceSecret(replaced, resourceVersion: replaced.resourceVersion)
        XCTAssertEqual(same.resourceVersion, replaced.resourceVersion)

        let stale = await clusterError { _ = try await connection.replaceSecret(changed, resourceVersion: created.resourceVersion) }
        XCTAssertEqual(stale?.code, .conflict)
        XCTAssertTrue(stale?.message.contains("the object has been modified; please apply your changes to the latest version and try again") ?? false, "\(String(describing: stale))")

        let staleDelete = await clusterError { try await connection.deleteSecret(namespace: "web", name: "site-tls", resourceVersion: created.resourceVersion) }
        XCTAssertEqual(staleDelete?.code, .conflict)
        XCTAssertTrue(staleDelete?.message.contains("Precondition failed: ResourceVersion in precondition: \(created.resourceVersion)") ?? false, "\(String(describing: staleDelete))")
        try await connection.deleteSecret(namespace: "web", name: "site-tls", resourceVersion: replaced.resourceVersion)
        let gone = try await connection.getSecret(namespace: "web", name: "site-tls")
        XCTAssertNil(gone)
        let missing = await clusterError { _ = try await connection.replaceSecret(changed, resourceVersion: replaced.resourceVersion) }
        XCTAssertEqual(missing?.code, .notFound)
        await connection.close()
        await fixture.stop()
    }

    /// Failures are Status objects in the API's own shape, and the client reads them as such.
    func testStatusBodiesHaveTheAPIShape() async throws {
        let fixture = try await K8sFixture()
        let connection = try await connect(fixture)
        let response = try await connection.api.send(.GET, "/api/v1/namespaces/web/secrets/absent",
                                                     operation: APIOperation(verb: "get", resource: "secrets", namespace: "web", name: "absent"), accept: [404])
        XCTAssertEqual(response.status, 404)
        let json = try XCTUnwrap(response.json)
        XCTAssertEqual(json, .object([
            "kind": .string("Status"), "apiVersion": .string("v1"), "metadata": .object([:]), "status": .string("Failure"),
            "message": .string("secrets \"absent\" not found"), "reason": .string("NotFound"),
            "details": .object(["name": .string("absent"), "kind": .string("secrets")]), "code": .number(404),
        ]))
        let unknown = try await connection.api.send(.GET, "/api/v1/nonsense", operation: APIOperation(verb: "get", resource: "nonsense"), accept: [404])
        XCTAssertEqual(unknown.json?["message"], .string("the server could not find the requested resource"))
        await connection.close()
        await fixture.stop()
    }

    func testThrottlingGivesUpAfterBoundedAttempts() async throws {
        let fixture = try await K8sFixture()
        let connection = try await connect(fixture, options: KubernetesClientOptions(userAgent: "certdeploy/test", retry: .init(maxAttempts: 3, baseDelay: .milliseconds(10))))
        fixture.server.throttle(next: 10, retryAfterSeconds: 0)
        fixture.server.clearRequests()
        let error = await clusterError { _ = try await connection.getSecret(namespace: "web", name: "site-tls") }
        XCTAssertEqual(error?.code, .tooManyRequests)
        XCTAssertTrue(error?.message.contains("after 3 attempts") ?? false, "\(String(describing: error))")
        XCTAssertEqual(fixture.server.requests.map(\.status), [429, 429, 429])
        await connection.close()
        await fixture.stop()
    }

    func testServerErrorsAreRetriedThenReported() async throws {
        let fixture = try await K8sFixture()
        let connection = try await connect(fixture, options: KubernetesClientOptions(userAgent: "certdeploy/test", retry: .init(maxAttempts: 3, baseDelay: .milliseconds(10))))
        fixture.server.putSecret(namespace: "web", name: "site-tls", data: ["tls.crt": [1], "tls.key": [2]])
        fixture.server.fail(next: 2, status: 503)
        fixture.server.clearRequests()
        let secret = try await connection.getSecret(namespace: "web", name: "site-tls")
        XCTAssertEqual(secret?.data["tls.crt"], [1])
        XCTAssertEqual(fixture.server.requests.map(\.status), [503, 503, 200])

        fixture.server.fail(next: 5, status: 500)
        let error = await clusterError { _ = try await connection.getSecret(namespace: "web", name: "site-tls") }
        XCTAssertEqual(error?.code, .server)
        XCTAssertEqual(error?.status, 500)
        XCTAssertTrue(error?.message.contains("after 3 attempts: Internal error occurred: etcdserver: request timed out") ?? false, "\(String(describing: error))")
        await connection.close()
        await fixture.stop()
    }

    func testUntrustedServerIsRefusedWithoutRetrying() async throws {
        let fixture = try await K8sFixture()
        let other = try FakeClusterCA(name: "not-the-cluster-ca")
        let access = KubernetesAccess(server: fixture.server.url, trust: .certificateAuthority(Array(other.certificatePEM.utf8)),
                                      credential: .bearerToken(K8sFixture.token), origin: "test")
        let error = await clusterError { _ = try await KubernetesConnection.connect(access, options: K8sFixture.options) }
        XCTAssertEqual(error?.code, .transport)
        XCTAssertTrue(error?.message.contains("TLS") ?? false, "\(String(describing: error))")
        XCTAssertFalse(error?.message.contains("attempts") ?? true, "a certificate problem is not retried: \(String(describing: error))")
        XCTAssertTrue(fixture.server.requests.isEmpty)
        await fixture.stop()
    }

    func testAnonymousMayReadTheVersionButNothingElse() async throws {
        let fixture = try await K8sFixture()
        let access = KubernetesAccess(server: fixture.server.url, trust: .certificateAuthority(Array(fixture.server.ca.certificatePEM.utf8)),
                                      credential: .none, origin: "test")
        let connection = try await connect(fixture, access: access)
        XCTAssertEqual(connection.serverVersion, "v1.31.0")
        let error = await clusterError { _ = try await connection.getSecret(namespace: "web", name: "site-tls") }
        XCTAssertEqual(error?.code, .forbidden)
        XCTAssertTrue(error?.message.contains("user \"system:anonymous\" lacks `get` on secrets in namespace web") ?? false, "\(String(describing: error))")
        let patch = await clusterError { try await connection.restartRollout(RolloutTarget(kind: .deployment, name: "api"), namespace: "web", stamp: "now") }
        XCTAssertTrue(patch?.message.contains("lacks `patch` on deployments.apps in namespace web") ?? false, "\(String(describing: patch))")
        await connection.close()
        await fixture.stop()
    }

    /// The fake speaks the real protocol well enough for kubectl itself (when installed): TLS with the cluster
    /// CA, the kubeconfig the test support writes, bearer tokens, /version and a Secret read.
    func testKubectlTalksToTheFakeServer() async throws {
        guard let kubectl = ProcessRunner.which("kubectl") else { throw XCTSkip("kubectl is not installed") }
        let fixture = try await K8sFixture()
        fixture.server.putSecret(namespace: "web", name: "site-tls", data: ["tls.crt": Array("CRT".utf8), "tls.key": Array("KEY".utf8)])
        let path = try fixture.directory.write("kubeconfig", fixture.server.kubeconfig(user: .init(name: "deployer", token: K8sFixture.token), namespace: "web"))
        let secret = try await Task.detached {
            try ProcessRunner.run(kubectl, ["--kubeconfig", path, "get", "--raw", "/api/v1/namespaces/web/secrets/site-tls"], timeout: 60)
        }.value
        XCTAssertEqual(secret.status, 0, secret.stderr)
        let json = try JSONValue.parse(Data(secret.stdout.utf8))
        XCTAssertEqual(json["data"]?["tls.crt"], .string(Data("CRT".utf8).base64EncodedString()))
        XCTAssertEqual(fixture.server.requests.last?.userAgent?.hasPrefix("kubectl/"), true)
        await fixture.stop()
    }
}
