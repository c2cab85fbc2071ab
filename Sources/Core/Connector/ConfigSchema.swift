import Foundation

/// One field of a connector's configuration: its type, default, documentation and whether it is a secret.
/// The descriptor's list of fields is the single source for validation, the JSON schema, and the docs.
public struct ConfigField: Sendable, Codable, Equatable {
    public indirect enum Kind: Sendable, Codable, Equatable {
        case string
        case integer(minimum: Int?, maximum: Int?)
        case boolean
        /// One of a fixed set of strings.
        case choice([String])
        /// An absolute, normalised POSIX path without NUL or newline.
        case absolutePath
        /// Octal permission bits as a string: "0600".
        case fileMode
        /// PEM text holding one or more certificates (a CA bundle).
        case pemCertificates
        /// A command as an argv array (never a shell string).
        case argv
        case stringArray
        case stringMap
        case object([ConfigField])
        /// A list of objects, each checked against the fields (`rollouts: [{"kind": …, "name": …}]`).
        case objectArray([ConfigField])
    }

    public var name: String
    public var kind: Kind
    public var required: Bool
    public var defaultValue: JSONValue?
    public var summary: String
    public var secret: Bool

    public init(_ name: String, _ kind: Kind, required: Bool = false, default defaultValue: JSONValue? = nil, secret: Bool = false, _ summary: String) {
        self.name = name
        self.kind = kind
        self.required = required
        self.defaultValue = defaultValue
        self.summary = summary
        self.secret = secret
    }

    /// A short type name for docs tables.
    public var typeName: String {
        switch kind {
        case .string: "string"
        case .integer: "integer"
        case .boolean: "boolean"
        case .choice(let values): values.map { "`\($0)`" }.joined(separator: " \\| ")
        case .absolutePath: "absolute path"
        case .fileMode: "file mode"
        case .pemCertificates: "PEM certificates"
        case .argv: "argv"
        case .stringArray: "string[]"
        case .stringMap: "map"
        case .object: "object"
        case .objectArray: "object[]"
        }
    }
}

/// A problem with one config field, located by JSON pointer (RFC 6901).
public struct ConfigIssue: Sendable, Codable, Equatable, CustomStringConvertible {
    public var pointer: String
    public var message: String

    public init(pointer: String, message: String) {
        self.pointer = pointer
        self.message = message
    }

    public var description: String { "\(pointer.isEmpty ? "/" : pointer): \(message)" }
}

/// The config was refused; every issue names its field.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var connectorID: String?
    public var issues: [ConfigIssue]

    public init(connectorID: String? = nil, issues: [ConfigIssue]) {
        self.connectorID = connectorID
        self.issues = issues
    }

    public var description: String {
        let prefix = connectorID.map { "\($0) config" } ?? "config"
        return "\(prefix): " + issues.map(\.description).joined(separator: "; ")
    }
}

/// Checks raw JSON against a field list strictly: unknown fields, wrong types, missing required fields,
/// unsafe paths and commands are all refused. Returns the JSON with defaults filled in.
public enum ConfigValidator {
    public static func validate(_ value: JSONValue, fields: [ConfigField], pointer: String = "") -> (JSONValue, [ConfigIssue]) {
        guard case .object(let members) = value else {
            return (value, [ConfigIssue(pointer: pointer, message: "must be an object, got \(value.typeName)")])
        }
        var issues: [ConfigIssue] = []
        var result: [String: JSONValue] = [:]
        result.reserveCapacity(fields.count)
        // Field lists are short: a linear search beats building a dictionary on every call.
        let unknown = members.keys.filter { key in !fields.contains { $0.name == key } }
        for key in unknown.sorted() {
            let suggestion = fields.map(\.name).first { $0.lowercased() == key.lowercased() }
            issues.append(ConfigIssue(pointer: pointer + "/" + escape(key), message: "unknown field" + (suggestion.map { " (did you mean \"\($0)\"?)" } ?? "")))
        }
        for field in fields {
            let fieldPointer = pointer + "/" + escape(field.name)
            guard let member = members[field.name], member != .null else {
                if field.required {
                    issues.append(ConfigIssue(pointer: fieldPointer, message: "is required"))
                } else if let defaultValue = field.defaultValue {
                    result[field.name] = defaultValue
                } else if case .object(let nested) = field.kind, nested.contains(where: { $0.defaultValue != nil }) {
                    // An optional object whose fields have defaults is materialised so code sees the defaults.
                    result[field.name] = validate(.object([:]), fields: nested, pointer: fieldPointer).0
                }
                continue
            }
            let (normalised, fieldIssues) = check(member, field: field, pointer: fieldPointer)
            issues += fieldIssues
            result[field.name] = normalised
        }
        return (.object(result), issues)
    }

