import Foundation

/// Removes secrets from anything that leaves the engine: step details, command output, errors.
public struct Redactor: Sendable {
    public static let placeholder = "<redacted>"
    private let secrets: [String]

    /// `secrets`: exact strings to remove (passwords, tokens, key PEMs); PEM private-key blocks are always removed.
    public init(secrets: [String] = []) {
        self.secrets = secrets.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
    }

    public func redact(_ text: String) -> String {
        var result = text
        for secret in secrets where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: Self.placeholder)
        }
        while let begin = result.range(of: "-----BEGIN [A-Z ]*PRIVATE KEY-----", options: .regularExpression) {
            let end = result.range(of: "-----END [A-Z ]*PRIVATE KEY-----", options: .regularExpression, range: begin.upperBound..<result.endIndex)
            result.replaceSubrange(begin.lowerBound..<(end?.upperBound ?? result.endIndex), with: Self.placeholder)
        }
        return result
    }
}
