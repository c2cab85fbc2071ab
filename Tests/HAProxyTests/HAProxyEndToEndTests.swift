import ConnectorTestSupport
import Core
import Foundation
import HAProxyConnector
import TestSupport
import XCTest

/// The HAProxy connector in both activation modes against a real HAProxy 2.6 over a real sshd, with
/// a real OCSP responder; every stapling claim is checked by a client that asks for the staple.
final class HAProxyEndToEndTests: XCTestCase {
    func testConformance() async throws {
        try ConnectorConformance.checkStatic(HAProxyConnector.self)
        let fixture = try Fixture()
        try await ConnectorConformance.checkLive(.init(
            config: { fixture.config($0) },
            deploy: { try await fixture.harness.deploy(HAProxyConnector.self, config: $0, leaf: $1) },
            servedLeaf: { try await fixture.harness.served(port: fixture.haproxy.port, expecting: $0).leafSHA256 },
            issueLeaf: { try fixture.harness.issueLeaf() },
            failingValidate: ["validateCommand": ConnectorConformance.failingCommand],
            failingReload: ["reloadCommand": ConnectorConformance.failingCommand],
            failingVerify: ["verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(try FreePort.allocate())), "timeoutSeconds": .number(1)])]),
            id: "haproxy")
    }

    /// The vendor matrix's "tested on" is the version these tests really ran against.
    func testDescriptorNamesTheVendorVersionInstalledHere() throws {
        let tested = HAProxyConnector.descriptor.vendorVersions.filter { $0.status == .tested }
        XCTAssertEqual(tested.count, 1)
        XCTAssertEqual(tested.first?.testedVersion, HAProxyServer.version(), "update the descriptor's testedVersion to what the tests run against")
    }

    final class Fixture {
        let harness: DeployHarness
        let haproxy: HAProxyServer
        let oldLeaf: TestIssuedCertificate
        let pemPath: String

        init() throws {
            try Services.require(["haproxy"])
            harness = try DeployHarness(prefix: "certdeploy-haproxy")
            let tls = try harness.directory.makeDirectory("tls", mode: 0o755)
            pemPath = tls + "/site.pem"
            oldLeaf = try TestCertificateAuthority.selfSigned(commonName: "old.example.test", dnsNames: ["example.test"])
            _ = try harness.directory.write("tls/site.pem", oldLeaf.certificatePEM + oldLeaf.privateKeyPKCS8PEM, mode: 0o600)
            haproxy = try HAProxyServer.start(combinedPEMPath: pemPath, in: harness.directory)
        }

        deinit { haproxy.stop() }

        func config(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
            var object: [String: JSONValue] = [
                "pemPath": .string(pemPath),
                "configPath": .string(haproxy.confPath),
                "reloadCommand": .array(haproxy.reloadCommand.map(JSONValue.string)),
                "runtimeAPI": .object(["port": .number(Double(haproxy.statsPort))]),
                "verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(haproxy.port)), "serverName": .string("example.test"), "timeoutSeconds": .number(8)]),
            ]
            object.merge(overrides) { $1 }
            return .object(object)
        }

        var hotUpdate: JSONValue { config(["activation": .string("hot-update")]) }

        func liveFiles() -> [Data?] { [pemPath, pemPath + ".ocsp", pemPath + ".issuer"].map(fileBytes) }
    }

    func testReloadModeServesNewLeafWithStapleFromTheFirstHandshakeAndIsIdempotent() async throws {
        let fixture = try Fixture()
        let leaf = try fixture.harness.issueLeaf()
        let result = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.config(), leaf: leaf)
        XCTAssertEqual(result.outcome, .succeeded, "\(String(describing: result.failure)) \(result.steps)")
        XCTAssertEqual(result.stapling?.mode, .stapleFile)
        XCTAssertEqual(step(result, .verify)?.outcome, .ok)
        XCTAssertTrue(step(result, .verify)?.detail?.contains("a good, fresh OCSP staple for this leaf is served") ?? false, step(result, .verify)?.detail ?? "")
        let served = try await fixture.harness.served(port: fixture.haproxy.port, expecting: leaf.sha256Hex, requireStaple: true)
        XCTAssertEqual(served.leafSHA256, leaf.sha256Hex)
        XCTAssertEqual(try fixture.harness.checkStaple(served, for: leaf).status, .good)
        // Files: combined PEM 0600 without blank lines, .issuer, .ocsp (DER, the checked staple).
        let pem = String(decoding: fileBytes(fixture.pemPath) ?? Data(), as: UTF8.self)
        XCTAssertTrue(pem.contains("BEGIN CERTIFICATE") && pem.contains("PRIVATE KEY"))
        XCTAssertFalse(pem.contains("\n\n"))
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: fixture.pemPath)[.posixPermissions] as? Int), 0o600)
        XCTAssertEqual(fileBytes(fixture.pemPath + ".ocsp").map(Array.init), result.staple?.der)
        XCTAssertNotNil(fileBytes(fixture.pemPath + ".issuer"))

        // The responder signs a new response every time; the staple on the target is still fresh, so nothing changes.
        let again = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.config(), leaf: leaf)
        XCTAssertEqual(again.outcome, .unchanged, "\(again.steps)")
        XCTAssertTrue(step(again, .compare)?.detail?.contains("still fresh") ?? false)

        // Forced: everything is rewritten and reloaded; the kept staple is the one verify expects to see.
        let forced = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.config(), leaf: leaf, options: DeployOptions(force: true))
        XCTAssertEqual(forced.outcome, .succeeded, "\(String(describing: forced.failure))")
        XCTAssertEqual(forced.staple?.der, result.staple?.der)
    }

    /// The client's-eye verify on the unchanged path, for an expired staple: HAProxy (hot update) still serves a
    /// ten-minute response from memory while the file on the target already holds a fresh one. At the engine's clock,
    /// twenty minutes on, the served staple has expired: the files match, but verify sees it, the engine pushes the
    /// files through the Runtime API again, and the fresh staple is served.
    func testAnExpiredServedStapleIsCaughtAndReplacedAlthoughTheFilesMatch() async throws {
        let fixture = try Fixture()
        let leaf = try fixture.harness.issueLeaf()
        var first = DeployOptions()
        first.staple = try fixture.harness.fetchStaple(leaf, validityMinutes: 10)
        let deployed = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.hotUpdate, leaf: leaf, options: first)
        XCTAssertEqual(deployed.outcome, .succeeded, "\(String(describing: deployed.failure)) \(deployed.steps)")
        let short = try fixture.harness.checkStaple(try await fixture.harness.served(port: fixture.haproxy.port, expecting: leaf.sha256Hex, requireStaple: true), for: leaf)
        XCTAssertEqual(short.thisUpdate, first.staple?.thisUpdate)

        // A fresh response lands in the file behind HAProxy's back; HAProxy keeps serving the short one.
        try await Task.sleep(for: .milliseconds(1100))  // OCSP times have one-second resolution
        let fresh = try fixture.harness.fetchStaple(leaf)
        try Data(fresh.der).write(to: URL(fileURLWithPath: fixture.pemPath + ".ocsp"))
        var second = DeployOptions(now: { Date().addingTimeInterval(20 * 60) })
        second.staple = fresh
        let result = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.hotUpdate, leaf: leaf, options: second)
        XCTAssertEqual(result.outcome, .succeeded, "\(String(describing: result.failure)) \(result.steps)")
        let check = try XCTUnwrap(result.steps.first { $0.name == .verify && $0.outcome == .warning }, "\(result.steps)")
        XCTAssertTrue(check.detail?.contains("files matched, but the served staple was") ?? false, check.detail ?? "")
        XCTAssertTrue(check.detail?.contains("not good and fresh") ?? false, check.detail ?? "")
        XCTAssertEqual(step(result, .reload)?.outcome, .ok)
        let served = try fixture.harness.checkStaple(try await fixture.harness.served(port: fixture.haproxy.port, expecting: leaf.sha256Hex, requireStaple: true), for: leaf)
        XCTAssertEqual(served.thisUpdate, fresh.thisUpdate, "HAProxy now staples the fresh response")
    }

    func testHotUpdateKeepsOpenConnectionsAndServesNewLeafWithStaple() async throws {
        let fixture = try Fixture()
        // A client holds a keep-alive TLS connection open across the update, then uses it again.
        let ready = fixture.harness.directory.file("client-ready")
        let go = fixture.harness.directory.file("client-go")
        let output = fixture.harness.directory.file("client-output")
        let script = """
        import socket, ssl, os, time
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(fixture.haproxy.port))), server_hostname="example.test")
        req = b"GET / HTTP/1.1\\r\\nHost: example.test\\r\\n\\r\\n"
        s.sendall(req); first = s.recv(4096)
        open("\(ready)", "w").close()
        while not os.path.exists("\(go)"): time.sleep(0.05)
        s.sendall(req); second = s.recv(4096)
        with open("\(output).tmp", "w") as f: f.write(repr(first[:12]) + " " + repr(second[:12]))
        os.rename("\(output).tmp", "\(output)")  # appears whole: the test waits for the name
        """
        let client = try ProcessRunner.spawnBackground("/usr/bin/python3", ["-c", script])
        defer { ProcessRunner.terminate(pid: client) }
        try waitForFile(ready)
        let workersBefore = fixture.haproxy.workerPIDs()

        let leaf = try fixture.harness.issueLeaf()
        let result = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.hotUpdate, leaf: leaf)
        XCTAssertEqual(result.outcome, .succeeded, "\(String(describing: result.failure)) \(result.steps)")
        XCTAssertTrue(step(result, .reload)?.detail?.contains("commit ssl cert") ?? false, "\(String(describing: step(result, .reload)))")
        let served = try await fixture.harness.served(port: fixture.haproxy.port, expecting: leaf.sha256Hex, requireStaple: true)
        XCTAssertEqual(served.leafSHA256, leaf.sha256Hex)
        XCTAssertEqual(try fixture.harness.checkStaple(served, for: leaf).status, .good)
        XCTAssertEqual(fixture.haproxy.workerPIDs(), workersBefore, "no reload: the same worker serves")

        _ = FileManager.default.createFile(atPath: go, contents: nil)
        try waitForFile(output)
        let answers = try String(contentsOfFile: output, encoding: .utf8)
        XCTAssertEqual(answers.components(separatedBy: "HTTP/1.1 200").count - 1, 2, "the open connection still answers after the hot update: \(answers)")

        // A reload later serves the same files from disk.
        _ = try fixture.haproxy.reload()
        let afterReload = try await fixture.harness.served(port: fixture.haproxy.port, expecting: leaf.sha256Hex, requireStaple: true)
        XCTAssertEqual(afterReload.leafSHA256, leaf.sha256Hex)
    }

    func testHotUpdateRefusedByRuntimeAPIRollsBackFiles() async throws {
        let fixture = try Fixture()
        let before = fixture.liveFiles()
        // The runtime API names a path HAProxy does not know: `set ssl cert` is refused.
        var config = fixture.hotUpdate
        if case .object(var members) = config {
            members["pemPath"] = .string(fixture.harness.directory.file("tls/unknown.pem"))
            config = .object(members)
        }
        let result = try await fixture.harness.deploy(HAProxyConnector.self, config: config, leaf: try fixture.harness.issueLeaf())
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .reload)
        XCTAssertTrue(result.failure?.message.contains("runtime API refused") ?? false, "\(String(describing: result.failure))")
        XCTAssertNil(fileBytes(fixture.harness.directory.file("tls/unknown.pem")), "the new file was removed again")
        XCTAssertEqual(fixture.liveFiles(), before)
    }

    func testRevokedLeafRefusedAndMustStapleWithResponderDownRefused() async throws {
        let fixture = try Fixture()
        let before = fixture.liveFiles()
        let revoked = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.config(), leaf: try fixture.harness.issueLeaf(revoked: true))
        XCTAssertEqual(revoked.outcome, .failed)
        XCTAssertEqual(revoked.failure?.step, .staple)
        XCTAssertTrue(revoked.failure?.message.contains("revoked") ?? false)

        let mustStaple = try fixture.harness.issueLeaf(mustStaple: true)
        fixture.harness.ocsp.setMode(.httpError)
        let refused = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.config(), leaf: mustStaple)
        XCTAssertEqual(refused.outcome, .failed)
        XCTAssertTrue(refused.failure?.message.contains("Must-Staple") ?? false, "\(String(describing: refused.failure))")
        XCTAssertEqual(fixture.liveFiles(), before)
        let served = try await fixture.harness.served(port: fixture.haproxy.port, expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served.leafSHA256, fixture.oldLeaf.sha256Hex)

        // With the responder back, the Must-Staple leaf deploys and is stapled.
        fixture.harness.ocsp.setMode(.normal)
        let deployed = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.config(), leaf: mustStaple)
        XCTAssertEqual(deployed.outcome, .succeeded, "\(String(describing: deployed.failure))")
        let stapled = try await fixture.harness.served(port: fixture.haproxy.port, expecting: mustStaple.sha256Hex, requireStaple: true)
        XCTAssertEqual(try fixture.harness.checkStaple(stapled, for: mustStaple).status, .good)
    }

    func testLeafWithoutOCSPURLRemovesAStaleStapleAndPassesTheConfigCheck() async throws {
        let fixture = try Fixture()
        let stapled = try fixture.harness.issueLeaf()
        let first = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.config(), leaf: stapled)
        XCTAssertEqual(first.outcome, .succeeded)
        XCTAssertNotNil(fileBytes(fixture.pemPath + ".ocsp"))

        let plain = try fixture.harness.issueLeaf(ocsp: false)
        let result = try await fixture.harness.deploy(HAProxyConnector.self, config: fixture.config(), leaf: plain)
        XCTAssertEqual(result.outcome, .succeeded, "\(String(describing: result.failure)) \(result.steps)")
        XCTAssertEqual(step(result, .validate)?.outcome, .ok)
        XCTAssertNil(fileBytes(fixture.pemPath + ".ocsp"), "the old certificate's staple is removed")
        let served = try await fixture.harness.served(port: fixture.haproxy.port, expecting: plain.sha256Hex)
        XCTAssertEqual(served.leafSHA256, plain.sha256Hex)
        XCTAssertNil(served.stapleDER)
    }

    func testValidateAndReloadFailuresRollBack() async throws {
        let fixture = try Fixture()
        let before = fixture.liveFiles()
        let badValidate = try await fixture.harness.deploy(
            HAProxyConnector.self, config: fixture.config(["configPath": .string(fixture.harness.directory.file("missing.cfg"))]), leaf: try fixture.harness.issueLeaf())
        XCTAssertEqual(badValidate.outcome, .rolledBack, "\(badValidate.steps)")
        XCTAssertEqual(badValidate.failure?.step, .validate)
        XCTAssertEqual(fixture.liveFiles(), before)

        let marker = fixture.harness.directory.file("reload-failed-once")
        let reload = ShellQuoting.commandLine(fixture.haproxy.reloadCommand)
        let script = "if [ -e \(marker) ]; then exec \(reload); else touch \(marker); exit 4; fi"
        let badReload = try await fixture.harness.deploy(
            HAProxyConnector.self, config: fixture.config(["reloadCommand": .array([.string("/bin/sh"), .string("-c"), .string(script)])]), leaf: try fixture.harness.issueLeaf())
        XCTAssertEqual(badReload.outcome, .rolledBack, "\(badReload.steps)")
        XCTAssertEqual(badReload.failure?.step, .reload)
        XCTAssertEqual(fixture.liveFiles(), before)
        let served = try await fixture.harness.served(port: fixture.haproxy.port, expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served.leafSHA256, fixture.oldLeaf.sha256Hex)
    }

    private func waitForFile(_ path: String, timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !FileManager.default.fileExists(atPath: path) {
            guard Date() < deadline else { throw HarnessError("timed out waiting for \(path)") }
            usleep(50_000)
        }
    }
}
