import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// A leaf certificate, the chain that leads to its issuer, and the private key, checked to belong
/// together. Building one is the preflight every deploy starts with.
///
/// The key is held only in memory; `description` never shows it.
public struct CertificateBundle: Sendable, CustomStringConvertible, CustomReflectable {
    /// What the leaf is, for records and messages.
    public let info: CertificateInfo
    /// The leaf, PEM.
    public let leafPEM: String
    /// Intermediates in order (leaf's issuer first), PEM; a self-signed root is never included.
    public let chainPEM: String
    /// Leaf followed by the chain: what a server sends in its Certificate message.
    public var fullChainPEM: String { leafPEM + chainPEM }
    /// The private key as given (PKCS#8 or traditional form), PEM. A secret.
    public let privateKeyPEM: String
    /// The issuer certificate of the leaf, when the chain holds it (needed for OCSP).
    public let issuerPEM: String?
    /// The self-signed root, when the input held it. Never served; some vendors need it to verify
    /// OCSP responses (nginx `ssl_stapling_verify`).
    public let rootPEM: String?
    /// Things an operator should know that did not stop the deploy (reordered chain, dropped root, near expiry).
    public let notes: [String]

    let leaf: Certificate
    let chain: [Certificate]

    /// DER of the leaf.
    public var leafDER: [UInt8] { leaf.derBytes }
    /// DER of the leaf's issuer, when the chain holds it: OCSP requests and responses are checked against it.
    public var issuerDER: [UInt8]? { chain.first?.derBytes }

    /// `dump()` and debuggers see the certificate facts, never the key.
    public var customMirror: Mirror {
        Mirror(self, children: ["info": info, "chainLength": chain.count, "privateKeyPEM": Redactor.placeholder, "notes": notes])
    }

    public var description: String { "CertificateBundle(\(info.shortDescription), chain: \(chain.count), key: <redacted>)" }

    /// Leaves expiring sooner than this get a warning note.
    public static let expiryWarningWindow: TimeInterval = 7 * 86400

    /// Parses and checks a bundle.
    ///
    /// - Parameters:
    ///   - certificatePEM: the leaf, optionally followed by its chain (a `fullchain.pem`).
    ///   - chainPEM: more chain certificates, in any order.
    ///   - privateKeyPEM: the leaf's key: PKCS#8 `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`.
    ///   - now: the time validity is checked against.
    /// - Throws: ``BundleError`` naming the certificate or key that is wrong.
    public static func parse(
        certificatePEM: String,
        chainPEM: String? = nil,
        privateKeyPEM: String,
        now: Date = Date()
    ) throws(BundleError) -> CertificateBundle {
        let certificateBlocks = try PEMScanner.blocks(in: certificatePEM, source: "certificate")
            .filter { $0.label == "CERTIFICATE" || $0.label == "TRUSTED CERTIFICATE" }
        guard !certificateBlocks.isEmpty else {
            throw BundleError(.noCertificate, "certificate: no \"BEGIN CERTIFICATE\" block found")
        }
        let chainBlocks = try chainPEM.map { chainText throws(BundleError) in
            try PEMScanner.blocks(in: chainText, source: "chain").filter { $0.label == "CERTIFICATE" }
        } ?? []

        var certificates: [Certificate] = []
        for (index, block) in (certificateBlocks + chainBlocks).enumerated() {
            let source = index < certificateBlocks.count ? "certificate #\(index + 1)" : "chain certificate #\(index - certificateBlocks.count + 1)"
            guard let der = block.der else {
                throw BundleError(.malformedPEM, "\(source): the base64 body does not decode")
            }
            do {
                certificates.append(try Certificate(derEncoded: der))
            } catch CryptoKitError.incorrectParameterSize {
                // swift-crypto refuses RSA public keys under 2048 bits while the certificate is parsed.
                throw BundleError(.unsupportedKey, "\(source) has an RSA key under 2048 bits; supported sizes are 2048 to 4096 bits")
            } catch {
                throw BundleError(.malformedPEM, "\(source) is not a valid X.509 certificate: \(error)")
            }
        }

        let key = try parsePrivateKey(privateKeyPEM)
        let keyPublic = key.key.publicKey

        guard let leafIndex = certificates.firstIndex(where: { $0.publicKey == keyPublic }) else {
            throw BundleError(.keyMismatch, "private key does not match certificate \(certificates[0].shortDescription)")
        }
        var notes: [String] = []
        let leaf = certificates[leafIndex]
        if leafIndex != 0 {
            notes.append("the certificate matching the key was #\(leafIndex + 1) in the input; it is used as the leaf")
        }
        try checkKeyStrength(leaf)

        // Build the path leaf → issuer → … by name and signature, whatever order the input had.
        var remaining = certificates
        remaining.remove(at: leafIndex)
        let inputOrder = remaining
        var ordered: [Certificate] = []
        var current = leaf
        while !current.isSelfIssued, let nextIndex = remaining.firstIndex(where: { $0.subject == current.issuer }) {
            let next = remaining[nextIndex]
            guard next.publicKey.isValidSignature(current.signature, for: current) else {
                throw BundleError(.brokenChain, "certificate \(current.shortDescription) is not signed by \(next.shortDescription), although it names it as issuer")
            }
            ordered.append(next)
            remaining.remove(at: nextIndex)
            current = next
        }
        if let stray = remaining.first {
            throw BundleError(.brokenChain, "chain certificate \(stray.shortDescription) is not on the path from the leaf to its root (leaf issuer: \(leaf.issuer))")
        }
        if ordered != inputOrder {
            notes.append("chain was reordered to leaf → issuer order: " + ordered.map { $0.subject.description }.joined(separator: " → "))
        }
        var root: Certificate?
        if ordered.last?.isSelfIssued == true {
            // Not a note: a root passed along is the right setup for vendors that verify staples (nginx), and is never
            // sent to clients (they trust their own roots); warning about it would land on the working setup.
            root = ordered.removeLast()
        }

        for certificate in [leaf] + ordered {
            let role = certificate == leaf ? "certificate" : "chain certificate"
            if certificate.notValidBefore > now {
                throw BundleError(.notYetValid, "\(role) \(certificate.shortDescription) is not valid until \(isoFormat(certificate.notValidBefore))")
            }
            if certificate.notValidAfter < now {
                throw BundleError(.expired, "\(role) \(certificate.shortDescription) expired on \(isoFormat(certificate.notValidAfter))")
            }
        }
        if leaf.notValidAfter.timeIntervalSince(now) < expiryWarningWindow {
            notes.append("certificate expires soon: \(isoFormat(leaf.notValidAfter))")
        }

        let issuer = ordered.first ?? certificates.first(where: { $0.subject == leaf.issuer && $0 != leaf })
        return CertificateBundle(
            info: leaf.info,
            leafPEM: pem(leaf),
            chainPEM: ordered.map(pem).joined(),
            privateKeyPEM: key.pem,
            issuerPEM: issuer.map(pem),
            rootPEM: root.map(pem),
            notes: notes,
            leaf: leaf,
            chain: ordered
        )
    }

