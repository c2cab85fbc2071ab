import COpenSSLSupport
import Foundation

/// What a TLS client checks of a served leaf beyond "is it the one deployed": that the chain the server sends
/// builds to a trust anchor (every intermediate served), that the name the client asked for (SNI) is one of the
/// leaf's names, and that the leaf is within its validity. Each failure is its own sentence in the verify step.
public enum ClientChecks {
    /// The problems a client would have with this handshake; empty when there are none.
    ///
    /// - Parameters:
    ///   - trustAnchorsPEM: the trust anchors to build to; nil: the system store (OpenSSL's default locations,
    ///     which `SSL_CERT_FILE` / `SSL_CERT_DIR` override).
    ///   - now: the time the validity is judged at (the engine's clock).
    public static func problems(leafDER: [UInt8], chainPEM: String?, serverName: String?, trustAnchorsPEM: String?,
                                notBefore: Date, notAfter: Date, now: Date) -> [String] {
        var problems: [String] = []
        if now < notBefore {
            problems.append("validity: the leaf is not valid until \(notBefore.iso8601MillisecondsText)")
        } else if now > notAfter {
            problems.append("validity: the leaf expired at \(notAfter.iso8601MillisecondsText)")
        }
        if let serverName, !serverName.isEmpty {
            let matched = leafDER.withUnsafeBufferPointer { cd_check_host($0.baseAddress, $0.count, serverName) }
            if matched != 1 {
                problems.append("name: the leaf is not valid for \(serverName), the name clients ask for (SNI)")
            }
        }
        var error = [CChar](repeating: 0, count: 512)
        let code = leafDER.withUnsafeBufferPointer { leaf in
            cd_verify_chain(leaf.baseAddress, leaf.count, chainPEM, trustAnchorsPEM, &error, error.count)
        }
        if code != 0 {
            let message = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let anchors = trustAnchorsPEM == nil ? "the system trust store" : "verify.caBundle"
            let served = chainPEM.map { PEMScanner.certificateCount(in: $0) } ?? 0
            problems.append("chain: no path from the served leaf to a trust anchor in \(anchors): \(message); the server sent \(served) certificate(s) after the leaf")
        }
        return problems
    }

    /// The trust anchor (in `trustAnchorsPEM`, or the system store when nil) that issued the certificate `der`, as
    /// DER, or nil when there is none.
    public static func trustAnchor(issuing der: [UInt8], trustAnchorsPEM: String?) -> [UInt8]? {
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        let found = der.withUnsafeBufferPointer { cd_find_issuer($0.baseAddress, $0.count, trustAnchorsPEM, &out, &length) }
        defer { free(out) }
        guard found == 1, let out else { return nil }
        return Array(UnsafeBufferPointer(start: out, count: length))
    }
}
