import Crypto
import Foundation

/// AWS credentials: an access key, its secret, and the session token of temporary credentials.
public struct AWSCredentials: Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// Signs HTTP requests with AWS Signature Version 4 (`AWS4-HMAC-SHA256`, in the `Authorization` header), as every
/// AWS API takes them. No AWS SDK for Swift is in the package set; this is the one place the algorithm is written,
/// checked against AWS's published test vectors (`AWSTests`).
///
/// The request is described by its parts; `path` is the decoded path (each segment is percent-encoded once, as the
/// canonical form and the wire both use it), `query` the decoded parameters.
public struct SigV4Signer: Sendable {
    public var service: String
    public var region: String

    public init(service: String, region: String) {
        self.service = service
        self.region = region
    }

    /// What to send: the headers to add to the request (`x-amz-date`, `x-amz-security-token` for temporary
    /// credentials, `authorization`), and the canonical parts for diagnostics and tests.
    public struct Signature: Sendable, Equatable {
        public var headers: [(name: String, value: String)]
        public var signedHeaders: String
        public var canonicalRequest: String
        public var stringToSign: String
        public var signature: String

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.headers.map { [$0.name, $0.value] } == rhs.headers.map { [$0.name, $0.value] } && lhs.signature == rhs.signature
                && lhs.canonicalRequest == rhs.canonicalRequest
        }

        /// The `Authorization` header's value.
        public var authorization: String { headers.first { $0.name == "authorization" }?.value ?? "" }
    }

    /// Signs the request at `date`. `headers` must include `host`; every header given is signed.
    public func sign(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], payload: [UInt8],
                     credentials: AWSCredentials, date: Date) -> Signature {
        let amzDate = Self.amzDate(date)
        let day = String(amzDate.prefix(8))
        var signed = headers.map { (name: $0.0.lowercased(), value: Self.trimmed($0.1)) }
        if !signed.contains(where: { $0.name == "x-amz-date" }) { signed.append((name: "x-amz-date", value: amzDate)) }
        if let token = credentials.sessionToken, !signed.contains(where: { $0.name == "x-amz-security-token" }) {
            signed.append((name: "x-amz-security-token", value: token))
        }
        // Same-name headers are one line with their values comma-joined, in the order given.
        var merged: [String: [String]] = [:]
        for header in signed { merged[header.name, default: []].append(header.value) }
        let names = merged.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let encodedQuery: [(key: String, value: String)] = query.map { (key: Self.encode($0.0), value: Self.encode($0.1)) }
        let sortedQuery = encodedQuery.sorted { lhs, rhs in lhs.key == rhs.key ? lhs.value < rhs.value : lhs.key < rhs.key }
        let canonicalQuery = sortedQuery.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        let segments: [String] = path.split(separator: "/", omittingEmptySubsequences: false).map { Self.encode(String($0)) }
        let canonicalPath = path.isEmpty ? "/" : segments.joined(separator: "/")
        let canonicalRequest = [method.uppercased(), canonicalPath, canonicalQuery, canonicalHeaders, signedHeaders, Self.hex(SHA256.hash(data: payload))]
            .joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8)))].joined(separator: "\n")
        let key = Self.signingKey(secret: credentials.secretAccessKey, day: day, region: region, service: service)
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
        var added = [(name: "x-amz-date", value: amzDate)]
        if let token = credentials.sessionToken { added.append((name: "x-amz-security-token", value: token)) }
        added.append((name: "authorization",
                      value: "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"))
        return Signature(headers: added.filter { header in header.name == "authorization" || !headers.contains { $0.0.lowercased() == header.name } },
                         signedHeaders: signedHeaders, canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature)
    }

    /// The signing key: HMAC chained over the day, the region, the service and `aws4_request`, keyed first by
    /// `AWS4` + the secret.
    public static func signingKey(secret: String, day: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array(("AWS4" + secret).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    /// `20150830T123600Z`.
    public static func amzDate(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!)
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4's canonical form wants.
    public static func encode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }

    /// A header value trimmed, with runs of spaces inside it made one.
    static func trimmed(_ value: String) -> String {
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ").trimmingCharacters(in: .whitespaces)
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    static func hex(_ digest: SHA256.Digest) -> String { hex(Array(digest)) }
    static func hex(_ code: HMAC<SHA256>.MAC) -> String { hex(Array(code)) }
}
