import Crypto
import Foundation
import Logging

/// Who a request acts as once its API key is recognised: the audit actor and the rate-limit bucket.
public struct APIPrincipal: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let isAdmin: Bool

    public init(name: String, isAdmin: Bool) {
        self.name = name
        self.isAdmin = isAdmin
    }

    public var description: String { isAdmin ? "\(name) (admin)" : name }
}

/// Where a set of API keys came from; errors name it so the operator knows what to edit.
public enum APIKeySource: Sendable, Hashable, CustomStringConvertible {
    /// The `CERTDEPLOY_API_KEYS` variable: comma-separated entries, positions count entries from 1.
    case environment
    /// A keys file (`CERTDEPLOY_API_KEYS_FILE`): one entry a line, positions are line numbers.
    case file(path: String)

    public var description: String {
        switch self {
        case .environment: APIKeyring.environmentVariable
        case .file(let path): path
        }
    }

    var positionWord: String {
        switch self {
        case .environment: "entry"
        case .file: "line"
        }
    }
}

/// The API keys were refused. Each issue names the entry by position (and by name when it is safe to show);
/// no message ever contains a key.
public struct APIKeyringError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable {
        /// Not `name:key` or `name:key:admin`.
        case malformed
        case emptyName
        case invalidName
        case keyTooShort(length: Int)
        /// The same name and key already appear at `firstPosition`: a rotation needs a different key.
        case repeatedKey(firstPosition: Int)
        /// The same key is already used by another name at `firstPosition`: a request could not tell who it is.
        case keySharedWithOtherName(otherName: String, firstPosition: Int)
        /// The name already appears at `firstPosition` with the other admin flag (privilege escalation guard).
        case conflictingAdminFlag(firstPosition: Int)
        /// The name already has two entries (the old and the new key of a rotation).
        case tooManyEntriesForName(positions: [Int])
    }

    public struct Issue: Sendable, Equatable, CustomStringConvertible {
        /// 1-based: the entry number in `CERTDEPLOY_API_KEYS`, the line number in a keys file.
        public let position: Int
        /// The entry's name as written; `nil` when there was none, or when it is as long as a key and so may be one
        /// written in the name's place (`key:admin` with the name forgotten): such a name is never kept or shown.
        public let name: String?
        public let problem: Problem
        let positionWord: String
        let nameWithheld: Bool

        init(position: Int, name: String?, problem: Problem, positionWord: String) {
            self.position = position
            self.nameWithheld = (name?.count ?? 0) >= APIKeyring.minimumKeyLength
            self.name = nameWithheld ? nil : name
            self.problem = problem
            self.positionWord = positionWord
        }

        public var description: String {
            var label = "\(positionWord) \(position)"
            if nameWithheld {
                label += " (name not shown: as long as a key, it may be one)"
            } else if let shown = APIKeyringError.displayName(name) {
                label += " (\(shown))"
            }
            return "\(label): " + problemText
        }

        private var problemText: String {
            switch problem {
            case .malformed:
                "expected name:key or name:key:admin"
            case .emptyName:
                "the name is empty"
            case .invalidName:
                "the name may contain only letters, digits, '.', '_' and '-'"
            case .keyTooShort(let length):
                "the key is \(length) characters long; at least \(APIKeyring.minimumKeyLength) are required"
            case .repeatedKey(let first):
                "repeats the key of \(positionWord) \(first) for the same name; a rotation needs a different key"
            case .keySharedWithOtherName(let other, let first):
                "uses the same key as \(positionWord) \(first) (\(APIKeyringError.displayName(other) ?? "another name")); every name needs its own key"
            case .conflictingAdminFlag(let first):
                "the admin flag differs from \(positionWord) \(first) with the same name; both keys of a rotation must have the same rights"
            case .tooManyEntriesForName(let positions):
                "the name already has two entries (\(positionWord)s \(positions.map(String.init).joined(separator: ", "))); at most two keys per name (old and new during a rotation)"
            }
        }
    }

    public enum Failure: Sendable, Equatable {
        case invalidEntries([Issue])
        /// The keys file could not be read.
        case unreadable(reason: String)
        /// The source holds no entries at all (an empty variable or file would lock every caller out).
        case empty
        /// Both `CERTDEPLOY_API_KEYS` and `CERTDEPLOY_API_KEYS_FILE` are set.
        case ambiguousSource
    }

    public var source: APIKeySource?
    public var failure: Failure

    public init(source: APIKeySource?, failure: Failure) {
        self.source = source
        self.failure = failure
    }

    /// The issues with individual entries (empty for whole-source failures).
    public var issues: [Issue] {
        if case .invalidEntries(let issues) = failure { return issues }
        return []
    }

    public var description: String {
        let origin = source.map { "API keys in \($0)" } ?? "API keys"
        switch failure {
        case .invalidEntries(let issues):
            return "\(origin) refused: " + issues.map(\.description).joined(separator: "; ")
        case .unreadable(let reason):
            return "\(origin) could not be read: \(reason)"
        case .empty:
            return "\(origin) refused: no keys are defined"
        case .ambiguousSource:
            return "API keys refused: set either \(APIKeyring.environmentVariable) or \(APIKeyring.fileEnvironmentVariable), not both"
        }
    }

    /// A name quoted, with control and non-ASCII characters escaped.
    static func displayName(_ name: String?) -> String? {
        guard let name, !name.isEmpty else { return nil }
        return "\"" + name.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? String($0) : $0.escaped(asASCII: true) }.joined() + "\""
    }
}

