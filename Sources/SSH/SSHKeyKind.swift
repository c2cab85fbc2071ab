import Foundation

/// The algorithm of a user private key, read from its PEM without decrypting it.
enum SSHKeyKind: String {
    case rsa = "RSA", ecdsa = "ECDSA", ed25519 = "Ed25519", unknown = "private"

    static func detect(_ pem: String) -> SSHKeyKind {
        if pem.contains("BEGIN RSA PRIVATE KEY") { return .rsa }
        if pem.contains("BEGIN EC PRIVATE KEY") { return .ecdsa }
        if pem.contains("BEGIN OPENSSH PRIVATE KEY"), let blob = openSSHBlob(pem) {
            // The public half of an OpenSSH-format key is stored in clear, even when the key is encrypted.
            let text = String(decoding: blob.prefix(200), as: UTF8.self)
            if text.contains("ssh-rsa") { return .rsa }
            if text.contains("ssh-ed25519") { return .ed25519 }
            if text.contains("ecdsa-sha2") { return .ecdsa }
        }
        return .unknown
    }

    static func isEncrypted(_ pem: String) -> Bool {
        if pem.contains("ENCRYPTED") { return true }
        guard pem.contains("BEGIN OPENSSH PRIVATE KEY"), let blob = openSSHBlob(pem) else { return false }
        // "openssh-key-v1\0", then the cipher name: "none" for a clear key.
        let text = String(decoding: blob.prefix(64), as: UTF8.self)
        return !text.contains("none")
    }

    private static func openSSHBlob(_ pem: String) -> [UInt8]? {
        let body = pem.split(separator: "\n")
            .filter { !$0.hasPrefix("-----") }
            .joined()
        return Data(base64Encoded: body).map(Array.init)
    }
}
