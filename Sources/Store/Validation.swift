import Foundation
import Core

/// Limits the store enforces.
public enum StoreLimits {
    /// The largest page a listing returns.
    public static let maximumPageSize = 500
    /// Label keys and values, and names, are at most this many characters.
    public static let maximumNameLength = 253
}

/// `key=value[,key2=value2]`, every pair required.
struct LabelSelector: Sendable, Equatable {
    let requirements: [(key: String, value: String)]

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.requirements.map { [$0.key, $0.value] } == rhs.requirements.map { [$0.key, $0.value] }
    }

    init(parsing text: String) throws {
        var requirements: [(key: String, value: String)] = []
        for term in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = term.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw StoreError.invalidArgument("label selector \(text.debugDescription): \(String(term).debugDescription) is not key=value")
            }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            do {
                try Labels.validate(key: key, value: value)
            } catch let StoreError.invalidArgument(message) {
                throw StoreError.invalidArgument("label selector \(text.debugDescription): \(message)")
            }
            requirements.append((key, value))
        }
        self.requirements = requirements
    }

    /// Whether every requirement is among `labels`.
    func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { labels[$0.key] == $0.value }
    }
}

enum Labels {
    /// Keys: 1…253 of `A-Z a-z 0-9 . _ / -`, starting with a letter or digit. Values: 0…253 of
    /// `A-Z a-z 0-9 . _ -`. (Kubernetes-like, and never containing the selector's `,` or `=`.)
    static func validate(key: String, value: String) throws {
        guard !key.isEmpty, key.count <= StoreLimits.maximumNameLength,
            key.unicodeScalars.allSatisfy({ isKeyCharacter($0) }),
            let first = key.unicodeScalars.first, isAlphanumeric(first)
        else {
            throw StoreError.invalidArgument(
                "label key \(key.debugDescription) must be 1-253 characters of A-Z a-z 0-9 . _ / - starting with a letter or digit")
        }
        guard value.count <= StoreLimits.maximumNameLength, value.unicodeScalars.allSatisfy({ isValueCharacter($0) }) else {
            throw StoreError.invalidArgument(
                "label \(key) value \(value.debugDescription) must be at most 253 characters of A-Z a-z 0-9 . _ -")
        }
    }

    static func validate(_ labels: [String: String]) throws {
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            try validate(key: key, value: value)
        }
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
    }

    private static func isValueCharacter(_ scalar: Unicode.Scalar) -> Bool {
        isAlphanumeric(scalar) || scalar == "." || scalar == "_" || scalar == "-"
    }

    private static func isKeyCharacter(_ scalar: Unicode.Scalar) -> Bool {
        isValueCharacter(scalar) || scalar == "/"
    }
}

enum Validate {
    /// Certificate and target names: 1…253 characters, no control characters.
    static func name(_ name: String, of objectType: String) throws {
        guard !name.isEmpty, name.count <= StoreLimits.maximumNameLength,
            !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw StoreError.invalidArgument("\(objectType) name \(name.debugDescription) must be 1-253 characters without control characters")
        }
    }

    /// Well-formed JSON text whose top level is an object.
    static func jsonObject(_ text: String, field: String) throws {
        guard case .object = try? JSONValue.parse(Data(text.utf8)) else {
            throw StoreError.invalidArgument("\(field) is not a JSON object")
        }
    }

    /// Well-formed JSON text whose top level is an array.
    static func jsonArray(_ text: String, field: String) throws {
        guard case .array = try? JSONValue.parse(Data(text.utf8)) else {
            throw StoreError.invalidArgument("\(field) is not a JSON array")
        }
    }

    static func limit(_ limit: Int) throws {
        guard (1...StoreLimits.maximumPageSize).contains(limit) else {
            throw StoreError.invalidArgument("limit \(limit) must be between 1 and \(StoreLimits.maximumPageSize)")
        }
    }

    static func leaseDuration(_ duration: Duration) throws -> Int64 {
        let micros = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        guard micros > 0 else { throw StoreError.invalidArgument("lease duration \(duration) must be positive") }
        return micros
    }
}

/// Keyset pagination cursors: the sort key of the last item returned, as base64url JSON. Opaque to callers.
enum Cursor {
    struct ByName: Codable {
        var name: String
        var id: String?
    }

    struct BySequence: Codable {
        var seq: Int64
    }

    static func encode<T: Encodable>(_ key: T) -> String {
        let data = (try? JSONEncoder().encode(key)) ?? Data()
        return data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode<T: Decodable>(_ type: T.Type, _ cursor: String) throws -> T {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let key = try? JSONDecoder().decode(T.self, from: data) else {
            throw StoreError.invalidArgument("cursor \(cursor.debugDescription) is not one this listing returned")
        }
        return key
    }
}
