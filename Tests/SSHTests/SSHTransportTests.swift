import Core
import Foundation
import SSHTransport
import TestSupport
import XCTest

/// The libssh2 transport against a real OpenSSH sshd on loopback.
final class SSHTransportTests: XCTestCase {
    var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        try Services.require(["sshd", "ssh-keygen"])
        directory = try TemporaryDirectory(prefix: "certdeploy-ssh")
    }

    private func target(_ sshd: SSHServer, key: SSHUserKey? = nil, user: String = "root", fingerprint: String? = nil) -> SSHTarget {
        SSHTarget(host: sshd.host, port: Int(sshd.port), user: user, privateKey: key?.privateKeyPEM, passphrase: key?.passphrase,
                  hostKeyFingerprint: fingerprint ?? sshd.hostKeyFingerprint, connectTimeoutSeconds: 5, commandTimeoutSeconds: 10)
    }

    private func connectError(_ target: SSHTarget) async -> RemoteError? {
        do {
            let host = try await SSHConnector().connect(target)
            await host.close()
            return nil
        } catch {
            return error as? RemoteError
        }
    }

    // MARK: Authentication

    func testEd25519ECDSAAndPassphraseProtectedKeysAuthenticate() async throws {
        let sshd = try SSHServer.start()
        let keys = [
            try SSHServer.generateUserKey(type: "ed25519", in: directory),
            try SSHServer.generateUserKey(type: "ecdsa", in: directory),
            try SSHServer.generateUserKey(type: "ed25519", passphrase: "correct horse", in: directory),
            try SSHServer.generateUserKey(type: "ecdsa", bits: 384, passphrase: "battery staple", format: "PEM", in: directory),
        ]
        for key in keys {
            try sshd.authorize(key)
            let host = try await SSHConnector().connect(target(sshd, key: key))
            let result = try await host.run(["id", "-un"], timeout: .seconds(5))
            await host.close()
            XCTAssertEqual(String(decoding: result.stdout, as: UTF8.self), "root\n", "\(key.type) \(key.passphrase != nil ? "with passphrase" : "")")
        }
    }

    func testWrongOrMissingPassphraseIsAClearError() async throws {
        let sshd = try SSHServer.start()
        let key = try SSHServer.generateUserKey(type: "ed25519", passphrase: "the right one", in: directory)
        try sshd.authorize(key)
        var wrong = target(sshd, key: key)
        wrong.passphrase = "the wrong one"
        let wrongError = await connectError(wrong)
        XCTAssertEqual(wrongError?.code, .authentication)
        XCTAssertTrue(wrongError?.message.contains("passphrase") ?? false, "\(String(describing: wrongError))")
        var missing = target(sshd, key: key)
        missing.passphrase = nil
        let missingError = await connectError(missing)
        XCTAssertEqual(missingError?.code, .authentication)
        XCTAssertTrue(missingError?.message.contains("passphrase") ?? false, "\(String(describing: missingError))")
        XCTAssertFalse("\(String(describing: wrongError))".contains("the wrong one"), "the passphrase never appears in errors")
    }

    func testRSAKeyRefusedByModernOpenSSHSaysWhyAndSuggestsEd25519() async throws {
        let sshd = try SSHServer.start()
        let key = try SSHServer.generateUserKey(type: "rsa", bits: 2048, in: directory)
        try sshd.authorize(key)
        let error = await connectError(target(sshd, key: key))
        XCTAssertEqual(error?.code, .authentication)
        let message = error?.message ?? ""
        XCTAssertTrue(message.contains("ssh-rsa") && message.contains("SHA-1") && message.contains("Ed25519"), message)
        XCTAssertTrue(sshd.log().contains("ssh-rsa"), "sshd refused the ssh-rsa signature algorithm")
    }

    func testRSAKeyWorksWhenServerAcceptsSSHRSA() async throws {
        let sshd = try SSHServer.start(options: .init(acceptSSHRSA: true))
        for format in [nil, "PEM"] as [String?] {
            let key = try SSHServer.generateUserKey(type: "rsa", bits: 2048, format: format, in: directory)
            try sshd.authorize(key)
            let host = try await SSHConnector().connect(target(sshd, key: key))
            let result = try await host.run(["true"], timeout: .seconds(5))
            await host.close()
            XCTAssertEqual(result.exitStatus, 0)
        }
    }

    func testPasswordAuthenticationAndWrongPassword() async throws {
        let sshd = try SSHServer.start(options: .init(passwordAuthentication: true))
        try SystemUsers.ensureUser("cdpass", password: "pw-for-certdeploy-tests")
        var good = target(sshd, user: "cdpass")
        good.password = "pw-for-certdeploy-tests"
        let host = try await SSHConnector().connect(good)
        let whoami = try await host.run(["id", "-un"], timeout: .seconds(5))
        await host.close()
        XCTAssertEqual(String(decoding: whoami.stdout, as: UTF8.self), "cdpass\n")

        var bad = good
        bad.password = "not-the-password"
        let error = await connectError(bad)
        XCTAssertEqual(error?.code, .authentication)
        XCTAssertTrue(error?.message.contains("password authentication for cdpass failed") ?? false, "\(String(describing: error))")
        XCTAssertFalse(error?.description.contains("not-the-password") ?? true)
    }

    // MARK: Host keys

    func testKnownHostsFilePlainAndHashedEntries() async throws {
        let sshd = try SSHServer.start()
        let key = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(key)
        let plain = try directory.write("known_hosts", "# comment\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZha2VrZXlmYWtla2V5ZmFrZWtleWZha2VrZXlmYWtl\n" + sshd.knownHostsLine() + "\n")
        var viaFile = target(sshd, key: key)
        viaFile.hostKeyFingerprint = nil
        viaFile.knownHostsFile = plain
        let host = try await SSHConnector().connect(viaFile)
        await host.close()

        let hashed = try directory.write("known_hosts_hashed", sshd.knownHostsLine() + "\n")
        try ProcessRunner.runChecked("/usr/bin/ssh-keygen", ["-H", "-f", hashed])
        XCTAssertTrue(try String(contentsOfFile: hashed, encoding: .utf8).hasPrefix("|1|"))
        viaFile.knownHostsFile = hashed
        let hashedHost = try await SSHConnector().connect(viaFile)
        await hashedHost.close()
    }

    func testKnownHostsMismatchAndUnknownHostAreRefused() async throws {
        let sshd = try SSHServer.start()
        let other = try SSHServer.start()
        let key = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(key)
        // The file lists the other server's key under this server's address.
        let otherKey = other.hostPublicKeyLine.split(separator: " ").prefix(2).joined(separator: " ")
        let file = try directory.write("known_hosts_wrong", "[127.0.0.1]:\(sshd.port) \(otherKey)\n")
        var viaFile = target(sshd, key: key)
        viaFile.hostKeyFingerprint = nil
        viaFile.knownHostsFile = file
        let mismatch = await connectError(viaFile)
        XCTAssertEqual(mismatch?.code, .hostKeyMismatch)
        XCTAssertTrue(mismatch?.message.contains(other.hostKeyFingerprint) ?? false)
        XCTAssertTrue(mismatch?.message.contains(sshd.hostKeyFingerprint) ?? false)

        viaFile.knownHostsFile = try directory.write("known_hosts_empty", "")
        let unknown = await connectError(viaFile)
        XCTAssertEqual(unknown?.code, .hostKeyUnknown)
        XCTAssertTrue(unknown?.message.contains(sshd.hostKeyFingerprint) ?? false)
        XCTAssertFalse(sshd.log().contains("Accepted publickey"))
    }

    func testServerWithSeveralHostKeysShowsTheTypeThatWasPinnedOrListed() async throws {
        // A stock server has ECDSA, Ed25519 (and RSA) host keys; libssh2 would ask for ECDSA first.
        let ecdsaHostKey = directory.file("host_ecdsa")
        try ProcessRunner.runChecked("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-N", "", "-f", ecdsaHostKey])
        let sshd = try SSHServer.start(options: .init(extraConfig: ["HostKey \(ecdsaHostKey)"]))
        let key = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(key)
        // Pinned Ed25519 fingerprint (as `ssh-keyscan -t ed25519 | ssh-keygen -lf -` gives).
        let pinned = try await SSHConnector().connect(target(sshd, key: key))
        XCTAssertEqual(pinned.hostKey.type, "ssh-ed25519")
        await pinned.close()
        // A known_hosts file that lists only the ECDSA key.
        let ecdsaLine = try String(contentsOfFile: ecdsaHostKey + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        var viaFile = target(sshd, key: key)
        viaFile.hostKeyFingerprint = nil
        viaFile.knownHostsFile = try directory.write("known_hosts_ecdsa", "[127.0.0.1]:\(sshd.port) \(ecdsaLine)\n")
        let listed = try await SSHConnector().connect(viaFile)
        XCTAssertEqual(listed.hostKey.type, "ecdsa-sha2-nistp256")
        await listed.close()
    }

    func testTrustOnFirstUseReportsTheKeySeen() async throws {
        let sshd = try SSHServer.start()
        let key = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(key)
        var tofu = target(sshd, key: key)
        tofu.hostKeyFingerprint = nil
        tofu.trustOnFirstUse = true
        let host = try await SSHConnector().connect(tofu)
        XCTAssertEqual(host.hostKey.fingerprint, sshd.hostKeyFingerprint)
        XCTAssertEqual(host.hostKey.type, "ssh-ed25519")
        await host.close()

        tofu.trustOnFirstUse = false
        let error = await connectError(tofu)
        XCTAssertEqual(error?.code, .configuration)
        XCTAssertTrue(error?.message.contains(sshd.hostKeyFingerprint) ?? false, "the error shows the key to pin")
    }

    func testSSHConfigIsValidatedStrictly() throws {
        XCTAssertThrowsError(try SSHTarget.decode(.object(["host": .string("h"), "user": .string("u"), "privateKeyFile": .string("/k")]))) { error in
            XCTAssertTrue("\(error)".contains("/ssh: needs a host key policy"), "\(error)")
        }
        XCTAssertThrowsError(try SSHTarget.decode(.object(["host": .string("h"), "user": .string("u"), "privateKeyFile": .string("k"), "trustOnFirstUse": .bool(true)]))) { error in
            XCTAssertTrue("\(error)".contains("/ssh/privateKeyFile: must be an absolute path"), "\(error)")
        }
        XCTAssertThrowsError(try SSHTarget.decode(.object(["host": .string("h"), "user": .string("u"), "password": .string("p"), "trustOnFirstUse": .bool(true), "hostkey": .string("x")]))) { error in
            XCTAssertTrue("\(error)".contains("/ssh/hostkey: unknown field"), "\(error)")
        }
        let decoded = try SSHTarget.decode(.object(["host": .string("h"), "user": .string("u"), "password": .string("p"), "hostKeyFingerprint": .string("SHA256:" + String(repeating: "x", count: 43))]))
        XCTAssertEqual(decoded.port, 22)
        XCTAssertEqual(decoded.transfer, .auto)
    }

    // MARK: Exec

    func testExecReportsExitStatusAndSeparatesOutputAndQuotesArguments() async throws {
        let sshd = try SSHServer.start()
        let key = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(key)
        let host = try await SSHConnector().connect(target(sshd, key: key))
        let result = try await host.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout: .seconds(5))
        XCTAssertEqual(result.exitStatus, 3)
        XCTAssertEqual(String(decoding: result.stdout, as: UTF8.self), "out\n")
        XCTAssertEqual(String(decoding: result.stderr, as: UTF8.self), "err\n")
        let tricky = "it's $(not run) `either`; *.pem && \"quoted\""
        let echoed = try await host.run(["printf", "%s", tricky], timeout: .seconds(5))
        XCTAssertEqual(String(decoding: echoed.stdout, as: UTF8.self), tricky)
        // Large output is bounded, keeping the tail, without failing the command.
        let big = try await host.run(["sh", "-c", "head -c 300000 /dev/zero; echo END"], timeout: .seconds(10))
        XCTAssertEqual(big.exitStatus, 0)
        XCTAssertEqual(big.stdout.count, 64 * 1024)
        XCTAssertEqual(String(decoding: big.stdout.suffix(4), as: UTF8.self), "END\n")
        await host.close()
    }

    func testCommandDeadlineAndTaskCancellation() async throws {
        let sshd = try SSHServer.start()
        let key = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(key)
        let host = try await SSHConnector().connect(target(sshd, key: key))
        let started = ContinuousClock.now
        do {
            _ = try await host.run(["sleep", "30"], timeout: .seconds(1))
            XCTFail("sleep 30 finished within a 1 s deadline")
        } catch let error as RemoteError {
            XCTAssertEqual(error.code, .timeout)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        await host.close()

        let second = try await SSHConnector().connect(target(sshd, key: key))
        let task = Task { try await second.run(["sleep", "30"], timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(300))
        let cancelledAt = ContinuousClock.now
        task.cancel()
        do {
            _ = try await task.value
            XCTFail("a cancelled command returned normally")
        } catch let error as RemoteError {
            XCTAssertEqual(error.code, .cancelled)
        }
        XCTAssertLessThan(ContinuousClock.now - cancelledAt, .seconds(3))
        await second.close()
    }

    func testConnectDeadlineOnAServerThatNeverAnswers() async throws {
        // A listening socket that never speaks SSH: the handshake must give up at the deadline.
        let port = try FreePort.allocate()
        let silent = try ProcessRunner.spawnBackground("/usr/bin/python3", ["-c", "import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('127.0.0.1',\(port)));s.listen(5)\nc=[]\nwhile True: c.append(s.accept())"])
        defer { ProcessRunner.terminate(pid: silent) }
        try FreePort.waitUntilListening(port: port, timeout: 5)
        var stuck = SSHTarget(host: "127.0.0.1", port: Int(port), user: "root", password: "x", trustOnFirstUse: true)
        stuck.connectTimeoutSeconds = 1
        let started = ContinuousClock.now
        let error = await connectError(stuck)
        XCTAssertEqual(error?.code, .timeout, "\(String(describing: error))")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(4))
    }

    // MARK: Files

    func testFileOperationsOverSFTPSCPAndSudo() async throws {
        let withSFTP = try SSHServer.start()
        let withoutSFTP = try SSHServer.start(options: .init(sftp: false))
        let key = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try withSFTP.authorize(key)
        try withoutSFTP.authorize(key)
        try SystemUsers.ensureUser("cdsudo", sudoNoPassword: true)
        let cases: [(String, SSHTarget, String)] = [
            ("sftp", target(withSFTP, key: key), "sftp"),
            ("scp", target(withoutSFTP, key: key), "scp"),
            ("sudo", { var t = target(withSFTP, key: key, user: "cdsudo"); t.sudo = true; return t }(), "sudo+sftp"),
            ("sudo-scp", { var t = target(withoutSFTP, key: key, user: "cdsudo"); t.sudo = true; return t }(), "sudo+scp"),
        ]
        for (name, sshTarget, access) in cases {
            let folder = try directory.makeDirectory("files-\(name)", mode: 0o755)
            let host = try await SSHConnector().connect(sshTarget)
            XCTAssertEqual(host.fileAccessDescription, access)
            let path = folder + "/a.pem"
            let missing = try await host.readFile(at: path)
            XCTAssertNil(missing, name)
            let bytes = Array("hello \(name)\n".utf8) + [0, 255, 10]
            try await host.writeFile(at: path + ".tmp", contents: bytes, mode: FileMode(0o640), owner: nil, group: nil)
            try await host.move([FileMove(from: path + ".tmp", to: path)])
            let read = try await host.readFile(at: path)
            XCTAssertEqual(read?.contents, bytes, name)
            XCTAssertEqual(read?.mode, FileMode(0o640), name)
            let listed = try await host.listDirectory(folder).map(\.name)
            XCTAssertEqual(listed, ["a.pem"], name)
            // Replace an existing file atomically.
            try await host.writeFile(at: path + ".tmp2", contents: [1, 2, 3], mode: .privateKey, owner: nil, group: nil)
            try await host.move([FileMove(from: path + ".tmp2", to: path)])
            let replaced = try await host.readFile(at: path)
            XCTAssertEqual(replaced?.contents, [1, 2, 3], name)
            XCTAssertEqual(replaced?.mode, .privateKey, name)
            try await host.removeFiles([path, folder + "/never-existed"])
            let afterRemove = try await host.listDirectory(folder).map(\.name)
            XCTAssertEqual(afterRemove, [], name)
            await host.close()
        }
        let staging = try FileManager.default.contentsOfDirectory(atPath: "/tmp").filter { $0.hasPrefix("certdeploy-stage.") }
        for name in staging {
            let owner = try FileManager.default.attributesOfItem(atPath: "/tmp/" + name)[.ownerAccountName] as? String
            XCTAssertNotEqual(owner, "cdsudo", "sudo staging directories are removed at close: /tmp/\(name)")
        }
    }

    func testSudoWithoutSudoRightsIsAClearPermissionError() async throws {
        let sshd = try SSHServer.start()
        let key = try SSHServer.generateUserKey(type: "ed25519", in: directory)
        try sshd.authorize(key)
        try SystemUsers.ensureUser("cdnosudo", sudoNoPassword: false)
        var sshTarget = target(sshd, key: key, user: "cdnosudo")
        sshTarget.sudo = true
        let host = try await SSHConnector().connect(sshTarget)
        do {
            _ = try await host.readFile(at: "/etc/shadow")
            XCTFail("read /etc/shadow without sudo rights")
        } catch let error as RemoteError {
            XCTAssertEqual(error.code, .permission, error.description)
        }
        await host.close()
    }
}
