import Core
import Foundation

/// Reads a target JSON file (`deploy --config`, `targets add|update --file`) into its top-level members, refusing
/// unreadable files, malformed JSON, a non-object and members outside `allowed`, each with the path and field named.
enum TargetFileMembers {
    static func read(path: String, allowed: Set<String>) throws(InputError) -> [String: JSONValue] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw InputError("cannot read target file \(path): \(error.localizedDescription)")
        }
        return try parse(data, path: path, allowed: allowed)
    }

    static func parse(_ data: Data, path: String, allowed: Set<String>) throws(InputError) -> [String: JSONValue] {
        let json: JSONValue
        do {
            json = try JSONValue.parse(data)
        } catch {
            throw InputError("\(path) is not valid JSON: \(error)")
        }
        guard case .object(let members) = json else { throw InputError("\(path): must be a JSON object") }
        if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw InputError("\(path): /\(unknown): unknown field (expected \(allowed.sorted().joined(separator: ", ")))")
        }
        return members
    }
}
