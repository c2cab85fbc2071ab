import Core
import Foundation
import K8sConnector
import KubernetesClient
import KubernetesTestSupport
import TestSupport
import XCTest

/// A fake API server with namespace `web`, a service account token with the minimal Role from the docs, a
/// test CA for the certificates deployed, and a deploy through the real engine and the real client.
final class K8sFixture: Sendable {
    static let serviceAccount = "system:serviceaccount:web:deployer"
    static let token = "deployer-token-1"

    let server: FakeKubernetesAPIServer
    let ca: TestCertificateAuthority
    let directory: TemporaryDirectory

    init(rbac: Bool = true) async throws {
        server = try await FakeKubernetesAPIServer.start(namespaces: ["web"], rolloutDuration: .milliseconds(300))
        ca = try TestCertificateAuthority()
        directory = try TemporaryDirectory(prefix: "certdeploy-k8s")
        server.addToken(Self.token, user: Self.serviceAccount)
        if rbac { Self.grantMinimalRole(server, to: Self.serviceAccount) }
    }

    /// The Role docs/connectors/k8s.md documents.
    static func grantMinimalRole(_ server: FakeKubernetesAPIServer, to user: String, namespace: String = "web") {
        server.grant(user, verbs: ["get", "create", "update", "delete"], resources: ["secrets"], namespace: namespace)
        server.grant(user, verbs: ["get", "patch"], resources: ["deployments", "statefulsets"], group: "apps", namespace: namespace)
    }

    func stop() async {
        await server.stop()
        directory.remove()
    }

    /// Access through a kubeconfig file written as kubectl writes it (context `fake`).
    func kubeconfigAccess(token: String = K8sFixture.token) throws -> KubernetesAccess {
        let path = try directory.write("kubeconfig-\(UUID().uuidString)", server.kubeconfig(user: .init(name: "deployer", token: token), namespace: "web"), mode: 0o600)
        return try KubernetesAccess.kubeConfig(path: path, context: "fake")
    }

    static let options = KubernetesClientOptions(
        userAgent: KubernetesClientOptions.userAgent(version: "0.1.0-test"),
        retry: KubernetesRetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(50), maxDelay: .seconds(2)),
        requestTimeout: .seconds(10), connectTimeout: .seconds(2))

    func leaf(dnsNames: [String] = ["example.test", "www.example.test"]) throws -> TestIssuedCertificate {
        var options = TestCertificateAuthority.LeafOptions()
        options.dnsNames = dnsNames
        options.commonName = dnsNames[0]
        return try ca.issueLeaf(options)
    }

    func bundle(_ leaf: TestIssuedCertificate, includeRoot: Bool = false) throws -> CertificateBundle {
        try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM + (includeRoot ? ca.root.certificatePEM : ""),
                                    privateKeyPEM: leaf.privateKeyPKCS8PEM)
    }

    static func config(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
        var object: [String: JSONValue] = ["namespace": .string("web"), "secretName": .string("site-tls")]
        object.merge(overrides) { $1 }
        return .object(object)
    }

    /// Deploys through the real engine and the real client.
    func deploy(_ leaf: TestIssuedCertificate, config: JSONValue = K8sFixture.config(), access: KubernetesAccess? = nil,
                includeRoot: Bool = false, options: DeployOptions = DeployOptions(checkOCSP: false)) async throws -> DeploymentResult {
        let configured = try ConnectorRegistry([K8sConnector.self]).connector(id: "k8s")!.configure(config)
        let access = try access ?? kubeconfigAccess()
        let request = DeployRequest(targetID: "k8s-1", bundle: try bundle(leaf, includeRoot: includeRoot), connector: configured,
                                    context: PlanContext(targetID: "k8s-1"), options: options, secrets: access.secrets)
        return await DeployEngine(probeTimeout: .seconds(2)).deploy(request, cluster: {
            try await KubernetesConnection.connect(access, options: K8sFixture.options)
        })
    }

    func storedSecret() -> FakeSecret? {
        server.secret(namespace: "web", name: "site-tls")
    }

    /// Requests after the initial GET /version that wrote something.
    var writes: [FakeKubernetesAPIServer.RecordedRequest] {
        server.requests.filter { ["POST", "PUT", "PATCH", "DELETE"].contains($0.method) }
    }
}

func step(_ result: DeploymentResult, _ name: StepRecord.Name) -> StepRecord? {
    result.steps.last { $0.name == name }
}

func describe(_ result: DeploymentResult) -> String {
    "\(result.outcome): \(result.failure.map { "\($0)" } ?? "-")\n" + result.steps.map { "  \($0.name.rawValue) \($0.outcome.rawValue): \($0.detail ?? "")" }.joined(separator: "\n")
}
