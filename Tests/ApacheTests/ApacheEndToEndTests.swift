import ApacheConnector
import ConnectorTestSupport
import Core
import Foundation
import TestSupport
import XCTest

/// The Apache connector through the whole pipeline against a real Apache httpd over a real sshd, with
/// a real OCSP responder; stapling is proven by a client that asks for the staple.
final class ApacheEndToEndTests: XCTestCase {
    func testConformance() async throws {
        try ConnectorConformance.checkStatic(ApacheConnector.self)
        let fixture = try Fixture()
        try await ConnectorConformance.checkLive(.init(
            config: { fixture.config($0) },
            deploy: { try await fixture.harness.deploy(ApacheConnector.self, config: $0, leaf: $1) },
            servedLeaf: { try await fixture.harness.served(port: fixture.apache.port, expecting: $0).leafSHA256 },
            issueLeaf: { try fixture.harness.issueLeaf() },
            failingValidate: ["validateCommand": ConnectorConformance.failingCommand],
            failingReload: ["reloadCommand": ConnectorConformance.failingCommand],
            failingVerify: ["verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(try FreePort.allocate())), "timeoutSeconds": .number(1)])]),
            id: "apache")
    }

    /// The vendor matrix's "tested on" is the version these tests really ran against.
    func testDescriptorNamesTheVendorVersionInstalledHere() throws {
        let tested = ApacheConnector.descriptor.vendorVersions.filter { $0.status == .tested }
        XCTAssertEqual(tested.count, 1)
        XCTAssertEqual(tested.first?.testedVersion, ApacheServer.version(), "update the descriptor's testedVersion to what the tests run against")
    }

    final class Fixture {
        let harness: DeployHarness
        let apache: ApacheServer
        let oldLeaf: TestIssuedCertificate
        let certificatePath: String
        let keyPath: String

        init() throws {
            try Services.require(["apache2", "apache2ctl"])
            harness = try DeployHarness(prefix: "certdeploy-apache")
            let tls = try harness.directory.makeDirectory("tls", mode: 0o755)
            certificatePath = tls + "/example.pem"
            keyPath = tls + "/example.key"
            oldLeaf = try TestCertificateAuthority.selfSigned(commonName: "old.example.test", dnsNames: ["example.test"])
            _ = try harness.directory.write("tls/example.pem", oldLeaf.certificatePEM)
            _ = try harness.directory.write("tls/example.key", oldLeaf.privateKeyPKCS8PEM, mode: 0o600)
            apache = try ApacheServer.start(certificatePath: certificatePath, keyPath: keyPath,
                                            vhostSnippetPath: tls + "/vhost.conf", serverSnippetPath: tls + "/server.conf", in: harness.directory)
        }

        deinit { apache.stop() }

        func config(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
            var object: [String: JSONValue] = [
                "certificatePath": .string(certificatePath),
                "keyPath": .string(keyPath),
                "vhostSnippetPath": .string(apache.vhostSnippetPath),
                "serverSnippetPath": .string(apache.serverSnippetPath),
                "staplingCachePath": .string(harness.directory.file("stapling-cache")),
                "validateCommand": .array(apache.validateCommand.map(JSONValue.string)),
                "reloadCommand": .array(apache.reloadCommand.map(JSONValue.string)),
                "verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(apache.port)), "serverName": .string("example.test"), "timeoutSeconds": .number(10)]),
            ]
            object.merge(overrides) { $1 }
            return .object(object)
        }

        func liveFiles() -> [Data?] { [certificatePath, keyPath, apache.vhostSnippetPath, apache.serverSnippetPath].map(fileBytes) }
    }

    func testDeployServesNewLeafWithGoodStapleAndIsIdempotent() async throws {
        let fixture = try Fixture()
        let leaf = try fixture.harness.issueLeaf()
        let result = try await fixture.harness.deploy(ApacheConnector.self, config: fixture.config(), leaf: leaf)
        XCTAssertEqual(result.outcome, .succeeded, "\(String(describing: result.failure)) \(result.steps)")
        XCTAssertEqual(result.stapling?.mode, .vendorFetched)
        XCTAssertEqual(result.staple?.status, .good, "the OCSP check at preflight saw a good answer")
        let served = try await fixture.harness.served(port: fixture.apache.port, expecting: leaf.sha256Hex, requireStaple: true)
        XCTAssertEqual(served.leafSHA256, leaf.sha256Hex)
        let staple = try fixture.harness.checkStaple(served, for: leaf)
        XCTAssertEqual(staple.status, .good)
        let vhost = String(decoding: fileBytes(fixture.apache.vhostSnippetPath) ?? Data(), as: UTF8.self)
        XCTAssertTrue(vhost.contains("SSLUseStapling on"))
        let server = String(decoding: fileBytes(fixture.apache.serverSnippetPath) ?? Data(), as: UTF8.self)
        XCTAssertTrue(server.contains("SSLStaplingCache shmcb:"))
        XCTAssertTrue(server.contains("SSLStaplingReturnResponderErrors off"))
        XCTAssertTrue(fixture.apache.isAlive())

        let again = try await fixture.harness.deploy(ApacheConnector.self, config: fixture.config(), leaf: leaf)
        XCTAssertEqual(again.outcome, .unchanged)
        XCTAssertNil(step(again, .reload))
    }

    func testLeafWithoutOCSPURLDeploysWithoutStaplingDirectivesAndPassesConfigTest() async throws {
        let fixture = try Fixture()
        let leaf = try fixture.harness.issueLeaf(ocsp: false)
        let result = try await fixture.harness.deploy(ApacheConnector.self, config: fixture.config(), leaf: leaf)
        XCTAssertEqual(result.outcome, .succeeded, "\(String(describing: result.failure))")
        XCTAssertEqual(step(result, .validate)?.outcome, .ok)
        XCTAssertEqual(step(result, .staple)?.outcome, .skipped)
        let vhost = String(decoding: fileBytes(fixture.apache.vhostSnippetPath) ?? Data(), as: UTF8.self)
        let server = String(decoding: fileBytes(fixture.apache.serverSnippetPath) ?? Data(), as: UTF8.self)
        XCTAssertFalse(vhost.contains("SSLUseStapling"))
        XCTAssertTrue(server.contains("SSLStaplingCache shmcb:"), "the cache stays declared so a later reload never drops it")
        let served = try await fixture.harness.served(port: fixture.apache.port, expecting: leaf.sha256Hex)
        XCTAssertEqual(served.leafSHA256, leaf.sha256Hex)
        XCTAssertNil(served.stapleDER)
    }

    /// Stapling on → off: Apache 2.4's graceful restart exits when the `SSLStaplingCache` it used disappears
    /// (AH00819/AH01872), so the snippet keeps it; the daemon must stay alive and serve the leaf without a staple.
    func testStaplingOnThenOffKeepsApacheAliveAndServing() async throws {
        let fixture = try Fixture()
        let stapled = try fixture.harness.issueLeaf()
        let first = try await fixture.harness.deploy(ApacheConnector.self, config: fixture.config(), leaf: stapled)
        XCTAssertEqual(first.outcome, .succeeded, "\(String(describing: first.failure))")
        _ = try await fixture.harness.served(port: fixture.apache.port, expecting: stapled.sha256Hex, requireStaple: true)

        let plain = try fixture.harness.issueLeaf(ocsp: false)
        let second = try await fixture.harness.deploy(ApacheConnector.self, config: fixture.config(), leaf: plain)
        XCTAssertEqual(second.outcome, .succeeded, "\(String(describing: second.failure)) \(second.steps)")
        XCTAssertEqual(step(second, .reload)?.outcome, .ok)
        XCTAssertTrue(fixture.apache.isAlive(), "Apache exited on the graceful restart")
        XCTAssertEqual(fixture.apache.pidFromFile(), fixture.apache.masterPID, "a graceful restart keeps the parent process")
        let served = try await fixture.harness.served(port: fixture.apache.port, expecting: plain.sha256Hex)
        XCTAssertEqual(served.leafSHA256, plain.sha256Hex)
        XCTAssertNil(served.stapleDER)
    }

    func testRevokedLeafIsRefusedAndNothingChanges() async throws {
        let fixture = try Fixture()
        let before = fixture.liveFiles()
        let leaf = try fixture.harness.issueLeaf(revoked: true)
        let result = try await fixture.harness.deploy(ApacheConnector.self, config: fixture.config(), leaf: leaf)
        XCTAssertEqual(result.outcome, .failed)
        XCTAssertEqual(result.failure?.step, .staple)
        XCTAssertTrue(result.failure?.message.contains("revoked") ?? false, "\(String(describing: result.failure))")
        XCTAssertEqual(result.connectionsOpened, 0)
        XCTAssertEqual(fixture.liveFiles(), before)
    }

    func testMustStapleLeafWithUnreachableResponderIsRefused() async throws {
        let fixture = try Fixture()
        let before = fixture.liveFiles()
        let leaf = try fixture.harness.issueLeaf(mustStaple: true)
        fixture.harness.ocsp.setMode(.down)
        let result = try await fixture.harness.deploy(ApacheConnector.self, config: fixture.config(), leaf: leaf)
        XCTAssertEqual(result.outcome, .failed)
        XCTAssertEqual(result.failure?.step, .staple)
        XCTAssertTrue(result.failure?.message.contains("Must-Staple") ?? false)
        XCTAssertEqual(fixture.liveFiles(), before)

        // A leaf without Must-Staple deploys without a staple, with a warning.
        let plain = try fixture.harness.issueLeaf()
        let warned = try await fixture.harness.deploy(ApacheConnector.self, config: fixture.config(), leaf: plain)
        XCTAssertEqual(warned.outcome, .succeeded, "\(String(describing: warned.failure))")
        XCTAssertEqual(step(warned, .staple)?.outcome, .warning)
    }

    func testValidateFailureRollsBack() async throws {
        let fixture = try Fixture()
        let before = fixture.liveFiles()
        // An include of a file that does not exist: Apache's own config test fails.
        let result = try await fixture.harness.deploy(
            ApacheConnector.self,
            config: fixture.config(["validateCommand": .array([.string("/usr/sbin/apache2ctl"), .string("-t"), .string("-f"), .string(fixture.apache.confPath),
                                                               .string("-C"), .string("Include /nonexistent/certdeploy-broken.conf")])]),
            leaf: try fixture.harness.issueLeaf())
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .validate)
        XCTAssertEqual(fixture.liveFiles(), before)
        let served = try await fixture.harness.served(port: fixture.apache.port, expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served.leafSHA256, fixture.oldLeaf.sha256Hex)
    }

    func testReloadFailureRollsBack() async throws {
        let fixture = try Fixture()
        let before = fixture.liveFiles()
        let marker = fixture.harness.directory.file("reload-failed-once")
        let reload = ShellQuoting.commandLine(fixture.apache.reloadCommand)
        let script = "if [ -e \(marker) ]; then exec \(reload); else touch \(marker); exit 5; fi"
        let result = try await fixture.harness.deploy(ApacheConnector.self, config: fixture.config(["reloadCommand": .array([.string("/bin/sh"), .string("-c"), .string(script)])]),
                                                      leaf: try fixture.harness.issueLeaf())
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .reload)
        XCTAssertEqual(fixture.liveFiles(), before)
        let served = try await fixture.harness.served(port: fixture.apache.port, expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served.leafSHA256, fixture.oldLeaf.sha256Hex)
        XCTAssertTrue(fixture.apache.isAlive())
    }
}