    /// `rootDER` as PEM when it is a self-signed certificate that issued the top of `bundle`'s chain (nil otherwise).
    public static func rootPEM(der rootDER: [UInt8], issuing bundle: CertificateBundle) -> String? {
        guard let root = try? Certificate(derEncoded: rootDER), root.isSelfIssued, root.subject == (bundle.chain.last ?? bundle.leaf).issuer
        else { return nil }
        return pem(root)
    }

    /// DER of the chain's last certificate (the leaf when there is no chain): the one a root must have issued.
    public var topOfChainDER: [UInt8] { (chain.last ?? leaf).derBytes }

    private static func pem(_ certificate: Certificate) -> String {
        PEMBlock(label: "CERTIFICATE", headers: [], base64: Data(certificate.derBytes).base64EncodedString()).canonicalText
    }

    private static func isoFormat(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }

    private static let keyLabels: Set<String> = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]

    private static func parsePrivateKey(_ text: String) throws(BundleError) -> (key: Certificate.PrivateKey, pem: String) {
        let blocks = try PEMScanner.blocks(in: text, source: "private key")
        if blocks.contains(where: { $0.label == "ENCRYPTED PRIVATE KEY" || $0.headers.contains { $0.contains("ENCRYPTED") } }) {
            throw BundleError(.encryptedKey, "private key is encrypted with a passphrase; give certdeploy the unencrypted key (e.g. `openssl pkey -in key.pem -out plain.pem`)")
        }
        guard let block = blocks.first(where: { keyLabels.contains($0.label) }) else {
            let found = blocks.map(\.label)
            throw BundleError(.noPrivateKey, found.isEmpty
                ? "private key: no PEM block found"
                : "private key: expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block, found \(found.joined(separator: ", "))")
        }
        do {
            return (try Certificate.PrivateKey(pemEncoded: block.canonicalText), block.canonicalText)
        } catch {
            throw BundleError(.unsupportedKey, "private key (\(block.label)) could not be read: \(error); supported: RSA 2048–4096, ECDSA P-256/P-384, Ed25519")
        }
    }

    private static func checkKeyStrength(_ leaf: Certificate) throws(BundleError) {
        if let rsa = _RSA.Signing.PublicKey(leaf.publicKey) {
            guard (2048...4096).contains(rsa.keySizeInBits) else {
                throw BundleError(.unsupportedKey, "certificate \(leaf.shortDescription) has an RSA \(rsa.keySizeInBits)-bit key; supported sizes are 2048 to 4096 bits")
            }
        }
    }

    /// Lowercase hex SHA-256 of the leaf's DER: what verify compares with the served certificate.
    public var leafSHA256: String { info.sha256 }
}