    private static func check(_ value: JSONValue, field: ConfigField, pointer: String) -> (JSONValue, [ConfigIssue]) {
        func issue(_ message: String) -> (JSONValue, [ConfigIssue]) { (value, [ConfigIssue(pointer: pointer, message: message)]) }
        switch field.kind {
        case .string:
            guard case .string(let text) = value else { return issue("must be a string, got \(value.typeName)") }
            if text.utf8.contains(0) { return issue("must not contain a NUL character") }
        case .integer(let minimum, let maximum):
            guard case .number(let number) = value, number.rounded() == number else { return issue("must be an integer, got \(value.typeName)") }
            if let minimum, number < Double(minimum) { return issue("must be at least \(minimum)") }
            if let maximum, number > Double(maximum) { return issue("must be at most \(maximum)") }
        case .boolean:
            guard case .bool = value else { return issue("must be true or false, got \(value.typeName)") }
        case .choice(let allowed):
            guard case .string(let text) = value, allowed.contains(text) else {
                return issue("must be one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", "))")
            }
        case .absolutePath:
            guard case .string(let text) = value else { return issue("must be a string path, got \(value.typeName)") }
            if let problem = RemotePath.problem(with: text) { return issue(problem) }
        case .fileMode:
            guard case .string(let text) = value, FileMode(octal: text) != nil else {
                return issue("must be an octal mode string such as \"0600\"")
            }
        case .pemCertificates:
            guard case .string(let text) = value else { return issue("must be PEM text, got \(value.typeName)") }
            guard let blocks = try? PEMScanner.blocks(in: text, source: "value"), blocks.contains(where: { $0.label == "CERTIFICATE" && $0.der != nil }) else {
                return issue("must hold at least one PEM certificate (-----BEGIN CERTIFICATE-----)")
            }
        case .argv:
            guard case .array(let items) = value else { return issue("must be an argv array of strings such as [\"nginx\", \"-t\"], got \(value.typeName)") }
            if items.isEmpty { return issue("must name a command (empty argv)") }
            for (index, item) in items.enumerated() {
                guard case .string(let arg) = item else { return (value, [ConfigIssue(pointer: "\(pointer)/\(index)", message: "must be a string")]) }
                if arg.utf8.contains(where: { $0 == 0 || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) {
                    return (value, [ConfigIssue(pointer: "\(pointer)/\(index)", message: "must not contain NUL or newline characters")])
                }
                if index == 0, arg.isEmpty { return (value, [ConfigIssue(pointer: "\(pointer)/0", message: "command name must not be empty")]) }
            }
        case .stringArray:
            guard case .array(let items) = value, items.allSatisfy({ if case .string = $0 { true } else { false } }) else {
                return issue("must be an array of strings")
            }
        case .stringMap:
            guard case .object(let members) = value, members.values.allSatisfy({ if case .string = $0 { true } else { false } }) else {
                return issue("must be an object of string values")
            }
        case .object(let nested):
            return validate(value, fields: nested, pointer: pointer)
        case .objectArray(let nested):
            guard case .array(let items) = value else { return issue("must be an array of objects, got \(value.typeName)") }
            var normalised: [JSONValue] = []
            var issues: [ConfigIssue] = []
            for (index, item) in items.enumerated() {
                let (itemValue, itemIssues) = validate(item, fields: nested, pointer: "\(pointer)/\(index)")
                normalised.append(itemValue)
                issues += itemIssues
            }
            return (.array(normalised), issues)
        }
        return (value, [])
    }

    /// RFC 6901 escaping of one pointer token.
    static func escape(_ token: String) -> String {
        // Fast path: almost no field name has a `~` or `/`.
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        return token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}

/// JSON Schema (2020-12) generation from a field list: served by the API and printed in docs.
public enum JSONSchemaWriter {
    public static func schema(for fields: [ConfigField], title: String? = nil) -> JSONValue {
        var object: [String: JSONValue] = [
            "type": .string("object"),
            "additionalProperties": .bool(false),
            "properties": .object(Dictionary(uniqueKeysWithValues: fields.map { ($0.name, property($0)) })),
        ]
        let required = fields.filter(\.required).map { JSONValue.string($0.name) }
        if !required.isEmpty { object["required"] = .array(required) }
        if let title { object["title"] = .string(title) }
        return .object(object)
    }

    private static func property(_ field: ConfigField) -> JSONValue {
        var object: [String: JSONValue] = ["description": .string(field.summary)]
        switch field.kind {
        case .string: object["type"] = .string("string")
        case .integer(let minimum, let maximum):
            object["type"] = .string("integer")
            if let minimum { object["minimum"] = .number(Double(minimum)) }
            if let maximum { object["maximum"] = .number(Double(maximum)) }
        case .boolean: object["type"] = .string("boolean")
        case .choice(let values):
            object["type"] = .string("string")
            object["enum"] = .array(values.map(JSONValue.string))
        case .absolutePath:
            object["type"] = .string("string")
            object["pattern"] = .string("^/[^\\n\\r\\u0000]*$")
        case .fileMode:
            object["type"] = .string("string")
            object["pattern"] = .string("^0?[0-7]{3}$")
        case .pemCertificates:
            object["type"] = .string("string")
            object["pattern"] = .string("-----BEGIN CERTIFICATE-----")
        case .argv:
            object["type"] = .string("array")
            object["items"] = .object(["type": .string("string")])
            object["minItems"] = .number(1)
        case .stringArray:
            object["type"] = .string("array")
            object["items"] = .object(["type": .string("string")])
        case .stringMap:
            object["type"] = .string("object")
            object["additionalProperties"] = .object(["type": .string("string")])
        case .object(let nested):
            var nestedSchema = schema(for: nested)
            if case .object(var members) = nestedSchema {
                members["description"] = .string(field.summary)
                nestedSchema = .object(members)
            }
            object = [:]
            if case .object(let members) = nestedSchema { object = members }
        case .objectArray(let nested):
            object["type"] = .string("array")
            object["items"] = schema(for: nested)
        }
        if let defaultValue = field.defaultValue { object["default"] = defaultValue }
        if field.secret { object["writeOnly"] = .bool(true) }
        return .object(object)
    }
}
