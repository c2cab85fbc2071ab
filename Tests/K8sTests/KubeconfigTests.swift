import Core
import Foundation
import KubernetesClient
import KubernetesTestSupport
import TestSupport
import XCTest

/// kubeconfig parsing on text exactly as `kubectl config view --raw` printed it, and the credentials each
/// context resolves to (kubeconfig contexts, in-cluster service account).
final class KubeconfigTests: XCTestCase {
    /// Printed by `kubectl config view --raw` (kubectl v1.32.4) after `kubectl config set-cluster/set-credentials/
    /// set-context/use-context` and `kubectl config set users.filetok.tokenFile …`; pasted verbatim.
    static let kubectlOutput = """
    apiVersion: v1
    clusters:
    - cluster:
        insecure-skip-tls-verify: true
        server: https://127.0.0.1:8443
      name: dev
    - cluster:
        certificate-authority: /etc/certdeploy/kube-ca.crt
        server: https://kube.example.test:6443
      name: files
    - cluster:
        certificate-authority-data: Q0E=
        server: https://10.0.0.1:6443
      name: prod
    contexts:
    - context:
        cluster: files
        user: certfiles
      name: certfiles-ctx
    - context:
        cluster: dev
        user: mtls
      name: dev-ctx
    - context:
        cluster: files
        namespace: ingress
        user: filetok
      name: files-ctx
    - context:
        cluster: prod
        namespace: web
        user: deployer
      name: prod-ctx
    current-context: prod-ctx
    kind: Config
    preferences: {}
    users:
    - name: certfiles
      user:
        client-certificate: /etc/certdeploy/client.crt
        client-key: /etc/certdeploy/client.key
    - name: deployer
      user:
        token: abc.def
    - name: filetok
      user:
        tokenFile: /var/run/secrets/tokens/deployer
    - name: mtls
      user:
        client-certificate-data: Q0VSVA==
        client-key-data: S0VZ

    """

    func testParsesKubectlOutput() throws {
        let config = try KubeConfig.parse(Self.kubectlOutput, path: "/home/ops/.kube/config")
        XCTAssertEqual(config.currentContext, "prod-ctx")
        XCTAssertEqual(config.clusters.map(\.name), ["dev", "files", "prod"])
        XCTAssertEqual(config.contexts.map(\.name), ["certfiles-ctx", "dev-ctx", "files-ctx", "prod-ctx"])

        let prod = try XCTUnwrap(config.clusters.first { $0.name == "prod" })
        XCTAssertEqual(prod.server, "https://10.0.0.1:6443")
        XCTAssertEqual(prod.certificateAuthorityData, Array("CA".utf8), "certificate-authority-data is base64-decoded")
        XCTAssertFalse(prod.insecureSkipTLSVerify)
        XCTAssertEqual(config.clusters.first { $0.name == "dev" }?.insecureSkipTLSVerify, true)
        XCTAssertEqual(config.clusters.first { $0.name == "files" }?.certificateAuthority, "/etc/certdeploy/kube-ca.crt")

        let mtls = try XCTUnwrap(config.users.first { $0.name == "mtls" })
        XCTAssertEqual(mtls.clientCertificateData, Array("CERT".utf8))
        XCTAssertEqual(mtls.clientKeyData, Array("KEY".utf8))
        XCTAssertEqual(config.users.first { $0.name == "deployer" }?.token, "abc.def")
        XCTAssertEqual(config.users.first { $0.name == "filetok" }?.tokenFile, "/var/run/secrets/tokens/deployer")
        XCTAssertEqual(config.users.first { $0.name == "certfiles" }?.clientKey, "/etc/certdeploy/client.key")

        XCTAssertEqual(try config.context(named: nil).name, "prod-ctx", "no name: current-context")
        XCTAssertEqual(try config.context(named: nil).namespace, "web")
        XCTAssertEqual(try config.context(named: "files-ctx").namespace, "ingress")
        XCTAssertNil(try config.context(named: "dev-ctx").namespace)
        XCTAssertThrowsError(try config.context(named: "staging")) { error in
            XCTAssertTrue("\(error)".contains("no context \"staging\""), "\(error)")
            XCTAssertTrue("\(error)".contains("prod-ctx"), "lists the contexts: \(error)")
        }
    }

