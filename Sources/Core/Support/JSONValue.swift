import Foundation

/// Raw JSON, kept as-is until the owning connector's schema says what it means
/// (config stays raw until the host knows which connector it belongs to, then decodes strictly).
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses JSON text (strict RFC 8259, UTF-8); a `JSONParseError` names what is wrong and the byte offset.
    public static func parse(_ data: Data) throws -> JSONValue {
        try JSONTextParser.parse(data)
    }

    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let n): n.rounded() == n ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// Canonical JSON text (sorted keys), for docs and stable comparisons.
    /// Byte-identical to `JSONEncoder` with `.sortedKeys`, `.withoutEscapingSlashes` (and `.prettyPrinted`); "null"
    /// when a number is not finite (which `JSONEncoder` refuses).
    public func jsonText(pretty: Bool = true) -> String {
        var writer = JSONTextWriter()
        do {
            try writer.value(self, pretty: pretty)
        } catch {
            return "null"
        }
        return writer.text
    }
}
