import Foundation
import XCTest

import Core

final class ISO8601TextTests: XCTestCase {
    private let foundation = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    func testMatchesFoundationForStoredMicrosecondsAndArbitraryInstants() {
        var samples: [Date] = [Date(), Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -0.0005), Date(timeIntervalSince1970: -1)]
        // How the store reads times back: whole microseconds since 1970.
        for _ in 0..<20_000 {
            samples.append(Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_102_444_800_000_000)) / 1_000_000))
        }
        for microseconds: Int64 in [999, 999_999, 1_764_441_048_999_500, 1_764_441_048_999_999, 951_782_400_000_000, 4_102_444_799_999_999] {
            samples.append(Date(timeIntervalSince1970: Double(microseconds) / 1_000_000))
        }
        for _ in 0..<20_000 {
            samples.append(Date(timeIntervalSince1970: Double.random(in: -62_000_000_000...253_000_000_000)))
        }
        for date in samples {
            XCTAssertEqual(date.iso8601MillisecondsText, date.formatted(foundation), "\(date.timeIntervalSince1970)")
        }
    }

    func testLeapDaysAndCenturies() {
        let cases: [(TimeInterval, String)] = [
            (951_782_400, "2000-02-29T00:00:00.000Z"),
            (4_107_542_399.999, "2100-02-28T23:59:59.999Z"),
            (-2_208_988_800, "1900-01-01T00:00:00.000Z"),
            (1_709_164_800.5, "2024-02-29T00:00:00.500Z"),
        ]
        for (interval, text) in cases {
            XCTAssertEqual(Date(timeIntervalSince1970: interval).iso8601MillisecondsText, text)
        }
    }

    func testYearsOutsideFourDigitsAndBeforeTheGregorianCalendarFallBackToFoundation() {
        for interval: TimeInterval in [253_402_300_800 + 86_400, -12_219_292_800 - 1, -12_219_292_800, -58_444_145_219.593] {
            let date = Date(timeIntervalSince1970: interval)
            XCTAssertEqual(date.iso8601MillisecondsText, date.formatted(foundation), "\(interval)")
        }
    }
}