/// The API keys the server accepts. After parsing only the SHA-256 of each key is kept; authentication hashes the
/// presented key and compares it with every entry in constant time.
public struct APIKeyring: Sendable, CustomStringConvertible {
    public static let environmentVariable = "CERTDEPLOY_API_KEYS"
    public static let fileEnvironmentVariable = "CERTDEPLOY_API_KEYS_FILE"
    public static let minimumKeyLength = 32

    struct Entry: Sendable {
        let principal: APIPrincipal
        let digest: [UInt8]
        let position: Int
    }

    let entries: [Entry]
    public let source: APIKeySource

    /// Parses the `CERTDEPLOY_API_KEYS` format: `name:key[:admin]` entries separated by commas.
    public init(environmentValue: String) throws(APIKeyringError) {
        let items = environmentValue.split(separator: ",", omittingEmptySubsequences: false).enumerated().map { ($0.offset + 1, String($0.element)) }
        try self.init(items: items, source: .environment)
    }

    /// Parses a keys file: one `name:key[:admin]` entry a line; blank lines and lines starting with `#` are skipped.
    public init(fileContents: String, path: String) throws(APIKeyringError) {
        var items: [(Int, String)] = []
        // `isNewline`, not "\n": in a Swift string "\r\n" is one Character, so splitting on "\n" alone would glue
        // CRLF lines together.
        for (index, line) in fileContents.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            items.append((index + 1, trimmed))
        }
        try self.init(items: items, source: .file(path: path))
    }

    /// Reads and parses a keys file.
    public init(contentsOfFile path: String) throws(APIKeyringError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw APIKeyringError(source: .file(path: path), failure: .unreadable(reason: Self.readFailureReason(path: path, error: error)))
        }
        try self.init(fileContents: text, path: path)
    }

    /// Loads the keys the environment names: `CERTDEPLOY_API_KEYS_FILE` or `CERTDEPLOY_API_KEYS` (setting both is
    /// refused so a reload of the file cannot leave keys from the variable active). `nil` when neither is set.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws(APIKeyringError) -> APIKeyring? {
        let value = environment[environmentVariable]
        let path = environment[fileEnvironmentVariable]
        switch (value, path) {
        case (nil, nil): return nil
        case (.some, .some): throw APIKeyringError(source: nil, failure: .ambiguousSource)
        case (let value?, nil): return try APIKeyring(environmentValue: value)
        case (nil, let path?): return try APIKeyring(contentsOfFile: path)
        }
    }

    private init(items: [(position: Int, text: String)], source: APIKeySource) throws(APIKeyringError) {
        let word = source.positionWord
        var issues: [APIKeyringError.Issue] = []
        var entries: [Entry] = []
        func refuse(_ position: Int, _ name: String?, _ problem: APIKeyringError.Problem) {
            issues.append(APIKeyringError.Issue(position: position, name: name, problem: problem, positionWord: word))
        }
        var nonEmpty = 0
        for (position, raw) in items {
            let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            // A trailing or doubled comma in the variable leaves an empty entry: harmless, skipped.
            if text.isEmpty { continue }
            nonEmpty += 1
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let isAdmin: Bool
            switch parts.count {
            case 2: isAdmin = false
            case 3 where parts[2] == "admin": isAdmin = true
            default:
                // With a single part the "name" would be the key itself: never shown.
                refuse(position, parts.count > 1 ? parts[0] : nil, .malformed)
                continue
            }
            let name = parts[0]
            let key = parts[1]
            if name.isEmpty {
                refuse(position, nil, .emptyName)
                continue
            }
            if !Self.isValidName(name) {
                refuse(position, name, .invalidName)
                continue
            }
            if key.count < Self.minimumKeyLength {
                refuse(position, name, .keyTooShort(length: key.count))
                continue
            }
            let digest = Array(SHA256.hash(data: Data(key.utf8)))
            let sameName = entries.filter { $0.principal.name == name }
            if let twin = sameName.first(where: { ConstantTime.equals($0.digest, digest) }) {
                refuse(position, name, .repeatedKey(firstPosition: twin.position))
                continue
            }
            if let other = entries.first(where: { $0.principal.name != name && ConstantTime.equals($0.digest, digest) }) {
                refuse(position, name, .keySharedWithOtherName(otherName: other.principal.name, firstPosition: other.position))
                continue
            }
            if let first = sameName.first, first.principal.isAdmin != isAdmin {
                refuse(position, name, .conflictingAdminFlag(firstPosition: first.position))
                continue
            }
            if sameName.count >= 2 {
                refuse(position, name, .tooManyEntriesForName(positions: sameName.map(\.position)))
                continue
            }
            entries.append(Entry(principal: APIPrincipal(name: name, isAdmin: isAdmin), digest: digest, position: position))
        }
        if !issues.isEmpty { throw APIKeyringError(source: source, failure: .invalidEntries(issues)) }
        if nonEmpty == 0 { throw APIKeyringError(source: source, failure: .empty) }
        self.entries = entries
        self.source = source
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "A"..."Z", "a"..."z", "0"..."9", ".", "_", "-": true
            default: false
            }
        }
    }

    private static func readFailureReason(path: String, error: any Error) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) { return "no such file" }
        if isDirectory.boolValue { return "it is a directory" }
        if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
        return "not valid UTF-8 text"
    }

    // MARK: - Authentication

    /// The principal the presented key belongs to, or `nil` for a missing or unknown key. The key is hashed and the
    /// digest compared with every entry (no early exit) using a constant-time comparison.
    public func authenticate(_ presentedKey: String?) -> APIPrincipal? {
        guard let presentedKey, !presentedKey.isEmpty else { return nil }
        let digest = Array(SHA256.hash(data: Data(presentedKey.utf8)))
        return Self.match(digest: digest, in: entries, equals: { ConstantTime.equals($0, $1) })
    }

    /// Visits every entry whatever matches; `equals` is injectable so tests can count the comparisons.
    static func match(digest: [UInt8], in entries: [Entry], equals: ([UInt8], [UInt8]) -> Bool) -> APIPrincipal? {
        var found: APIPrincipal?
        for entry in entries {
            let isMatch = equals(entry.digest, digest)
            // Keys are unique across the keyring (enforced at parsing), so at most one entry matches.
            if isMatch { found = entry.principal }
        }
        return found
    }

    // MARK: - Inspection

    /// Number of keys (a name in a rotation window counts twice).
    public var count: Int { entries.count }

    /// The distinct names, sorted.
    public var names: [String] { Array(Set(entries.map(\.principal.name))).sorted() }

    /// The distinct principals, sorted by name.
    public var principals: [APIPrincipal] { Array(Set(entries.map(\.principal))).sorted { $0.name < $1.name } }

    /// Names with two entries: a rotation is in progress and both keys are valid. The server logs each at INFO.
    public var rotationWindows: [String] {
        Dictionary(grouping: entries, by: \.principal.name).filter { $0.value.count > 1 }.keys.sorted()
    }

    /// The INFO lines for open rotation windows, one per name.
    public func logRotationWindows(to logger: Logger) {
        for name in rotationWindows {
            logger.info("API key rotation window open: two keys are valid for this name; remove the old key when every client uses the new one", metadata: ["name": .string(name)])
        }
    }

    public var description: String {
        "APIKeyring(\(source): \(count) keys for \(names.joined(separator: ", ")))"
    }
}
