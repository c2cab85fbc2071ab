import Crypto
import Foundation
import SwiftASN1
import X509

/// The fake cluster's CA, as kubeadm sets one up: one CA signs the API server's serving certificate (SANs
/// 127.0.0.1 and localhost) and the client certificates whose CN is the user name and O the groups
/// (Reference: "Authenticating", X509 client certificates).
public struct FakeClusterCA: Sendable {
    public let certificate: Certificate
    public let certificatePEM: String
    private let key: P256.Signing.PrivateKey

    public init(name: String = "fake-kubernetes-ca") throws {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(name) }
        let now = Date()
        certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(86400 * 30),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        certificatePEM = try certificate.serializeAsPEM().pemString + "\n"
        self.key = key
    }

    /// A certificate and PKCS#8 key (both PEM) issued by this CA.
    public func issue(commonName: String, organizations: [String] = [], dnsNames: [String] = [], ipAddresses: [[UInt8]] = [],
                      serverAuth: Bool = false, clientAuth: Bool = false) throws -> (certificatePEM: String, keyPEM: String) {
        let leafKey = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            for organization in organizations { OrganizationName(organization) }
            CommonName(commonName)
        }
        var usages: [ExtendedKeyUsage.Usage] = []
        if serverAuth { usages.append(.serverAuth) }
        if clientAuth { usages.append(.clientAuth) }
        let names = dnsNames.map { GeneralName.dnsName($0) } + ipAddresses.map { GeneralName.ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) }
        let now = Date()
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(leafKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(86400 * 30),
            issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage(usages)
                if !names.isEmpty { SubjectAlternativeNames(names) }
            },
            issuerPrivateKey: .init(key))
        return (try leaf.serializeAsPEM().pemString + "\n", leafKey.pemRepresentation + "\n")
    }

    /// CN and O of a DER certificate: the user and groups the API server maps a client certificate to.
    static func identity(ofDER der: [UInt8]) -> (user: String, groups: [String])? {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        var user: String?
        var groups: [String] = []
        for rdn in certificate.subject {
            for attribute in rdn {
                if attribute.type == .RDNAttributeType.commonName { user = String(attribute.value) }
                if attribute.type == .RDNAttributeType.organizationName, let organization = String(attribute.value) { groups.append(organization) }
            }
        }
        return user.map { ($0, groups) }
    }
}
