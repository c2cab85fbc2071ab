import Foundation

/// `key=value` labels given on the command line.
enum Labels {
    /// Splits `key=value` at the first `=`. The key must not be empty; neither part may contain a comma.
    static func pair(_ text: String, option: String) throws(InputError) -> (key: String, value: String) {
        guard let equals = text.firstIndex(of: "=") else {
            throw InputError("\(option) \(text): expected key=value")
        }
        let key = String(text[..<equals])
        let value = String(text[text.index(after: equals)...])
        guard !key.isEmpty else { throw InputError("\(option) \(text): the key is empty") }
        guard !text.contains(",") else { throw InputError("\(option) \(text): a label must not contain a comma") }
        return (key, value)
    }

    /// `--label k=v` values as a dictionary; a key given twice keeps the last value.
    static func dictionary(_ values: [String], option: String = "--label") throws(InputError) -> [String: String] {
        var labels: [String: String] = [:]
        for value in values {
            let (key, text) = try pair(value, option: option)
            labels[key] = text
        }
        return labels
    }

    /// A label selector `k=v,k2=v2` (all must match) from `k=v` values, each of which may itself be a comma list.
    /// Nil when there are none. A key given twice with different values is refused (no target could match).
    static func selector(_ values: [String], option: String = "--label") throws(InputError) -> String? {
        var pairs: [(key: String, value: String)] = []
        for value in values {
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                let (key, text) = try pair(String(part), option: option)
                if let earlier = pairs.first(where: { $0.key == key }) {
                    guard earlier.value == text else {
                        throw InputError("\(option): \(key)=\(earlier.value) and \(key)=\(text) cannot both match")
                    }
                    continue
                }
                pairs.append((key, text))
            }
        }
        return pairs.isEmpty ? nil : pairs.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// `a=1,b=2`, sorted by key; `-` when there are none.
    static func text(_ labels: [String: String]) -> String {
        labels.isEmpty ? "-" : labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

/// Which targets a deploy goes to, from `--to` values: a value containing `=` is a label selector (`role=web`, or
/// `role=web,env=prod`), and all of them together make one selector that a target must match entirely; any other
/// value is a target id or name.
struct TargetSelection: Equatable {
    var targets: [String]
    var selector: String?

    init(to values: [String]) throws(InputError) {
        guard !values.isEmpty else {
            throw InputError("--to: name at least one target (id or name) or label selector (key=value)")
        }
        var targets: [String] = []
        var labelValues: [String] = []
        for value in values {
            let trimmed = value.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { throw InputError("--to: empty value") }
            if trimmed.contains("=") {
                labelValues.append(trimmed)
            } else if trimmed.contains(",") {
                throw InputError("--to \(trimmed): give one target per --to (or key=value labels)")
            } else if !targets.contains(trimmed) {
                targets.append(trimmed)
            }
        }
        self.targets = targets
        self.selector = try Labels.selector(labelValues, option: "--to")
    }
}