    func testContextsResolveToCredentials() throws {
        let config = try KubeConfig.parse(Self.kubectlOutput, path: "/home/ops/.kube/config")
        let prod = try KubernetesAccess.kubeConfig(config)
        XCTAssertEqual(prod.server, "https://10.0.0.1:6443")
        XCTAssertEqual(prod.trust, .certificateAuthority(Array("CA".utf8)))
        guard case .bearerToken("abc.def") = prod.credential else { return XCTFail("\(prod.credential)") }
        XCTAssertEqual(prod.namespace, "web")
        XCTAssertEqual(prod.secrets, ["abc.def"], "the token is scrubbed from records")
        XCTAssertFalse(prod.description.contains("abc.def"))

        // insecure-skip-tls-verify is refused unless allowed, and the message says how to allow it.
        XCTAssertThrowsError(try KubernetesAccess.kubeConfig(config, context: "dev-ctx")) { error in
            XCTAssertTrue("\(error)".contains("insecure-skip-tls-verify"), "\(error)")
            XCTAssertTrue("\(error)".contains("allowInsecure"), "\(error)")
        }
        let dev = try KubernetesAccess.kubeConfig(config, context: "dev-ctx", allowInsecure: true)
        XCTAssertEqual(dev.trust, .insecure)
        guard case .clientCertificate(let certificate, let key) = dev.credential else { return XCTFail("\(dev.credential)") }
        XCTAssertEqual(certificate, Array("CERT".utf8))
        XCTAssertEqual(key, Array("KEY".utf8))

        // File references must be readable (these paths do not exist here).
        XCTAssertThrowsError(try KubernetesAccess.kubeConfig(config, context: "files-ctx")) { error in
            XCTAssertTrue("\(error)".contains("/etc/certdeploy/kube-ca.crt"), "\(error)")
        }
    }

    func testFileReferencesResolveRelativeToTheKubeconfig() throws {
        let directory = try TemporaryDirectory(prefix: "certdeploy-kubeconfig")
        defer { directory.remove() }
        try directory.makeDirectory("pki")
        try directory.write("pki/ca.crt", "CA-PEM")
        try directory.write("pki/client.crt", "CERT-PEM")
        try directory.write("pki/client.key", "KEY-PEM", mode: 0o600)
        try directory.write("token", "file-token\n", mode: 0o600)
        let text = KubeconfigText(
            clusters: [.init(name: "c", server: "https://127.0.0.1:6443", certificateAuthority: "pki/ca.crt")],
            contexts: [.init(name: "cert", cluster: "c", user: "cert"), .init(name: "tok", cluster: "c", user: "tok", namespace: "ops")],
            users: [.init(name: "cert", clientCertificate: "pki/client.crt", clientKey: "pki/client.key"), .init(name: "tok", tokenFile: "token")],
            currentContext: "cert").render()
        let path = try directory.write("config", text)

        let cert = try KubernetesAccess.kubeConfig(path: path)
        XCTAssertEqual(cert.trust, .certificateAuthority(Array("CA-PEM".utf8)))
        guard case .clientCertificate(let certificate, let key) = cert.credential else { return XCTFail("\(cert.credential)") }
        XCTAssertEqual(certificate, Array("CERT-PEM".utf8))
        XCTAssertEqual(key, Array("KEY-PEM".utf8))

        let token = try KubernetesAccess.kubeConfig(path: path, context: "tok")
        guard case .tokenFile(let file) = token.credential else { return XCTFail("\(token.credential)") }
        XCTAssertEqual(file, directory.file("token"))
        XCTAssertEqual(token.namespace, "ops")
    }

