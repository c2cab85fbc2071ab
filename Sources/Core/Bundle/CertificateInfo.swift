import Crypto
import Foundation
import SwiftASN1
import X509

/// What certdeploy records about a leaf certificate: enough to identify it in logs, step records and
/// the API without ever touching key material.
public struct CertificateInfo: Codable, Sendable, Equatable {
    public var subject: String
    public var issuer: String
    public var serialNumberHex: String
    /// DNS names and IP addresses from the Subject Alternative Name extension.
    public var subjectAlternativeNames: [String]
    /// Lowercase hex SHA-256 of the DER certificate: the identity certdeploy compares on targets.
    public var sha256: String
    public var notBefore: Date
    public var notAfter: Date
    /// The AIA OCSP responder URL, when the CA publishes one.
    public var ocspURL: String?
    /// The leaf carries the TLS Feature extension with `status_request` (RFC 7633 "Must-Staple").
    public var mustStaple: Bool
    public var keyAlgorithm: String

    /// "CN=example.com (SHA-256 ab12cd34…)": how messages name a certificate.
    public var shortDescription: String {
        "\(subject) (SHA-256 \(sha256.prefix(16))…)"
    }
}

extension Certificate {
    /// DER encoding of the whole certificate.
    var derBytes: [UInt8] {
        var serializer = DER.Serializer()
        // Serialising a certificate that was parsed or built by swift-certificates cannot fail.
        try? serializer.serialize(self)
        return serializer.serializedBytes
    }

    var sha256Hex: String { SHA256.hash(data: derBytes).hexString }

    var isSelfIssued: Bool { subject == issuer }

    var shortDescription: String { "\(subject) (SHA-256 \(sha256Hex.prefix(16))…)" }

    /// TLS Feature (RFC 7633), OID 1.3.6.1.5.5.7.1.24; its value is a SEQUENCE OF INTEGER where 5 is status_request.
    static let tlsFeatureOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 24]
    static let statusRequestFeature = 5

    var hasMustStaple: Bool {
        guard let ext = extensions[oid: Self.tlsFeatureOID] else { return false }
        guard let node = try? DER.parse(ext.value),
            let features = try? DER.sequence(of: Int.self, identifier: .sequence, rootNode: node)
        else { return false }
        return features.contains(Self.statusRequestFeature)
    }

    var ocspResponderURL: String? {
        guard let aia = try? extensions.authorityInformationAccess else { return nil }
        for description in aia where description.method == .ocspServer {
            if case .uniformResourceIdentifier(let url) = description.location { return url }
        }
        return nil
    }

    var subjectAlternativeNameStrings: [String] {
        guard let sans = try? extensions.subjectAlternativeNames else { return [] }
        return sans.compactMap { name in
            switch name {
            case .dnsName(let dns): return dns
            case .ipAddress(let bytes): return Self.formatIP(Array(bytes.bytes))
            default: return nil
            }
        }
    }

    private static func formatIP(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: bytes.count, by: 2).map { i in
            String(format: "%x", (UInt16(bytes[i]) << 8) | UInt16(bytes[min(i + 1, bytes.count - 1)]))
        }.joined(separator: ":")
    }

    var info: CertificateInfo {
        CertificateInfo(
            subject: subject.description,
            issuer: issuer.description,
            serialNumberHex: serialNumber.bytes.map { String(format: "%02x", $0) }.joined(),
            subjectAlternativeNames: subjectAlternativeNameStrings,
            sha256: sha256Hex,
            notBefore: notValidBefore,
            notAfter: notValidAfter,
            ocspURL: ocspResponderURL,
            mustStaple: hasMustStaple,
            keyAlgorithm: String(describing: publicKey).replacingOccurrences(of: ".PublicKey", with: "")
        )
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hex.
    public var hexString: String {
        var result = ""
        for byte in self {
            result += String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }
        return result
    }
}

extension Digest {
    var hexString: String { Array(self).hexString }
}

/// SHA-256 for connectors, which import Core only.
public enum Checksum {
    /// Lowercase hex SHA-256 of `bytes`.
    public static func sha256Hex(_ bytes: some DataProtocol) -> String {
        SHA256.hash(data: bytes).hexString
    }
}

extension CertificateInfo {
    /// The facts of the first certificate in `pem` (the leaf of a stored bundle), without its key.
    public init(leafPEM pem: String) throws {
        let block = try PEMScanner.blocks(in: pem, source: "certificate").first { $0.label == "CERTIFICATE" }
        guard let der = block?.der else { throw BundleError(.noCertificate, "no CERTIFICATE block in the PEM") }
        do {
            self = try Certificate(derEncoded: der).info
        } catch {
            throw BundleError(.malformedPEM, "the certificate does not parse: \(error)")
        }
    }
}
