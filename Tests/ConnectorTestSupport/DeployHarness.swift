import Core
import Foundation
import SSHTransport
import TestSupport
import XCTest

/// Everything a connector end-to-end test needs besides its vendor daemon: a real sshd with a user key,
/// a test CA whose files an OCSP responder serves, and a way to deploy through the real engine.
public final class DeployHarness: Sendable {
    public let directory: TemporaryDirectory
    public let ca: TestCertificateAuthority
    public let sshd: SSHServer
    public let userKey: SSHUserKey
    public let caFiles: (root: String, intermediate: String, ocspCert: String, ocspKey: String, index: String)
    public let ocsp: OCSPResponder

    public init(prefix: String, ocspValidityMinutes: Int? = nil) throws {
        try Services.require(["sshd", "ssh-keygen", "openssl"])
        directory = try TemporaryDirectory(prefix: prefix)
        ca = try TestCertificateAuthority()
        caFiles = try ca.writeFiles(to: directory.file("ca"))
        ocsp = try OCSPResponder.start(indexPath: caFiles.index, responderCertPath: caFiles.ocspCert, responderKeyPath: caFiles.ocspKey,
                                       issuerCertPath: caFiles.intermediate, validityMinutes: ocspValidityMinutes)
        sshd = try SSHServer.start()
        userKey = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(userKey)
    }

    deinit {
        ocsp.stop()
        sshd.stop()
    }

    public func sshTarget(user: String = "root", sudo: Bool = false) -> SSHTarget {
        SSHTarget(host: sshd.host, port: Int(sshd.port), user: user, privateKey: userKey.privateKeyPEM,
                  hostKeyFingerprint: sshd.hostKeyFingerprint, sudo: sudo, connectTimeoutSeconds: 5, commandTimeoutSeconds: 20)
    }

    /// A leaf from the test CA; with `ocsp` it names this harness's responder and is listed as good (or revoked).
    public func issueLeaf(ocsp: Bool = true, mustStaple: Bool = false, revoked: Bool = false, dnsNames: [String] = ["example.test"]) throws -> TestIssuedCertificate {
        var options = TestCertificateAuthority.LeafOptions()
        options.dnsNames = dnsNames
        options.commonName = dnsNames.first ?? "example.test"
        options.mustStaple = mustStaple
        if ocsp { options.ocspURL = self.ocsp.url }
        let leaf = try ca.issueLeaf(options)
        if ocsp { try TestCertificateAuthority.appendIndexEntry(path: caFiles.index, leaf: leaf, revoked: revoked) }
        return leaf
    }

    public func revoke(_ leaf: TestIssuedCertificate) throws {
        // OpenSSL's index lists a serial once; rewrite the line as revoked.
        let text = try String(contentsOfFile: caFiles.index, encoding: .utf8)
        let serial = leaf.certificate.serialNumber.bytes.map { String(format: "%02X", $0) }.joined()
        let kept = text.split(separator: "\n").filter { !$0.split(separator: "\t").contains { $0.uppercased().hasSuffix(serial) } }.joined(separator: "\n")
        try (kept.isEmpty ? "" : kept + "\n").write(toFile: caFiles.index, atomically: true, encoding: .utf8)
        try TestCertificateAuthority.appendIndexEntry(path: caFiles.index, leaf: leaf, revoked: true)
    }

    /// The bundle an operator would upload: leaf, intermediate (and the root when `includeRoot`), key.
    public func bundle(_ leaf: TestIssuedCertificate, includeRoot: Bool = false) throws -> CertificateBundle {
        try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM + (includeRoot ? ca.root.certificatePEM : ""),
                                    privateKeyPEM: leaf.privateKeyPKCS8PEM)
    }

    /// Deploys `leaf` with `connector`'s config through the real engine over the real sshd.
    public func deploy<Connector: DeploymentTarget>(
        _ connector: Connector.Type, config: JSONValue, leaf: TestIssuedCertificate, options: DeployOptions = .init(), ssh: SSHTarget? = nil,
        includeRoot: Bool = false
    ) async throws -> DeploymentResult {
        let configured = try ConnectorRegistry([connector]).connector(id: Connector.descriptor.id)!.configure(config)
        let target = ssh ?? sshTarget()
        let bundle = try bundle(leaf, includeRoot: includeRoot)
        return await DeployEngine(ocsp: OCSPFetcher(timeout: .seconds(3))).deploy(
            DeployRequest(targetID: "\(Connector.descriptor.id)-1", bundle: bundle, connector: configured,
                          context: PlanContext(targetID: "\(Connector.descriptor.id)-1", transportHost: sshd.host), options: options, secrets: target.secrets),
            connect: { try await SSHConnector().connect(target) })
    }

    /// What the server on `port` serves for SNI example.test once it has settled (see ``servedAfterSettling``).
    public func served(port: UInt16, expecting expected: String? = nil, requireStaple: Bool = false, serverName: String = "example.test") async throws -> TLSProbeResult {
        try await servedAfterSettling(port: port, expecting: expected, requireStaple: requireStaple, serverName: serverName)
    }

    /// A good staple for `leaf` from this harness's CA, as certdeploy would fetch it, valid for `validityMinutes`
    /// (one day when nil).
    public func fetchStaple(_ leaf: TestIssuedCertificate, validityMinutes: Int? = nil) throws -> OCSPStaple {
        let request = directory.file("req-\(UUID().uuidString).der")
        let response = directory.file("resp-\(UUID().uuidString).der")
        try ProcessRunner.runChecked("/usr/bin/openssl", ["ocsp", "-issuer", caFiles.intermediate, "-cert", directory.write("leaf-\(UUID().uuidString).pem", leaf.certificatePEM), "-no_nonce", "-reqout", request])
        try ProcessRunner.runChecked("/usr/bin/openssl", ["ocsp", "-index", caFiles.index, "-rsigner", caFiles.ocspCert, "-rkey", caFiles.ocspKey, "-CA", caFiles.intermediate, "-reqin", request, "-respout", response] + (validityMinutes.map { ["-nmin", String($0)] } ?? ["-ndays", "1"]))
        let der = try Array(Data(contentsOf: URL(fileURLWithPath: response)))
        return try OCSPStaple.check(der: der, leafDER: leaf.derBytes, issuerDER: ca.intermediate.derBytes)
    }

    /// The staple a server sent, checked as a client would check it.
    public func checkStaple(_ probe: TLSProbeResult, for leaf: TestIssuedCertificate) throws -> OCSPStaple {
        guard let der = probe.stapleDER else { throw HarnessError("no OCSP staple in the handshake") }
        return try OCSPStaple.check(der: der, leafDER: leaf.derBytes, issuerDER: ca.intermediate.derBytes)
    }
}

public func step(_ result: DeploymentResult, _ name: StepRecord.Name) -> StepRecord? {
    result.steps.last { $0.name == name }
}

/// Reads a file's bytes, or nil.
public func fileBytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }
