// A test certificate authority for the test suite: a self-signed root, one intermediate,
// an OCSP responder certificate, and leaves of every key type the project supports.
//
// Everything is generated in memory with swift-certificates / swift-crypto; nothing here
// shells out. The files written by `writeFiles(to:)` are laid out so that the real
// `openssl ocsp -index ... -rsigner ocsp.pem -rkey ocsp.key -CA intermediate.pem` can answer
// OCSP requests for leaves issued by `issueLeaf(_:)`.

import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// Key algorithms a test certificate can carry.
public enum TestKeyType: Sendable, CaseIterable {
    case ecdsaP256, ecdsaP384, rsa2048, rsa3072, rsa4096, ed25519
}

/// Errors thrown by the test CA.
public enum TestCertificateAuthorityError: Error, Sendable, CustomStringConvertible {
    /// Ed25519 keys have no "traditional" (pre-PKCS#8) PEM form.
    case noTraditionalForm(TestKeyType)
    case fileWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .noTraditionalForm(let type):
            return "keys of type \(type) have no traditional PEM form (PKCS#8 only)"
        case .fileWrite(let path, let reason):
            return "could not write \(path): \(reason)"
        }
    }
}

/// A certificate together with its private key, in the forms tests need.
public struct TestIssuedCertificate: Sendable {
    public let certificate: Certificate
    public let privateKey: Certificate.PrivateKey
    /// PEM of this certificate only, ending with a newline.
    public let certificatePEM: String
    /// The private key as PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"), ending with a newline.
    public let privateKeyPKCS8PEM: String
    /// The key algorithm of `privateKey`.
    public let keyType: TestKeyType
    /// DER encoding of the certificate.
    public let derBytes: [UInt8]

    private let traditionalPEM: String?

    /// The private key in its traditional PEM form: PKCS#1 "RSA PRIVATE KEY" for RSA,
    /// SEC1 "EC PRIVATE KEY" (with curve OID and public key) for ECDSA.
    /// Throws for Ed25519, which has no traditional form.
    public func privateKeyTraditionalPEM() throws -> String {
        guard let traditionalPEM else { throw TestCertificateAuthorityError.noTraditionalForm(keyType) }
        return traditionalPEM
    }

    /// Lowercase hex SHA-256 of the certificate DER.
    public var sha256Hex: String {
        TestHex.encode(SHA256.hash(data: derBytes))
    }

    fileprivate init(certificate: Certificate, key: TestKeyMaterial) throws {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        self.certificate = certificate
        self.privateKey = key.certificateKey
        self.keyType = key.type
        self.derBytes = serializer.serializedBytes
        self.certificatePEM = TestPEM.terminated(try certificate.serializeAsPEM().pemString)
        self.privateKeyPKCS8PEM = TestPEM.terminated(try key.pkcs8PEM())
        self.traditionalPEM = try key.traditionalPEM().map(TestPEM.terminated)
    }
}

/// A root CA (self-signed, P-256) with one intermediate (P-256, pathlen 0) and an OCSP
/// responder certificate issued by the intermediate.
public final class TestCertificateAuthority: Sendable {
    public let root: TestIssuedCertificate
    public let intermediate: TestIssuedCertificate
    /// OCSP signing certificate issued by the intermediate: EKU OCSPSigning (non-critical;
    /// swift-certificates rejects a critical EKU), KeyUsage digitalSignature.
    public let ocspResponder: TestIssuedCertificate

    /// Root CA (self-signed, P-256, CA:true) and one intermediate (P-256, CA:true pathlen 0) signed by it.
    public init(name: String = "certdeploy Test") throws {
        let now = Date()
        let caNotBefore = now.addingTimeInterval(-86400)
        let caNotAfter = now.addingTimeInterval(10 * 365 * 86400)

        // Root.
        let rootKey = try TestKeyMaterial.generate(.ecdsaP256)
        let rootName = try DistinguishedName {
            OrganizationName("certdeploy tests")
            CommonName("\(name) Root CA")
        }
        let rootPublic = rootKey.certificateKey.publicKey
        let rootCert = try Certificate(
            version: .v3,
            serialNumber: Self.randomSerial(),
            publicKey: rootPublic,
            notValidBefore: caNotBefore,
            notValidAfter: caNotAfter,
            issuer: rootName,
            subject: rootName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: rootPublic)
            },
            issuerPrivateKey: rootKey.certificateKey
        )
        let root = try TestIssuedCertificate(certificate: rootCert, key: rootKey)

        // Intermediate.
        let intermediateKey = try TestKeyMaterial.generate(.ecdsaP256)
        let intermediateName = try DistinguishedName {
            OrganizationName("certdeploy tests")
            CommonName("\(name) Intermediate CA")
        }
        let intermediatePublic = intermediateKey.certificateKey.publicKey
        let intermediateCert = try Certificate(
            version: .v3,
            serialNumber: Self.randomSerial(),
            publicKey: intermediatePublic,
            notValidBefore: caNotBefore,
            notValidAfter: caNotAfter,
            issuer: rootName,
            subject: intermediateName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: intermediatePublic)
                try Self.authorityKeyIdentifier(of: rootCert)
            },
            issuerPrivateKey: rootKey.certificateKey
        )
        let intermediate = try TestIssuedCertificate(certificate: intermediateCert, key: intermediateKey)

        // OCSP responder, issued by the intermediate.
        let ocspKey = try TestKeyMaterial.generate(.ecdsaP256)
        let ocspPublic = ocspKey.certificateKey.publicKey
        let ocspCert = try Certificate(
            version: .v3,
            serialNumber: Self.randomSerial(),
            publicKey: ocspPublic,
            notValidBefore: caNotBefore,
            notValidAfter: caNotAfter,
            issuer: intermediateName,
            subject: try DistinguishedName {
                OrganizationName("certdeploy tests")
                CommonName("\(name) OCSP Responder")
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.ocspSigning])  // non-critical on purpose
                SubjectKeyIdentifier(hash: ocspPublic)
                try Self.authorityKeyIdentifier(of: intermediateCert)
            },
            issuerPrivateKey: intermediateKey.certificateKey
        )
        let ocspResponder = try TestIssuedCertificate(certificate: ocspCert, key: ocspKey)

        self.root = root
        self.intermediate = intermediate
        self.ocspResponder = ocspResponder
        TestTrustStore.trust(root.certificatePEM)
    }

    public struct LeafOptions: Sendable {
        public var commonName: String = "example.test"
        /// Empty means no SubjectAlternativeName extension at all.
        public var dnsNames: [String] = ["example.test"]
        public var keyType: TestKeyType = .ecdsaP256
        /// Adds AuthorityInformationAccess with this OCSP responder location.
        public var ocspURL: String? = nil
        /// Adds the TLS Feature extension (1.3.6.1.5.5.7.1.24) with status_request, non-critical.
        public var mustStaple: Bool = false
        public var notBefore: Date = Date().addingTimeInterval(-3600)
        public var notAfter: Date = Date().addingTimeInterval(90 * 86400)
        /// Random if nil.
        public var serialNumber: Certificate.SerialNumber? = nil
        public init() {}
    }

    /// A leaf issued by the intermediate: KeyUsage digitalSignature (+keyEncipherment for RSA),
    /// EKU serverAuth, SAN dnsNames, BasicConstraints CA:false, SubjectKeyIdentifier, AuthorityKeyIdentifier.
    public func issueLeaf(_ options: LeafOptions = .init()) throws -> TestIssuedCertificate {
        let key = try TestKeyMaterial.generate(options.keyType)
        let publicKey = key.certificateKey.publicKey
        let issuerCert = intermediate.certificate
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(Self.leafKeyUsage(options.keyType))
            try ExtendedKeyUsage([.serverAuth])
            if !options.dnsNames.isEmpty {
                SubjectAlternativeNames(options.dnsNames.map { GeneralName.dnsName($0) })
            }
            SubjectKeyIdentifier(hash: publicKey)
            try Self.authorityKeyIdentifier(of: issuerCert)
            if let ocspURL = options.ocspURL {
                AuthorityInformationAccess([
                    .init(method: .ocspServer, location: .uniformResourceIdentifier(ocspURL))
                ])
            }
            if options.mustStaple {
                try Self.tlsFeatureStatusRequest()
            }
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: options.serialNumber ?? Self.randomSerial(),
            publicKey: publicKey,
            notValidBefore: options.notBefore,
            notValidAfter: options.notAfter,
            issuer: issuerCert.subject,
            subject: try DistinguishedName { CommonName(options.commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,  // the intermediate's key is P-256
            extensions: extensions,
            issuerPrivateKey: intermediate.privateKey
        )
        return try TestIssuedCertificate(certificate: certificate, key: key)
    }

    /// A self-signed leaf (no CA) for "some other certificate" cases.
    public static func selfSigned(
        commonName: String,
        dnsNames: [String],
        keyType: TestKeyType = .ecdsaP256
    ) throws -> TestIssuedCertificate {
        let key = try TestKeyMaterial.generate(keyType)
        let publicKey = key.certificateKey.publicKey
        let name = try DistinguishedName { CommonName(commonName) }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Self.randomSerial(),
            publicKey: publicKey,
            notValidBefore: Date().addingTimeInterval(-3600),
            notValidAfter: Date().addingTimeInterval(90 * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: key.signatureAlgorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(Self.leafKeyUsage(keyType))
                try ExtendedKeyUsage([.serverAuth])
                if !dnsNames.isEmpty {
                    SubjectAlternativeNames(dnsNames.map { GeneralName.dnsName($0) })
                }
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: key.certificateKey
        )
        let issued = try TestIssuedCertificate(certificate: certificate, key: key)
        TestTrustStore.trust(issued.certificatePEM)
        return issued
    }

    /// PEM of the intermediate: the chain as a server should send it (no root).
    public var chainPEM: String {
        intermediate.certificatePEM
    }

    /// Writes root.pem, intermediate.pem, ocsp.pem, ocsp.key (PKCS#8) and an empty OpenSSL CA
    /// `index.txt` (plus `index.txt.attr`) into `directory`, creating it if needed; returns the paths.
    /// An existing index.txt is truncated.
    @discardableResult
    public func writeFiles(
        to directory: String
    ) throws -> (root: String, intermediate: String, ocspCert: String, ocspKey: String, index: String) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let dir = URL(fileURLWithPath: directory)
        let rootPath = dir.appendingPathComponent("root.pem").path
        let intermediatePath = dir.appendingPathComponent("intermediate.pem").path
        let ocspCertPath = dir.appendingPathComponent("ocsp.pem").path
        let ocspKeyPath = dir.appendingPathComponent("ocsp.key").path
        let indexPath = dir.appendingPathComponent("index.txt").path

        try Self.write(root.certificatePEM, to: rootPath)
        try Self.write(intermediate.certificatePEM, to: intermediatePath)
        try Self.write(ocspResponder.certificatePEM, to: ocspCertPath)
        try Self.write(ocspResponder.privateKeyPKCS8PEM, to: ocspKeyPath, permissions: 0o600)
        try Self.write("", to: indexPath)
        try Self.write("unique_subject = no\n", to: indexPath + ".attr")
        return (rootPath, intermediatePath, ocspCertPath, ocspKeyPath, indexPath)
    }

    /// Appends a line for `leaf` to an OpenSSL CA `index.txt`:
    /// `status \t expiry(YYMMDDHHMMSSZ) \t revocation-date-or-empty \t SERIAL-HEX \t unknown \t /CN=...`,
    /// status "V", or "R" revoked now. Creates the file if it does not exist.
    public static func appendIndexEntry(path: String, leaf: TestIssuedCertificate, revoked: Bool) throws {
        let expiry = indexTime(leaf.certificate.notValidAfter)
        let revocation = revoked ? indexTime(Date()) : ""
        let serial = indexSerial(leaf.certificate.serialNumber)
        let subject = "/" + leaf.certificate.subject.map { $0.description }.joined(separator: "/")
        let line = [revoked ? "R" : "V", expiry, revocation, serial, "unknown", subject].joined(separator: "\t") + "\n"

        if !FileManager.default.fileExists(atPath: path) {
            try write("", to: path)
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TestCertificateAuthorityError.fileWrite(path: path, reason: "cannot open for appending")
        }
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(line.utf8))
    }

    // MARK: - Helpers

    /// A random positive 16-byte serial (top bit clear, first byte non-zero), so the DER INTEGER is
    /// exactly 16 octets. `Certificate.SerialNumber()` draws 20 random bytes, which encode as 21
    /// octets (over RFC 5280's 20) whenever the top bit is set.
    private static func randomSerial() -> Certificate.SerialNumber {
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes[0] = (bytes[0] & 0x7f) | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }

    private static func leafKeyUsage(_ keyType: TestKeyType) -> KeyUsage {
        switch keyType {
        case .rsa2048, .rsa3072, .rsa4096:
            return KeyUsage(digitalSignature: true, keyEncipherment: true)
        case .ecdsaP256, .ecdsaP384, .ed25519:
            return KeyUsage(digitalSignature: true)
        }
    }

    /// AuthorityKeyIdentifier pointing at `issuer`'s SubjectKeyIdentifier.
    private static func authorityKeyIdentifier(of issuer: Certificate) throws -> AuthorityKeyIdentifier {
        let keyID =
            try issuer.extensions.subjectKeyIdentifier?.keyIdentifier
            ?? SubjectKeyIdentifier(hash: issuer.publicKey).keyIdentifier
        return AuthorityKeyIdentifier(keyIdentifier: keyID)
    }

    /// TLS Feature (RFC 7633) with status_request(5): DER `SEQUENCE OF INTEGER { 5 }`, non-critical.
    private static func tlsFeatureStatusRequest() throws -> Certificate.Extension {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(5)
        }
        return Certificate.Extension(
            oid: [1, 3, 6, 1, 5, 5, 7, 1, 24],
            critical: false,
            value: serializer.serializedBytes[...]
        )
    }

    /// OpenSSL index.txt time: UTCTime `YYMMDDHHMMSSZ`.
    private static func indexTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String {
            let v = value ?? 0
            return v < 10 ? "0\(v)" : "\(v)"
        }
        return two((c.year ?? 2000) % 100) + two(c.month) + two(c.day) + two(c.hour) + two(c.minute)
            + two(c.second) + "Z"
    }

    /// The serial as OpenSSL's `BN_bn2hex` prints it (what `openssl ocsp -index` looks up):
    /// uppercase, two digits per byte, no leading zero bytes, "00" for zero.
    private static func indexSerial(_ serial: Certificate.SerialNumber) -> String {
        let bytes = serial.bytes.drop(while: { $0 == 0 })
        return bytes.isEmpty ? "00" : TestHex.encode(bytes).uppercased()
    }

    private static func write(_ contents: String, to path: String, permissions: Int? = nil) throws {
        var attributes: [FileAttributeKey: Any]? = nil
        if let permissions { attributes = [.posixPermissions: permissions] }
        if FileManager.default.fileExists(atPath: path) {
            try FileManager.default.removeItem(atPath: path)
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: attributes)
        else {
            throw TestCertificateAuthorityError.fileWrite(path: path, reason: "createFile failed")
        }
    }
}

// MARK: - Key material

/// The concrete key behind a `Certificate.PrivateKey`, kept so the PKCS#8 and traditional forms
/// can be produced (X509's `serializeAsPEM()` gives PKCS#1 for RSA, not PKCS#8).
private enum TestKeyMaterial {
    case p256(P256.Signing.PrivateKey)
    case p384(P384.Signing.PrivateKey)
    case rsa(_RSA.Signing.PrivateKey, TestKeyType)
    case ed25519(Curve25519.Signing.PrivateKey)

    static func generate(_ type: TestKeyType) throws -> TestKeyMaterial {
        switch type {
        case .ecdsaP256: return .p256(P256.Signing.PrivateKey())
        case .ecdsaP384: return .p384(P384.Signing.PrivateKey())
        case .rsa2048: return .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048), type)
        case .rsa3072: return .rsa(try _RSA.Signing.PrivateKey(keySize: .bits3072), type)
        case .rsa4096: return .rsa(try _RSA.Signing.PrivateKey(keySize: .bits4096), type)
        case .ed25519: return .ed25519(Curve25519.Signing.PrivateKey())
        }
    }

    var type: TestKeyType {
        switch self {
        case .p256: return .ecdsaP256
        case .p384: return .ecdsaP384
        case .rsa(_, let type): return type
        case .ed25519: return .ed25519
        }
    }

    var certificateKey: Certificate.PrivateKey {
        switch self {
        case .p256(let key): return Certificate.PrivateKey(key)
        case .p384(let key): return Certificate.PrivateKey(key)
        case .rsa(let key, _): return Certificate.PrivateKey(key)
        case .ed25519(let key): return Certificate.PrivateKey(key)
        }
    }

    /// The algorithm this key signs with when it is the issuer (self-signed certificates).
    var signatureAlgorithm: Certificate.SignatureAlgorithm {
        switch self {
        case .p256: return .ecdsaWithSHA256
        case .p384: return .ecdsaWithSHA384
        case .rsa: return .sha256WithRSAEncryption
        case .ed25519: return .ed25519
        }
    }

    func pkcs8PEM() throws -> String {
        switch self {
        case .p256(let key): return key.pemRepresentation  // PKCS#8 "PRIVATE KEY"
        case .p384(let key): return key.pemRepresentation  // PKCS#8 "PRIVATE KEY"
        case .rsa(let key, _): return key.pkcs8PEMRepresentation
        case .ed25519: return try certificateKey.serializeAsPEM().pemString  // PKCS#8 "PRIVATE KEY"
        }
    }

    func traditionalPEM() throws -> String? {
        switch self {
        case .p256(let key):
            return try Self.sec1PEM(
                privateKey: key.rawRepresentation,
                publicKeyX963: key.publicKey.x963Representation,
                curve: .NamedCurves.secp256r1
            )
        case .p384(let key):
            return try Self.sec1PEM(
                privateKey: key.rawRepresentation,
                publicKeyX963: key.publicKey.x963Representation,
                curve: .NamedCurves.secp384r1
            )
        case .rsa(let key, _):
            return key.pemRepresentation  // PKCS#1 "RSA PRIVATE KEY"
        case .ed25519:
            return nil
        }
    }

    /// SEC1 ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
    /// [0] EXPLICIT curve OID, [1] EXPLICIT BIT STRING publicKey } as "EC PRIVATE KEY" PEM.
    private static func sec1PEM(privateKey: Data, publicKeyX963: Data, curve: ASN1ObjectIdentifier) throws -> String {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(1)
            try coder.serialize(ASN1OctetString(contentBytes: ArraySlice(privateKey)))
            try coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
                try coder.serialize(curve)
            }
            try coder.serialize(explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific) { coder in
                try coder.serialize(ASN1BitString(bytes: ArraySlice(publicKeyX963)))
            }
        }
        return PEMDocument(type: "EC PRIVATE KEY", derBytes: serializer.serializedBytes).pemString
    }
}

private enum TestPEM {
    static func terminated(_ pem: String) -> String {
        pem.hasSuffix("\n") ? pem : pem + "\n"
    }
}

private enum TestHex {
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef")
        var out = ""
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return out
    }
}
