/// The rules every path certdeploy writes on a target must follow: absolute, normalised, and free of
/// characters that could split a command line or a config file.
public enum RemotePath {
    /// Why `path` is unsafe, or nil when it is fine.
    public static func problem(with path: String) -> String? {
        // Byte-wise over UTF-8 (every target create and update checks several paths): the bytes looked for are
        // ASCII, which never occur inside a multi-byte sequence.
        let bytes = path.utf8
        if bytes.isEmpty { return "must not be empty" }
        if bytes.contains(0) { return "must not contain a NUL character" }
        if bytes.contains(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) { return "must not contain a newline" }
        guard bytes.first == UInt8(ascii: "/") else { return "must be an absolute path (start with /)" }
        if bytes.count == 1 { return "must name a file, not /" }
        if bytes.last == UInt8(ascii: "/") { return "must name a file, not a directory (trailing /)" }
        let components = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        if components.contains(where: \.isEmpty) { return "must be normalised (no empty // component)" }
        if components.contains(where: { $0.elementsEqual("..".utf8) }) { return "must not contain .. components" }
        if components.contains(where: { $0.elementsEqual(".".utf8) }) { return "must be normalised (no . components)" }
        return nil
    }

    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    public static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// `name` inside `directory` (no doubled slash under `/`).
    public static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : "\(directory)/\(name)"
    }
}

/// POSIX permission bits.
public struct FileMode: Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(_ rawValue: UInt32) { self.rawValue = rawValue & 0o7777 }

    /// "0600" or "600".
    public init?(octal: String) {
        guard (3...4).contains(octal.count), octal.allSatisfy({ ("0"..."7").contains($0) }),
              let value = UInt32(octal, radix: 8), value <= 0o7777 else { return nil }
        self.rawValue = value
    }

    public var description: String {
        let text = String(rawValue, radix: 8)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }

    public static let privateKey = FileMode(0o600)
    public static let groupReadableKey = FileMode(0o640)
    public static let publicFile = FileMode(0o644)

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let mode = FileMode(octal: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an octal mode: \(text)"))
        }
        self = mode
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Quoting for the remote POSIX shell: commands are argv arrays, never shell strings, so every
/// argument is single-quoted and nothing the operator wrote is interpreted by the shell.
public enum ShellQuoting {
    private static let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@%+,")

    public static func quote(_ argument: String) -> String {
        if !argument.isEmpty, argument.allSatisfy({ safe.contains($0) }) { return argument }
        return "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    public static func commandLine(_ argv: [String]) -> String {
        argv.enumerated().map { index, argument in
            // An unquoted first word `NAME=value` is a variable assignment to the shell, not the command.
            let quoted = quote(argument)
            return index == 0 && quoted == argument && argument.contains("=") ? "'\(argument)'" : quoted
        }.joined(separator: " ")
    }
}
