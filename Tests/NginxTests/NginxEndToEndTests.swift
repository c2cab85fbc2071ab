import Core
import Foundation
import NginxConnector
import SSHTransport
import TestSupport
import XCTest

/// The nginx connector through the whole pipeline, against real nginx over real sshd.
final class NginxEndToEndTests: XCTestCase {
    /// The vendor matrix's "tested on" is the version these tests really ran against.
    func testDescriptorNamesTheVendorVersionInstalledHere() throws {
        let tested = NginxConnector.descriptor.vendorVersions.filter { $0.status == .tested }
        XCTAssertEqual(tested.count, 1)
        XCTAssertEqual(tested.first?.testedVersion, NginxServer.version(), "update the descriptor's testedVersion to what the tests run against")
    }

    func testDeployChangesServedLeafAndSecondDeployIsUnchanged() async throws {
        let fixture = try NginxFixture()
        let leaf = try fixture.ca.issueLeaf(.init())
        let oldServed = try await fixture.servedLeaf(expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(oldServed, fixture.oldLeaf.sha256Hex)

        let result = try await fixture.deploy(leaf)
        XCTAssertEqual(result.outcome, .succeeded, "\(result.failure.map(String.init(describing:)) ?? "") \(result.steps)")
        XCTAssertEqual(result.connectionsOpened, 1)
        let served = try await fixture.servedLeaf(expecting: leaf.sha256Hex)
        XCTAssertEqual(served, leaf.sha256Hex)
        XCTAssertEqual(result.steps.map(\.name), [.preflight, .staple, .plan, .lock, .connect, .compare, .backup, .write, .activate, .validate, .reload, .verify, .cleanup])
        // Files: full chain, key 0600, snippet; backups of what was there.
        let fullChain = String(decoding: try fixture.fileBytes(fixture.certificatePath), as: UTF8.self)
        XCTAssertTrue(fullChain.hasPrefix(leaf.certificatePEM))
        XCTAssertTrue(fullChain.contains(fixture.ca.intermediate.certificatePEM))
        XCTAssertFalse(fullChain.contains(fixture.ca.root.certificatePEM), "the root is never served")
        XCTAssertEqual(try fixture.mode(fixture.keyPath), 0o600)
        XCTAssertEqual(try fixture.mode(fixture.certificatePath), 0o644)
        XCTAssertEqual(result.backups.count, 3)
        for backup in result.backups { XCTAssertTrue(FileManager.default.fileExists(atPath: backup), backup) }
        XCTAssertEqual(try fixture.strayFiles(), [])
        // No key material in the record.
        let record = String(decoding: try JSONEncoder().encode(result), as: UTF8.self)
        XCTAssertFalse(record.contains("PRIVATE KEY"))

        // Second identical deploy: unchanged, no write, no reload, workers untouched.
        let workersBefore = fixture.nginx.workerPIDs()
        let again = try await fixture.deploy(leaf)
        XCTAssertEqual(again.outcome, .unchanged)
        XCTAssertNil(step(again, .reload))
        XCTAssertNil(step(again, .write))
        XCTAssertEqual(fixture.nginx.workerPIDs(), workersBefore)
    }

    func testBackupRetentionPrunesOldBackups() async throws {
        let fixture = try NginxFixture()
        for _ in 0..<3 {
            let result = try await fixture.deploy(try fixture.ca.issueLeaf(), options: DeployOptions(backupRetention: 2))
            XCTAssertEqual(result.outcome, .succeeded)
        }
        let backups = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.file("tls")).filter { $0.hasPrefix("example.key.certdeploy-bak.") }
        XCTAssertEqual(backups.count, 2, "\(backups)")
    }

