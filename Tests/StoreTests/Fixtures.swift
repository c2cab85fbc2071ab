import Core
import Foundation
import NIOConcurrencyHelpers
import XCTest

@testable import Store

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let box: NIOLockedValueBox<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000.25)) {
        box = NIOLockedValueBox(start)
    }

    var now: Date { box.withLockedValue { $0 } }

    func advance(by seconds: TimeInterval) {
        box.withLockedValue { $0 = $0.addingTimeInterval(seconds) }
    }

    var function: @Sendable () -> Date {
        let box = box
        return { box.withLockedValue { $0 } }
    }
}

enum Fixture {
    static func version(_ name: String, _ n: Int = 1, mustStaple: Bool = false) -> NewCertificateVersion {
        NewCertificateVersion(
            certificateName: name,
            certificatePEM: "-----BEGIN CERTIFICATE-----\nMIIB\(n)\n-----END CERTIFICATE-----\n",
            chainPEM: "-----BEGIN CERTIFICATE-----\nMIIC\(n)\n-----END CERTIFICATE-----\n",
            // Opaque bytes, including NUL and 0xff, must round-trip exactly.
            encryptedPrivateKey: [0x00, 0x01, 0xff, 0x7f, 0x80, UInt8(n & 0xff)] + Array(repeating: 0xab, count: 64),
            sha256: String(repeating: "0", count: 63) + String(n % 10),
            notAfter: Date(timeIntervalSince1970: 1_900_000_000.123456),
            subjectAlternativeNames: ["\(name).example.test", "192.0.2.\(n % 250)"],
            mustStaple: mustStaple)
    }

    static func target(_ name: String, labels: [String: String] = [:], connector: String = "nginx", certificate: String? = nil) -> NewTarget {
        NewTarget(
            name: name, labels: labels, connectorID: connector,
            configJSON: #"{"certificatePath":"/etc/ssl/\#(name).pem","key":{"encrypted":"AAEC"}}"#,
            transportJSON: #"{"host":"\#(name).internal","port":22}"#,
            certificateName: certificate)
    }

    static func steps(_ outcome: StepRecord.Outcome = .ok, at date: Date) -> [StepRecord] {
        [
            StepRecord(name: .connect, outcome: .ok, startedAt: date, endedAt: date.addingTimeInterval(0.5), detail: "connected"),
            StepRecord(name: .reload, outcome: outcome, startedAt: date.addingTimeInterval(1), endedAt: date.addingTimeInterval(2),
                       command: "nginx -s reload", exitStatus: outcome == .ok ? 0 : 1),
        ]
    }
}

/// XCTAssertEqual for an expression that awaits.
func assertEqual<T: Equatable>(
    _ expression: @autoclosure () async throws -> T, _ expected: @autoclosure () throws -> T, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
) async {
    do {
        let value = try await expression()
        XCTAssertEqual(value, try expected(), message, file: file, line: line)
    } catch {
        XCTFail("threw \(error) \(message)", file: file, line: line)
    }
}

/// Asserts that `body` throws exactly `expected`.
func assertThrows<T>(
    _ expected: StoreError, _ body: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line
) async {
    do {
        _ = try await body()
        XCTFail("expected \(expected), got no error", file: file, line: line)
    } catch let error as StoreError {
        XCTAssertEqual(error, expected, file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}

/// Asserts that `body` throws `.invalidArgument`.
func assertInvalidArgument<T>(_ body: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line) async {
    do {
        _ = try await body()
        XCTFail("expected invalidArgument, got no error", file: file, line: line)
    } catch StoreError.invalidArgument {
    } catch {
        XCTFail("expected invalidArgument, got \(error)", file: file, line: line)
    }
}

/// Runs SQL straight on the database under `store` (tests only).
@discardableResult
func rawSQL(_ store: any Store, _ sql: String, _ binds: [SQLValue] = []) async throws -> [SQLRow] {
    guard let backed = store as? any SQLBackedStore else { throw StoreError.invalidArgument("not an SQL store") }
    return try await backed.driver.transaction(write: true) { tx in try await tx.query(sql, binds) }
}
