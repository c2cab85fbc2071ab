import CertdeployAPI
import Core
import Foundation
import Hummingbird
import NIOCore

/// A request body type the API accepts: decoded strictly (unknown members refused, with their JSON pointer).
protocol StrictRequestBody: Decodable {
    /// The members allowed at the top level.
    static var allowedMembers: Set<String> { get }
    /// Allowed members of nested objects, by the parent member's name.
    static var nestedAllowedMembers: [String: Set<String>] { get }
    /// The body built straight from its parsed members (no second pass through `JSONDecoder`), throwing the same
    /// 422s `JSONDecoder`'s errors would give; nil to decode with `JSONDecoder.api`.
    static func decoded(from members: [String: JSONValue]) throws -> Self?
}

extension StrictRequestBody {
    static var nestedAllowedMembers: [String: Set<String>] { [:] }
    static func decoded(from members: [String: JSONValue]) throws -> Self? { nil }
}

extension Request {
    /// Reads the body (at most `limit` bytes, else 413) and decodes it as `T`. Malformed JSON is a 400; wrong types,
    /// missing and unknown members are 422 naming the member by JSON pointer.
    mutating func decodeStrict<T: StrictRequestBody>(_ type: T.Type, limit: Int) async throws -> T {
        if let contentType = headers[.contentType], !contentType.lowercased().hasPrefix("application/json") {
            throw APIError(status: .unsupportedMediaType, slug: "unsupported-media-type", title: "Unsupported media type",
                           detail: "send the body as application/json (got \(contentType))")
        }
        let tooLarge = APIError(status: .contentTooLarge, slug: "too-large", title: "Request body too large",
                                detail: "the request body exceeds \(limit) bytes")
        if let length = headers[.contentLength].flatMap(Int.init), length > limit { throw tooLarge }
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge
        }
        let data = Data(buffer: buffer)
        let json: JSONValue
        do {
            json = try JSONValue.parse(data)
        } catch {
            throw APIError.badRequest("the body is not valid JSON: \(error)")
        }
        guard case .object(let members) = json else { throw APIError.invalid("/", "must be a JSON object") }
        if let unknown = members.keys.sorted().first(where: { !T.allowedMembers.contains($0) }) {
            throw APIError.invalid("/\(unknown)", "unknown field (expected one of: \(T.allowedMembers.sorted().joined(separator: ", ")))")
        }
        for (parent, allowed) in T.nestedAllowedMembers {
            guard case .object(let nested)? = members[parent] else { continue }
            if let unknown = nested.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw APIError.invalid("/\(parent)/\(unknown)", "unknown field (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
        if let decoded = try T.decoded(from: members) { return decoded }
        do {
            return try JSONDecoder.api.decode(T.self, from: data)
        } catch let error as DecodingError {
            throw Self.apiError(error)
        }
    }

    static func apiError(_ error: DecodingError) -> APIError {
        func pointer(_ path: [any CodingKey]) -> String {
            "/" + path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: "/")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .invalid(pointer(context.codingPath + [key]), "is required")
        case .typeMismatch(let type, let context):
            return .invalid(pointer(context.codingPath), "must be \(Self.jsonTypeName(type))")
        case .valueNotFound(let type, let context):
            return .invalid(pointer(context.codingPath), "must be \(Self.jsonTypeName(type)), not null")
        case .dataCorrupted(let context):
            return .invalid(pointer(context.codingPath), context.debugDescription)
        @unknown default:
            return .badRequest("the body could not be decoded")
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Bool.Type: "a boolean"
        case is Double.Type: "a number"
        default:
            String(describing: type).hasPrefix("Array") ? "an array" : (String(describing: type).hasPrefix("Dictionary") ? "an object" : "a \(type)")
        }
    }
}

extension CertificateUpload: StrictRequestBody {
    static var allowedMembers: Set<String> { ["name", "certificatePEM", "chainPEM", "privateKeyPEM", "rolloutOptions", "rolloutStrategy"] }
    static var nestedAllowedMembers: [String: Set<String>] {
        ["rolloutOptions": ["dryRun", "force", "allowMustStapleWithoutStapling"], "rolloutStrategy": RolloutStrategyMembers.allowed]
    }
}

