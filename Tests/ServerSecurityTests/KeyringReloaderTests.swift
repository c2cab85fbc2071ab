import Foundation
import Logging
@testable import ServerSecurity
import XCTest

final class KeyringReloaderTests: XCTestCase {
    let oldKey = "old-0123456789abcdef0123456789abcdef"
    let newKey = "new-fedcba9876543210fedcba9876543210"
    let opsKey = "ops-0123456789abcdef0123456789abcdef"

    private var path = ""

    override func setUp() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("certdeploy-keys-\(UUID().uuidString)").path
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: path)
    }

    private func write(_ text: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func testRotationWithoutRestart() async throws {
        try write("deploy:\(oldKey)\nops:\(opsKey):admin\n")
        let capture = LogCapture()
        let reloader = try KeyringReloader(path: path, logger: capture.logger)
        var who = await reloader.authenticate(oldKey)
        XCTAssertEqual(who?.name, "deploy")
        var newWho = await reloader.authenticate(newKey)
        XCTAssertNil(newWho)

        // Step 1: add the new key beside the old one.
        try write("deploy:\(oldKey)\ndeploy:\(newKey)\nops:\(opsKey):admin\n")
        let opened = await reloader.reload()
        XCTAssertEqual(opened, .reloaded(keyCount: 3, rotationWindows: ["deploy"]))
        who = await reloader.authenticate(oldKey)
        newWho = await reloader.authenticate(newKey)
        XCTAssertEqual(who, APIPrincipal(name: "deploy", isAdmin: false))
        XCTAssertEqual(newWho, who)
        XCTAssertTrue(capture.all.contains { $0.level == .info && $0.message.contains("rotation window open") && $0.metadata["name"] == "deploy" })

        // Step 2: drop the old key.
        try write("deploy:\(newKey)\nops:\(opsKey):admin\n")
        let closed = await reloader.reload()
        XCTAssertEqual(closed, .reloaded(keyCount: 2, rotationWindows: []))
        who = await reloader.authenticate(oldKey)
        newWho = await reloader.authenticate(newKey)
        XCTAssertNil(who)
        XCTAssertEqual(newWho?.name, "deploy")
    }

    func testInvalidFileKeepsThePreviousKeys() async throws {
        try write("deploy:\(oldKey)\nops:\(opsKey):admin\n")
        let capture = LogCapture()
        let reloader = try KeyringReloader(path: path, logger: capture.logger)

        // Privilege escalation attempt: the second deploy key claims admin.
        try write("deploy:\(oldKey)\ndeploy:\(newKey):admin\nops:\(opsKey):admin\n")
        let outcome = await reloader.reload()
        guard case .keptPrevious(let error) = outcome else { return XCTFail("reloaded an invalid file: \(outcome)") }
        XCTAssertEqual(error.issues.map(\.problem), [.conflictingAdminFlag(firstPosition: 1)])
        XCTAssertEqual(error.issues.map(\.position), [2])
        let stillOld = await reloader.authenticate(oldKey)
        let rejectedNew = await reloader.authenticate(newKey)
        XCTAssertEqual(stillOld?.name, "deploy")
        XCTAssertNil(rejectedNew)
        let errorLine = try XCTUnwrap(capture.all.first { $0.level == .error })
        XCTAssertTrue(errorLine.message.contains("line 2 (\"deploy\")"), errorLine.message)
        XCTAssertFalse(errorLine.message.contains(newKey))

        // A vanished file is reported the same way.
        try FileManager.default.removeItem(atPath: path)
        let missing = await reloader.reload()
        XCTAssertEqual(missing, .keptPrevious(APIKeyringError(source: .file(path: path), failure: .unreadable(reason: "no such file"))))
        let stillThere = await reloader.authenticate(opsKey)
        XCTAssertEqual(stillThere?.isAdmin, true)

        // An emptied file would lock everyone out: refused too.
        try write("# all keys removed\n")
        let emptied = await reloader.reload()
        XCTAssertEqual(emptied, .keptPrevious(APIKeyringError(source: .file(path: path), failure: .empty)))
        let count = await reloader.keyring.count
        XCTAssertEqual(count, 2)
    }

    func testAnInvalidFileAtStartupIsRefused() throws {
        try write("deploy:tooshort\n")
        XCTAssertThrowsError(try KeyringReloader(path: path)) { error in
            XCTAssertEqual((error as? APIKeyringError)?.issues.first?.problem, .keyTooShort(length: 8))
        }
    }
}
