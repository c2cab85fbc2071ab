import ConnectorTestSupport
import Core
import Foundation
import NginxConnector
import TestSupport
import XCTest

/// nginx stapling against a real OCSP responder, checked by a client that asks for the staple.
final class NginxStaplingTests: XCTestCase {
    func testConformance() async throws {
        try ConnectorConformance.checkStatic(NginxConnector.self)
        let fixture = try Fixture()
        try await ConnectorConformance.checkLive(.init(
            config: { fixture.config($0) },
            deploy: { try await fixture.harness.deploy(NginxConnector.self, config: $0, leaf: $1) },
            servedLeaf: { try await fixture.harness.served(port: fixture.nginx.port, expecting: $0).leafSHA256 },
            issueLeaf: { try fixture.harness.issueLeaf() },
            failingValidate: ["validateCommand": ConnectorConformance.failingCommand],
            failingReload: ["reloadCommand": ConnectorConformance.failingCommand],
            failingVerify: ["verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(try FreePort.allocate())), "timeoutSeconds": .number(1)])]),
            id: "nginx")
    }

    final class Fixture {
        let harness: DeployHarness
        let nginx: NginxServer
        let tls: String

        init() throws {
            try Services.require(["nginx"])
            harness = try DeployHarness(prefix: "certdeploy-nginx-stapling")
            tls = try harness.directory.makeDirectory("tls", mode: 0o755)
            let old = try TestCertificateAuthority.selfSigned(commonName: "old.example.test", dnsNames: ["example.test"])
            _ = try harness.directory.write("tls/example.pem", old.certificatePEM)
            _ = try harness.directory.write("tls/example.key", old.privateKeyPKCS8PEM, mode: 0o600)
            nginx = try NginxServer.start(certificatePath: tls + "/example.pem", keyPath: tls + "/example.key", includeSnippetPath: tls + "/snippet.conf", in: harness.directory)
        }

        deinit { nginx.stop() }

        func config(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
            var object: [String: JSONValue] = [
                "certificatePath": .string(tls + "/example.pem"), "keyPath": .string(tls + "/example.key"), "snippetPath": .string(tls + "/snippet.conf"),
                "validateCommand": .array(nginx.validateCommand.map(JSONValue.string)), "reloadCommand": .array(nginx.reloadCommand.map(JSONValue.string)),
                "verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(nginx.port)), "serverName": .string("example.test")]),
            ]
            object.merge(overrides) { $1 }
            return .object(object)
        }
    }

    func testVendorFetchedStapleIsGoodOnceNginxHasFetchedIt() async throws {
        let fixture = try Fixture()
        let leaf = try fixture.harness.issueLeaf()
        // ssl_stapling_verify needs the root: given in the chain, certdeploy writes a trusted file for nginx.
        let result = try await fixture.harness.deploy(NginxConnector.self, config: fixture.config(), leaf: leaf, includeRoot: true)
        XCTAssertEqual(result.outcome, .succeeded, "\(String(describing: result.failure))")
        XCTAssertEqual(result.stapling?.mode, .vendorFetched)
        let trusted = String(decoding: fileBytes(fixture.tls + "/example.pem.trusted.pem") ?? Data(), as: UTF8.self)
        XCTAssertTrue(trusted.contains(fixture.harness.ca.root.certificatePEM.split(separator: "\n")[1]), "the trusted file holds the root")
        // nginx fetches lazily: poll until a handshake carries the staple.
        let served = try await fixture.harness.served(port: fixture.nginx.port, expecting: leaf.sha256Hex, requireStaple: true)
        XCTAssertEqual(try fixture.harness.checkStaple(served, for: leaf).status, .good)
    }

    func testStapleFileModeServesTheStapleCertdeployFetched() async throws {
        let fixture = try Fixture()
        let staplePath = fixture.tls + "/example.ocsp"
        let leaf = try fixture.harness.issueLeaf(mustStaple: true)
        let config = fixture.config(["stapling": .string("file"), "staplePath": .string(staplePath)])
        let result = try await fixture.harness.deploy(NginxConnector.self, config: config, leaf: leaf)
        XCTAssertEqual(result.outcome, .succeeded, "\(String(describing: result.failure)) \(result.steps)")
        XCTAssertEqual(result.stapling?.mode, .stapleFile)
        XCTAssertEqual(fileBytes(staplePath).map(Array.init), result.staple?.der)
        let snippet = String(decoding: fileBytes(fixture.tls + "/snippet.conf") ?? Data(), as: UTF8.self)
        XCTAssertTrue(snippet.contains("ssl_stapling_file \(staplePath);"))
        let served = try await fixture.harness.served(port: fixture.nginx.port, expecting: leaf.sha256Hex, requireStaple: true)
        XCTAssertEqual(served.stapleDER, result.staple?.der, "nginx staples exactly the file certdeploy wrote")

        // The same certificate again: the staple on disk is fresh, so nothing is rewritten or reloaded.
        let again = try await fixture.harness.deploy(NginxConnector.self, config: config, leaf: leaf)
        XCTAssertEqual(again.outcome, .unchanged, "\(again.steps)")

        // OCSP check turned off: file mode plans without a staple, consistently (no dangling ssl_stapling_file).
        let unchecked = try await fixture.harness.deploy(NginxConnector.self, config: config, leaf: try fixture.harness.issueLeaf(), options: DeployOptions(checkOCSP: false))
        XCTAssertEqual(unchecked.outcome, .succeeded, "\(String(describing: unchecked.failure))")
        XCTAssertEqual(unchecked.stapling?.mode, StaplingDecision.Mode.none)
        let mustStapleUnchecked = try await fixture.harness.deploy(NginxConnector.self, config: config, leaf: try fixture.harness.issueLeaf(mustStaple: true), options: DeployOptions(checkOCSP: false))
        XCTAssertEqual(mustStapleUnchecked.outcome, .failed)
        XCTAssertEqual(mustStapleUnchecked.failure?.step, .staple)

        // Responder down, leaf not Must-Staple: served without a staple, the stale file removed, nginx -t passes.
        fixture.harness.ocsp.setMode(.down)
        let plain = try fixture.harness.issueLeaf()
        let withoutStaple = try await fixture.harness.deploy(NginxConnector.self, config: config, leaf: plain)
        XCTAssertEqual(withoutStaple.outcome, .succeeded, "\(String(describing: withoutStaple.failure))")
        XCTAssertEqual(withoutStaple.stapling?.mode, StaplingDecision.Mode.none)
        XCTAssertNil(fileBytes(staplePath))
        XCTAssertFalse(String(decoding: fileBytes(fixture.tls + "/snippet.conf") ?? Data(), as: UTF8.self).contains("ssl_stapling on;"))
    }

    func testRevokedLeafAndMustStapleWithUnreachableResponderAreRefused() async throws {
        let fixture = try Fixture()
        let before = fileBytes(fixture.tls + "/example.pem")
        let revoked = try await fixture.harness.deploy(NginxConnector.self, config: fixture.config(), leaf: try fixture.harness.issueLeaf(revoked: true))
        XCTAssertEqual(revoked.outcome, .failed)
        XCTAssertEqual(revoked.failure?.step, .staple)
        fixture.harness.ocsp.setMode(.hang)
        let mustStaple = try await fixture.harness.deploy(NginxConnector.self, config: fixture.config(), leaf: try fixture.harness.issueLeaf(mustStaple: true))
        XCTAssertEqual(mustStaple.outcome, .failed)
        XCTAssertTrue(mustStaple.failure?.message.contains("Must-Staple") ?? false)
        XCTAssertEqual(fileBytes(fixture.tls + "/example.pem"), before)
    }
}
