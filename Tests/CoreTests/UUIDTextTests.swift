import Foundation
import XCTest

import Core

final class UUIDTextTests: XCTestCase {
    func testTextMatchesFoundationBothWays() {
        var samples = (0..<2000).map { _ in UUID() }
        samples.append(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        samples.append(UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)))
        for uuid in samples {
            XCTAssertEqual(uuid.lowercasedText, uuid.uuidString.lowercased())
            XCTAssertEqual(uuid.uppercasedText, uuid.uuidString)
            XCTAssertEqual(UUID(text: uuid.lowercasedText), uuid)
            XCTAssertEqual(UUID(text: uuid.uuidString), uuid)
            XCTAssertEqual(UUID(text: uuid.uuidString.prefix(36)), uuid, "a Substring parses too")
        }
    }

    func testMixedCaseParsesAsFoundationDoes() {
        let text = "0a1B2c3D-4e5F-6a7B-8c9D-0e1F2a3B4c5D"
        XCTAssertEqual(UUID(text: text), UUID(uuidString: text))
        XCTAssertNotNil(UUID(text: text))
    }

    func testAnythingButTheHyphenatedHexFormIsRefused() {
        let valid = "123e4567-e89b-12d3-a456-426614174000"
        let refused = [
            "", "123e4567", valid + "0", String(valid.dropLast()), " " + valid.dropLast(), valid.replacingOccurrences(of: "-", with: ""),
            "123e4567-e89b-12d3-a456_426614174000", "123e4567e-89b-12d3-a456-426614174000", "g23e4567-e89b-12d3-a456-426614174000",
            "123e4567-e89b-12d3-a456-42661417400\u{e9}", "{123e4567-e89b-12d3-a456-426614174000}", "+23e4567-e89b-12d3-a456-426614174000",
        ]
        for text in refused {
            XCTAssertNil(UUID(text: text), text.debugDescription)
        }
        XCTAssertNotNil(UUID(text: valid))
    }
}
