import Foundation

/// Why a certificate bundle was refused at preflight.
///
/// `code` is stable and meant for programs and tests; `message` is for people and always names
/// the certificate or file that is wrong.
public struct BundleError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable, Codable {
        case malformedPEM = "malformed_pem"
        case noCertificate = "no_certificate"
        case noPrivateKey = "no_private_key"
        case unsupportedKey = "unsupported_key"
        case encryptedKey = "encrypted_key"
        case keyMismatch = "key_mismatch"
        case brokenChain = "broken_chain"
        case notYetValid = "not_yet_valid"
        case expired = "expired"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: BundleError, rhs: BundleError) -> Bool { lhs.code == rhs.code }
}
