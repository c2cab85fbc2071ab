import Core
import Foundation
import XCTest

/// `JSONValue.parse` (hand-written, strict) and `JSONValue.jsonText` (direct writer) against the Codable path they
/// replaced: the parser must agree with `JSONDecoder` on valid input, and the writer must be byte-identical to
/// `JSONEncoder` (sorted keys, unescaped slashes, pretty or not), which the committed docs and stored JSON depend on.
final class JSONTextTests: XCTestCase {
    // The implementations this replaced.
    private func encoderText(_ value: JSONValue, pretty: Bool) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "null"
    }

    private func decoderValue(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    private func parse(_ text: String) throws -> JSONValue {
        try JSONValue.parse(Data(text.utf8))
    }

    private func assertSameText(_ value: JSONValue, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(value.jsonText(pretty: false), encoderText(value, pretty: false), file: file, line: line)
        XCTAssertEqual(value.jsonText(pretty: true), encoderText(value, pretty: true), file: file, line: line)
    }

    // MARK: Parser

    func testParsesEveryKind() throws {
        let value = try parse(#" { "a" : [1, -2.5, 1e3, 0, -0, true, false, null, "x"], "b": {}, "c": [], "d": {"e": {"f": "g"}} } "#)
        XCTAssertEqual(value, .object([
            "a": .array([.number(1), .number(-2.5), .number(1000), .number(0), .number(-0.0), .bool(true), .bool(false), .null, .string("x")]),
            "b": .object([:]), "c": .array([]), "d": .object(["e": .object(["f": .string("g")])]),
        ]))
        XCTAssertEqual(try parse("7"), .number(7))
        XCTAssertEqual(try parse(" \"top\" "), .string("top"))
        XCTAssertEqual(try parse("null"), .null)
        XCTAssertEqual(try parse("\u{FEFF}[1]"), .array([.number(1)]))  // a UTF-8 byte order mark is skipped
    }

    func testStringEscapes() throws {
        XCTAssertEqual(try parse(#""\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u00E9 \u20AC \u0000 \ud83d\ude00 é😀""#),
                       .string("\" \\ / \u{8} \u{c} \n \r \t A é é € \u{0} 😀 é😀"))
        XCTAssertEqual(try parse(#""\uD83D\uDE00""#), .string("😀"))
    }

    func testNumbersMatchJSONDecoder() throws {
        let numbers = ["0", "-0", "1", "-1", "22", "443", "1.5", "-2.25", "1e21", "1E+2", "1e-7", "0.1", "123456789012345",
                       "1234567890123456", "12345678901234567890", "9007199254740993", "-9223372036854775808", "1.7976931348623157e308",
                       "5e-324", "2.2250738585072014e-308", "0e-400", "-0.0e-999", "0.30000000000000004", "3.141592653589793", "100000000000000000000000"]
        for text in numbers {
            let parsed = try parse(text)
            let decoded = try decoderValue(text)
            guard case .number(let a) = parsed, case .number(let b) = decoded else { return XCTFail(text) }
            XCTAssertEqual(a.bitPattern, b.bitPattern, text)
        }
        // Valid RFC 8259 that JSONDecoder refuses: zero with a fraction and an exponent.
        XCTAssertEqual(try parse("0.000e5"), .number(0))
    }

    func testAgreesWithJSONDecoderOnValidInput() throws {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<400 {
            let value = Self.randomValue(depth: 0, using: &generator)
            for pretty in [false, true] {
                let text = encoderText(value, pretty: pretty)
                XCTAssertEqual(try parse(text), try decoderValue(text), text)
            }
        }
    }

    func testDuplicateKeysKeepTheFirstValueLikeJSONDecoder() throws {
        let text = #"{"a":1,"a":2,"b":{"c":true,"c":false}}"#
        XCTAssertEqual(try parse(text), try decoderValue(text))
        XCTAssertEqual(try parse(text), .object(["a": .number(1), "b": .object(["c": .bool(true)])]))
    }

    func testRejectsMalformedInputNamingTheOffset() {
        let cases: [(String, Int)] = [
            ("", 0), ("   ", 3), ("{", 1), ("[", 1), ("[1,]", 3), ("{\"a\":1,}", 7), ("{\"a\" 1}", 5), ("{a:1}", 1), ("[1 2]", 3),
            ("01", 0), ("-", 0), ("1.", 0), (".5", 0), ("1e", 0), ("1e+", 0), ("+1", 0), ("NaN", 0), ("Infinity", 0), ("1e400", 0),
            ("-1e400", 0), ("1e-400", 0), ("2e-324", 0), ("[0.1e-999]", 1), ("tru", 0), ("nul", 0), ("truex", 4), ("\"abc", 0), ("\"a\u{1}b\"", 2), ("\"a\nb\"", 2), ("\"\\x\"", 1),
            ("\"\\u12\"", 1), ("\"\\u12G4\"", 1), ("\"\\ud800\"", 1), ("\"\\ud800\\u0041\"", 1), ("\"\\udc00\"", 1), ("\"x\\ude00\\ud83d\"", 2),
            ("1 2", 2), ("[1] x", 4), ("{\"a\":}", 5), ("[,1]", 1), ("// c\n1", 0), ("'a'", 0), ("\u{7F}", 0),
        ]
        for (text, offset) in cases {
            XCTAssertThrowsError(try parse(text), text.debugDescription) { error in
                guard let error = error as? JSONParseError else { return XCTFail("\(text.debugDescription): \(error)") }
                XCTAssertEqual(error.offset, offset, "\(text.debugDescription): \(error)")
                XCTAssertTrue(error.description.contains("at byte offset \(offset)"), error.description)
            }
        }
    }

    func testRejectsInvalidUTF8() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0x5C, 0x6E, 0xC0, 0xAF, 0x22], [0xFF]] {
            XCTAssertThrowsError(try JSONValue.parse(Data(bytes)), "\(bytes)") { error in
                XCTAssertTrue(error is JSONParseError, "\(error)")
            }
        }
    }

    func testNestingLimit() throws {
        let deep = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        XCTAssertNoThrow(try parse(deep))
        let tooDeep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        XCTAssertThrowsError(try parse(tooDeep)) { error in
            XCTAssertEqual((error as? JSONParseError)?.offset, 512, "\(error)")
        }
        let deepObjects = String(repeating: "{\"a\":", count: 600) + "1" + String(repeating: "}", count: 600)
        XCTAssertThrowsError(try parse(deepObjects))
    }

    // MARK: Writer

    func testWriterMatchesJSONEncoderOnEdgeCases() {
        let doubles: [Double] = [0, -0.0, 1, -1, 1.5, 1e21, 1e15, -1e15, 1e15 - 1, 999_999_999_999_999.5, 1e16, 1e22, 1e-7, 0.1, 1.0 / 3,
                                 123456789012345680, 9007199254740992, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                 2.2250738585072014e-308, 0.000001, 1e-5, 100, 4.35, 22, 443, 65535, -2.5e-10]
        for number in doubles { assertSameText(.number(number)) }
        assertSameText(.array(doubles.map(JSONValue.number)))
        let strings = ["", "plain", "a/b", "\"q\"", "back\\slash", "\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}", "é", "e\u{301}",
                       "😀", "\u{2028}\u{2029}", "\u{FFFE}", "<redacted>", "-----BEGIN KEY-----\nabc\n-----END KEY-----\n", "tab\there"]
        for text in strings { assertSameText(.string(text)) }
        // ("é" and "e\u{301}" are one key to Swift's Dictionary.)
        assertSameText(.object(strings.enumerated().reduce(into: [:]) { $0[$1.element] = .number(Double($1.offset)) }))
        // Key order: JSONEncoder sorts by UTF-8 bytes (not String's Unicode-aware `<`, not UTF-16).
        assertSameText(.object(["e\u{301}x": .null, "éa": .null, "f": .null, "\u{FB01}": .null, "😀": .null, "Å": .null, "\u{212B}b": .null,
                                "a10": .null, "a9": .null, "B": .null, "_": .null, "~": .null, "": .null, "aa": .null, "A": .null]))
        for empty: JSONValue in [.array([]), .object([:]), .object(["a": .array([]), "b": .object([:]), "c": .array([.object([:])])])] {
            assertSameText(empty)
        }
        for scalar: JSONValue in [.null, .bool(true), .bool(false)] { assertSameText(scalar) }
        // Not representable: JSONEncoder throws, jsonText says "null".
        for bad in [Double.nan, .infinity, -.infinity] {
            XCTAssertEqual(JSONValue.array([.number(bad)]).jsonText(pretty: false), "null")
            assertSameText(.object(["a": .number(bad)]))
        }
    }

    func testWriterMatchesJSONEncoderOnRandomValues() {
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<1500 {
            assertSameText(Self.randomValue(depth: 0, using: &generator))
        }
        for _ in 0..<20_000 {
            let number = JSONValue.number(Double(bitPattern: generator.next()))
            XCTAssertEqual(number.jsonText(pretty: false), encoderText(number, pretty: false))
        }
    }

    /// Every JSON example in the committed docs, written both ways.
    func testWriterMatchesJSONEncoderOnTheDocsCorpus() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let docs = root.appendingPathComponent("docs")
        guard let files = FileManager.default.enumerator(at: docs, includingPropertiesForKeys: nil) else { return XCTFail("no docs") }
        var blocks = 0
        for case let file as URL in files where file.pathExtension == "md" || file.pathExtension == "json" {
            let text = try String(contentsOf: file, encoding: .utf8)
            let candidates = file.pathExtension == "json" ? [text] : Self.fencedJSONBlocks(text)
            for block in candidates {
                guard let decoded = try? decoderValue(block) else { continue }
                XCTAssertEqual(try parse(block), decoded, file.lastPathComponent)
                assertSameText(decoded)
                blocks += 1
            }
        }
        XCTAssertGreaterThan(blocks, 5)
    }

    private static func fencedJSONBlocks(_ markdown: String) -> [String] {
        var blocks: [String] = []
        var current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line.trimmingCharacters(in: .whitespaces).hasPrefix("```json") {
                current = []
            } else if current != nil, line.trimmingCharacters(in: .whitespaces).hasPrefix("```") {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    // MARK: Random values

    static func randomValue(depth: Int, using generator: inout SeededGenerator) -> JSONValue {
        let kind = Int(generator.next() % (depth > 3 ? 4 : 6))
        switch kind {
        case 0: return [.null, .bool(true), .bool(false)][Int(generator.next() % 3)]
        case 1: return .number(randomNumber(using: &generator))
        case 2, 3: return .string(randomString(using: &generator))
        case 4: return .array((0..<Int(generator.next() % 5)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int(generator.next() % 6) { members[randomString(using: &generator)] = randomValue(depth: depth + 1, using: &generator) }
            return .object(members)
        }
    }

    static func randomNumber(using generator: inout SeededGenerator) -> Double {
        switch generator.next() % 6 {
        case 0: return Double(Int64(bitPattern: generator.next()) % 100_000)
        case 1: return Double(Int64(bitPattern: generator.next()) % 10_000_000_000_000_000)
        case 2: return Double(Int64(bitPattern: generator.next()) % 1_000_000) / 1000
        case 3: return Double(Int64(bitPattern: generator.next()) % 1_000_000) * 1e15
        case 4:
            let value = Double(bitPattern: generator.next())
            return value.isFinite ? value : 0.5
        default: return [1e15, -1e15, 1e21, 0.1, 1e-7, .leastNonzeroMagnitude, 999_999_999_999_999, 1_000_000_000_000_001][Int(generator.next() % 8)]
        }
    }

    static func randomString(using generator: inout SeededGenerator) -> String {
        let alphabet: [String] = ["a", "b", "Z", "0", "/", "\\", "\"", " ", "\n", "\t", "\u{1}", "\u{1f}", "\u{7f}", "é", "e\u{301}", "€", "😀",
                                  "\u{2028}", "~", "-", "_", ".", "key", "path"]
        return (0..<Int(generator.next() % 8)).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }.joined()
    }
}

/// SplitMix64: reproducible random values.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
