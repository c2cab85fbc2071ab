import Core
import Foundation
import XCTest

/// `JSONValueDecoder` against `JSONDecoder` on the same JSON: the same values, and the same kind of error at the same
/// coding path.
final class JSONValueDecoderTests: XCTestCase {
    struct Inner: Codable, Equatable {
        var name: String
        var port: UInt16
    }

    enum Mode: String, Codable, Equatable { case reload, hotUpdate = "hot-update" }

    struct Everything: Codable, Equatable {
        var int: Int
        var int8: Int8
        var int64: Int64
        var uint: UInt
        var uint32: UInt32
        var double: Double
        var float: Float
        var flag: Bool
        var text: String
        var present: String?
        var absent: String?
        var explicitNull: Int?
        var mode: Mode
        var inner: Inner
        var list: [Inner]
        var optionals: [Int?]
        var map: [String: Int]
        var nested: [[String]]
        var data: Data
        var url: URL
        var date: Date
    }

    private let sample: JSONValue = .object([
        "int": .number(-42), "int8": .number(127), "int64": .number(9_007_199_254_740_991), "uint": .number(7), "uint32": .number(4_294_967_295),
        "double": .number(1.5e-3), "float": .number(0.25), "flag": .bool(true), "text": .string("é\"\\/\n"),
        "present": .string("here"), "explicitNull": .null, "mode": .string("hot-update"),
        "inner": .object(["name": .string("a"), "port": .number(443)]),
        "list": .array([.object(["name": .string("b"), "port": .number(1)]), .object(["name": .string("c"), "port": .number(65535)])]),
        "optionals": .array([.number(1), .null, .number(3)]),
        "map": .object(["x": .number(1), "y": .number(2)]),
        "nested": .array([.array([]), .array([.string("z")])]),
        "data": .string(Data([0, 1, 2, 255]).base64EncodedString()),
        "url": .string("https://example.test/a?b=c"),
        "date": .number(123_456.5),
    ])

    private func viaText<T: Decodable>(_ type: T.Type, _ value: JSONValue) throws -> T {
        try JSONDecoder().decode(type, from: Data(value.jsonText(pretty: false).utf8))
    }

    func testDecodesWhatJSONDecoderDecodes() throws {
        let direct = try JSONValueDecoder().decode(Everything.self, from: sample)
        XCTAssertEqual(direct, try viaText(Everything.self, sample))
        XCTAssertNil(direct.absent)
        XCTAssertNil(direct.explicitNull)
        XCTAssertEqual(direct.optionals, [1, nil, 3])
        XCTAssertEqual(direct.data, Data([0, 1, 2, 255]))
        XCTAssertEqual(try JSONValueDecoder().decode([Inner].self, from: .array([])), [])
        XCTAssertEqual(try JSONValueDecoder().decode(String.self, from: .string("top")), "top")
    }

    func testErrorsAreTheSameKindAtTheSamePath() throws {
        func describe(_ error: any Error) -> String {
            switch error as? DecodingError {
            case .typeMismatch(_, let context)?: return "typeMismatch " + context.codingPath.map(\.stringValue).joined(separator: "/")
            case .valueNotFound(_, let context)?: return "valueNotFound " + context.codingPath.map(\.stringValue).joined(separator: "/")
            case .keyNotFound(let key, let context)?: return "keyNotFound \(key.stringValue) at " + context.codingPath.map(\.stringValue).joined(separator: "/")
            case .dataCorrupted(let context)?: return "dataCorrupted " + context.codingPath.map(\.stringValue).joined(separator: "/")
            default: return "other \(error)"
            }
        }
        guard case .object(let members) = sample else { return XCTFail() }
        var cases: [JSONValue] = []
        var changed = members
        changed["inner"] = .object(["name": .string("a"), "port": .string("443")])  // wrong type, nested
        cases.append(.object(changed))
        changed = members
        changed["list"] = .array([.object(["name": .string("b")])])  // missing key inside an array
        cases.append(.object(changed))
        changed = members
        changed["int8"] = .number(300)  // out of range
        cases.append(.object(changed))
        changed = members
        changed["int"] = .number(1.5)  // not an integer
        cases.append(.object(changed))
        changed = members
        changed["text"] = .null  // null for a non-optional
        cases.append(.object(changed))
        changed = members
        changed["mode"] = .string("restart")  // not a case
        cases.append(.object(changed))
        changed = members
        changed["data"] = .string("not base64!")
        cases.append(.object(changed))
        for value in cases {
            var direct = "no error"
            var text = "no error"
            do { _ = try JSONValueDecoder().decode(Everything.self, from: value) } catch { direct = describe(error) }
            do { _ = try viaText(Everything.self, value) } catch { text = describe(error) }
            XCTAssertNotEqual(direct, "no error")
            if text == "dataCorrupted " {
                // JSONDecoder leaves the path out of a number that does not fit; this names the field.
                XCTAssertTrue(direct.hasPrefix("dataCorrupted ") && direct.count > "dataCorrupted ".count, direct)
            } else {
                XCTAssertEqual(direct, text)
            }
        }
    }
}
