import CertdeployAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// JSON answers in the API's encoding (sorted keys, ISO 8601 with fractional seconds).
enum JSONResponse {
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONEncoder.api.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func noContent() -> Response {
        Response(status: .noContent)
    }

    static func text(_ text: String, contentType: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Reading query parameters with errors that name them.
struct QueryReader {
    let request: Request

    func string(_ name: String) -> String? {
        request.uri.queryParameters.get(name).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `limit`: 1…500, default `defaultValue`.
    func limit(default defaultValue: Int = 100) throws -> Int {
        guard let text = string("limit") else { return defaultValue }
        guard let value = Int(text), (1...500).contains(value) else {
            throw APIError.invalid("query:limit", "must be an integer from 1 to 500")
        }
        return value
    }

    func cursor() -> String? { string("cursor") }

    /// Refuses parameters this route does not know, so a typo does not silently list everything.
    func allowOnly(_ names: Set<String>) throws {
        for (key, _) in request.uri.queryParameters where !names.contains(String(key)) {
            throw APIError.invalid("query:\(key)", "unknown query parameter (expected one of: \(names.sorted().joined(separator: ", ")))")
        }
    }
}
