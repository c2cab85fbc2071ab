import ConnectorTestSupport
import Core
import Foundation
import PostfixConnector
import TestSupport
import XCTest

/// The conformance suite every connector passes. The static part needs no daemon; the live part
/// drives the real Postfix through the real engine over a real sshd (see DeployHarness).
final class PostfixConformanceTests: XCTestCase {
    final class Fixture {
        let harness: DeployHarness
        let postfix: PostfixServer
        let oldLeaf: TestIssuedCertificate

        init() throws {
            try Services.require(["postfix"])
            harness = try DeployHarness(prefix: "certdeploy-postfix")
            let tls = try harness.directory.makeDirectory("tls", mode: 0o755)
            oldLeaf = try TestCertificateAuthority.selfSigned(commonName: "old.example.test", dnsNames: ["example.test"])
            _ = try harness.directory.write("tls/chain.pem", oldLeaf.privateKeyPKCS8PEM + oldLeaf.certificatePEM, mode: 0o600)
            postfix = try PostfixServer.start(chainFilesPath: tls + "/chain.pem", in: harness.directory)
        }

        deinit { postfix.stop() }

        func config(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
            var object: [String: JSONValue] = [
                "chainFilesPath": .string(postfix.chainFilesPath),
                "validateCommand": .array(postfix.validateCommand.map(JSONValue.string)),
                "reloadCommand": .array(postfix.reloadCommand.map(JSONValue.string)),
                "verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(postfix.port)), "serverName": .string("example.test"), "timeoutSeconds": .number(15)]),
            ]
            object.merge(overrides) { $1 }
            return .object(object)
        }

        /// The leaf Postfix serves over SMTP STARTTLS, once `expected` shows three times in a row (or 10 s passed).
        func served(expecting expected: String) async throws -> String {
            try await servedAfterSettling(port: postfix.port, expecting: expected, startTLS: .smtp, timeout: .seconds(10)).leafSHA256
        }
    }

    func testStaticConformance() throws {
        try ConnectorConformance.checkStatic(PostfixConnector.self)
    }

    func testLiveConformance() async throws {
        let fixture = try Fixture()
        try await ConnectorConformance.checkLive(.init(
            config: { fixture.config($0) },
            deploy: { try await fixture.harness.deploy(PostfixConnector.self, config: $0, leaf: $1) },
            servedLeaf: { try await fixture.served(expecting: $0) },
            issueLeaf: { try fixture.harness.issueLeaf() },
            failingValidate: ["validateCommand": ConnectorConformance.failingCommand],
            failingReload: ["reloadCommand": ConnectorConformance.failingCommand],
            failingVerify: ["verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(try FreePort.allocate())), "timeoutSeconds": .number(1)])]),
            id: "postfix")
    }

    func testRealPostfixCheckFailureRollsBackAndMustStapleIsRefused() async throws {
        let fixture = try Fixture()
        let before = fileBytes(fixture.postfix.chainFilesPath)
        // `postfix check` against a config directory that does not exist fails for real.
        let failing = try await fixture.harness.deploy(
            PostfixConnector.self, config: fixture.config(["validateCommand": .array([.string("/usr/sbin/postfix"), .string("-c"), .string("/nonexistent-postfix"), .string("check")])]),
            leaf: try fixture.harness.issueLeaf())
        XCTAssertEqual(failing.outcome, .rolledBack, "\(failing.steps)")
        XCTAssertEqual(failing.failure?.step, .validate)
        XCTAssertEqual(fileBytes(fixture.postfix.chainFilesPath), before)

        let mustStaple = try await fixture.harness.deploy(PostfixConnector.self, config: fixture.config(), leaf: try fixture.harness.issueLeaf(mustStaple: true))
        XCTAssertEqual(mustStaple.outcome, .failed)
        XCTAssertEqual(mustStaple.failure?.step, .preflight)
        XCTAssertTrue(mustStaple.failure?.message.contains("does not staple") ?? false, "\(String(describing: mustStaple.failure))")
        let served = try await fixture.served(expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served, fixture.oldLeaf.sha256Hex)
    }

    /// The vendor matrix's "tested on" is the version these tests really ran against.
    func testDescriptorNamesTheVendorVersionInstalledHere() throws {
        XCTAssertEqual(PostfixConnector.descriptor.vendorVersions.first { $0.status == .tested }?.testedVersion, PostfixServer.version())
    }
}
