import CertdeployAPI
import ConnectorTestSupport
import Core
import Foundation
import TestSupport

/// A real nginx behind a real sshd on loopback, with a CA to issue leaves, and helpers to build API bodies.
public final class NginxSite {
    public let directory: TemporaryDirectory
    public let ca: TestCertificateAuthority
    public let sshd: SSHServer
    public let nginx: NginxServer
    public let userKey: SSHUserKey
    public let oldLeaf: TestIssuedCertificate
    public let certificatePath: String
    public let keyPath: String
    public let snippetPath: String

    public init() throws {
        try Services.require(["sshd", "nginx", "ssh-keygen"])
        directory = try TemporaryDirectory(prefix: "certdeploy-server-nginx")
        ca = try TestCertificateAuthority()
        oldLeaf = try TestCertificateAuthority.selfSigned(commonName: "old.example.test", dnsNames: ["example.test"])
        _ = try directory.makeDirectory("tls", mode: 0o755)
        certificatePath = directory.file("tls/example.pem")
        keyPath = directory.file("tls/example.key")
        snippetPath = directory.file("tls/certdeploy.conf")
        _ = try directory.write("tls/example.pem", oldLeaf.certificatePEM, mode: 0o644)
        _ = try directory.write("tls/example.key", oldLeaf.privateKeyPKCS8PEM, mode: 0o600)
        _ = try directory.write("tls/certdeploy.conf", "ssl_certificate \(certificatePath);\nssl_certificate_key \(keyPath);\n", mode: 0o644)
        nginx = try NginxServer.start(certificatePath: certificatePath, keyPath: keyPath, includeSnippetPath: snippetPath, in: directory)
        sshd = try SSHServer.start()
        userKey = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(userKey)
    }

    deinit {
        nginx.stop()
        sshd.stop()
    }

    /// The `ssh` section of a target, key inline (a secret the server must encrypt and never show).
    public func ssh(fingerprint: String? = nil, port: Int? = nil) -> JSONValue {
        .object([
            "host": .string(sshd.host), "port": .number(Double(port ?? Int(sshd.port))), "user": .string("root"),
            "privateKey": .string(userKey.privateKeyPEM), "hostKeyFingerprint": .string(fingerprint ?? sshd.hostKeyFingerprint),
            "connectTimeoutSeconds": .number(3), "commandTimeoutSeconds": .number(20),
        ])
    }

    public func config(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
        var object: [String: JSONValue] = [
            "certificatePath": .string(certificatePath), "keyPath": .string(keyPath), "snippetPath": .string(snippetPath),
            "validateCommand": .array(nginx.validateCommand.map(JSONValue.string)),
            "reloadCommand": .array(nginx.reloadCommand.map(JSONValue.string)),
            "verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(nginx.port)), "serverName": .string("example.test"),
                               "timeoutSeconds": .number(5)]),
        ]
        object.merge(overrides) { $1 }
        return .object(object)
    }

    public func target(name: String, labels: [String: String] = [:], certificate: String? = nil, ssh: JSONValue? = nil,
                config: JSONValue? = nil) -> TargetInput {
        TargetInput(name: name, connector: "nginx", labels: labels, certificate: certificate, ssh: ssh ?? self.ssh(), config: config ?? self.config())
    }

    public func upload(_ leaf: TestIssuedCertificate, name: String) -> CertificateUpload {
        CertificateUpload(name: name, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
    }

    /// The leaf nginx serves once it settled.
    public func served(expecting expected: String? = nil) async throws -> String? {
        try await servedAfterSettling(port: nginx.port, expecting: expected).leafSHA256
    }
}

