import Core
import Foundation
import TestSupport
import XCTest

/// One CA for the whole file: its keys are P-256, so making it is cheap, but there is no need to repeat it.
private let sharedCA: TestCertificateAuthority = {
    do { return try TestCertificateAuthority() } catch { fatalError("test CA: \(error)") }
}()

final class CertificateBundleTests: XCTestCase {
    private var ca: TestCertificateAuthority { sharedCA }

    private func issue(
        keyType: TestKeyType = .ecdsaP256,
        commonName: String = "example.test",
        dnsNames: [String] = ["example.test"],
        _ adjust: (inout TestCertificateAuthority.LeafOptions) -> Void = { _ in }
    ) throws -> TestIssuedCertificate {
        var options = TestCertificateAuthority.LeafOptions()
        options.keyType = keyType
        options.commonName = commonName
        options.dnsNames = dnsNames
        adjust(&options)
        return try ca.issueLeaf(options)
    }

    /// Parses and returns the BundleError, failing the test when parsing succeeds.
    private func parseError(
        certificatePEM: String, chainPEM: String? = nil, privateKeyPEM: String, now: Date = Date(),
        file: StaticString = #filePath, line: UInt = #line
    ) -> BundleError? {
        do {
            let bundle = try CertificateBundle.parse(certificatePEM: certificatePEM, chainPEM: chainPEM, privateKeyPEM: privateKeyPEM, now: now)
            XCTFail("expected a BundleError, got \(bundle)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private func assertCode(
        _ code: BundleError.Code, certificatePEM: String, chainPEM: String? = nil, privateKeyPEM: String, now: Date = Date(),
        file: StaticString = #filePath, line: UInt = #line
    ) -> BundleError? {
        guard let error = parseError(certificatePEM: certificatePEM, chainPEM: chainPEM, privateKeyPEM: privateKeyPEM, now: now, file: file, line: line) else {
            return nil
        }
        XCTAssertEqual(error.code, code, "message: \(error.message)", file: file, line: line)
        return error
    }

    // MARK: - Key types

    /// Parses a leaf of `keyType` in every supported form: PKCS#8 and traditional keys, chain separate
    /// and chain inside the certificate text.
    private func assertParsesAllForms(_ keyType: TestKeyType, traditionalLabel: String?, file: StaticString = #filePath, line: UInt = #line) throws {
        let leaf = try issue(keyType: keyType, commonName: "\(keyType).example.test", dnsNames: ["\(keyType).example.test"])
        let expectedFullChain = leaf.certificatePEM + ca.intermediate.certificatePEM

        // PKCS#8 key, chain passed separately.
        let separate = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertEqual(separate.info.sha256, leaf.sha256Hex, file: file, line: line)
        XCTAssertEqual(separate.leafSHA256, leaf.sha256Hex, file: file, line: line)
        XCTAssertEqual(separate.leafPEM, leaf.certificatePEM, file: file, line: line)
        XCTAssertEqual(separate.chainPEM, ca.intermediate.certificatePEM, file: file, line: line)
        XCTAssertEqual(separate.fullChainPEM, expectedFullChain, file: file, line: line)
        XCTAssertEqual(separate.issuerPEM, ca.intermediate.certificatePEM, file: file, line: line)
        XCTAssertEqual(separate.notes, [], file: file, line: line)
        XCTAssertEqual(separate.info.subjectAlternativeNames, ["\(keyType).example.test"], file: file, line: line)
        XCTAssertTrue(separate.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"), separate.privateKeyPEM.prefix(40).description, file: file, line: line)
        XCTAssertTrue(separate.privateKeyPEM.hasSuffix("-----END PRIVATE KEY-----\n"), file: file, line: line)

        // PKCS#8 key, full chain in the certificate text.
        let fullchain = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM + ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertEqual(fullchain.info.sha256, leaf.sha256Hex, file: file, line: line)
        XCTAssertEqual(fullchain.fullChainPEM, expectedFullChain, file: file, line: line)
        XCTAssertEqual(fullchain.chainPEM, ca.intermediate.certificatePEM, file: file, line: line)
        XCTAssertEqual(fullchain.notes, [], file: file, line: line)

        // Traditional key (PKCS#1 / SEC1).
        if let traditionalLabel {
            let traditional = try leaf.privateKeyTraditionalPEM()
            XCTAssertTrue(traditional.hasPrefix("-----BEGIN \(traditionalLabel)-----"), file: file, line: line)
            let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM + ca.chainPEM, privateKeyPEM: traditional)
            XCTAssertEqual(bundle.info.sha256, leaf.sha256Hex, file: file, line: line)
            XCTAssertEqual(bundle.fullChainPEM, expectedFullChain, file: file, line: line)
            XCTAssertTrue(bundle.privateKeyPEM.hasPrefix("-----BEGIN \(traditionalLabel)-----\n"), file: file, line: line)
            XCTAssertEqual(bundle.privateKeyPEM, traditional, "the key is kept in the form it was given", file: file, line: line)
        } else {
            XCTAssertThrowsError(try leaf.privateKeyTraditionalPEM(), file: file, line: line)
        }
    }

    func testECDSAP256() throws {
        try assertParsesAllForms(.ecdsaP256, traditionalLabel: "EC PRIVATE KEY")
    }

    func testECDSAP384() throws {
        try assertParsesAllForms(.ecdsaP384, traditionalLabel: "EC PRIVATE KEY")
    }

    func testEd25519() throws {
        try assertParsesAllForms(.ed25519, traditionalLabel: nil)
    }

    func testRSA2048() throws {
        try assertParsesAllForms(.rsa2048, traditionalLabel: "RSA PRIVATE KEY")
    }

    func testRSA3072() throws {
        try assertParsesAllForms(.rsa3072, traditionalLabel: "RSA PRIVATE KEY")
    }

    /// RSA 4096 key generation takes a few seconds; one test covers both key forms.
    func testRSA4096() throws {
        try assertParsesAllForms(.rsa4096, traditionalLabel: "RSA PRIVATE KEY")
    }

    // MARK: - Chain order

    func testShuffledChainIsReorderedAndRootDropped() throws {
        let leaf = try issue()
        // Root first, then the leaf, then the intermediate: nothing is where it belongs.
        let certificateText = ca.root.certificatePEM + leaf.certificatePEM + ca.intermediate.certificatePEM
        let bundle = try CertificateBundle.parse(certificatePEM: certificateText, privateKeyPEM: leaf.privateKeyPKCS8PEM)

        XCTAssertEqual(bundle.info.sha256, leaf.sha256Hex)
        XCTAssertEqual(bundle.leafPEM, leaf.certificatePEM)
        XCTAssertEqual(bundle.chainPEM, ca.intermediate.certificatePEM)
        XCTAssertEqual(bundle.fullChainPEM, leaf.certificatePEM + ca.intermediate.certificatePEM)
        XCTAssertFalse(bundle.fullChainPEM.contains(ca.root.certificatePEM))
        XCTAssertEqual(bundle.issuerPEM, ca.intermediate.certificatePEM)

        XCTAssertTrue(bundle.notes.contains { $0.contains("#2") && $0.contains("leaf") }, "\(bundle.notes)")
        XCTAssertTrue(bundle.notes.contains { $0.contains("reordered") }, "\(bundle.notes)")
        XCTAssertEqual(bundle.rootPEM, ca.root.certificatePEM, "the root is kept apart, never served, and not warned about")
        XCTAssertEqual(bundle.notes.count, 2, "\(bundle.notes)")
    }

    func testChainGivenSeparatelyInWrongOrderIsReordered() throws {
        let leaf = try issue()
        let bundle = try CertificateBundle.parse(
            certificatePEM: leaf.certificatePEM,
            chainPEM: ca.root.certificatePEM + ca.intermediate.certificatePEM,
            privateKeyPEM: leaf.privateKeyPKCS8PEM
        )
        XCTAssertEqual(bundle.chainPEM, ca.intermediate.certificatePEM)
        XCTAssertEqual(bundle.fullChainPEM, leaf.certificatePEM + ca.intermediate.certificatePEM)
        XCTAssertTrue(bundle.notes.contains { $0.contains("reordered") }, "\(bundle.notes)")
        XCTAssertEqual(bundle.rootPEM, ca.root.certificatePEM)
        XCTAssertFalse(bundle.notes.contains { $0.contains("used as the leaf") }, "the leaf was first: \(bundle.notes)")
    }

    func testRootInOrderIsDroppedWithoutReorderNote() throws {
        let leaf = try issue()
        let bundle = try CertificateBundle.parse(
            certificatePEM: leaf.certificatePEM + ca.intermediate.certificatePEM + ca.root.certificatePEM,
            privateKeyPEM: leaf.privateKeyPKCS8PEM
        )
        XCTAssertEqual(bundle.chainPEM, ca.intermediate.certificatePEM)
        XCTAssertFalse(bundle.chainPEM.contains(ca.root.certificatePEM))
        XCTAssertEqual(bundle.rootPEM, ca.root.certificatePEM, "kept for vendors that verify staples, never served")
        XCTAssertEqual(bundle.notes, [], "passing the root is the working setup: no warning")
    }

    func testARootFromTheTrustAnchorsIsTakenOnlyWhereItIssuedTheChain() throws {
        let leaf = try issue()
        let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.intermediate.certificatePEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertNil(bundle.rootPEM)
        let anchor = try XCTUnwrap(ClientChecks.trustAnchor(issuing: bundle.topOfChainDER, trustAnchorsPEM: ca.root.certificatePEM))
        XCTAssertEqual(CertificateBundle.rootPEM(der: anchor, issuing: bundle), ca.root.certificatePEM)
        let stranger = try TestCertificateAuthority(name: "Stranger")
        XCTAssertNil(ClientChecks.trustAnchor(issuing: bundle.topOfChainDER, trustAnchorsPEM: stranger.root.certificatePEM))
        XCTAssertNil(CertificateBundle.rootPEM(der: stranger.root.derBytes, issuing: bundle), "not the chain's issuer")
        XCTAssertNil(CertificateBundle.rootPEM(der: ca.intermediate.derBytes, issuing: bundle), "not self-signed")
    }

    func testLeafWithoutChainHasEmptyChain() throws {
        let leaf = try issue()
        let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertEqual(bundle.chainPEM, "")
        XCTAssertEqual(bundle.fullChainPEM, leaf.certificatePEM)
        XCTAssertNil(bundle.issuerPEM)
    }

    func testTextOutsidePEMBlocksIsIgnored() throws {
        let leaf = try issue()
        let text = "Subject: CN=example.test\nsome openssl -text output\n" + leaf.certificatePEM + "\n# trailing comment\n"
        let bundle = try CertificateBundle.parse(certificatePEM: text, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertEqual(bundle.info.sha256, leaf.sha256Hex)
        XCTAssertEqual(bundle.leafPEM, leaf.certificatePEM)
    }

    func testCRLFLineEndingsAreAccepted() throws {
        let leaf = try issue()
        let crlf = { (text: String) in text.replacingOccurrences(of: "\n", with: "\r\n") }
        let bundle = try CertificateBundle.parse(certificatePEM: crlf(leaf.certificatePEM), chainPEM: crlf(ca.chainPEM),
                                                 privateKeyPEM: crlf(leaf.privateKeyPKCS8PEM))
        XCTAssertEqual(bundle.info.sha256, leaf.sha256Hex)
        XCTAssertEqual(bundle.leafPEM, leaf.certificatePEM, "output PEM is canonical (LF)")
    }

    // MARK: - Broken chains and keys

    func testUnrelatedChainCertificateIsBrokenChain() throws {
        let leaf = try issue()
        let stranger = try TestCertificateAuthority.selfSigned(commonName: "stranger.example.test", dnsNames: ["stranger.example.test"])
        let error = assertCode(.brokenChain, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM + stranger.certificatePEM,
                               privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(error?.message.contains("stranger.example.test") == true, error?.message ?? "")
    }

    func testIntermediateOfAnotherCAIsBrokenChain() throws {
        let leaf = try issue()
        let other = try TestCertificateAuthority(name: "Other")
        let error = assertCode(.brokenChain, certificatePEM: leaf.certificatePEM, chainPEM: other.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(error?.message.contains("Other Intermediate CA") == true, error?.message ?? "")
    }

    /// Same issuer name, different key: the name matches but the signature does not.
    func testIssuerWithSameNameButWrongKeyIsBrokenChain() throws {
        let leaf = try issue()
        let impostor = try TestCertificateAuthority()  // same default name as sharedCA, fresh keys
        let error = assertCode(.brokenChain, certificatePEM: leaf.certificatePEM, chainPEM: impostor.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(error?.message.contains("not signed by") == true, error?.message ?? "")
    }

    func testKeyMismatchNamesCertificate() throws {
        let leaf = try issue(commonName: "mismatch.example.test")
        let other = try issue(commonName: "other.example.test")
        let error = assertCode(.keyMismatch, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: other.privateKeyPKCS8PEM)
        XCTAssertTrue(error?.message.contains("mismatch.example.test") == true, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("SHA-256") == true, error?.message ?? "")
        XCTAssertTrue(error?.message.contains(String(leaf.sha256Hex.prefix(16))) == true, error?.message ?? "")
        XCTAssertFalse(error?.message.contains("PRIVATE KEY") == true, error?.message ?? "")
    }

    func testKeyOfDifferentAlgorithmIsMismatch() throws {
        let leaf = try issue(keyType: .ecdsaP256, commonName: "p256.example.test")
        let other = try issue(keyType: .ed25519)
        let error = assertCode(.keyMismatch, certificatePEM: leaf.certificatePEM, privateKeyPEM: other.privateKeyPKCS8PEM)
        XCTAssertTrue(error?.message.contains("p256.example.test") == true, error?.message ?? "")
    }

    func testMissingKeyIsNoPrivateKey() throws {
        let leaf = try issue()
        _ = assertCode(.noPrivateKey, certificatePEM: leaf.certificatePEM, privateKeyPEM: "")
        let error = assertCode(.noPrivateKey, certificatePEM: leaf.certificatePEM, privateKeyPEM: leaf.certificatePEM)
        XCTAssertTrue(error?.message.contains("CERTIFICATE") == true, error?.message ?? "")
    }

    func testUndecodableKeyIsUnsupported() throws {
        let leaf = try issue()
        let junk = "-----BEGIN PRIVATE KEY-----\n" + Data("definitely not a key".utf8).base64EncodedString() + "\n-----END PRIVATE KEY-----\n"
        _ = assertCode(.unsupportedKey, certificatePEM: leaf.certificatePEM, privateKeyPEM: junk)
    }

    func testEncryptedPKCS8KeyIsRefused() throws {
        let leaf = try issue()
        let encrypted = try openssl(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:secret"], stdin: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(encrypted.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----"), encrypted)
        let error = assertCode(.encryptedKey, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: encrypted)
        XCTAssertTrue(error?.message.contains("encrypted") == true, error?.message ?? "")
    }

    func testEncryptedTraditionalECKeyIsRefused() throws {
        let leaf = try issue(keyType: .ecdsaP256)
        let encrypted = try openssl(["ec", "-aes256", "-passout", "pass:secret"], stdin: try leaf.privateKeyTraditionalPEM())
        XCTAssertTrue(encrypted.contains("-----BEGIN EC PRIVATE KEY-----"), encrypted)
        XCTAssertTrue(encrypted.contains("Proc-Type: 4,ENCRYPTED"), encrypted)
        _ = assertCode(.encryptedKey, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: encrypted)
    }

    func testEncryptedTraditionalRSAKeyIsRefused() throws {
        let leaf = try issue(keyType: .rsa2048)
        let encrypted = try openssl(["rsa", "-traditional", "-aes256", "-passout", "pass:secret"], stdin: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(encrypted.contains("-----BEGIN RSA PRIVATE KEY-----"), encrypted)
        XCTAssertTrue(encrypted.contains("Proc-Type: 4,ENCRYPTED"), encrypted)
        _ = assertCode(.encryptedKey, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: encrypted)
    }

    func testRSA1024IsRefused() throws {
        let directory = try TemporaryDirectory(prefix: "certdeploy-rsa1024")
        defer { directory.remove() }
        let keyPath = directory.file("k"), certPath = directory.file("c")
        let result = try ProcessRunner.run("openssl", ["req", "-x509", "-newkey", "rsa:1024", "-nodes", "-subj", "/CN=weak",
                                                       "-keyout", keyPath, "-out", certPath, "-days", "1"], timeout: 30)
        XCTAssertTrue(result.succeeded, result.description)
        let certificate = try String(contentsOfFile: certPath, encoding: .utf8)
        let key = try String(contentsOfFile: keyPath, encoding: .utf8)
        let error = assertCode(.unsupportedKey, certificatePEM: certificate, privateKeyPEM: key)
        XCTAssertTrue(error?.message.contains("certificate #1") == true, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("2048") == true, error?.message ?? "")

        // The same key size deep in a chain is refused the same way, not reported as a malformed file.
        let leaf = try issue()
        let chainError = assertCode(.unsupportedKey, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM + certificate,
                                    privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(chainError?.message.contains("chain certificate #2") == true, chainError?.message ?? "")
    }

    // MARK: - Validity

    func testExpiredLeaf() throws {
        let leaf = try issue(commonName: "expired.example.test") {
            $0.notBefore = Date().addingTimeInterval(-30 * 86400)
            $0.notAfter = Date().addingTimeInterval(-86400)
        }
        let error = assertCode(.expired, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(error?.message.contains("expired.example.test") == true, error?.message ?? "")
    }

    func testExpiryIsCheckedAgainstGivenNow() throws {
        let leaf = try issue()
        // Valid today, expired 100 days from now (the leaf lives 90 days).
        XCTAssertNoThrow(try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM))
        _ = assertCode(.expired, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM,
                       now: Date().addingTimeInterval(100 * 86400))
        _ = assertCode(.notYetValid, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM,
                       now: Date().addingTimeInterval(-2 * 3600))
    }

    func testNotYetValidLeaf() throws {
        let leaf = try issue(commonName: "future.example.test") {
            $0.notBefore = Date().addingTimeInterval(86400)
            $0.notAfter = Date().addingTimeInterval(90 * 86400)
        }
        let error = assertCode(.notYetValid, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(error?.message.contains("future.example.test") == true, error?.message ?? "")
    }

    func testLeafExpiringSoonGetsNote() throws {
        let leaf = try issue { $0.notAfter = Date().addingTimeInterval(3 * 86400) }
        let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertEqual(bundle.notes.count, 1, "\(bundle.notes)")
        XCTAssertTrue(bundle.notes.first?.contains("expires soon") == true, "\(bundle.notes)")

        let later = try issue { $0.notAfter = Date().addingTimeInterval(30 * 86400) }
        let laterBundle = try CertificateBundle.parse(certificatePEM: later.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: later.privateKeyPKCS8PEM)
        XCTAssertEqual(laterBundle.notes, [])
    }

    // MARK: - Malformed input

    func testBeginWithoutEnd() throws {
        let leaf = try issue()
        let truncated = leaf.certificatePEM.replacingOccurrences(of: "-----END CERTIFICATE-----\n", with: "")
        XCTAssertNotEqual(truncated, leaf.certificatePEM)
        let error = assertCode(.malformedPEM, certificatePEM: truncated, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(error?.message.contains("no matching END") == true, error?.message ?? "")

        // The same in the chain and in the key.
        let truncatedChain = ca.chainPEM.replacingOccurrences(of: "-----END CERTIFICATE-----\n", with: "")
        _ = assertCode(.malformedPEM, certificatePEM: leaf.certificatePEM, chainPEM: truncatedChain, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        let truncatedKey = leaf.privateKeyPKCS8PEM.replacingOccurrences(of: "-----END PRIVATE KEY-----\n", with: "")
        _ = assertCode(.malformedPEM, certificatePEM: leaf.certificatePEM, privateKeyPEM: truncatedKey)
    }

    func testEndWithoutBegin() throws {
        let leaf = try issue()
        _ = assertCode(.malformedPEM, certificatePEM: leaf.certificatePEM + "-----END CERTIFICATE-----\n", privateKeyPEM: leaf.privateKeyPKCS8PEM)
    }

    func testGarbageBase64() throws {
        let leaf = try issue()
        let garbage = "-----BEGIN CERTIFICATE-----\n!!!!not*base64%%%%\n-----END CERTIFICATE-----\n"
        let error = assertCode(.malformedPEM, certificatePEM: garbage, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(error?.message.contains("certificate #1") == true, error?.message ?? "")

        let chainError = assertCode(.malformedPEM, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM + garbage, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(chainError?.message.contains("chain certificate #2") == true, chainError?.message ?? "")
    }

    func testCertificateBlockThatIsNotDER() throws {
        let leaf = try issue()
        let notDER = "-----BEGIN CERTIFICATE-----\n" + Data("this is base64 but not a certificate".utf8).base64EncodedString() + "\n-----END CERTIFICATE-----\n"
        let error = assertCode(.malformedPEM, certificatePEM: notDER, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(error?.message.contains("not a valid X.509 certificate") == true, error?.message ?? "")
    }

    func testNoCertificate() throws {
        let leaf = try issue()
        _ = assertCode(.noCertificate, certificatePEM: "", privateKeyPEM: leaf.privateKeyPKCS8PEM)
        _ = assertCode(.noCertificate, certificatePEM: "just some text\n", privateKeyPEM: leaf.privateKeyPKCS8PEM)
        // A key pasted in the certificate field is not a certificate.
        _ = assertCode(.noCertificate, certificatePEM: leaf.privateKeyPKCS8PEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
    }

    // MARK: - Info

    func testInfoFields() throws {
        let notBefore = Date().addingTimeInterval(-7200)
        let notAfter = Date().addingTimeInterval(60 * 86400)
        let leaf = try issue(commonName: "info.example.test", dnsNames: ["info.example.test", "www.info.example.test"]) {
            $0.ocspURL = "http://ocsp.example.test:8080/ocsp"
            $0.notBefore = notBefore
            $0.notAfter = notAfter
            $0.serialNumber = .init(bytes: [0x01, 0x23, 0x45, 0x67, 0x89, 0xab])
        }
        let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        let info = bundle.info
        XCTAssertEqual(info.subjectAlternativeNames, ["info.example.test", "www.info.example.test"])
        XCTAssertEqual(info.sha256, leaf.sha256Hex)
        XCTAssertEqual(info.sha256.count, 64)
        XCTAssertEqual(info.ocspURL, "http://ocsp.example.test:8080/ocsp")
        XCTAssertFalse(info.mustStaple)
        XCTAssertEqual(info.serialNumberHex, "0123456789ab")
        XCTAssertTrue(info.subject.contains("info.example.test"), info.subject)
        XCTAssertTrue(info.issuer.contains("Intermediate CA"), info.issuer)
        XCTAssertEqual(info.notBefore.timeIntervalSince1970, notBefore.timeIntervalSince1970, accuracy: 1)
        XCTAssertEqual(info.notAfter.timeIntervalSince1970, notAfter.timeIntervalSince1970, accuracy: 1)
        XCTAssertTrue(info.shortDescription.contains("info.example.test"))
        XCTAssertTrue(info.shortDescription.contains(String(leaf.sha256Hex.prefix(16))))
    }

    func testNoOCSPURLAndNoSANs() throws {
        let leaf = try issue(dnsNames: [])
        let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertNil(bundle.info.ocspURL)
        XCTAssertEqual(bundle.info.subjectAlternativeNames, [])
        XCTAssertFalse(bundle.info.mustStaple)
    }

    func testMustStaple() throws {
        let leaf = try issue {
            $0.mustStaple = true
            $0.ocspURL = "http://127.0.0.1:9/"
        }
        let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        XCTAssertTrue(bundle.info.mustStaple)
        XCTAssertEqual(bundle.info.ocspURL, "http://127.0.0.1:9/")
    }

    func testKeyAlgorithmDiffersByKeyType() throws {
        var algorithms: Set<String> = []
        for type in [TestKeyType.ecdsaP256, .ecdsaP384, .ed25519] {
            let leaf = try issue(keyType: type)
            let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
            XCTAssertFalse(bundle.info.keyAlgorithm.isEmpty)
            algorithms.insert(bundle.info.keyAlgorithm)
        }
        XCTAssertEqual(algorithms.count, 3, "\(algorithms)")
    }

    func testInfoIsCodable() throws {
        let leaf = try issue { $0.ocspURL = "http://ocsp.example.test/" }
        let info = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, privateKeyPEM: leaf.privateKeyPKCS8PEM).info
        let decoded = try JSONDecoder().decode(CertificateInfo.self, from: JSONEncoder().encode(info))
        XCTAssertEqual(decoded, info)
    }

    // MARK: - Secrets

    func testDescriptionNeverShowsKey() throws {
        for keyType in [TestKeyType.ecdsaP256, .ed25519] {
            let leaf = try issue(keyType: keyType)
            let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
            let keyBody = leaf.privateKeyPKCS8PEM.split(separator: "\n")[1]
            for text in [bundle.description, "\(bundle)", String(describing: bundle), String(reflecting: bundle)] {
                XCTAssertFalse(text.contains("PRIVATE KEY"), text)
                XCTAssertFalse(text.contains(keyBody), text)
                XCTAssertTrue(text.contains("<redacted>"), text)
                XCTAssertTrue(text.contains("example.test"), text)
            }
        }
    }

    func testErrorEqualityIsByCode() {
        XCTAssertEqual(BundleError(.expired, "a"), BundleError(.expired, "b"))
        XCTAssertNotEqual(BundleError(.expired, "a"), BundleError(.notYetValid, "a"))
        XCTAssertEqual(BundleError(.keyMismatch, "hello").description, "hello")
        XCTAssertEqual(BundleError.Code.keyMismatch.rawValue, "key_mismatch")
    }

    // MARK: - Helpers

    private func openssl(_ arguments: [String], stdin: String) throws -> String {
        let result = try ProcessRunner.run("openssl", arguments, stdin: Data(stdin.utf8), timeout: 30)
        guard result.succeeded else { throw HarnessError("openssl \(arguments.joined(separator: " ")) failed: \(result)") }
        return result.stdout
    }
}
