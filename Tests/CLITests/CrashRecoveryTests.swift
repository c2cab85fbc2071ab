import CertdeployAPI
import Core
import Foundation
import ServerTestSupport
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// What a crash leaves behind, and that the next run makes the record true: the real `certdeploy` binary killed
/// (SIGKILL, by the debug build's fault hook `CERTDEPLOY_TEST_KILL_AFTER=<step>`) at each step boundary, against a
/// real nginx behind a real sshd. After every kill the target serves exactly the old or exactly the new leaf; the
/// next run ends with the new leaf served (or, when verify fails, the state from before the interrupted attempt).
final class CrashRecoveryTests: XCTestCase {
    var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory(prefix: "certdeploy-crash")
    }

    override func tearDown() {
        directory = nil
    }

    /// A target file for `certdeploy deploy --config` on `site`.
    func targetFile(_ site: NginxSite, config: [String: JSONValue] = [:]) throws -> String {
        let target: JSONValue = .object(["name": .string("web-1"), "connector": .string("nginx"), "ssh": site.ssh(), "config": site.config(config)])
        return try directory.write("target-\(UUID().uuidString).json", target.jsonText(), mode: 0o600)
    }

    func bundleFiles(_ leaf: TestIssuedCertificate, _ site: NginxSite) throws -> (cert: String, key: String) {
        let id = UUID().uuidString
        return (try directory.write("fullchain-\(id).pem", leaf.certificatePEM + site.ca.chainPEM),
                try directory.write("privkey-\(id).pem", leaf.privateKeyPKCS8PEM, mode: 0o600))
    }

    func deploy(_ target: String, _ files: (cert: String, key: String), killAfter: String? = nil) throws -> ProcessResult {
        try ProcessRunner.run(DeployCommandTests.binary, ["deploy", "--config", target, "--cert", files.cert, "--key", files.key, "--output", "json"],
                              environment: killAfter.map { ["CERTDEPLOY_TEST_KILL_AFTER": $0] } ?? [:], timeout: 120)
    }

    /// Starts `certdeploy deploy` and returns once its in-flight marker is on the target (it changes live files from
    /// then on); the task ends with the process.
    func deployInBackground(_ target: String, _ files: (cert: String, key: String), _ site: NginxSite) async throws -> Task<ProcessResult, any Error> {
        let binary = DeployCommandTests.binary
        let running = Task.detached {
            try ProcessRunner.run(binary, ["deploy", "--config", target, "--cert", files.cert, "--key", files.key, "--output", "json"], timeout: 120)
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while try markers(site).isEmpty {
            guard ContinuousClock.now < deadline else { throw HarnessError("the deploy never wrote its marker") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return running
    }

    func markers(_ site: NginxSite) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: site.directory.file("tls")).filter { $0.hasPrefix(".certdeploy-inflight-") }
    }

    func testDirectDeployKilledAfterEachStepIsFinishedByTheNextRun() async throws {
        let site = try NginxSite()
        let target = try targetFile(site)
        var live = site.oldLeaf
        for point in ["write", "activate", "validate", "reload", "verify"] {
            let leaf = try site.ca.issueLeaf()
            let files = try bundleFiles(leaf, site)
            let killed = try deploy(target, files, killAfter: point)
            XCTAssertEqual(killed.status, 128 + SIGKILL, "killed after \(point): \(killed.stdout) \(killed.stderr)")
            XCTAssertEqual(try markers(site).count, 1, "the marker is on the target after a kill after \(point)")
            // Exactly the old or exactly the new leaf, never a mix: before the reload ran, the old one.
            let expected = point == "reload" || point == "verify" ? leaf.sha256Hex : live.sha256Hex
            let servedNow = try await site.served(expecting: expected)
            XCTAssertEqual(servedNow, expected, "after a kill after \(point)")

            let again = try deploy(target, files)
            XCTAssertEqual(again.status, 0, "after \(point): \(again.stdout) \(again.stderr)")
            let result = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(again.stdout.utf8))
            XCTAssertEqual(result.outcome, .succeeded, "after \(point), the files matching is not trusted: \(result.steps)")
            let compare = try XCTUnwrap(result.steps.first { $0.name == .compare })
            XCTAssertTrue(compare.detail?.contains("resuming an interrupted attempt") ?? false, "after \(point): \(compare.detail ?? "")")
            XCTAssertEqual(result.steps.first { $0.name == .reload }?.outcome, .ok, "after \(point)")
            XCTAssertEqual(result.steps.first { $0.name == .verify }?.outcome, .ok, "after \(point)")
            let served = try await site.served(expecting: leaf.sha256Hex)
            XCTAssertEqual(served, leaf.sha256Hex, "after \(point)")
            XCTAssertEqual(try markers(site), [], "the marker is gone once a deploy ended")
            live = leaf
        }
        // And now that nothing was interrupted, the same bundle is `unchanged`, proven served.
        let files = try bundleFiles(live, site)
        let unchanged = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(try deploy(target, files).stdout.utf8))
        XCTAssertEqual(unchanged.outcome, .unchanged)
        XCTAssertEqual(unchanged.steps.first { $0.name == .verify }?.outcome, .ok)
        XCTAssertNil(unchanged.steps.first { $0.name == .reload })
    }

    /// SIGKILL *during* validate, reload and verify (the moment taken from a flag the remote command touches): the
    /// target serves exactly the old leaf (killed before the reload ran) or the new one (killed in verify), and the
    /// next run resumes and ends with the new leaf served.
    func testDirectDeployKilledDuringValidateReloadOrVerifyIsFinishedByTheNextRun() async throws {
        let site = try NginxSite()
        let validate = site.nginx.validateCommand.joined(separator: " ")
        let reload = site.nginx.reloadCommand.joined(separator: " ")
        var live = site.oldLeaf
        for point in ["validate", "reload", "verify"] {
            let flag = directory.file("in-\(point)")
            var config: [String: JSONValue] = [:]
            func shell(_ script: String) -> JSONValue { .array([.string("/bin/sh"), .string("-c"), .string(script)]) }
            switch point {
            case "validate": config["validateCommand"] = shell("touch \(flag); sleep 5; exec \(validate)")
            case "reload": config["reloadCommand"] = shell("touch \(flag); sleep 5; exec \(reload)")
            default:
                // Twenty handshakes in a row must match: verify runs for a couple of seconds after the reload.
                config["reloadCommand"] = shell("\(reload) && touch \(flag)")
                config["verify"] = .object(["host": .string("127.0.0.1"), "port": .number(Double(site.nginx.port)), "serverName": .string("example.test"),
                                            "consecutiveMatches": .number(20), "timeoutSeconds": .number(20)])
            }
            let target = try targetFile(site, config: config)
            let leaf = try site.ca.issueLeaf()
            let files = try bundleFiles(leaf, site)
            let pid = try ProcessRunner.spawnBackground(DeployCommandTests.binary, ["deploy", "--config", target, "--cert", files.cert, "--key", files.key])
            let deadline = ContinuousClock.now + .seconds(30)
            while !FileManager.default.fileExists(atPath: flag) {
                guard ContinuousClock.now < deadline else { throw HarnessError("the deploy never reached \(point)") }
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(point == "verify" ? 500 : 200))
            kill(pid, SIGKILL)
            var raw: Int32 = 0
            _ = waitpid(pid, &raw, 0)
            XCTAssertEqual(raw & 0x7f, SIGKILL, "killed during \(point)")
            XCTAssertEqual(try markers(site).count, 1, "during \(point)")
            let expected = point == "verify" ? leaf.sha256Hex : live.sha256Hex
            let servedNow = try await site.served(expecting: expected)
            XCTAssertEqual(servedNow, expected, "exactly the old or the new leaf after a kill during \(point)")

            // The next run (the remote sleep of the killed one may still be running: it only touches the flag).
            let again = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(try deploy(try targetFile(site), files).stdout.utf8))
            XCTAssertEqual(again.outcome, .succeeded, "after a kill during \(point): \(again.steps)")
            XCTAssertTrue(again.steps.first { $0.name == .compare }?.detail?.contains("resuming an interrupted attempt") ?? false)
            let served = try await site.served(expecting: leaf.sha256Hex)
            XCTAssertEqual(served, leaf.sha256Hex, "after a kill during \(point)")
            XCTAssertEqual(try markers(site), [])
            live = leaf
        }
    }

    /// The first paragraph's case without the marker: files renamed into place, reload never ran (the marker lost
    /// too, as after a restore of the target's directory). Files match; the verify of the unchanged path sees the
    /// old leaf served, and the engine reloads.
    func testFilesThatMatchButAreNotServedAreActivatedAgain() async throws {
        let site = try NginxSite()
        let target = try targetFile(site)
        let leaf = try site.ca.issueLeaf()
        let files = try bundleFiles(leaf, site)
        XCTAssertEqual(try deploy(target, files, killAfter: "activate").status, 128 + SIGKILL)
        for marker in try markers(site) { try FileManager.default.removeItem(atPath: site.directory.file("tls/" + marker)) }
        let before = try await site.served()
        XCTAssertEqual(before, site.oldLeaf.sha256Hex)

        let again = try deploy(target, files)
        let result = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(again.stdout.utf8))
        XCTAssertEqual(result.outcome, .succeeded, "\(result.steps)")
        let check = try XCTUnwrap(result.steps.first { $0.name == .verify && $0.outcome == .warning })
        XCTAssertTrue(check.detail?.contains("files matched, but the served leaf was SHA-256 \(site.oldLeaf.sha256Hex.prefix(16))") ?? false, check.detail ?? "")
        XCTAssertTrue(result.steps.first { $0.name == .reload }?.detail?.contains("files matched, but") ?? false, "\(result.steps)")
        let served = try await site.served(expecting: leaf.sha256Hex)
        XCTAssertEqual(served, leaf.sha256Hex)
    }

    /// A run that resumes an interrupted attempt and then fails verify goes back to what the target had before the
    /// interrupted attempt (from the backups its marker names), not to the half-deployed files it found.
    func testResumedDeployThatFailsVerifyRestoresTheStateBeforeTheInterruptedAttempt() async throws {
        let site = try NginxSite()
        let original = try [site.certificatePath, site.keyPath, site.snippetPath].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let leaf = try site.ca.issueLeaf()
        let files = try bundleFiles(leaf, site)
        XCTAssertEqual(try deploy(try targetFile(site), files, killAfter: "activate").status, 128 + SIGKILL)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: site.certificatePath)), original[0], "the kill came after the rename")

        let deadPort = try FreePort.allocate()
        let failing = try targetFile(site, config: ["verify": .object(["host": .string("127.0.0.1"), "port": .number(Double(deadPort)), "timeoutSeconds": .number(1)])])
        let again = try deploy(failing, files)
        XCTAssertEqual(again.status, 3, again.stdout + again.stderr)
        let result = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(again.stdout.utf8))
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        let restored = try [site.certificatePath, site.keyPath, site.snippetPath].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        XCTAssertEqual(restored, original, "the files from before the interrupted attempt")
        XCTAssertEqual(try markers(site), [])
        let served = try await site.served(expecting: site.oldLeaf.sha256Hex)
        XCTAssertEqual(served, site.oldLeaf.sha256Hex)
    }

    /// Two deploys of different certificates to one target at once (two CLI processes): the second finds the first's
    /// marker, sees its writer alive, and refuses without touching anything; the first ends as if alone.
    func testASecondConcurrentDeployIsRefusedWhileTheFirstRuns() async throws {
        let site = try NginxSite()
        let slowValidate: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("sleep 3; exec \(site.nginx.validateCommand.joined(separator: " "))")])
        let target = try targetFile(site, config: ["validateCommand": slowValidate])
        let first = try site.ca.issueLeaf()
        let second = try site.ca.issueLeaf()
        let firstFiles = try bundleFiles(first, site)
        let secondFiles = try bundleFiles(second, site)
        // The first deploy is in its validate sleep once its marker is on the target.
        let running = try await deployInBackground(target, firstFiles, site)
        let refused = try deploy(target, secondFiles)
        XCTAssertEqual(refused.status, 1, refused.stdout + refused.stderr)
        let refusal = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(refused.stdout.utf8))
        XCTAssertEqual(refusal.outcome, .failed)
        XCTAssertEqual(refusal.failure?.step, .compare)
        XCTAssertTrue(refusal.failure?.message.contains("another deploy of this target is in progress") ?? false, "\(String(describing: refusal.failure))")

        let done = try await running.value
        let result = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(done.stdout.utf8))
        XCTAssertEqual(result.outcome, .succeeded, "\(result.steps)")
        XCTAssertFalse(result.steps.contains { $0.detail?.contains("resuming") ?? false })
        let served = try await site.served(expecting: first.sha256Hex)
        XCTAssertEqual(served, first.sha256Hex)
        XCTAssertEqual(try markers(site), [])
    }

    /// The connection is reset while validate runs (the sshd session process killed by PID): nothing can be restored
    /// over a dead session, so the record says `rollback_failed` and names what to look at, nginx still serves the old
    /// leaf (no reload ran), and the marker stays, so the next run resumes and ends with the new leaf served.
    func testAConnectionResetMidExecIsRollbackFailedAndTheNextRunFinishes() async throws {
        let site = try NginxSite()
        let slowValidate: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("sleep 2; exec \(site.nginx.validateCommand.joined(separator: " "))")])
        let target = try targetFile(site, config: ["validateCommand": slowValidate])
        let leaf = try site.ca.issueLeaf()
        let files = try bundleFiles(leaf, site)
        let running = try await deployInBackground(target, files, site)
        try await Task.sleep(for: .milliseconds(300))  // in validate's sleep by now
        let sessions = ProcessRunner.children(of: site.sshd.pid)
        XCTAssertFalse(sessions.isEmpty, "the deploy's sshd session")
        for session in sessions { kill(session, SIGKILL) }

        let cut = try await running.value
        let result = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(cut.stdout.utf8))
        XCTAssertEqual(result.outcome, .rollbackFailed, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .validate)
        XCTAssertFalse(result.attention.isEmpty, "what to look at is listed")
        XCTAssertEqual(try markers(site).count, 1, "the marker stays for the next run")
        let servedOld = try await site.served(expecting: site.oldLeaf.sha256Hex)
        XCTAssertEqual(servedOld, site.oldLeaf.sha256Hex, "no reload ran: clients still get the old leaf")

        let again = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(try deploy(target, files).stdout.utf8))
        XCTAssertEqual(again.outcome, .succeeded, "\(again.steps)")
        XCTAssertTrue(again.steps.first { $0.name == .compare }?.detail?.contains("resuming an interrupted attempt") ?? false)
        let served = try await site.served(expecting: leaf.sha256Hex)
        XCTAssertEqual(served, leaf.sha256Hex)
        XCTAssertEqual(try markers(site), [])
    }

    /// sshd's session process killed in the middle of an upload (the debug build holds the deploy after its first
    /// temporary file): `failed` at `write` with the live files untouched and the old leaf served; what could not be
    /// cleaned up over the dead session (a temporary file, the marker) is named in the marker, and the next run
    /// removes it and ends with the new leaf served.
    func testSSHDKilledMidUploadLeavesTheLiveFilesAndTheNextRunCleansUp() async throws {
        let site = try NginxSite()
        let target = try targetFile(site)
        let leaf = try site.ca.issueLeaf()
        let files = try bundleFiles(leaf, site)
        let before = try [site.certificatePath, site.keyPath, site.snippetPath].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let binary = DeployCommandTests.binary
        let running = Task.detached {
            try ProcessRunner.run(binary, ["deploy", "--config", target, "--cert", files.cert, "--key", files.key, "--output", "json"],
                                  environment: ["CERTDEPLOY_TEST_HOLD_MID_WRITE": "3"], timeout: 120)
        }
        func temporaries() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: site.directory.file("tls")).filter { $0.contains(".certdeploy-tmp.") }
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while try temporaries().isEmpty {
            guard ContinuousClock.now < deadline else { throw HarnessError("the deploy never wrote a temporary file") }
            try await Task.sleep(for: .milliseconds(20))
        }
        for session in ProcessRunner.children(of: site.sshd.pid) { kill(session, SIGKILL) }

        let cut = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(try await running.value.stdout.utf8))
        XCTAssertEqual(cut.outcome, .failed, "\(cut.steps)")
        XCTAssertEqual(cut.failure?.step, .write)
        let after = try [site.certificatePath, site.keyPath, site.snippetPath].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        XCTAssertEqual(after, before, "the live files are untouched")
        let servedOld = try await site.served(expecting: site.oldLeaf.sha256Hex)
        XCTAssertEqual(servedOld, site.oldLeaf.sha256Hex)
        XCTAssertFalse(try temporaries().isEmpty, "nothing could be removed over the dead session")

        let again = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(try deploy(target, files).stdout.utf8))
        XCTAssertEqual(again.outcome, .succeeded, "\(again.steps)")
        XCTAssertEqual(try temporaries(), [], "the next run removed what the cut one left")
        XCTAssertEqual(try markers(site), [])
        let served = try await site.served(expecting: leaf.sha256Hex)
        XCTAssertEqual(served, leaf.sha256Hex)
    }

    // MARK: The server

    /// A `certdeploy serve` process on `port` with data in `data`; `killAfter` arms the fault hook.
    func serve(port: UInt16, data: String, key: String, killAfter: String? = nil) throws -> pid_t {
        let log = directory.file("serve-\(UUID().uuidString).log")
        let command = [DeployCommandTests.binary, "serve", "--port", "\(port)", "--data-dir", data, "--no-watch", "--lease-seconds", "60"]
            .map { "'\($0)'" }.joined(separator: " ")
        var environment = ["CERTDEPLOY_API_KEYS": "admin:\(key):admin", "CERTDEPLOY_SECRET_KEY": "crash-test passphrase, long enough"]
        if let killAfter { environment["CERTDEPLOY_TEST_KILL_AFTER"] = killAfter }
        let pid = try ProcessRunner.spawnBackground("/bin/sh", ["-c", "exec \(command) > '\(log)' 2>&1"], environment: environment)
        addTeardownBlock { ProcessRunner.terminate(pid: pid) }
        do {
            try FreePort.waitUntilListening(port: port, timeout: 60)
        } catch {
            throw HarnessError("certdeploy serve did not listen: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        return pid
    }

    func client(_ arguments: [String], port: UInt16, key: String) throws -> ProcessResult {
        try ProcessRunner.run(DeployCommandTests.binary, arguments,
                              environment: ["CERTDEPLOY_URL": "http://127.0.0.1:\(port)", "CERTDEPLOY_API_KEY": key], timeout: 120)
    }

    /// The issue's first paragraph: the server is SIGKILLed while deployments run (here: right after one of them
    /// passed validate, before any reload), then started again on the same data directory and port. It takes its
    /// dead leases back at once (same worker id, new boot id), the deployments resume, and each ends `succeeded`
    /// with every target serving the new leaf: none is reported `unchanged` while the daemon serves the old one.
    func testServerKilledMidDeployFinishesEveryTargetAfterRestart() async throws {
        let sites = try (0..<3).map { _ in try NginxSite() }
        let key = String((0..<40).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        let port = try FreePort.allocate()
        let data = directory.file("data")
        let first = try serve(port: port, data: data, key: key, killAfter: "validate")

        // One CA for all three sites' certificates: the first site's.
        let ca = sites[0].ca
        for (index, site) in sites.enumerated() {
            let file: JSONValue = .object(["name": .string("web-\(index)"), "connector": .string("nginx"), "labels": .object(["role": .string("web")]),
                                           "ssh": site.ssh(), "config": site.config()])
            let path = try directory.write("web-\(index).json", file.jsonText(), mode: 0o600)
            let added = try client(["targets", "add", "--file", path], port: port, key: key)
            XCTAssertEqual(added.status, 0, "\(added)")
        }
        let leaf = try ca.issueLeaf()
        let cert = try directory.write("leaf.pem", leaf.certificatePEM)
        let privateKey = try directory.write("leaf.key", leaf.privateKeyPKCS8PEM, mode: 0o600)
        let chain = try directory.write("chain.pem", ca.chainPEM)
        XCTAssertEqual(try client(["certs", "upload", "--name", "example", "--cert", cert, "--key", privateKey, "--chain", chain], port: port, key: key).status, 0)
        // One wave of all three (no canary), so all three are in flight when the server dies.
        let queued = try client(["deploy", "example", "--to", "role=web", "--canary", "0", "--waves", "100%"], port: port, key: key)
        XCTAssertEqual(queued.status, 0, "\(queued)")

        // The fault hook kills the server once the first deployment passed validate.
        var raw: Int32 = 0
        let deadline = ContinuousClock.now + .seconds(60)
        while waitpid(first, &raw, WNOHANG) != first {
            guard ContinuousClock.now < deadline else { throw HarnessError("the server was not killed at validate") }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertEqual(raw & 0x7f, SIGKILL)
        for site in sites {
            let served = try await site.served()
            XCTAssertTrue([site.oldLeaf.sha256Hex, leaf.sha256Hex].contains(served), "exactly the old or the new leaf")
        }

        // Restarted: the same port, so the same worker id; the dead leases are taken back at once, not after 60 s.
        let restartedAt = ContinuousClock.now
        _ = try serve(port: port, data: data, key: key)
        var views: [DeploymentView] = []
        while true {
            let listed = try client(["deployments", "list", "--output", "json"], port: port, key: key)
            views = try JSONDecoder.api.decode(ListResponse<DeploymentView>.self, from: Data(listed.stdout.utf8)).items
            if views.count == 3, views.allSatisfy({ !$0.isLive }) { break }
            guard ContinuousClock.now - restartedAt < .seconds(50) else {
                XCTFail("deployments did not finish within 50 s of the restart (the lease is 60 s): \(views.map(\.status))")
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        XCTAssertEqual(views.map(\.status), ["succeeded", "succeeded", "succeeded"])
        for view in views {
            let compare = view.steps.first { $0.name == .compare }
            XCTAssertTrue(compare?.detail?.contains("resuming an interrupted attempt") ?? false, "\(view.targetName ?? ""): \(compare?.detail ?? "")")
            XCTAssertEqual(view.steps.first { $0.name == .reload }?.outcome, .ok)
        }
        for site in sites {
            let served = try await site.served(expecting: leaf.sha256Hex)
            XCTAssertEqual(served, leaf.sha256Hex)
        }

        // The list shows what was deployed and when, and that it was verified, without a drift check.
        let listed = try client(["targets", "list"], port: port, key: key)
        let rows = listed.stdout.split(separator: "\n").dropFirst()
        XCTAssertEqual(rows.count, 3, listed.stdout)
        for row in rows {
            XCTAssertTrue(row.contains("in_sync"), listed.stdout)
            XCTAssertTrue(row.contains("succeeded example v1 "), listed.stdout)
        }
    }

    /// A deployment through the server and a direct `certdeploy deploy` of another certificate to the same target at
    /// once: the one that comes second finds the other's marker with its writer alive and changes nothing.
    func testADirectDeployIsRefusedWhileTheServerDeploysTheTarget() async throws {
        let site = try NginxSite()
        let key = String((0..<40).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        let port = try FreePort.allocate()
        _ = try serve(port: port, data: directory.file("data"), key: key)
        let slowValidate: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("sleep 3; exec \(site.nginx.validateCommand.joined(separator: " "))")])
        let file: JSONValue = .object(["name": .string("web-1"), "connector": .string("nginx"), "ssh": site.ssh(), "config": site.config(["validateCommand": slowValidate])])
        let path = try directory.write("web-1.json", file.jsonText(), mode: 0o600)
        XCTAssertEqual(try client(["targets", "add", "--file", path], port: port, key: key).status, 0)
        let served = try site.ca.issueLeaf()
        let cert = try directory.write("server-leaf.pem", served.certificatePEM)
        let privateKey = try directory.write("server-leaf.key", served.privateKeyPKCS8PEM, mode: 0o600)
        let chain = try directory.write("chain.pem", site.ca.chainPEM)
        XCTAssertEqual(try client(["certs", "upload", "--name", "example", "--cert", cert, "--key", privateKey, "--chain", chain], port: port, key: key).status, 0)
        XCTAssertEqual(try client(["deploy", "example", "--to", "web-1"], port: port, key: key).status, 0)
        let deadline = ContinuousClock.now + .seconds(30)
        while try markers(site).isEmpty {
            guard ContinuousClock.now < deadline else { throw HarnessError("the server's deployment never wrote its marker") }
            try await Task.sleep(for: .milliseconds(20))
        }

        let direct = try deploy(path, try bundleFiles(try site.ca.issueLeaf(), site))
        XCTAssertEqual(direct.status, 1, direct.stdout + direct.stderr)
        let refusal = try JSONDecoder.iso8601.decode(DeploymentResult.self, from: Data(direct.stdout.utf8))
        XCTAssertTrue(refusal.failure?.message.contains("another deploy of this target is in progress") ?? false, "\(String(describing: refusal.failure))")

        var views: [DeploymentView] = []
        while views.first.map({ $0.isLive }) ?? true {
            let listed = try client(["deployments", "list", "--output", "json"], port: port, key: key)
            views = try JSONDecoder.api.decode(ListResponse<DeploymentView>.self, from: Data(listed.stdout.utf8)).items
            guard ContinuousClock.now < deadline + .seconds(30) else { throw HarnessError("the server's deployment did not end") }
            try await Task.sleep(for: .milliseconds(200))
        }
        XCTAssertEqual(views.map(\.status), ["succeeded"])
        let now = try await site.served(expecting: served.sha256Hex)
        XCTAssertEqual(now, served.sha256Hex, "the server's deployment ended as if alone")
    }
}