    func testRefusesWhatCertdeployCannotUse() throws {
        func refusal(_ yaml: String) -> String {
            do {
                _ = try KubernetesAccess.kubeConfig(KubeConfig.parse(yaml, path: "/k/config"))
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let exec = """
        apiVersion: v1
        clusters:
        - cluster:
            server: https://10.0.0.1:6443
          name: c
        contexts:
        - context:
            cluster: c
            user: u
          name: x
        current-context: x
        kind: Config
        preferences: {}
        users:
        - name: u
          user:
            exec:
              apiVersion: client.authentication.k8s.io/v1
              command: aws
        """
        XCTAssertTrue(refusal(exec).contains("exec"), refusal(exec))
        let http = exec.replacingOccurrences(of: "https://10.0.0.1:6443", with: "http://10.0.0.1:8080")
        XCTAssertTrue(refusal(http).contains("not an https:// URL"), refusal(http))
        let noContext = exec.replacingOccurrences(of: "current-context: x", with: "current-context: \"\"")
        XCTAssertTrue(refusal(noContext).contains("no current-context"), refusal(noContext))
        let badBase64 = exec.replacingOccurrences(of: "    server: https://10.0.0.1:6443", with: "    certificate-authority-data: '%%%'\n    server: https://10.0.0.1:6443")
        XCTAssertTrue(refusal(badBase64).contains("certificate-authority-data is not valid base64"), refusal(badBase64))
        XCTAssertTrue(refusal("kind: [").contains("not a valid kubeconfig"), refusal("kind: ["))
    }

    /// The test support writes kubeconfigs for the fake server; they must be what kubectl itself writes.
    func testKubeconfigTextMatchesKubectlOutputByteForByte() {
        let text = KubeconfigText(
            clusters: [
                .init(name: "dev", server: "https://127.0.0.1:8443", insecureSkipTLSVerify: true),
                .init(name: "files", server: "https://kube.example.test:6443", certificateAuthority: "/etc/certdeploy/kube-ca.crt"),
                .init(name: "prod", server: "https://10.0.0.1:6443", certificateAuthorityData: Array("CA".utf8)),
            ],
            contexts: [
                .init(name: "certfiles-ctx", cluster: "files", user: "certfiles"),
                .init(name: "dev-ctx", cluster: "dev", user: "mtls"),
                .init(name: "files-ctx", cluster: "files", user: "filetok", namespace: "ingress"),
                .init(name: "prod-ctx", cluster: "prod", user: "deployer", namespace: "web"),
            ],
            users: [
                .init(name: "certfiles", clientCertificate: "/etc/certdeploy/client.crt", clientKey: "/etc/certdeploy/client.key"),
                .init(name: "deployer", token: "abc.def"),
                .init(name: "filetok", tokenFile: "/var/run/secrets/tokens/deployer"),
                .init(name: "mtls", clientCertificateData: Array("CERT".utf8), clientKeyData: Array("KEY".utf8)),
            ],
            currentContext: "prod-ctx").render()
        XCTAssertEqual(text, Self.kubectlOutput)
    }

    func testInClusterServiceAccount() throws {
        let directory = try TemporaryDirectory(prefix: "certdeploy-sa")
        defer { directory.remove() }
        XCTAssertThrowsError(try KubernetesAccess.inCluster(directory: directory.path, server: "https://127.0.0.1:1")) { error in
            XCTAssertTrue("\(error)".contains("no service account token"), "\(error)")
        }
        try directory.write("token", "sa-token\n", mode: 0o600)
        try directory.write("ca.crt", "CA-PEM")
        try directory.write("namespace", "web")
        let access = try KubernetesAccess.inCluster(directory: directory.path, environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"])
        XCTAssertEqual(access.server, "https://10.96.0.1:443")
        XCTAssertEqual(access.namespace, "web")
        XCTAssertEqual(access.trust, .certificateAuthority(Array("CA-PEM".utf8)))
        guard case .tokenFile(let path) = access.credential else { return XCTFail("\(access.credential)") }
        XCTAssertEqual(path, directory.file("token"))
        let ipv6 = try KubernetesAccess.inCluster(directory: directory.path, environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"])
        XCTAssertEqual(ipv6.server, "https://[fd00::1]:443")
        XCTAssertThrowsError(try KubernetesAccess.inCluster(directory: directory.path, environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("KUBERNETES_SERVICE_HOST"), "\(error)")
        }
    }
}