    func testValidateFailureLeavesOldCertificateServedAndFilesRestored() async throws {
        let fixture = try NginxFixture()
        let before = try fixture.liveFiles()
        let failing: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("echo 'nginx: [emerg] cannot load certificate' >&2; exit 1")])
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config(["validateCommand": failing]))
        XCTAssertEqual(result.outcome, .rolledBack)
        XCTAssertEqual(result.failure?.step, .validate)
        XCTAssertTrue(result.failure?.message.contains("cannot load certificate") ?? false, "\(String(describing: result.failure))")
        XCTAssertEqual(step(result, .validate)?.exitStatus, 1)
        XCTAssertNil(step(result, .reload), "no reload after a failed validate")
        XCTAssertEqual(try fixture.liveFiles(), before)
        XCTAssertEqual(try fixture.mode(fixture.keyPath), 0o600)
        XCTAssertEqual(try fixture.strayFiles(), [])
        let served = try await fixture.servedLeaf(expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served, fixture.oldLeaf.sha256Hex)
    }

    func testWriteIntoMissingDirectoryFailsBeforeAnythingChanges() async throws {
        // A snippet nginx rejects: the resolver points at a name nginx cannot parse as an address.
        let fixture = try NginxFixture()
        let before = try fixture.liveFiles()
        let leaf = try fixture.ca.issueLeaf(.init())
        let result = try await fixture.deploy(leaf, config: fixture.config(["chainPath": .string("/nonexistent-dir/chain.pem")]))
        // Writing into a directory that does not exist fails before anything live changes.
        XCTAssertEqual(result.outcome, .failed)
        XCTAssertEqual(result.failure?.step, .write)
        XCTAssertEqual(try fixture.liveFiles(), before)
        XCTAssertEqual(try fixture.strayFiles(), [])
    }

    func testReloadFailureRollsBackAndReloadsOldFiles() async throws {
        let fixture = try NginxFixture()
        let before = try fixture.liveFiles()
        // Fails the first time (as a broken reload would), works the second time (the reload after restore).
        let marker = fixture.directory.file("reload-failed-once")
        let reload = ShellQuoting.commandLine(fixture.nginx.reloadCommand)
        let script = "if [ -e \(marker) ]; then exec \(reload); else touch \(marker); echo 'reload refused' >&2; exit 7; fi"
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config(["reloadCommand": .array([.string("/bin/sh"), .string("-c"), .string(script)])]))
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .reload)
        XCTAssertEqual(step(result, .reload)?.exitStatus, 7)
        XCTAssertEqual(try fixture.liveFiles(), before)
        let served = try await fixture.servedLeaf(expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served, fixture.oldLeaf.sha256Hex)
    }

    func testReloadFailingTwiceIsRollbackFailedWithFilesToInspect() async throws {
        let fixture = try NginxFixture()
        let failing: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("exit 9")])
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config(["reloadCommand": failing]))
        XCTAssertEqual(result.outcome, .rollbackFailed)
        XCTAssertTrue(result.attention.contains { $0.contains("reload after restore") }, "\(result.attention)")
        XCTAssertTrue(result.attention.contains { $0.hasPrefix("backup: ") }, "\(result.attention)")
    }

    func testVerifyMismatchRollsBack() async throws {
        let fixture = try NginxFixture()
        // The verify endpoint is another nginx serving some other certificate: the new leaf never shows up there.
        let otherDirectory = try TemporaryDirectory(prefix: "certdeploy-other")
        let other = try TestCertificateAuthority.selfSigned(commonName: "other.example.test", dnsNames: ["example.test"])
        let otherCert = try otherDirectory.write("other.pem", other.certificatePEM)
        let otherKey = try otherDirectory.write("other.key", other.privateKeyPKCS8PEM, mode: 0o600)
        let otherNginx = try NginxServer.start(certificatePath: otherCert, keyPath: otherKey, includeSnippetPath: nil, in: otherDirectory)
        defer { otherNginx.stop() }
        let before = try fixture.liveFiles()
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config(verify: ["port": .number(Double(otherNginx.port)), "timeoutSeconds": .number(2)]))
        XCTAssertEqual(result.outcome, .rolledBack)
        XCTAssertEqual(result.failure?.step, .verify)
        XCTAssertTrue(result.failure?.message.contains(other.sha256Hex.prefix(16)) ?? false, "\(String(describing: result.failure))")
        XCTAssertEqual(try fixture.liveFiles(), before)
        let served = try await fixture.servedLeaf(expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served, fixture.oldLeaf.sha256Hex)
    }

    func testHostKeyMismatchRefusesBeforeAnyWrite() async throws {
        let fixture = try NginxFixture()
        let before = try fixture.liveFiles()
        let wrong = "SHA256:" + String(repeating: "A", count: 43)
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), ssh: fixture.sshTarget(fingerprint: wrong))
        XCTAssertEqual(result.outcome, .failed)
        XCTAssertEqual(result.failure?.step, .connect)
        let message = result.failure?.message ?? ""
        XCTAssertTrue(message.contains("host key mismatch"), message)
        XCTAssertTrue(message.contains(wrong) && message.contains(fixture.sshd.hostKeyFingerprint), message)
        XCTAssertEqual(try fixture.liveFiles(), before)
        XCTAssertFalse(fixture.sshd.log().contains("Accepted publickey"), "no credential may be sent to an unverified host")
    }

    func testDeadHostFailsAtConnectWithTheReason() async throws {
        let fixture = try NginxFixture()
        var ssh = fixture.sshTarget()
        ssh.port = Int(try FreePort.allocate())
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), ssh: ssh)
        XCTAssertEqual(result.outcome, .failed)
        XCTAssertEqual(result.failure?.step, .connect)
        XCTAssertTrue(result.failure?.message.contains("Connection refused") ?? false, "\(String(describing: result.failure))")
    }

    func testStaplingSnippetOnlyWhenLeafHasOCSPURL() async throws {
        let fixture = try NginxFixture()
        var withURL = TestCertificateAuthority.LeafOptions()
        withURL.ocspURL = "http://127.0.0.1:9/ocsp"
        let stapled = try await fixture.deploy(try fixture.ca.issueLeaf(withURL))
        XCTAssertEqual(stapled.outcome, .succeeded, "\(stapled.steps)")
        let snippet = String(decoding: try fixture.fileBytes(fixture.snippetPath), as: UTF8.self)
        XCTAssertTrue(snippet.contains("ssl_stapling on;"))
        XCTAssertTrue(snippet.contains("ssl_stapling_verify on;"))
        // The bundle has no root: the engine found it in the (test) system trust store, so nginx can verify staples.
        XCTAssertTrue(snippet.contains("ssl_trusted_certificate \(fixture.certificatePath).trusted.pem;"), snippet)
        let trusted = String(decoding: try fixture.fileBytes(fixture.certificatePath + ".trusted.pem"), as: UTF8.self)
        XCTAssertTrue(trusted.contains(fixture.ca.root.certificatePEM), "the trusted file ends with the root")
        XCTAssertTrue(step(stapled, .plan)?.detail?.contains("the root is not in the bundle: certdeploy found it in the system trust store") ?? false,
                      step(stapled, .plan)?.detail ?? "")
        XCTAssertEqual(stapled.stapling?.mode, .vendorFetched)

        let plain = try await fixture.deploy(try fixture.ca.issueLeaf())
        XCTAssertEqual(plain.outcome, .succeeded)
        let plainSnippet = String(decoding: try fixture.fileBytes(fixture.snippetPath), as: UTF8.self)
        XCTAssertFalse(plainSnippet.contains("ssl_stapling"))
        XCTAssertEqual(plain.stapling?.mode, StaplingDecision.Mode.none)
        XCTAssertTrue(step(plain, .preflight)?.detail?.contains("no AIA OCSP URL") ?? false, "\(String(describing: step(plain, .preflight)))")
        XCTAssertEqual(step(plain, .validate)?.outcome, .ok, "nginx -t accepts the snippet without stapling")
    }

    func testMustStapleLeafRefusedWhereStaplingIsOff() async throws {
        let fixture = try NginxFixture()
        var options = TestCertificateAuthority.LeafOptions()
        options.ocspURL = "http://127.0.0.1:9/ocsp"
        options.mustStaple = true
        let leaf = try fixture.ca.issueLeaf(options)
        let before = try fixture.liveFiles()
        let refused = try await fixture.deploy(leaf, config: fixture.config(["stapling": .string("off")]))
        XCTAssertEqual(refused.outcome, .failed)
        XCTAssertEqual(refused.failure?.step, .preflight)
        XCTAssertTrue(refused.failure?.message.contains("Must-Staple") ?? false)
        XCTAssertEqual(refused.connectionsOpened, 0)
        XCTAssertEqual(try fixture.liveFiles(), before)

        let allowed = try await fixture.deploy(leaf, config: fixture.config(["stapling": .string("off")]), options: DeployOptions(allowMustStapleWithoutStapling: true))
        XCTAssertEqual(allowed.outcome, .succeeded)
    }

    func testSCPFallbackWhenServerHasNoSFTP() async throws {
        let fixture = try NginxFixture(sshOptions: .init(sftp: false))
        let leaf = try fixture.ca.issueLeaf()
        let host = try await SSHConnector().connect(fixture.sshTarget())
        XCTAssertEqual(host.fileAccessDescription, "scp")
        await host.close()
        let result = try await fixture.deploy(leaf)
        XCTAssertEqual(result.outcome, .succeeded, "\(result.steps)")
        let served = try await fixture.servedLeaf(expecting: leaf.sha256Hex)
        XCTAssertEqual(served, leaf.sha256Hex)
        XCTAssertEqual(try fixture.mode(fixture.keyPath), 0o600)
        let again = try await fixture.deploy(leaf)
        XCTAssertEqual(again.outcome, .unchanged)
    }

    func testNonRootUserWithSudo() async throws {
        let fixture = try NginxFixture()
        try SystemUsers.ensureUser("cdsudo", sudoNoPassword: true)
        // Root-owned files in a root-owned directory: only sudo can replace them.
        let leaf = try fixture.ca.issueLeaf()
        let result = try await fixture.deploy(leaf, ssh: fixture.sshTarget(user: "cdsudo", sudo: true))
        XCTAssertEqual(result.outcome, .succeeded, "\(result.steps)")
        let served = try await fixture.servedLeaf(expecting: leaf.sha256Hex)
        XCTAssertEqual(served, leaf.sha256Hex)
        let attributes = try FileManager.default.attributesOfItem(atPath: fixture.keyPath)
        XCTAssertEqual(attributes[.posixPermissions] as? Int, 0o600)
        XCTAssertEqual(attributes[.ownerAccountName] as? String, "root")
        let again = try await fixture.deploy(leaf, ssh: fixture.sshTarget(user: "cdsudo", sudo: true))
        XCTAssertEqual(again.outcome, .unchanged)
    }

    func testNonRootUserWithoutSudoFailsAtWriteAndChangesNothing() async throws {
        let fixture = try NginxFixture()
        try SystemUsers.ensureUser("cdplain")
        let before = try fixture.liveFiles()
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fixture.directory.file("tls"))
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), ssh: fixture.sshTarget(user: "cdplain"))
        XCTAssertEqual(result.outcome, .failed)
        XCTAssertTrue([.compare, .backup, .write].contains(result.failure?.step), "\(String(describing: result.failure))")
        XCTAssertTrue(result.failure?.message.contains("permission denied") ?? false, "\(String(describing: result.failure))")
        XCTAssertEqual(try fixture.liveFiles(), before)
    }

    /// A non-root SSH user that owns the live files but is not in their group: backups are hard links (same inode,
    /// so owner, group and mode are kept without `chown`), and a rollback renames a link of the backup back.
    func testNonRootOwnerOutsideTheFilesGroupBacksUpByHardLinkAndRollsBack() async throws {
        let fixture = try NginxFixture()
        try SystemUsers.ensureUser("cdowner")
        guard let owner = getpwnam("cdowner")?.pointee.pw_uid else { throw HarnessError("no uid for cdowner") }
        let tls = fixture.directory.file("tls")
        let live = [fixture.certificatePath, fixture.keyPath, fixture.snippetPath]
        // cdowner owns the directory and the files; the files' group is root's, which cdowner is not in.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fixture.directory.path)
        XCTAssertEqual(chown(tls, owner, 0), 0)
        for path in live { XCTAssertEqual(chown(path, owner, 0), 0) }
        let before = try fixture.liveFiles()
        let quiet: [String: JSONValue] = [
            "validateCommand": .array([.string("/bin/true")]), "reloadCommand": .array([.string("/bin/true")]),
        ]
        let first = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config(quiet, verify: ["enabled": .bool(false)]),
                                             ssh: fixture.sshTarget(user: "cdowner"))
        XCTAssertEqual(first.outcome, .succeeded, "\(first.steps)")
        XCTAssertTrue(step(first, .backup)?.detail?.contains("hard links") ?? false, "\(first.steps)")
        for backup in first.backups {
            var info = stat()
            XCTAssertEqual(stat(backup, &info), 0, backup)
            XCTAssertEqual(info.st_uid, owner, "\(backup) keeps its owner")
            XCTAssertEqual(info.st_gid, 0, "\(backup) keeps a group its writer is not in")
        }
        XCTAssertEqual(try first.backups.sorted().map { try fixture.fileBytes($0) }.count, 3)

        // A failing config check rolls back to what the first deploy left, renamed back from this deploy's backups.
        let afterFirst = try fixture.liveFiles()
        var failing = quiet
        failing["validateCommand"] = .array([.string("/bin/false")])
        let second = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config(failing, verify: ["enabled": .bool(false)]),
                                              ssh: fixture.sshTarget(user: "cdowner"))
        XCTAssertEqual(second.outcome, .rolledBack, "\(second.steps)")
        XCTAssertTrue(second.failure?.message.contains("exited 1 (no output)") ?? false, "\(String(describing: second.failure))")
        XCTAssertEqual(try fixture.liveFiles(), afterFirst)
        XCTAssertNotEqual(afterFirst, before)
        XCTAssertEqual(try fixture.strayFiles(), [], "no temporary file is left")
    }

    /// A full remote disk (a small tmpfs mounted over the target's directory, then filled): the deploy fails at
    /// write, every temporary file and the in-flight marker are removed, and the live files and what nginx serves
    /// are untouched.
    func testAFullRemoteDiskFailsAtWriteAndLeavesNothingBehind() async throws {
        let fixture = try NginxFixture()
        let tls = fixture.directory.file("tls")
        let saved = try FileManager.default.contentsOfDirectory(atPath: tls).map { ($0, try fixture.fileBytes(tls + "/" + $0)) }
        let mounted = try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", tls])
        try XCTSkipIf(mounted.status != 0, "cannot mount a tmpfs here: \(mounted.stderr)")
        defer { _ = try? ProcessRunner.run("/bin/umount", ["-l", tls]) }
        for (name, bytes) in saved {
            XCTAssertTrue(FileManager.default.createFile(atPath: tls + "/" + name, contents: bytes, attributes: [.posixPermissions: name.hasSuffix(".key") ? 0o600 : 0o644]))
        }
        // Fill what is left: dd stops at ENOSPC.
        _ = try ProcessRunner.run("/bin/dd", ["if=/dev/zero", "of=\(tls)/filler", "bs=1k"])
        let before = try fixture.liveFiles()

        let result = try await fixture.deploy(try fixture.ca.issueLeaf())
        XCTAssertEqual(result.outcome, .failed, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .write, "\(String(describing: result.failure))")
        XCTAssertTrue(result.failure?.message.contains("live files untouched") ?? false, "\(String(describing: result.failure))")
        XCTAssertEqual(try fixture.liveFiles(), before)
        let left = try FileManager.default.contentsOfDirectory(atPath: tls).filter { $0.contains(".certdeploy-") }
        XCTAssertEqual(left, [], "no temporary file, marker or backup is left")
        let served = try await fixture.servedLeaf(expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served, fixture.oldLeaf.sha256Hex)
    }

    /// A config check that hangs is cut off at the target's `commandTimeoutSeconds`, and the deploy rolls back over
    /// the same SSH session.
    func testAValidateThatHangsPastItsDeadlineRollsBack() async throws {
        let fixture = try NginxFixture()
        let before = try fixture.liveFiles()
        let started = ContinuousClock.now
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config([
            "validateCommand": .array([.string("/bin/sleep"), .string("30")]), "commandTimeoutSeconds": .number(2),
        ]))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(15), "cut off at the 2 s deadline, not after the sleep")
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .validate)
        XCTAssertTrue(result.failure?.message.contains("timed out") ?? false, "\(String(describing: result.failure))")
        XCTAssertEqual(try fixture.liveFiles(), before)
        let served = try await fixture.servedLeaf(expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served, fixture.oldLeaf.sha256Hex)
    }

    /// A reload that hangs (once) is cut off at the deadline; the rollback restores the files and its reload works.
    func testAReloadThatHangsPastItsDeadlineRollsBack() async throws {
        let fixture = try NginxFixture()
        let before = try fixture.liveFiles()
        let marker = fixture.directory.file("reload-hung-once")
        let reload = ShellQuoting.commandLine(fixture.nginx.reloadCommand)
        let script = "if [ -e \(marker) ]; then exec \(reload); else touch \(marker); exec sleep 30; fi"
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config([
            "reloadCommand": .array([.string("/bin/sh"), .string("-c"), .string(script)]), "commandTimeoutSeconds": .number(2),
        ]))
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .reload)
        XCTAssertTrue(result.failure?.message.contains("timed out") ?? false, "\(String(describing: result.failure))")
        XCTAssertTrue(step(result, .rollback)?.detail?.contains("and reloaded") ?? false, "\(result.steps)")
        XCTAssertEqual(try fixture.liveFiles(), before)
        let served = try await fixture.servedLeaf(expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served, fixture.oldLeaf.sha256Hex)
    }
}
