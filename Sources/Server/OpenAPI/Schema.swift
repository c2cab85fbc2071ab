/// Small builders for the JSON Schemas (2020-12, as OpenAPI 3.1 uses them) the document is made of.
enum Schema {
    static let string: SpecValue = ["type": "string"]
    static let integer: SpecValue = ["type": "integer"]
    static let boolean: SpecValue = ["type": "boolean"]
    static let dateTime: SpecValue = ["type": "string", "format": "date-time"]
    static let uuid: SpecValue = ["type": "string", "format": "uuid"]
    /// Any JSON value: what a `JSONValue` property holds.
    static let any: SpecValue = [:]

    static func ref(_ component: String) -> SpecValue {
        ["$ref": .string("#/components/schemas/\(component)")]
    }

    static func array(_ items: SpecValue) -> SpecValue {
        ["type": "array", "items": items]
    }

    static func enumeration(_ values: [String], _ description: String? = nil) -> SpecValue {
        var pairs: [(String, SpecValue)] = []
        if let description { pairs.append(("description", .string(description))) }
        pairs += [("type", "string"), ("enum", .strings(values))]
        return .object(pairs)
    }

    /// A property of an object schema, in the order the Swift type declares it.
    struct Property {
        var name: String
        var schema: SpecValue
        var isRequired: Bool

        /// Always present in the JSON.
        static func required(_ name: String, _ schema: SpecValue, _ description: String? = nil) -> Property {
            Property(name: name, schema: described(schema, description), isRequired: true)
        }

        /// A Swift optional: present only when set (Swift's `Codable` never writes `null` for it).
        static func optional(_ name: String, _ schema: SpecValue, _ description: String? = nil) -> Property {
            Property(name: name, schema: described(schema, description), isRequired: false)
        }

        private static func described(_ schema: SpecValue, _ description: String?) -> SpecValue {
            guard let description else { return schema }
            return SpecValue.object([("description", .string(description))]).adding(members(of: schema))
        }

        private static func members(of value: SpecValue) -> [(String, SpecValue)] {
            guard case .object(let members) = value else { return [] }
            return members.map { ($0.key, $0.value) }
        }
    }

    /// A closed object: exactly these properties, the required ones always present.
    static func object(_ description: String?, _ properties: [Property]) -> SpecValue {
        var pairs: [(String, SpecValue)] = []
        if let description { pairs.append(("description", .string(description))) }
        pairs.append(("type", "object"))
        let required = properties.filter(\.isRequired).map(\.name)
        if !required.isEmpty { pairs.append(("required", .strings(required))) }
        if !properties.isEmpty { pairs.append(("properties", .object(properties.map { ($0.name, $0.schema) }))) }
        pairs.append(("additionalProperties", false))
        return .object(pairs)
    }
}
