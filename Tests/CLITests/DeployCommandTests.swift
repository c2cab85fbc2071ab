import Core
import Foundation
import TestSupport
import XCTest

/// `certdeploy deploy` and `certdeploy connectors`, run as a user would run the binary.
final class DeployCommandTests: XCTestCase {
    var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        try Services.require(["sshd", "nginx", "ssh-keygen"])
        directory = try TemporaryDirectory(prefix: "certdeploy-cli")
    }

    /// The `certdeploy` executable SwiftPM built next to the test bundle.
    static var binary: String {
        let bundle = Bundle(for: DeployCommandTests.self).bundleURL
        let candidates = [bundle, bundle.deletingLastPathComponent(), bundle.appendingPathComponent("debug"), bundle.appendingPathComponent("release")]
            .map { $0.appendingPathComponent("certdeploy").path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    func certdeploy(_ arguments: [String]) throws -> ProcessResult {
        try ProcessRunner.run(Self.binary, arguments, timeout: 120)
    }

    func testDeployToNginxOverSSHPrintsStepsAndServesTheNewLeaf() throws {
        let ca = try TestCertificateAuthority()
        let old = try TestCertificateAuthority.selfSigned(commonName: "old", dnsNames: ["example.test"])
        let certPath = try directory.write("live.pem", old.certificatePEM)
        let keyPath = try directory.write("live.key", old.privateKeyPKCS8PEM, mode: 0o600)
        let snippet = directory.file("snippet.conf")
        let nginx = try NginxServer.start(certificatePath: certPath, keyPath: keyPath, includeSnippetPath: snippet, in: directory)
        defer { nginx.stop() }
        let sshd = try SSHServer.start()
        defer { sshd.stop() }
        let key = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(key)

        let leaf = try ca.issueLeaf()
        let fullchain = try directory.write("fullchain.pem", leaf.certificatePEM + ca.chainPEM)
        let privkey = try directory.write("privkey.pem", leaf.privateKeyPKCS8PEM, mode: 0o600)
        let target: JSONValue = .object([
            "name": .string("web-1"),
            "ssh": .object(["host": .string("127.0.0.1"), "port": .number(Double(sshd.port)), "user": .string("root"),
                            "privateKeyFile": .string(key.privateKeyPath), "hostKeyFingerprint": .string(sshd.hostKeyFingerprint)]),
            "config": .object([
                "certificatePath": .string(certPath), "keyPath": .string(keyPath), "snippetPath": .string(snippet),
                "validateCommand": .array(nginx.validateCommand.map(JSONValue.string)),
                "reloadCommand": .array(nginx.reloadCommand.map(JSONValue.string)),
                "verify": .object(["port": .number(Double(nginx.port)), "serverName": .string("example.test")]),
            ]),
        ])
        let targetPath = try directory.write("target.json", target.jsonText())

        let run = try certdeploy(["deploy", "--connector", "nginx", "--config", targetPath, "--cert", fullchain, "--key", privkey])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        for stepName in ["connect", "compare", "write", "activate", "validate", "reload", "verify"] {
            XCTAssertTrue(run.stdout.contains("] \(stepName)"), "step \(stepName) printed:\n\(run.stdout)")
        }
        XCTAssertTrue(run.stdout.contains("Outcome: succeeded"), run.stdout)
        XCTAssertFalse(run.stdout.contains("PRIVATE KEY"))
        let served = try ProcessRunner.run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(nginx.port)", "-servername", "example.test"], stdin: Data())
        XCTAssertTrue(served.stdout.contains(leaf.certificatePEM.split(separator: "\n")[1]), "nginx serves the new leaf")

        let again = try certdeploy(["deploy", "--config", targetPath, "--connector", "nginx", "--cert", fullchain, "--key", privkey, "--output", "json"])
        XCTAssertEqual(again.status, 0, again.stderr)
        let result = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(again.stdout.utf8))
        XCTAssertEqual(result.outcome, .unchanged)

        // A verify mismatch ends rolled back, exit status 3.
        var mismatched = target
        if case .object(var members) = mismatched, case .object(var config)? = members["config"] {
            config["verify"] = .object(["port": .number(Double(try FreePort.allocate())), "timeoutSeconds": .number(1)])
            members["config"] = .object(config)
            mismatched = .object(members)
        }
        let mismatchPath = try directory.write("mismatch.json", mismatched.jsonText())
        let other = try ca.issueLeaf()
        let otherCert = try directory.write("other.pem", other.certificatePEM + ca.chainPEM)
        let otherKey = try directory.write("other.key", other.privateKeyPKCS8PEM, mode: 0o600)
        let rolledBack = try certdeploy(["deploy", "--connector", "nginx", "--config", mismatchPath, "--cert", otherCert, "--key", otherKey])
        XCTAssertEqual(rolledBack.status, 3, rolledBack.stdout)
        XCTAssertTrue(rolledBack.stdout.contains("Outcome: rolled_back"), rolledBack.stdout)
        XCTAssertTrue(rolledBack.stdout.contains("target web-1: verify:"), rolledBack.stdout)
    }

    func testBadInputNamesTheFieldAndExitsTwo() throws {
        let ca = try TestCertificateAuthority()
        let leaf = try ca.issueLeaf()
        let other = try ca.issueLeaf()
        let cert = try directory.write("cert.pem", leaf.certificatePEM)
        let key = try directory.write("key.pem", leaf.privateKeyPKCS8PEM)
        let wrongKey = try directory.write("wrong.pem", other.privateKeyPKCS8PEM)
        let ssh: JSONValue = .object(["host": .string("127.0.0.1"), "user": .string("root"), "password": .string("pw-secret-value"), "trustOnFirstUse": .bool(true)])
        func target(_ config: [String: JSONValue]) throws -> String {
            try directory.write("t-\(UUID().uuidString).json", JSONValue.object(["ssh": ssh, "config": .object(config)]).jsonText())
        }
        let good: [String: JSONValue] = ["certificatePath": .string("/etc/nginx/c.pem"), "keyPath": .string("/etc/nginx/c.key")]

        let cases: [([String], String)] = [
            (["--config", try target(good.merging(["certificatePath": .string("relative/c.pem")]) { $1 })], "/config/certificatePath: must be an absolute path"),
            (["--config", try target(good.merging(["keyPath": .string("/etc/../c.key")]) { $1 })], "/config/keyPath: must not contain .. components"),
            (["--config", try target(good.merging(["keyPath": .string("/etc/c\n.key")]) { $1 })], "/config/keyPath: must not contain a newline"),
            (["--config", try target(good.merging(["sslCert": .string("/x")]) { $1 })], "/config/sslCert: unknown field"),
            (["--config", try target(good.merging(["reloadCommand": .string("nginx -s reload")]) { $1 })], "/config/reloadCommand: must be an argv array"),
            (["--config", try target(good), "--key", wrongKey], "private key does not match certificate"),
            (["--config", try directory.write("bad.json", "{not json")], "is not valid JSON"),
        ]
        for (arguments, expected) in cases {
            var full = ["deploy", "--connector", "nginx", "--cert", cert, "--key", key] + arguments
            if arguments.contains("--key") { full = ["deploy", "--connector", "nginx", "--cert", cert] + arguments }
            let run = try certdeploy(full)
            XCTAssertEqual(run.status, 2, "\(arguments): \(run.stdout)\(run.stderr)")
            XCTAssertTrue(run.stderr.contains(expected), "expected \(expected) in: \(run.stderr)")
            XCTAssertFalse(run.stderr.contains("pw-secret-value"))
        }
        let unknown = try certdeploy(["deploy", "--connector", "iis", "--config", try target(good), "--cert", cert, "--key", key])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("unknown connector \"iis\"; known: nginx"), unknown.stderr)
    }

    func testConnectorsListComesFromTheRegistry() throws {
        let list = try certdeploy(["connectors"])
        XCTAssertEqual(list.status, 0)
        XCTAssertTrue(list.stdout.hasPrefix("nginx"), list.stdout)
        let show = try certdeploy(["connectors", "show", "nginx"])
        XCTAssertEqual(show.status, 0)
        let json = try JSONValue.parse(Data(show.stdout.utf8))
        XCTAssertEqual(json["id"], .string("nginx"))
        XCTAssertEqual(json["configSchema"]?["additionalProperties"], .bool(false))
        let missing = try certdeploy(["connectors", "show", "nope"])
        XCTAssertEqual(missing.status, 2)
    }
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
