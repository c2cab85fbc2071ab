import Crypto
import Foundation
@testable import ServerSecurity
import XCTest

final class SecretBoxTests: XCTestCase {
    static let passphrase = "correct horse battery staple"
    /// Fast boxes for behaviour tests (the floor is lifted only through the internal test entry points); the real
    /// 600,000-iteration path is exercised by the derivation, wrong-passphrase and cost tests.
    static let fastIterations = 1_000
    static let box = try! SecretBox.create(passphrase: passphrase, iterations: fastIterations, minimumIterations: 1)
    static let web1Key = SecretContext(objectID: "target/web-1", field: "ssh.privateKey")

    private func fastBox(_ passphrase: String = SecretBoxTests.passphrase) -> SecretBox {
        try! SecretBox.create(passphrase: passphrase, iterations: Self.fastIterations, minimumIterations: 1)
    }

    private func assertFails(_ blob: Data, _ context: SecretContext, with expected: SecretBoxError, box: SecretBox = SecretBoxTests.box, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try box.open(blob, for: context), file: file, line: line) { error in
            XCTAssertEqual(error as? SecretBoxError, expected, file: file, line: line)
        }
    }

    // MARK: - PBKDF2

    /// PBKDF2-HMAC-SHA256 test vectors (RFC 7914 section 11 and the widely used RFC 6070-style SHA-256 set).
    func testPBKDF2SHA256Vectors() throws {
        let vectors: [(password: String, salt: String, iterations: Int, length: Int, hex: String)] = [
            ("password", "salt", 1, 32, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"),
            ("password", "salt", 4096, 32, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"),
            ("passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 40,
             "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9"),
            ("passwd", "salt", 1, 64,
             "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"),
            ("Password", "NaCl", 80000, 64,
             "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"),
        ]
        for vector in vectors {
            let key = try SecretBox.pbkdf2SHA256(password: Data(vector.password.utf8), salt: Data(vector.salt.utf8), iterations: vector.iterations, outputByteCount: vector.length)
            XCTAssertEqual(key.withUnsafeBytes { hex($0) }, vector.hex, "\(vector.password)/\(vector.salt)/\(vector.iterations)")
        }
    }

    func testIterationFloorIsEnforced() throws {
        XCTAssertEqual(SecretBox.minimumIterations, 600_000)
        XCTAssertGreaterThanOrEqual(SecretBox.defaultIterations, 600_000)
        XCTAssertThrowsError(try SecretBox.create(passphrase: Self.passphrase, iterations: 599_999)) { error in
            guard case .unsupportedKeyRecord(let why) = error as? SecretBoxError else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("599999"), why)
        }
        // A record weakened in the database is refused before any derivation.
        var weak = Self.box.record
        XCTAssertEqual(weak.iterations, Self.fastIterations)
        XCTAssertThrowsError(try SecretBox.open(passphrase: Self.passphrase, record: weak))
        weak.iterations = 600_000
        weak.kdf = "md5"
        XCTAssertThrowsError(try SecretBox.open(passphrase: Self.passphrase, record: weak))
    }

    // MARK: - Round trip and layout

    func testSealAndOpen() throws {
        let secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
        let blob = Self.box.seal(secret, for: Self.web1Key)
        XCTAssertEqual(try Self.box.openString(blob, for: Self.web1Key), secret)
        XCTAssertTrue(SecretBox.isSealed(blob))
        XCTAssertFalse(SecretBox.isSealed(Data(secret.utf8)))
        XCTAssertNil(blob.range(of: Data(secret.utf8)), "plaintext visible in the blob")

        let empty = Self.box.seal(Data(), for: Self.web1Key)
        XCTAssertEqual(try Self.box.open(empty, for: Self.web1Key), Data())
    }

    func testBlobLayout() throws {
        let plaintext = Data("hunter2".utf8)
        let blob = [UInt8](Self.box.seal(plaintext, for: Self.web1Key))
        XCTAssertEqual(Array(blob[0..<4]), Array("CDS1".utf8))
        XCTAssertEqual(blob[4], 1, "version byte")
        XCTAssertEqual(blob.count, 4 + 1 + 32 + 12 + plaintext.count + 16)

        // Opening by hand with the documented layout: salt, nonce, ciphertext, tag; HKDF subkey; AAD.
        let salt = Array(blob[5..<37])
        let nonce = try AES.GCM.Nonce(data: blob[37..<49])
        let sealed = try AES.GCM.SealedBox(nonce: nonce, ciphertext: blob[49..<(blob.count - 16)], tag: blob[(blob.count - 16)...])
        let subkey = HKDF<SHA256>.deriveKey(inputKeyMaterial: Self.box.masterKey, salt: salt, info: Data("certdeploy secret v1 aes-256-gcm".utf8), outputByteCount: 32)
        let aad = SecretBox.additionalData(header: Array(blob[0..<37]), context: Self.web1Key)
        XCTAssertEqual(try AES.GCM.open(sealed, using: subkey, authenticating: aad), plaintext)
    }

    func testEverySealUsesAFreshSaltAndNonce() {
        let first = [UInt8](Self.box.seal("same", for: Self.web1Key))
        let second = [UInt8](Self.box.seal("same", for: Self.web1Key))
        XCTAssertNotEqual(first[5..<37], second[5..<37], "salt reused")
        XCTAssertNotEqual(first[37..<49], second[37..<49], "nonce reused")
        XCTAssertNotEqual(first, second)
    }

    // MARK: - Binding to object and field

    func testABlobCopiedToAnotherObjectOrFieldDoesNotDecrypt() {
        let blob = Self.box.seal("s3cret", for: Self.web1Key)
        let otherTarget = SecretContext(objectID: "target/web-2", field: "ssh.privateKey")
        let otherField = SecretContext(objectID: "target/web-1", field: "ssh.password")
        assertFails(blob, otherTarget, with: .decryptionFailed(otherTarget))
        assertFails(blob, otherField, with: .decryptionFailed(otherField))
        XCTAssertEqual(
            SecretBoxError.decryptionFailed(otherTarget).description,
            "the encrypted secret for field \"ssh.privateKey\" of \"target/web-2\" does not decrypt: it was encrypted for a different object or field, or it was altered"
        )
        // Length-prefixed parts: moving a character between object id and field does not alias.
        let shifted = Self.box.seal("x", for: SecretContext(objectID: "ab", field: "c"))
        assertFails(shifted, SecretContext(objectID: "a", field: "bc"), with: .decryptionFailed(SecretContext(objectID: "a", field: "bc")))
    }

    func testEveryAlteredByteIsDetected() {
        let blob = [UInt8](Self.box.seal("s3cret", for: Self.web1Key))
        for index in blob.indices {
            var altered = blob
            altered[index] ^= 0x01
            XCTAssertThrowsError(try Self.box.open(Data(altered), for: Self.web1Key), "byte \(index) altered unnoticed")
        }
        assertFails(Data(blob.dropLast()), Self.web1Key, with: .decryptionFailed(Self.web1Key))
        assertFails(Data(blob.prefix(40)), Self.web1Key, with: .notASecretBlob(Self.web1Key))
        assertFails(Data("plain text that was never sealed, long enough to pass the size check".utf8), Self.web1Key, with: .notASecretBlob(Self.web1Key))
        var future = blob
        future[4] = 2
        assertFails(Data(future), Self.web1Key, with: .unsupportedBlobVersion(2, Self.web1Key))
    }

    func testAnotherKeyRecordCannotOpenTheBlob() {
        // Same passphrase, different stored salt: a different master key.
        let other = fastBox()
        let blob = Self.box.seal("s3cret", for: Self.web1Key)
        assertFails(blob, Self.web1Key, with: .decryptionFailed(Self.web1Key), box: other)
    }

    // MARK: - Passphrase check and rotation

    func testWrongPassphraseIsRefusedAtOpen() throws {
        let box = try SecretBox.create(passphrase: Self.passphrase)
        XCTAssertEqual(box.record.iterations, 600_000)
        XCTAssertEqual(box.record.salt.count, 32)
        let stored = try JSONDecoder().decode(SecretKeyRecord.self, from: JSONEncoder().encode(box.record))
        XCTAssertThrowsError(try SecretBox.open(passphrase: "Correct horse battery staple", record: stored)) { error in
            XCTAssertEqual(error as? SecretBoxError, .wrongPassphrase)
            XCTAssertEqual("\(error)", "CERTDEPLOY_SECRET_KEY: the passphrase does not match the one the stored secrets were encrypted with")
        }
        let reopened = try SecretBox.open(passphrase: Self.passphrase, record: stored)
        let blob = box.seal("s3cret", for: Self.web1Key)
        XCTAssertEqual(try reopened.openString(blob, for: Self.web1Key), "s3cret")
    }

    func testStartupRules() throws {
        // No passphrase: no box (storing or reading a secret then fails with .noPassphrase); empty counts as none.
        XCTAssertNil(try SecretBox.startup(environment: [:], record: nil))
        XCTAssertNil(try SecretBox.startup(environment: [:], record: Self.box.record))
        XCTAssertNil(try SecretBox.startup(environment: ["CERTDEPLOY_SECRET_KEY": ""], record: nil))
        XCTAssertThrowsError(try SecretBox.create(passphrase: "")) { error in
            XCTAssertEqual(error as? SecretBoxError, .noPassphrase)
            XCTAssertTrue("\(error)".contains("refuses to store or read secrets"), "\(error)")
        }
        // First start with a passphrase: a new record at the floor.
        let first = try XCTUnwrap(SecretBox.startup(environment: ["CERTDEPLOY_SECRET_KEY": Self.passphrase], record: nil))
        XCTAssertEqual(first.record.iterations, 600_000)
        let blob = first.seal("s3cret", for: Self.web1Key)
        // Later starts: the right passphrase opens the stored record, a wrong one stops the server.
        XCTAssertThrowsError(try SecretBox.startup(environment: ["CERTDEPLOY_SECRET_KEY": "not it"], record: first.record)) { error in
            XCTAssertEqual(error as? SecretBoxError, .wrongPassphrase)
        }
        let again = try XCTUnwrap(SecretBox.startup(environment: ["CERTDEPLOY_SECRET_KEY": Self.passphrase], record: first.record))
        XCTAssertEqual(try again.openString(blob, for: Self.web1Key), "s3cret")
    }

    func testReencryptUnderANewPassphrase() throws {
        let old = Self.box
        let new = fastBox("a completely different passphrase")
        let context = SecretContext(objectID: "target/k8s-prod", field: "token")
        let blob = old.seal("eyJhbGciOi-token", for: context)
        let moved = try SecretBox.reencrypt(blob, from: old, to: new, for: context)
        XCTAssertEqual(try new.openString(moved, for: context), "eyJhbGciOi-token")
        assertFails(moved, context, with: .decryptionFailed(context), box: old)
        XCTAssertNotEqual(new.record.salt, old.record.salt)
        XCTAssertNotEqual(new.record.check, old.record.check)
        // Re-encrypting keeps the binding: it cannot be used to move a secret to another field.
        let elsewhere = SecretContext(objectID: "target/k8s-prod", field: "clientKey")
        XCTAssertThrowsError(try SecretBox.reencrypt(blob, from: old, to: new, for: elsewhere))
    }

    func testTheMasterKeyIsNeverPrinted() {
        let keyHex = Self.box.masterKey.withUnsafeBytes { hex($0) }
        var dumped = ""
        dump(Self.box, to: &dumped)
        for text in ["\(Self.box)", String(reflecting: Self.box), dumped] + reflectedContents(Self.box) {
            XCTAssertFalse(text.contains(keyHex), text)
        }
        XCTAssertTrue(reflectedContents(Self.box).contains(hex(Self.box.record.salt)), "the reflection walk sees the record")
    }

    // MARK: - Cost

    /// Deriving the master key costs one 600,000-iteration PBKDF2; decrypting costs one HKDF and one AES-GCM open.
    /// 1,000 decrypts must take well under one derivation (at most half). Load on a shared machine is absorbed by
    /// taking the slower of two derivations and the fastest of three decrypt batches; a decrypt that ran PBKDF2
    /// would still miss by a factor of about 1,000.
    func testDecryptIsFarCheaperThanDerivation() throws {
        let clock = ContinuousClock()
        var box: SecretBox?
        let creation = try clock.measure { box = try SecretBox.create(passphrase: Self.passphrase) }
        let realBox = try XCTUnwrap(box)
        let blob = realBox.seal("a 64-character secret, about the size of a password or a token..", for: Self.web1Key)
        var best = Duration.seconds(3600)
        for _ in 0..<3 {
            let batch = try clock.measure {
                for _ in 0..<1000 { _ = try realBox.open(blob, for: Self.web1Key) }
            }
            best = min(best, batch)
        }
        let reopening = try clock.measure { _ = try SecretBox.open(passphrase: Self.passphrase, record: realBox.record) }
        let derivation = max(creation, reopening)
        let ratio = derivation / best
        print("SecretBox cost: one PBKDF2-SHA256 600k derivation \(creation) / \(reopening); 1,000 decrypts \(best) (\(best / 1000) each); derivation / 1,000 decrypts = \(String(format: "%.1f", ratio))")
        XCTAssertLessThan(best * 2, derivation, "1,000 decrypts should cost well under one master-key derivation")
    }
}
