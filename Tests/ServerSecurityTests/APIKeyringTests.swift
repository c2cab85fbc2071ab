import Crypto
import Foundation
import Logging
@testable import ServerSecurity
import XCTest

final class APIKeyringTests: XCTestCase {
    // 32+ character keys.
    static let opsKey = "ops-0123456789abcdef0123456789abcdef"
    static let deployKey = "dep-0123456789abcdef0123456789abcdef"
    static let deployKey2 = "dep2-fedcba9876543210fedcba9876543210"
    static let ciKey = "ci-00000000000000000000000000000000x"

    private func refusal(_ value: String, file: StaticString = #filePath, line: UInt = #line) -> APIKeyringError? {
        do {
            _ = try APIKeyring(environmentValue: value)
            XCTFail("accepted \(value)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    // MARK: - Parsing

    func testParsesEnvironmentEntriesAndAuthenticates() throws {
        let keyring = try APIKeyring(environmentValue: "ops:\(Self.opsKey):admin, deploy:\(Self.deployKey)")
        XCTAssertEqual(keyring.authenticate(Self.opsKey), APIPrincipal(name: "ops", isAdmin: true))
        XCTAssertEqual(keyring.authenticate(Self.deployKey), APIPrincipal(name: "deploy", isAdmin: false))
        XCTAssertNil(keyring.authenticate(Self.ciKey))
        XCTAssertNil(keyring.authenticate(Self.opsKey + "x"))
        XCTAssertNil(keyring.authenticate(String(Self.opsKey.dropLast())))
        XCTAssertNil(keyring.authenticate(""))
        XCTAssertNil(keyring.authenticate(nil))
        XCTAssertEqual(keyring.names, ["deploy", "ops"])
        XCTAssertEqual(keyring.count, 2)
        XCTAssertEqual(keyring.rotationWindows, [])
        XCTAssertEqual(keyring.source, .environment)
    }

    func testTrailingCommaAndSpacesAreTolerated() throws {
        let keyring = try APIKeyring(environmentValue: " ops : \(Self.opsKey) : admin ,deploy:\(Self.deployKey),")
        XCTAssertEqual(keyring.authenticate(Self.opsKey), APIPrincipal(name: "ops", isAdmin: true))
        XCTAssertEqual(keyring.count, 2)
    }

    func testParsesFileWithCommentsBlankLinesAndCRLF() throws {
        let text = "# certdeploy API keys\n\n  # indented comment\r\nops:\(Self.opsKey):admin\r\n\ndeploy:\(Self.deployKey)\n"
        let keyring = try APIKeyring(fileContents: text, path: "/etc/certdeploy/keys")
        XCTAssertEqual(keyring.authenticate(Self.opsKey)?.isAdmin, true)
        XCTAssertEqual(keyring.authenticate(Self.deployKey)?.name, "deploy")
        XCTAssertEqual(keyring.source, .file(path: "/etc/certdeploy/keys"))
    }

    func testFileErrorsNameTheLineNumber() {
        let text = "# comment\n\nops:\(Self.opsKey):admin\n# another\ndeploy:short\n"
        XCTAssertThrowsError(try APIKeyring(fileContents: text, path: "/etc/keys")) { error in
            let error = error as! APIKeyringError
            XCTAssertEqual(error.issues.map(\.position), [5])
            XCTAssertTrue(error.description.contains("/etc/keys"), error.description)
            XCTAssertTrue(error.description.contains("line 5 (\"deploy\")"), error.description)
        }
    }

    func testKeyOf32CharactersIsAcceptedAnd31Refused() throws {
        let key32 = String(repeating: "k", count: 32)
        XCTAssertNotNil(try APIKeyring(environmentValue: "a:\(key32)").authenticate(key32))
        let error = try XCTUnwrap(refusal("ok:\(Self.opsKey),a:\(String(key32.dropLast()))"))
        XCTAssertEqual(error.issues.first?.problem, .keyTooShort(length: 31))
        XCTAssertEqual(error.issues.first?.position, 2)
        XCTAssertEqual(error.issues.first?.name, "a")
        XCTAssertEqual(error.description, "API keys in CERTDEPLOY_API_KEYS refused: entry 2 (\"a\"): the key is 31 characters long; at least 32 are required")
    }

    func testNamesOutsideTheAllowedCharactersAreRefused() throws {
        for name in ["de ploy", "dép", "a/b", "a@b", "x\u{0}y", "name\u{7}"] {
            let error = try XCTUnwrap(refusal("\(name):\(Self.opsKey)"), name)
            XCTAssertEqual(error.issues.map(\.problem), [.invalidName], name)
        }
        let fine = try APIKeyring(environmentValue: "A-z_0.9:\(Self.opsKey)")
        XCTAssertEqual(fine.names, ["A-z_0.9"])
    }

    func testEmptyNameIsRefused() throws {
        let error = try XCTUnwrap(refusal("ops:\(Self.opsKey),:\(Self.deployKey)"))
        XCTAssertEqual(error.issues.map(\.problem), [.emptyName])
        XCTAssertEqual(error.issues.map(\.position), [2])
        XCTAssertTrue(error.description.contains("entry 2: the name is empty"), error.description)
    }

    func testMalformedEntriesAreRefused() throws {
        for value in ["ops", "ops:\(Self.opsKey):root", "ops:\(Self.opsKey):admin:extra", "ops:\(Self.opsKey):ADMIN"] {
            let error = try XCTUnwrap(refusal(value), value)
            XCTAssertEqual(error.issues.map(\.problem), [.malformed], value)
        }
    }

    // MARK: - Rotation

    func testTwoEntriesWithOneNameOpenARotationWindow() throws {
        let keyring = try APIKeyring(environmentValue: "deploy:\(Self.deployKey),ops:\(Self.opsKey):admin,deploy:\(Self.deployKey2)")
        let principal = APIPrincipal(name: "deploy", isAdmin: false)
        XCTAssertEqual(keyring.authenticate(Self.deployKey), principal)
        XCTAssertEqual(keyring.authenticate(Self.deployKey2), principal)
        XCTAssertEqual(keyring.rotationWindows, ["deploy"])
        XCTAssertEqual(keyring.names, ["deploy", "ops"])
        XCTAssertEqual(keyring.count, 3)

        let capture = LogCapture()
        keyring.logRotationWindows(to: capture.logger)
        XCTAssertEqual(capture.all.count, 1)
        XCTAssertEqual(capture.all.first?.level, .info)
        XCTAssertEqual(capture.all.first?.metadata["name"], "deploy")
        XCTAssertTrue(capture.all.first?.message.contains("rotation window open") ?? false)
    }

    func testSameNameWithDifferentAdminFlagsIsRefused() throws {
        let error = try XCTUnwrap(refusal("deploy:\(Self.deployKey),ops:\(Self.opsKey):admin,deploy:\(Self.deployKey2):admin"))
        XCTAssertEqual(error.issues.map(\.problem), [.conflictingAdminFlag(firstPosition: 1)])
        XCTAssertEqual(error.issues.map(\.position), [3])
        XCTAssertTrue(error.description.contains("entry 3 (\"deploy\")"), error.description)
        XCTAssertTrue(error.description.contains("entry 1"), error.description)
        // The other order as well: the admin key first.
        let reversed = try XCTUnwrap(refusal("deploy:\(Self.deployKey):admin,deploy:\(Self.deployKey2)"))
        XCTAssertEqual(reversed.issues.map(\.problem), [.conflictingAdminFlag(firstPosition: 1)])
    }

    func testSameNameAndKeyTwiceIsRefused() throws {
        let error = try XCTUnwrap(refusal("deploy:\(Self.deployKey),deploy:\(Self.deployKey)"))
        XCTAssertEqual(error.issues.map(\.problem), [.repeatedKey(firstPosition: 1)])
        XCTAssertTrue(error.description.contains("entry 2 (\"deploy\")"), error.description)
        XCTAssertTrue(error.description.contains("a rotation needs a different key"), error.description)
    }

    func testOneKeyUnderTwoNamesIsRefused() throws {
        let error = try XCTUnwrap(refusal("deploy:\(Self.deployKey),ci:\(Self.deployKey)"))
        XCTAssertEqual(error.issues.map(\.problem), [.keySharedWithOtherName(otherName: "deploy", firstPosition: 1)])
    }

    func testAThirdEntryForANameIsRefused() throws {
        let error = try XCTUnwrap(refusal("deploy:\(Self.deployKey),deploy:\(Self.deployKey2),deploy:\(Self.ciKey)"))
        XCTAssertEqual(error.issues.map(\.problem), [.tooManyEntriesForName(positions: [1, 2])])
    }

    func testEveryProblemIsReportedAtOnce() throws {
        let error = try XCTUnwrap(refusal(":\(Self.opsKey),b@d:\(Self.deployKey),short:abc,ops:\(Self.opsKey)"))
        XCTAssertEqual(error.issues.map(\.position), [1, 2, 3])
    }

    func testRefusalMessagesNeverContainAKey() throws {
        let secret = "S3CRET-" + String(repeating: "z", count: 40)
        let shortSecret = "SHORTSECRET-abc"
        let cases = [
            "deploy:\(secret),deploy:\(secret)",
            "deploy:\(secret),deploy:\(Self.deployKey2):admin",
            "deploy:\(secret),ci:\(secret)",
            "deploy:\(shortSecret)",
            "\(secret)",
            "\(shortSecret)",
            // The name forgotten: the key lands in the name's place.
            "\(secret):admin",
            "\(secret):\(Self.opsKey):root",
            ":\(secret)",
            "bad name:\(secret)",
            "deploy:\(secret):\(shortSecret)",
        ]
        for value in cases {
            let error = try XCTUnwrap(refusal(value), value)
            for text in [error.description, String(describing: error.issues), "\(error.failure)", String(reflecting: error)] + reflectedContents(error) {
                XCTAssertFalse(text.contains(secret), "\(value) -> \(text)")
                XCTAssertFalse(text.contains(shortSecret), "\(value) -> \(text)")
            }
        }
    }

    func testEmptySourcesAreRefused() throws {
        XCTAssertEqual(refusal("")?.failure, .empty)
        XCTAssertEqual(refusal(" , ")?.failure, .empty)
        XCTAssertThrowsError(try APIKeyring(fileContents: "# nothing yet\n\n", path: "/k")) { error in
            XCTAssertEqual((error as? APIKeyringError)?.failure, .empty)
        }
    }

    // MARK: - Environment and files

    func testLoadFromEnvironment() throws {
        XCTAssertNil(try APIKeyring.load(environment: [:]))
        let fromVariable = try XCTUnwrap(APIKeyring.load(environment: ["CERTDEPLOY_API_KEYS": "ops:\(Self.opsKey):admin"]))
        XCTAssertEqual(fromVariable.authenticate(Self.opsKey)?.name, "ops")

        let path = try temporaryFile("deploy:\(Self.deployKey)\n")
        let fromFile = try XCTUnwrap(APIKeyring.load(environment: ["CERTDEPLOY_API_KEYS_FILE": path]))
        XCTAssertEqual(fromFile.authenticate(Self.deployKey)?.name, "deploy")
        XCTAssertEqual(fromFile.source, .file(path: path))

        XCTAssertThrowsError(try APIKeyring.load(environment: ["CERTDEPLOY_API_KEYS": "ops:\(Self.opsKey)", "CERTDEPLOY_API_KEYS_FILE": path])) { error in
            XCTAssertEqual((error as? APIKeyringError)?.failure, .ambiguousSource)
        }
    }

    func testMissingFileIsReported() {
        XCTAssertThrowsError(try APIKeyring(contentsOfFile: "/nonexistent/certdeploy-keys")) { error in
            let error = error as! APIKeyringError
            XCTAssertEqual(error.failure, .unreadable(reason: "no such file"))
            XCTAssertEqual(error.description, "API keys in /nonexistent/certdeploy-keys could not be read: no such file")
        }
    }

    // MARK: - What is kept, and how keys are compared

    func testOnlyDigestsAreKeptAfterParsing() throws {
        let keyring = try APIKeyring(environmentValue: "ops:\(Self.opsKey):admin,deploy:\(Self.deployKey),deploy:\(Self.deployKey2)")
        let contents = reflectedContents(keyring)
        let digests = [Self.opsKey, Self.deployKey, Self.deployKey2].map { hex(SHA256Hex.digest($0)) }
        for key in [Self.opsKey, Self.deployKey, Self.deployKey2] {
            XCTAssertFalse(contents.contains { $0.contains(key) || $0.contains(hex(key.utf8)) }, "the keyring holds a key in clear")
        }
        // The walk does see the stored digests, so it would have seen keys too.
        for digest in digests {
            XCTAssertTrue(contents.contains(digest), "digest not found by the reflection walk")
        }
        XCTAssertFalse(keyring.description.contains(Self.opsKey))
    }

    func testAuthenticationComparesWithEveryEntry() throws {
        let keyring = try APIKeyring(environmentValue: "ops:\(Self.opsKey):admin,deploy:\(Self.deployKey),deploy:\(Self.deployKey2),ci:\(Self.ciKey)")
        for key in [Self.opsKey, Self.deployKey2, Self.ciKey, "unknown-key-unknown-key-unknown-key"] {
            var comparisons = 0
            let digest = SHA256Hex.digest(key)
            let principal = APIKeyring.match(digest: digest, in: keyring.entries) { lhs, rhs in
                comparisons += 1
                return ConstantTime.equals(lhs, rhs)
            }
            XCTAssertEqual(comparisons, 4, "authentication stopped early for \(key)")
            XCTAssertEqual(principal, keyring.authenticate(key))
        }
    }

    func testConstantTimeEquals() {
        let a: [UInt8] = Array(0..<32)
        XCTAssertTrue(ConstantTime.equals(a, a))
        XCTAssertTrue(ConstantTime.equals([], [UInt8]()))
        for index in a.indices {
            var b = a
            b[index] ^= 0x80
            XCTAssertFalse(ConstantTime.equals(a, b), "difference at \(index) missed")
            b[index] ^= 0x81
            XCTAssertFalse(ConstantTime.equals(a, b), "one-bit difference at \(index) missed")
        }
        XCTAssertFalse(ConstantTime.equals(a, a.dropLast()))
        XCTAssertFalse(ConstantTime.equals(a, a + [0]))
        XCTAssertFalse(ConstantTime.equals([0, 0], [0]))
    }

    private func temporaryFile(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("certdeploy-keys-\(UUID().uuidString)")
        try text.write(to: url, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }
}

enum SHA256Hex {
    static func digest(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Data(text.utf8))) }
}
