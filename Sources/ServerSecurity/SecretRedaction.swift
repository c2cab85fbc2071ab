import Foundation

/// Makes secrets write-only in API responses: every member whose name is a secret field, at any depth, is replaced
/// by `"<redacted>"` (or `{"set": true}`) before the body leaves the server. A `null` secret stays `null`
/// (`{"set": false}` in presence style): that no secret is set is not a secret.
public struct SecretRedaction: Sendable {
    public enum Style: Sendable, Hashable {
        /// `"password": "<redacted>"`
        case placeholder
        /// `"password": {"set": true}`
        case presence
    }

    public static let placeholder = "<redacted>"

    /// Lower-cased field names; matching ignores case so `Password` and `password` are both redacted.
    public let fields: Set<String>
    public let style: Style

    /// `fields`: the secret field names (e.g. every connector config field declared `secret: true`).
    public init(fields: some Sequence<String>, style: Style = .placeholder) {
        self.fields = Set(fields.map { $0.lowercased() })
        self.style = style
    }

    public func isSecret(field name: String) -> Bool {
        fields.contains(name.lowercased())
    }

    /// Redacts a JSON document; the output has sorted keys. Throws when `json` is not JSON.
    public func redact(json: Data) throws -> Data {
        let value = try JSONDecoder().decode(RedactableJSON.self, from: json)
        return try Self.encoder.encode(redact(value))
    }

    /// Encodes `value` with `encoder` and redacts the result.
    public func redact(encoding value: some Encodable, encoder: JSONEncoder = JSONEncoder()) throws -> Data {
        try redact(json: encoder.encode(value))
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    func redact(_ value: RedactableJSON) -> RedactableJSON {
        switch value {
        case .object(let members):
            var result: [String: RedactableJSON] = [:]
            for (key, member) in members {
                result[key] = isSecret(field: key) ? replacement(for: member) : redact(member)
            }
            return .object(result)
        case .array(let items):
            return .array(items.map(redact))
        default:
            return value
        }
    }

    private func replacement(for value: RedactableJSON) -> RedactableJSON {
        let isSet = value != .null
        switch style {
        case .placeholder: return isSet ? .string(Self.placeholder) : .null
        case .presence: return .object(["set": .bool(isSet)])
        }
    }
}

/// JSON kept faithfully enough to re-encode: integers stay integers, booleans stay booleans.
enum RedactableJSON: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([RedactableJSON])
    case object([String: RedactableJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([RedactableJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: RedactableJSON].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
