import Core
import Yams

/// A JSON/YAML value whose objects keep the order their keys were written in. The OpenAPI document is built from
/// these, so the YAML comes out in a stable, readable order (`openapi`, `info`, `paths`, … rather than sorted).
indirect enum SpecValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([SpecValue])
    case object([Member])

    struct Member: Sendable, Equatable {
        var key: String
        var value: SpecValue
    }

    /// The value of `key` in an object (nil for a missing key or a value that is not an object).
    subscript(key: String) -> SpecValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// An object's keys in order (empty for anything else).
    var keys: [String] {
        guard case .object(let members) = self else { return [] }
        return members.map(\.key)
    }

    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var arrayValue: [SpecValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// This object with `members` appended (a key already present is replaced in place). Anything else is returned as is.
    func adding(_ members: [(String, SpecValue)]) -> SpecValue {
        guard case .object(var current) = self else { return self }
        for (key, value) in members {
            if let index = current.firstIndex(where: { $0.key == key }) {
                current[index].value = value
            } else {
                current.append(Member(key: key, value: value))
            }
        }
        return .object(current)
    }
}

// MARK: - Literals

extension SpecValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .integer(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: SpecValue...) { self = .array(elements) }
    /// Keeps the order of the literal.
    init(dictionaryLiteral elements: (String, SpecValue)...) {
        self = .object(elements.map { Member(key: $0.0, value: $0.1) })
    }

    /// An object from pairs, in the order given.
    static func object(_ pairs: [(String, SpecValue)]) -> SpecValue {
        .object(pairs.map { Member(key: $0.0, value: $0.1) })
    }

    static func strings(_ values: [String]) -> SpecValue {
        .array(values.map(SpecValue.string))
    }
}

// MARK: - From JSONValue

extension SpecValue {
    /// Raw JSON (a connector's config schema) with its object keys sorted, so the output does not depend on
    /// dictionary order. Whole numbers become integers, as `JSONValue` encodes them.
    init(_ json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let value): self = .bool(value)
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e15 {
                self = .integer(Int(value))
            } else {
                self = .number(value)
            }
        case .string(let value): self = .string(value)
        case .array(let items): self = .array(items.map(SpecValue.init))
        case .object(let members):
            self = .object(members.keys.sorted().map { Member(key: $0, value: SpecValue(members[$0]!)) })
        }
    }
}

// MARK: - YAML

extension SpecValue {
    /// Block-style YAML, two-space indent. Strings that would read back as another type (`"200"`, `"true"`,
    /// `"3.1.0"`) are quoted, so the text means exactly this value.
    func yaml() -> String {
        do {
            return try Yams.serialize(node: node, indent: 2, width: 100, allowUnicode: true, lineBreak: .ln, sortKeys: false)
        } catch {
            // The emitter fails only on a malformed event stream, which a tree built from `Node`s cannot produce.
            preconditionFailure("OpenAPI document did not serialise as YAML: \(error)")
        }
    }

    private var node: Node {
        switch self {
        case .null: return Node("null", Tag(.null))
        case .bool(let value): return Node(value ? "true" : "false", Tag(.bool))
        case .integer(let value): return Node(String(value), Tag(.int))
        case .number(let value): return Node(String(value), Tag(.float))
        case .string(let value):
            if value.contains("\n") { return Node(value, Tag(.str), .literal) }
            return .scalar(value.represented())
        case .array(let items): return Node(items.map(\.node))
        case .object(let members): return Node(members.map { (Node.scalar($0.key.represented()), $0.value.node) })
        }
    }

    /// Parses YAML text (one document) into a value; scalars take the type YAML 1.1 resolution gives them.
    init(yaml text: String) throws {
        guard let node = try Yams.compose(yaml: text) else {
            self = .null
            return
        }
        self = try SpecValue(node: node)
    }

    private init(node: Node) throws {
        switch node {
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: self = .null
            case Tag.Name.bool.rawValue: self = node.bool.map(SpecValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue: self = node.int.map(SpecValue.integer) ?? .string(scalar.string)
            case Tag.Name.float.rawValue: self = node.float.map(SpecValue.number) ?? .string(scalar.string)
            default: self = .string(scalar.string)
            }
        case .sequence(let sequence):
            self = .array(try sequence.map { try SpecValue(node: $0) })
        case .mapping(let mapping):
            self = .object(try mapping.map { pair in
                guard let key = pair.key.string else { throw YamlError.representer(problem: "a mapping key is not a scalar") }
                return Member(key: key, value: try SpecValue(node: pair.value))
            })
        case .alias:
            throw YamlError.representer(problem: "aliases are not used in the OpenAPI document")
        }
    }
}
