import Foundation

// JSON text ⇄ `JSONValue` without Codable: a strict RFC 8259 parser over UTF-8 bytes and a writer whose output is
// byte-identical to `JSONEncoder` with `.sortedKeys` and `.withoutEscapingSlashes` (and `.prettyPrinted`), which the
// committed docs and stored JSON depend on (see JSONTextTests).

/// Malformed JSON text: what is wrong and where (a byte offset into the input).
public struct JSONParseError: Error, CustomStringConvertible, Sendable, Equatable {
    public var offset: Int
    public var message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) at byte offset \(offset)" }
}

/// A strict RFC 8259 parser: one value (any type at the top level), UTF-8 only (a leading byte order mark is
/// skipped), no trailing commas, comments, leading zeros, `NaN` or unescaped control characters; `\u` escapes must
/// pair surrogates. Numbers become `Double` (out of range is an error); a repeated object key keeps its first value,
/// as `JSONDecoder` does. Nesting is limited to `maxDepth`.
struct JSONTextParser {
    static let maxDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0
    private var depth = 0
    private var scratch: [UInt8] = []

    private init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    static func parse(_ data: Data) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = data.withUnsafeBytes { raw in
            var parser = JSONTextParser(raw.bindMemory(to: UInt8.self))
            do throws(JSONParseError) {
                return .success(try parser.document())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(offset: offset ?? position, message: message)
    }

    private func unexpected() -> JSONParseError {
        guard position < bytes.count else { return error("unexpected end of input") }
        let byte = bytes[position]
        if byte >= 0x21 && byte < 0x7F { return error("unexpected character '\(Character(UnicodeScalar(byte)))'") }
        return error("unexpected byte 0x\(String(byte, radix: 16, uppercase: true))")
    }

    private mutating func document() throws(JSONParseError) -> JSONValue {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { position = 3 }
        let value = try value()
        skipWhitespace()
        guard position == bytes.count else { throw error("unexpected text after the JSON value") }
        return value
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    private mutating func value() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard position < bytes.count else { throw error("unexpected end of input") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw unexpected()
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let start = position
        let count = word.utf8CodeUnitCount
        guard bytes.count - position >= count else { throw error("invalid literal (expected \(word))", at: start) }
        for index in 0..<count where bytes[position + index] != word.utf8Start[index] {
            throw error("invalid literal (expected \(word))", at: start)
        }
        position += count
    }

    private mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > Self.maxDepth { throw error("nesting deeper than \(Self.maxDepth) levels") }
    }

    private mutating func object() throws(JSONParseError) -> JSONValue {
        try enter()
        position += 1  // {
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw position < bytes.count ? error("expected a string (an object key)") : error("unexpected end of input")
            }
            let key = try string()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                throw position < bytes.count ? error("expected ':' after an object key") : error("unexpected end of input")
            }
            position += 1
            let member = try value()
            if members[key] == nil { members[key] = member }
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                depth -= 1
                return .object(members)
            default: throw error("expected ',' or '}' in an object")
            }
        }
    }

    private mutating func array() throws(JSONParseError) -> JSONValue {
        try enter()
        position += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            depth -= 1
            return .array(items)
        }
        while true {
            items.append(try value())
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"):
                position += 1
                depth -= 1
                return .array(items)
            default: throw error("expected ',' or ']' in an array")
            }
        }
    }

    /// A string starting at the opening quote.
    private mutating func string() throws(JSONParseError) -> String {
        let start = position
        position += 1
        let contentStart = position
        // Fast path: no escapes.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let text = try utf8String(UnsafeBufferPointer(rebasing: bytes[contentStart..<position]), start: contentStart)
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("unescaped control character in a string") }
            position += 1
        }
        guard position < bytes.count else { throw error("unterminated string", at: start) }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[contentStart..<position]))
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return try scratch.withUnsafeBufferPointer { buffer throws(JSONParseError) in try utf8String(buffer, start: contentStart) }
            case UInt8(ascii: "\\"):
                try escape()
            case 0..<0x20:
                throw error("unescaped control character in a string")
            default:
                scratch.append(byte)
                position += 1
            }
        }
        throw error("unterminated string", at: start)
    }

    private func utf8String(_ buffer: UnsafeBufferPointer<UInt8>, start: Int) throws(JSONParseError) -> String {
        if let text = String(validating: buffer, as: UTF8.self) { return text }
        throw error("invalid UTF-8 in a string", at: start)
    }

    /// One escape sequence at `position` (the backslash), appended to `scratch` as UTF-8.
    private mutating func escape() throws(JSONParseError) {
        let start = position
        guard position + 1 < bytes.count else { throw error("unterminated string") }
        let code = bytes[position + 1]
        position += 2
        switch code {
        case UInt8(ascii: "\""): scratch.append(0x22)
        case UInt8(ascii: "\\"): scratch.append(0x5C)
        case UInt8(ascii: "/"): scratch.append(0x2F)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = UInt32(try hex4(at: start))
            if (0xD800...0xDBFF).contains(scalar) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                    throw error("unpaired high surrogate \\u\(String(scalar, radix: 16, uppercase: true))", at: start)
                }
                let lowStart = position
                position += 2
                let low = UInt32(try hex4(at: lowStart))
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error("unpaired high surrogate \\u\(String(scalar, radix: 16, uppercase: true))", at: start)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw error("unpaired low surrogate \\u\(String(scalar, radix: 16, uppercase: true))", at: start)
            }
            appendUTF8(scalar)
        default:
            throw error("invalid escape sequence", at: start)
        }
    }

    /// Four hex digits at `position`, for the `\u` escape at `start`.
    private mutating func hex4(at start: Int) throws(JSONParseError) -> UInt16 {
        guard bytes.count - position >= 4 else { throw error("invalid \\u escape (needs four hex digits)", at: start) }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape (needs four hex digits)", at: start)
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | (scalar >> 6)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | (scalar >> 12)))
            scratch.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        default:
            scratch.append(UInt8(0xF0 | (scalar >> 18)))
            scratch.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            scratch.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }

    private mutating func number() throws(JSONParseError) -> Double {
        let start = position
        var negative = false
        if bytes[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number (expected a digit)", at: start) }
        var integer: Int64 = 0
        var digits = 0
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, isDigit(bytes[position]) { throw error("invalid number (leading zero)", at: start) }
            digits = 1
        } else {
            while position < bytes.count, isDigit(bytes[position]) {
                if digits < 18 { integer = integer &* 10 &+ Int64(bytes[position] &- UInt8(ascii: "0")) }
                digits += 1
                position += 1
            }
        }
        var simple = true
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            simple = false
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number (expected a digit after '.')", at: start) }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            simple = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number (expected a digit in the exponent)", at: start) }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if simple, digits <= 15 {
            // Exact: every integer below 2^53 is a Double.
            let value = Double(integer)
            return negative ? -value : value
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw error("number out of range", at: start) }
        if value == 0 {
            // Like JSONDecoder: a non-zero number that underflows to zero is out of range too.
            for byte in bytes[start..<position] {
                if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { break }
                if byte >= UInt8(ascii: "1") && byte <= UInt8(ascii: "9") { throw error("number out of range", at: start) }
            }
        }
        return value
    }

    @inline(__always)
    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}