extension TargetInput: StrictRequestBody {
    static var allowedMembers: Set<String> { ["name", "connector", "labels", "certificate", "ssh", "kubernetes", "config", "version", "autoRemediate"] }

    /// Member by member in declaration order, as the synthesized `Decodable` init reads them, with the pointers and
    /// messages `apiError(_:)` makes of its errors (absent or null optionals are nil).
    static func decoded(from members: [String: JSONValue]) throws -> TargetInput? {
        func string(_ key: String) throws -> String {
            switch members[key] {
            case .string(let value)?: return value
            case nil: throw APIError.invalid("/\(key)", "is required")
            case .null?: throw APIError.invalid("/\(key)", "must be a string, not null")
            default: throw APIError.invalid("/\(key)", "must be a string")
            }
        }
        func optionalString(_ key: String) throws -> String? {
            switch members[key] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            default: throw APIError.invalid("/\(key)", "must be a string")
            }
        }
        func optionalValue(_ key: String) -> JSONValue? {
            if case .null? = members[key] { return nil }
            return members[key]
        }
        let name = try string("name")
        let connector = try string("connector")
        var labels: [String: String]?
        switch members["labels"] {
        case nil, .null?: labels = nil
        case .object(let entries)?:
            var decoded: [String: String] = [:]
            decoded.reserveCapacity(entries.count)
            for (key, value) in entries {
                switch value {
                case .string(let text): decoded[key] = text
                case .null: throw APIError.invalid("/labels/\(key)", "must be a string, not null")
                default: throw APIError.invalid("/labels/\(key)", "must be a string")
                }
            }
            labels = decoded
        default: throw APIError.invalid("/labels", "must be an object")
        }
        let certificate = try optionalString("certificate")
        let ssh = optionalValue("ssh")
        let kubernetes = optionalValue("kubernetes")
        guard let config = members["config"] else { throw APIError.invalid("/config", "is required") }
        var version: Int?
        switch members["version"] {
        case nil, .null?: version = nil
        case .number(let number)? where number.rounded() == number && abs(number) < 9.2e18: version = Int(number)
        default: throw APIError.invalid("/version", "must be an integer")
        }
        var autoRemediate: Bool?
        switch members["autoRemediate"] {
        case nil, .null?: autoRemediate = nil
        case .bool(let flag)?: autoRemediate = flag
        default: throw APIError.invalid("/autoRemediate", "must be a boolean")
        }
        return TargetInput(name: name, connector: connector, labels: labels, certificate: certificate, ssh: ssh, kubernetes: kubernetes,
                           config: config, version: version, autoRemediate: autoRemediate)
    }
}

extension DeploymentRequest: StrictRequestBody {
    static var allowedMembers: Set<String> { ["certificate", "version", "targets", "selector", "options", "strategy", "ignoreWindows"] }
    static var nestedAllowedMembers: [String: Set<String>] {
        ["options": ["dryRun", "force", "allowMustStapleWithoutStapling"], "strategy": RolloutStrategyMembers.allowed]
    }
}

/// The members of a strategy object.
enum RolloutStrategyMembers {
    static let allowed: Set<String> = ["canary", "waves", "maxParallel", "failureBudget", "pauseBetweenWaves", "approval", "order"]
}

extension RolloutActionRequest: StrictRequestBody {
    static var allowedMembers: Set<String> { ["rollback"] }
}

extension WindowRequest: StrictRequestBody {
    static var allowedMembers: Set<String> { ["name", "selector", "target", "schedule", "freeze"] }
    static var nestedAllowedMembers: [String: Set<String>] { ["freeze": ["from", "until"]] }
}

extension CertificatePolicyRequest: StrictRequestBody {
    static var allowedMembers: Set<String> { ["autoRollout", "strategy", "behindAfter"] }
    static var nestedAllowedMembers: [String: Set<String>] { ["strategy": RolloutStrategyMembers.allowed] }
}
