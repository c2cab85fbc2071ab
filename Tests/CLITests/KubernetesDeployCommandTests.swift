import Core
import Foundation
import KubernetesTestSupport
import TestSupport
import XCTest

/// `certdeploy deploy --connector k8s` with a `kubernetes` section, run as a user would run the binary,
/// against the in-process Kubernetes API server.
final class KubernetesDeployCommandTests: XCTestCase {
    func certdeploy(_ arguments: [String]) async throws -> ProcessResult {
        try await Task.detached { try ProcessRunner.run(DeployCommandTests.binary, arguments, timeout: 120) }.value
    }

    func testDeployWritesTheSecretAndBadTargetsNameTheField() async throws {
        let server = try await FakeKubernetesAPIServer.start(namespaces: ["shop"])
        let directory = try TemporaryDirectory(prefix: "certdeploy-cli-k8s")
        defer { directory.remove() }
        server.addToken("cli-token", user: "system:serviceaccount:shop:certdeploy")
        server.grant("system:serviceaccount:shop:certdeploy", verbs: ["get", "create", "update", "delete"], resources: ["secrets"], namespace: "shop")

        let ca = try TestCertificateAuthority()
        let leaf = try ca.issueLeaf()
        let fullchain = try directory.write("fullchain.pem", leaf.certificatePEM + ca.chainPEM)
        let privkey = try directory.write("privkey.pem", leaf.privateKeyPKCS8PEM, mode: 0o600)
        let kubeconfig = try directory.write("kubeconfig", server.kubeconfig(user: .init(name: "certdeploy", token: "cli-token")), mode: 0o600)
        let config: JSONValue = .object(["namespace": .string("shop"), "secretName": .string("shop-tls")])
        func target(_ members: [String: JSONValue]) throws -> String {
            try directory.write("t-\(UUID().uuidString).json", JSONValue.object(members).jsonText())
        }
        let kubernetes: JSONValue = .object(["kubeconfig": .string(kubeconfig), "context": .string("fake")])
        let good = try target(["name": .string("shop-ingress"), "kubernetes": kubernetes, "config": config])

        let run = try await certdeploy(["deploy", "--connector", "k8s", "--config", good, "--cert", fullchain, "--key", privkey])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        for stepName in ["connect", "compare", "write", "verify"] {
            XCTAssertTrue(run.stdout.contains("] \(stepName)"), "step \(stepName) printed:\n\(run.stdout)")
        }
        XCTAssertTrue(run.stdout.contains("Outcome: succeeded"), run.stdout)
        XCTAssertTrue(run.stdout.contains("Kubernetes v1.31.0"), run.stdout)
        XCTAssertFalse(run.stdout.contains("PRIVATE KEY"))
        XCTAssertFalse(run.stdout.contains("cli-token"))
        let secret = try XCTUnwrap(server.secret(namespace: "shop", name: "shop-tls"))
        XCTAssertEqual(secret.data["tls.crt"], Array((leaf.certificatePEM + ca.chainPEM).utf8))
        XCTAssertTrue(server.requests.allSatisfy { $0.userAgent?.hasPrefix("certdeploy/") ?? false })

        let again = try await certdeploy(["deploy", "--config", good, "--connector", "k8s", "--cert", fullchain, "--key", privkey])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("Outcome: unchanged"), again.stdout)

        let ssh: JSONValue = .object(["host": .string("127.0.0.1"), "user": .string("root"), "password": .string("pw"), "trustOnFirstUse": .bool(true)])
        let insecure = try directory.write("insecure-kubeconfig", KubeconfigText(
            clusters: [.init(name: "c", server: server.url, insecureSkipTLSVerify: true)],
            contexts: [.init(name: "c", cluster: "c", user: "u")], users: [.init(name: "u", token: "cli-token")], currentContext: "c").render())
        let nginxConfig: JSONValue = .object(["certificatePath": .string("/etc/nginx/c.pem"), "keyPath": .string("/etc/nginx/c.key")])
        let cases: [(String, [String: JSONValue], String)] = [
            ("k8s", ["ssh": ssh, "config": config], "/kubernetes: is required for connector k8s"),
            ("nginx", ["kubernetes": kubernetes, "config": nginxConfig], "/ssh: is required for connector nginx"),
            ("k8s", ["ssh": ssh, "kubernetes": kubernetes, "config": config], "give either ssh or kubernetes, not both"),
            ("k8s", ["config": config], "/ssh: is required (or /kubernetes"),
            ("k8s", ["kubernetes": kubernetes, "config": .object(["namespace": .string("Shop"), "secretName": .string("shop-tls")])],
             "/config/namespace: \"Shop\" is not a DNS-1123 label"),
            ("k8s", ["kubernetes": kubernetes, "config": .object(["namespace": .string("shop"), "secretName": .string("shop-tls"),
                                                                  "rollouts": .array([.object(["kind": .string("DaemonSet"), "name": .string("x")])])])],
             "/config/rollouts/0/kind: must be one of \"Deployment\", \"StatefulSet\""),
            ("k8s", ["kubernetes": .object(["kubeConfig": .string(kubeconfig)]), "config": config], "/kubernetes/kubeConfig: unknown field (did you mean \"kubeconfig\"?)"),
            ("k8s", ["kubernetes": .object(["kubeconfig": .string(insecure)]), "config": config], "/kubernetes:"),
            ("k8s", ["kubernetes": .object(["kubeconfig": .string(kubeconfig), "context": .string("prod")]), "config": config], "no context \"prod\""),
        ]
        for (connector, members, expected) in cases {
            let run = try await certdeploy(["deploy", "--connector", connector, "--config", try target(members), "--cert", fullchain, "--key", privkey])
            XCTAssertEqual(run.status, 2, "\(members): \(run.stdout)\(run.stderr)")
            XCTAssertTrue(run.stderr.contains(expected), "expected \(expected) in: \(run.stderr)")
        }
        let refusedInsecure = try await certdeploy(["deploy", "--connector", "k8s", "--config", try target(["kubernetes": .object(["kubeconfig": .string(insecure)]), "config": config]),
                                                    "--cert", fullchain, "--key", privkey])
        XCTAssertTrue(refusedInsecure.stderr.contains("insecure-skip-tls-verify: true") && refusedInsecure.stderr.contains("allowInsecure"), refusedInsecure.stderr)
        await server.stop()
    }
}
