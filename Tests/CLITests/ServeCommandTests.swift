import AsyncHTTPClient
import CertdeployAPI
import Foundation
import NIOCore
import NIOSSL
import TestSupport
import XCTest

/// `certdeploy serve` as an operator runs it: a separate process, configured by flags and environment, reloading
/// its key file on SIGHUP and stopping on SIGTERM.
final class ServeCommandTests: XCTestCase {
    var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory(prefix: "certdeploy-serve")
    }

    /// A running `certdeploy serve`, its log in the temp dir.
    struct RunningServer {
        let pid: pid_t
        let port: UInt16
        let logPath: String
        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    }

    func serve(_ arguments: [String], environment: [String: String], waitForPort: Bool = true) throws -> RunningServer {
        let port = try FreePort.allocate()
        let logPath = directory.file("serve-\(port).log")
        let command = ([DeployCommandTests.binary, "serve", "--port", "\(port)", "--data-dir", directory.file("data")] + arguments)
            .map { "'\($0)'" }.joined(separator: " ")
        var env = environment
        env["CERTDEPLOY_API_KEYS"] = env["CERTDEPLOY_API_KEYS"] ?? ""
        let pid = try ProcessRunner.spawnBackground("/bin/sh", ["-c", "exec \(command) > '\(logPath)' 2>&1"], environment: env)
        let server = RunningServer(pid: pid, port: port, logPath: logPath)
        addTeardownBlock { ProcessRunner.terminate(pid: pid) }
        if waitForPort {
            do {
                try FreePort.waitUntilListening(port: port, timeout: 60)
            } catch {
                throw HarnessError("certdeploy serve did not listen: \(server.log)")
            }
        }
        return server
    }

    func get(_ url: String, key: String?, client: HTTPClient = .shared) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        let response = try await client.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    static func key() -> String { String((0..<40).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! }) }

    func testRefusesPlainHTTPOnANonLoopbackAddressAndStartsWithoutKeysNever() throws {
        let keys = ["CERTDEPLOY_API_KEYS": "admin:\(Self.key()):admin"]
        let exposed = try ProcessRunner.run(DeployCommandTests.binary, ["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", directory.file("d1")], environment: keys)
        XCTAssertEqual(exposed.status, 2)
        XCTAssertTrue(exposed.stderr.contains("--insecure-http"), exposed.stderr)

        let noKeys = try ProcessRunner.run(DeployCommandTests.binary, ["serve", "--port", "0", "--data-dir", directory.file("d2")], environment: ["CERTDEPLOY_API_KEYS": ""])
        XCTAssertEqual(noKeys.status, 2)
        XCTAssertTrue(noKeys.stderr.contains("CERTDEPLOY_API_KEYS"), noKeys.stderr)

        let weak = try ProcessRunner.run(DeployCommandTests.binary, ["serve", "--port", "0", "--data-dir", directory.file("d3")], environment: ["CERTDEPLOY_API_KEYS": "admin:short:admin"])
        XCTAssertEqual(weak.status, 2)
        XCTAssertTrue(weak.stderr.contains("admin"), weak.stderr)

        for (flag, value) in [("--staple-refresh-fraction", "1.5"), ("--drift-interval-seconds", "5"), ("--staple-expiring-hours", "0")] {
            let refused = try ProcessRunner.run(DeployCommandTests.binary, ["serve", "--port", "0", "--data-dir", directory.file("d4"), flag, value], environment: keys)
            XCTAssertEqual(refused.status, 64, "\(flag) \(value)")
            XCTAssertTrue(refused.stderr.contains(flag), refused.stderr)
        }
    }

    func testKeyFileRotationOnSIGHUPAndGracefulSIGTERM() async throws {
        let (first, second) = (Self.key(), Self.key())
        let keyFile = try directory.write("api-keys", "ops:\(first):admin\n", mode: 0o600)
        let server = try serve([], environment: ["CERTDEPLOY_API_KEYS_FILE": keyFile])
        let url = "http://127.0.0.1:\(server.port)/api/v1/targets"
        await assertEqualAsync(try await get(url, key: first), 200)
        await assertEqualAsync(try await get(url, key: second), 401)

        // Rotation window: both keys act as "ops".
        try "ops:\(first):admin\nops:\(second):admin\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        kill(server.pid, SIGHUP)
        try await eventually { try await self.get(url, key: second) == 200 }
        await assertEqualAsync(try await get(url, key: first), 200)
        XCTAssertTrue(server.log.contains("rotation"), server.log)

        // Old key retired.
        try "ops:\(second):admin\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        kill(server.pid, SIGHUP)
        try await eventually { try await self.get(url, key: first) == 401 }

        // A broken file keeps the keys in force.
        try "ops:short\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        kill(server.pid, SIGHUP)
        try await Task.sleep(for: .milliseconds(500))
        await assertEqualAsync(try await get(url, key: second), 200)
        XCTAssertTrue(server.log.contains("previous keys stay in force"), server.log)

        XCTAssertTrue(server.log.contains("staples refreshed at 50% of their validity (flagged staple_expiring within 24 h of nextUpdate), drift checked every 15 min"), server.log)
        // SIGTERM: a clean, prompt exit.
        kill(server.pid, SIGTERM)
        XCTAssertTrue(ProcessRunner.waitForExit(pid: server.pid, timeout: 20), server.log)
        XCTAssertTrue(server.log.contains("deployment workers stopped"), server.log)
    }

    func testServesHTTPSWithTheGivenCertificate() async throws {
        let ca = try TestCertificateAuthority()
        var options = TestCertificateAuthority.LeafOptions()
        options.commonName = "localhost"
        options.dnsNames = ["localhost"]
        let leaf = try ca.issueLeaf(options)
        let certPath = try directory.write("server.pem", leaf.certificatePEM + ca.chainPEM)
        let keyPath = try directory.write("server.key", leaf.privateKeyPKCS8PEM, mode: 0o600)
        let key = Self.key()
        // HTTPS may listen on any address.
        let server = try serve(["--host", "0.0.0.0", "--tls-cert", certPath, "--tls-key", keyPath, "--no-watch"], environment: ["CERTDEPLOY_API_KEYS": "admin:\(key):admin"])
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(ca.root.certificatePEM.utf8), format: .pem)])
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        let publicStatus = try await get("https://localhost:\(server.port)/api/v1/version", key: nil, client: client)
        let keyedStatus = try await get("https://localhost:\(server.port)/api/v1/targets", key: key, client: client)
        try await client.shutdown()
        XCTAssertEqual(publicStatus, 200)
        XCTAssertEqual(keyedStatus, 200)
        XCTAssertTrue(server.log.contains("listening on https://"), server.log)
        XCTAssertTrue(server.log.contains("watch off"), server.log)
    }

    private func eventually(timeout: Duration = .seconds(10), _ condition: @escaping () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            if ContinuousClock.now > deadline { throw HarnessError("condition not met within \(timeout)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// `XCTAssertEqual` for an async expression.
func assertEqualAsync<T: Equatable>(_ expression: @autoclosure () async throws -> T, _ expected: T, file: StaticString = #filePath, line: UInt = #line) async {
    do {
        let value = try await expression()
        XCTAssertEqual(value, expected, file: file, line: line)
    } catch {
        XCTFail("threw \(error)", file: file, line: line)
    }
}
