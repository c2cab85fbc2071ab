import COpenSSLSupport
import Foundation

/// What an OCSP responder said about a certificate.
public enum OCSPCertificateStatus: String, Sendable, Codable {
    case good, revoked, unknown
}

/// A checked OCSP response: the bytes a server staples, and what they say.
public struct OCSPStaple: Sendable, Codable, Equatable {
    public var der: [UInt8]
    public var status: OCSPCertificateStatus
    public var thisUpdate: Date
    /// nil when the responder gives none (then the staple is only as fresh as its thisUpdate).
    public var nextUpdate: Date?
    public var revokedAt: Date?
    public var revocationReason: Int?

    /// Usable for stapling at `now`: good, not from the future (with skew), not past nextUpdate.
    public func problem(at now: Date, skew: TimeInterval = 300) -> String? {
        if status != .good { return "the responder says \(status.rawValue)" }
        if thisUpdate > now.addingTimeInterval(skew) { return "thisUpdate \(Self.format(thisUpdate)) is in the future" }
        if let nextUpdate, nextUpdate < now { return "it expired at nextUpdate \(Self.format(nextUpdate))" }
        return nil
    }

    /// Parses and checks a DER OCSP response for `leafDER` issued by `issuerDER`: signature by the issuer or a
    /// delegated responder it issued, CertID for this certificate. Freshness is judged by ``problem(at:skew:)``.
    public static func check(der: [UInt8], leafDER: [UInt8], issuerDER: [UInt8]) throws -> OCSPStaple {
        var status = cd_ocsp_single_status()
        var error = [CChar](repeating: 0, count: 512)
        let rc = der.withUnsafeBufferPointer { response in
            leafDER.withUnsafeBufferPointer { leaf in
                issuerDER.withUnsafeBufferPointer { issuer in
                    cd_ocsp_check_response(response.baseAddress, response.count, leaf.baseAddress, leaf.count,
                                           issuer.baseAddress, issuer.count, &status, &error, error.count)
                }
            }
        }
        guard rc == 0 else { throw OCSPError(cString(error)) }
        let certificateStatus: OCSPCertificateStatus = switch status.cert_status {
        case 0: .good
        case 1: .revoked
        default: .unknown
        }
        func date(_ seconds: Int64) -> Date? { seconds == 0 ? nil : Date(timeIntervalSince1970: TimeInterval(seconds)) }
        return OCSPStaple(
            der: der, status: certificateStatus,
            thisUpdate: date(status.this_update) ?? Date(timeIntervalSince1970: 0),
            nextUpdate: date(status.next_update),
            revokedAt: date(status.revocation_time),
            revocationReason: status.revocation_reason >= 0 ? Int(status.revocation_reason) : nil)
    }

    static func format(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    public var summary: String {
        var text = "\(status.rawValue), thisUpdate \(Self.format(thisUpdate))"
        if let nextUpdate { text += ", nextUpdate \(Self.format(nextUpdate))" }
        if let revokedAt { text += ", revoked at \(Self.format(revokedAt))" }
        return text
    }
}

/// Text of a NUL-terminated C buffer.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// An OCSP fetch or check failed.
public struct OCSPError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Fetches OCSP responses from a leaf's AIA responder (HTTP POST `application/ocsp-request`) and checks them.
public struct OCSPFetcher: Sendable {
    public var timeout: Duration
    public var maximumResponseSize: Int
    private let pool: BlockingPool

    public init(timeout: Duration = .seconds(10), maximumResponseSize: Int = 64 * 1024, pool: BlockingPool = .shared) {
        self.timeout = timeout
        self.maximumResponseSize = maximumResponseSize
        self.pool = pool
    }

    /// Fetches and checks the response for `leafDER`; the status may be good, revoked or unknown.
    public func fetch(url: String, leafDER: [UInt8], issuerDER: [UInt8]) async throws -> OCSPStaple {
        guard let components = URLComponents(string: url), components.scheme?.lowercased() == "http", let host = components.host else {
            throw OCSPError("OCSP URL \(url) is not an http:// URL")
        }
        let port = components.port ?? 80
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        var requestBuffer: UnsafeMutablePointer<UInt8>?
        var requestLength = 0
        var error = [CChar](repeating: 0, count: 512)
        let built = leafDER.withUnsafeBufferPointer { leaf in
            issuerDER.withUnsafeBufferPointer { issuer in
                cd_ocsp_request(leaf.baseAddress, leaf.count, issuer.baseAddress, issuer.count, &requestBuffer, &requestLength, &error, error.count)
            }
        }
        guard built == 0, let requestBuffer else { throw OCSPError(cString(error)) }
        let request = Array(UnsafeBufferPointer(start: requestBuffer, count: requestLength))
        free(requestBuffer)

        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let maximum = maximumResponseSize
        let (status, body) = try await pool.run { () throws -> (Int32, [UInt8]) in
            var responseBuffer: UnsafeMutablePointer<UInt8>?
            var responseLength = 0
            var error = [CChar](repeating: 0, count: 512)
            let status = request.withUnsafeBufferPointer { body in
                cd_http_post(host, Int32(port), path, body.baseAddress, body.count, milliseconds, maximum, &responseBuffer, &responseLength, &error, error.count)
            }
            guard status >= 0, let responseBuffer else { throw OCSPError("OCSP responder \(url): \(cString(error))") }
            defer { free(responseBuffer) }
            return (status, Array(UnsafeBufferPointer(start: responseBuffer, count: responseLength)))
        }
        guard status == 200 else { throw OCSPError("OCSP responder \(url) answered HTTP \(status)") }
        do {
            return try OCSPStaple.check(der: body, leafDER: leafDER, issuerDER: issuerDER)
        } catch let error as OCSPError {
            throw OCSPError("OCSP responder \(url): \(error.message)")
        }
    }
}