/// Writes JSON text with sorted keys and unescaped slashes, byte-identical to `JSONEncoder`'s output for the same
/// values (`JSONValue` numbers as `JSONValue.encode(to:)` writes them: integers below 1e15 without a fraction).
public struct JSONTextWriter: Sendable {
    /// A number that JSON cannot represent (NaN, ±infinity); `JSONEncoder` refuses these too.
    public struct NonFiniteNumber: Error, Sendable {}

    public var bytes: [UInt8] = []

    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    @inline(__always)
    public mutating func raw(_ ascii: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: ascii.utf8Start, count: ascii.utf8CodeUnitCount))
    }

    public mutating func value(_ value: JSONValue, pretty: Bool = false, indent: Int = 0) throws(NonFiniteNumber) {
        switch value {
        case .null: raw("null")
        case .bool(let flag): flag ? raw("true") : raw("false")
        case .number(let number): try self.number(number)
        case .string(let text): string(text)
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            if pretty {
                bytes.append(0x0A)
                if items.isEmpty {
                    bytes.append(0x0A)
                } else {
                    for (index, item) in items.enumerated() {
                        if index > 0 { raw(",\n") }
                        spaces(indent + 1)
                        try self.value(item, pretty: true, indent: indent + 1)
                    }
                    bytes.append(0x0A)
                }
                spaces(indent)
            } else {
                for (index, item) in items.enumerated() {
                    if index > 0 { bytes.append(UInt8(ascii: ",")) }
                    try self.value(item)
                }
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            let sorted = Self.sortedMembers(members)
            if pretty {
                bytes.append(0x0A)
                if sorted.isEmpty {
                    bytes.append(0x0A)
                } else {
                    for (index, member) in sorted.enumerated() {
                        if index > 0 { raw(",\n") }
                        spaces(indent + 1)
                        string(member.key)
                        raw(" : ")
                        try self.value(member.value, pretty: true, indent: indent + 1)
                    }
                    bytes.append(0x0A)
                }
                spaces(indent)
            } else {
                for (index, member) in sorted.enumerated() {
                    if index > 0 { bytes.append(UInt8(ascii: ",")) }
                    string(member.key)
                    bytes.append(UInt8(ascii: ":"))
                    try self.value(member.value)
                }
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// Members in `JSONEncoder`'s `.sortedKeys` order: by the keys' UTF-8 bytes.
    @inlinable  // specialised at the call site: unspecialised, the generic sort was a third of writing a target view
    public static func sortedMembers<Value>(_ members: [String: Value]) -> [(key: String, value: Value)] {
        if members.count < 2 { return members.map { (key: $0.key, value: $0.value) } }
        return members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    private mutating func spaces(_ indent: Int) {
        for _ in 0..<(indent * 2) { bytes.append(0x20) }
    }

    /// A `JSONValue` number: an integer below 1e15 as an integer, anything else as `JSONEncoder` writes a `Double`.
    public mutating func number(_ number: Double) throws(NonFiniteNumber) {
        if number.rounded() == number, abs(number) < 1e15 {
            integer(Int64(number))
        } else {
            try double(number)
        }
    }

    /// A `Double` as `JSONEncoder` writes it (its description without a trailing ".0").
    public mutating func double(_ number: Double) throws(NonFiniteNumber) {
        guard number.isFinite else { throw NonFiniteNumber() }
        var text = number.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: text.utf8)
    }

    public mutating func integer(_ number: some BinaryInteger) {
        if number >= 0, number < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(number))
        } else {
            bytes.append(contentsOf: number.description.utf8)
        }
    }

    /// A string, escaped as `JSONEncoder` does with `.withoutEscapingSlashes`: `"`, `\`, `\b \f \n \r \t` and other
    /// control characters as `\u00xx`; everything else (including `/` and non-ASCII) as UTF-8.
    public mutating func string(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            bytes.append(UInt8(ascii: "\""))
            var runStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
                if runStart < index { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index])) }
                runStart = index + 1
                switch byte {
                case 0x22: raw("\\\"")
                case 0x5C: raw("\\\\")
                case 0x08: raw("\\b")
                case 0x0C: raw("\\f")
                case 0x0A: raw("\\n")
                case 0x0D: raw("\\r")
                case 0x09: raw("\\t")
                default:
                    raw("\\u00")
                    let hex: StaticString = "0123456789abcdef"
                    bytes.append(hex.utf8Start[Int(byte >> 4)])
                    bytes.append(hex.utf8Start[Int(byte & 0x0F)])
                }
            }
            if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
            bytes.append(UInt8(ascii: "\""))
        }
    }
}
