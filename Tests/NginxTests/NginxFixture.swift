import ConnectorTestSupport
import Core
import Foundation
import NginxConnector
import SSHTransport
import TestSupport
import XCTest

/// A real nginx behind a real sshd, both on loopback under a temp dir, with the files an operator
/// would have: an old certificate served now, and a snippet nginx includes.
final class NginxFixture {
    let directory: TemporaryDirectory
    let ca: TestCertificateAuthority
    let sshd: SSHServer
    let nginx: NginxServer
    let userKey: SSHUserKey
    let oldLeaf: TestIssuedCertificate
    let certificatePath: String
    let keyPath: String
    let snippetPath: String
    /// Where nginx listens: loopback, or the namespace's address.
    let verifyHost: String

    /// With `namespace`, nginx runs inside it and listens on its address only (sshd stays on loopback).
    init(sshOptions: SSHServer.Options = .init(), ca: TestCertificateAuthority? = nil, namespace: TestNetworkNamespace? = nil) throws {
        try Services.require(["sshd", "nginx", "ssh-keygen"])
        directory = try TemporaryDirectory(prefix: "certdeploy-nginx")
        self.ca = try ca ?? TestCertificateAuthority()
        oldLeaf = try TestCertificateAuthority.selfSigned(commonName: "old.example.test", dnsNames: ["example.test"])
        _ = try directory.makeDirectory("tls", mode: 0o755)
        certificatePath = directory.file("tls/example.pem")
        keyPath = directory.file("tls/example.key")
        snippetPath = directory.file("tls/certdeploy.conf")
        _ = try directory.write("tls/example.pem", oldLeaf.certificatePEM, mode: 0o644)
        _ = try directory.write("tls/example.key", oldLeaf.privateKeyPKCS8PEM, mode: 0o600)
        _ = try directory.write("tls/certdeploy.conf", "ssl_certificate \(certificatePath);\nssl_certificate_key \(keyPath);\n", mode: 0o644)
        nginx = try NginxServer.start(certificatePath: certificatePath, keyPath: keyPath, includeSnippetPath: snippetPath, in: directory,
                                      listenAddress: namespace?.namespaceAddress ?? "127.0.0.1", namespace: namespace)
        verifyHost = namespace?.namespaceAddress ?? "127.0.0.1"
        sshd = try SSHServer.start(options: sshOptions)
        userKey = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(userKey)
    }

    deinit {
        nginx.stop()
        sshd.stop()
    }

    func sshTarget(user: String = "root", key: SSHUserKey? = nil, fingerprint: String? = nil, sudo: Bool = false) -> SSHTarget {
        SSHTarget(host: sshd.host, port: Int(sshd.port), user: user, privateKey: (key ?? userKey).privateKeyPEM,
                  passphrase: (key ?? userKey).passphrase, hostKeyFingerprint: fingerprint ?? sshd.hostKeyFingerprint,
                  sudo: sudo, connectTimeoutSeconds: 5, commandTimeoutSeconds: 20)
    }

    /// The nginx connector config for this fixture, with overrides merged in.
    func config(_ overrides: [String: JSONValue] = [:], verify: [String: JSONValue] = [:]) -> JSONValue {
        var verifyObject: [String: JSONValue] = ["host": .string(verifyHost), "port": .number(Double(nginx.port)), "serverName": .string("example.test"), "timeoutSeconds": .number(5)]
        verifyObject.merge(verify) { $1 }
        var object: [String: JSONValue] = [
            "certificatePath": .string(certificatePath),
            "keyPath": .string(keyPath),
            "snippetPath": .string(snippetPath),
            "validateCommand": .array(nginx.validateCommand.map(JSONValue.string)),
            "reloadCommand": .array(nginx.reloadCommand.map(JSONValue.string)),
            "verify": .object(verifyObject),
        ]
        object.merge(overrides) { $1 }
        return .object(object)
    }

    func bundle(_ leaf: TestIssuedCertificate, withChain: Bool = true) throws -> CertificateBundle {
        try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: withChain ? ca.chainPEM : nil, privateKeyPEM: leaf.privateKeyPKCS8PEM)
    }

    func configured(_ config: JSONValue) throws -> ConfiguredConnector {
        let registry = try ConnectorRegistry([NginxConnector.self])
        return try registry.connector(id: "nginx")!.configure(config)
    }

    func deploy(_ leaf: TestIssuedCertificate, config: JSONValue? = nil, options: DeployOptions = .init(), ssh: SSHTarget? = nil,
                withChain: Bool = true) async throws -> DeploymentResult {
        let bundle = try bundle(leaf, withChain: withChain)
        let target = ssh ?? sshTarget()
        return await DeployEngine(ocsp: OCSPFetcher(timeout: .seconds(2))).deploy(
            DeployRequest(targetID: "web-1", bundle: bundle, connector: try configured(config ?? self.config()),
                          context: PlanContext(targetID: "web-1", transportHost: sshd.host), options: options, secrets: target.secrets),
            connect: { try await SSHConnector().connect(target) })
    }

    /// SHA-256 of the leaf nginx serves for SNI example.test once it has settled (see ``servedAfterSettling``).
    func servedLeaf(expecting expected: String? = nil) async throws -> String {
        try await servedAfterSettling(port: nginx.port, expecting: expected, timeout: .seconds(5), host: verifyHost).leafSHA256
    }

    /// Files in the TLS directory other than the live ones (temps, backups).
    func strayFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.file("tls")).filter { $0.contains("certdeploy-tmp") }.sorted()
    }

    func fileBytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    /// The live files, to compare before and after a failed deploy.
    func liveFiles() throws -> [Data] {
        try [certificatePath, keyPath, snippetPath].map(fileBytes)
    }
}

func step(_ result: DeploymentResult, _ name: StepRecord.Name) -> StepRecord? {
    result.steps.last { $0.name == name }
}
