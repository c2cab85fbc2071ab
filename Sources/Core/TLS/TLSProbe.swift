import COpenSSLSupport
import Crypto
import Foundation

/// What one handshake saw.
public struct TLSProbeResult: Sendable {
    public var leafDER: [UInt8]
    public var leafSHA256: String
    /// The stapled OCSP response (DER), when the server sent one.
    public var stapleDER: [UInt8]?
    public var protocolVersion: String
    /// The certificates the server sent after the leaf (PEM), nil when none.
    public var chainPEM: String? = nil
}

/// Why a handshake did not complete.
public struct TLSProbeError: Error, Sendable, CustomStringConvertible {
    public var endpoint: String
    public var message: String
    public var description: String { "\(endpoint): \(message)" }
}

/// A plain-text protocol that upgrades to TLS in-band before the handshake.
public enum StartTLS: String, Sendable, Codable, Equatable {
    case none, smtp
}

/// Handshakes with a server to see which leaf (and staple) it serves.
public protocol TLSProber: Sendable {
    func probe(host: String, port: Int, serverName: String?, requestStaple: Bool, timeout: Duration, startTLS: StartTLS) async throws -> TLSProbeResult
}

extension TLSProber {
    /// A direct TLS handshake (no STARTTLS).
    public func probe(host: String, port: Int, serverName: String?, requestStaple: Bool, timeout: Duration) async throws -> TLSProbeResult {
        try await probe(host: host, port: port, serverName: serverName, requestStaple: requestStaple, timeout: timeout, startTLS: .none)
    }
}

/// ``TLSProber`` over the system OpenSSL, run on the ``BlockingPool``.
public struct OpenSSLTLSProber: TLSProber {
    private let pool: BlockingPool

    public init(pool: BlockingPool = .shared) { self.pool = pool }

    public func probe(host: String, port: Int, serverName: String?, requestStaple: Bool, timeout: Duration, startTLS: StartTLS) async throws -> TLSProbeResult {
        let mode: cd_starttls = startTLS == .smtp ? CD_STARTTLS_SMTP : CD_STARTTLS_NONE
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await pool.run {
            var raw = cd_tls_probe_result()
            cd_tls_probe_starttls(host, Int32(port), serverName, requestStaple ? 1 : 0, milliseconds, mode, &raw)
            defer { cd_tls_probe_result_free(&raw) }
            guard raw.status == 0, let leafPointer = raw.leaf_der else {
                let message = withUnsafeBytes(of: raw.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                throw TLSProbeError(endpoint: "\(host):\(port)", message: message)
            }
            let leaf = Array(UnsafeBufferPointer(start: leafPointer, count: raw.leaf_der_len))
            let staple = raw.ocsp_der.map { Array(UnsafeBufferPointer(start: $0, count: raw.ocsp_der_len)) }
            let version = withUnsafeBytes(of: raw.protocol) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let chain = raw.chain_pem.map { String(cString: $0) }
            return TLSProbeResult(leafDER: leaf, leafSHA256: SHA256.hash(data: leaf).hexString, stapleDER: staple, protocolVersion: version,
                                  chainPEM: chain)
        }
    }
}
