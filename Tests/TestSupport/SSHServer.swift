import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A user key made by ssh-keygen for tests.
public struct SSHUserKey: Sendable {
    public let privateKeyPath: String
    /// The private key file's text (OpenSSH format by default, traditional PEM with format "PEM").
    public let privateKeyPEM: String
    /// The `.pub` line: "<type> <base64> <comment>".
    public let publicKeyLine: String
    public let passphrase: String?
    /// "ed25519", "rsa" or "ecdsa", as asked.
    public let type: String

    public init(privateKeyPath: String, privateKeyPEM: String, publicKeyLine: String, passphrase: String?, type: String) {
        self.privateKeyPath = privateKeyPath
        self.privateKeyPEM = privateKeyPEM
        self.publicKeyLine = publicKeyLine
        self.passphrase = passphrase
        self.type = type
    }

    /// The path of the `.pub` file next to the private key.
    public var publicKeyPath: String { privateKeyPath + ".pub" }
}

/// A private OpenSSH sshd on 127.0.0.1 and a free port; config, host key, pid file, log and
/// authorized_keys all live in its own temporary directory. Every user (root and test users)
/// authenticates against the one `authorized_keys` file there.
public final class SSHServer: Sendable {
    public struct Options: Sendable {
        /// Serve the sftp subsystem (`/usr/lib/openssh/sftp-server`).
        public var sftp: Bool
        /// Accept `ssh-rsa` (SHA-1) signatures, which libssh2 1.10 makes for RSA user keys.
        public var acceptSSHRSA: Bool
        /// Allow password logins (checked against /etc/shadow; UsePAM is off).
        public var passwordAuthentication: Bool
        /// Offer only classic key exchanges (curve25519-sha256 first, no sntrup761x25519, which costs
        /// ~100 ms of client CPU per connection). The client picks the kex from its own preference
        /// order, so the server must leave sntrup out for this to take effect.
        public var fastKex: Bool
        /// Extra sshd_config lines. They are written before the harness defaults, so they win
        /// (sshd keeps the first value of a keyword); `Match` blocks go at the end.
        public var extraConfig: [String]

        public init(
            sftp: Bool = true,
            acceptSSHRSA: Bool = false,
            passwordAuthentication: Bool = false,
            fastKex: Bool = true,
            extraConfig: [String] = []
        ) {
            self.sftp = sftp
            self.acceptSSHRSA = acceptSSHRSA
            self.passwordAuthentication = passwordAuthentication
            self.fastKex = fastKex
            self.extraConfig = extraConfig
        }
    }

    public static let sshdPath = "/usr/sbin/sshd"
    public static let fastKexAlgorithms = [
        "curve25519-sha256", "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
        "diffie-hellman-group14-sha256",
    ]

    public let host = "127.0.0.1"
    public let port: UInt16
    public let directory: TemporaryDirectory
    public let configPath: String
    public let logPath: String
    public let authorizedKeysPath: String
    public let hostKeyPath: String
    public let pid: pid_t
    /// "SHA256:..." of the host key, as `ssh-keygen -lf` prints it.
    public let hostKeyFingerprint: String
    /// The host key's `.pub` line: "ssh-ed25519 <base64> <comment>".
    public let hostPublicKeyLine: String
    public let options: Options

    private let authorizeLock = NSLock()
    private let stopOnce = StopOnce()

    private init(
        port: UInt16, directory: TemporaryDirectory, configPath: String, logPath: String,
        authorizedKeysPath: String, hostKeyPath: String, pid: pid_t, hostKeyFingerprint: String,
        hostPublicKeyLine: String, options: Options
    ) {
        self.port = port
        self.directory = directory
        self.configPath = configPath
        self.logPath = logPath
        self.authorizedKeysPath = authorizedKeysPath
        self.hostKeyPath = hostKeyPath
        self.pid = pid
        self.hostKeyFingerprint = hostKeyFingerprint
        self.hostPublicKeyLine = hostPublicKeyLine
        self.options = options
    }

    deinit { stop() }

    /// Starts sshd and returns once it accepts TCP connections.
    public static func start(options: Options = .init()) throws -> SSHServer {
        try Services.require([sshdPath, "ssh-keygen"])
        if mkdir("/run/sshd", 0o755) != 0 && errno != EEXIST {
            throw HarnessError("cannot create /run/sshd (sshd's privilege separation directory): \(errnoString())")
        }

        let dir = try TemporaryDirectory(prefix: "certdeploy-sshd")
        let hostKey = dir.file("host_ed25519")
        try ProcessRunner.runChecked("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "certdeploy-test-host", "-f", hostKey])
        let hostPub = try String(contentsOfFile: hostKey + ".pub", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let fingerprintOut = try ProcessRunner.runChecked("ssh-keygen", ["-lf", hostKey + ".pub"]).stdout
        guard let fingerprint = fingerprintOut.split(separator: " ").first(where: { $0.hasPrefix("SHA256:") }) else {
            throw HarnessError("cannot parse the host key fingerprint from: \(fingerprintOut)")
        }

        let authorizedKeys = try dir.write("authorized_keys", "", mode: 0o644)
        let pidFile = dir.file("sshd.pid")
        let log = dir.file("sshd.log")

        // sshd keeps the first value it reads for a keyword: extras first, Match blocks last.
        var extras: [String] = []
        var matchBlock: [String] = []
        for line in options.extraConfig {
            if !matchBlock.isEmpty || line.trimmingCharacters(in: .whitespaces).lowercased().hasPrefix("match ") {
                matchBlock.append(line)
            } else {
                extras.append(line)
            }
        }

        return try retryOnPortRace("sshd") {
            let port = try FreePort.allocate()
            var lines = extras
            lines += [
                "Port \(port)",
                "ListenAddress 127.0.0.1",
                "HostKey \(hostKey)",
                "PidFile \(pidFile)",
                "AuthorizedKeysFile \(authorizedKeys)",
                "PasswordAuthentication \(options.passwordAuthentication ? "yes" : "no")",
                "PermitEmptyPasswords no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "UseDNS no",
                "MaxStartups 200",
                "MaxSessions 50",
                "PermitRootLogin yes",
                "LogLevel VERBOSE",
            ]
            if options.sftp { lines.append("Subsystem sftp /usr/lib/openssh/sftp-server") }
            if options.acceptSSHRSA { lines.append("PubkeyAcceptedAlgorithms +ssh-rsa") }
            if options.fastKex { lines.append("KexAlgorithms " + fastKexAlgorithms.joined(separator: ",")) }
            lines += matchBlock
            let config = try dir.write("sshd_config", lines.joined(separator: "\n") + "\n", mode: 0o644)

            let check = try ProcessRunner.run(sshdPath, ["-t", "-f", config])
            guard check.status == 0 else {
                throw HarnessError("sshd rejects its config \(config):\n\(check.stderr)\(check.stdout)")
            }

            unlink(pidFile)
            unlink(log)
            // sshd daemonizes before it binds, so a lost port shows up only in its log; it writes
            // the pid file once it listens.
            let started = try ProcessRunner.run(sshdPath, ["-f", config, "-E", log], timeout: 30)
            if started.status != 0 {
                let logText = readTextFile(log)
                throw HarnessError("sshd exited \(started.status): \(started.stderr)\nlog:\n\(logText)")
            }
            let pid: pid_t
            do {
                pid = try waitForPIDFile(pidFile, timeout: 10, log: log) { logText in
                    logText.contains("Cannot bind any address") || logText.contains("fatal:")
                }
            } catch {
                if "\(error)".contains("Address already in use") { return .portLost("\(error)") }
                throw error
            }
            try waitUntilListening(
                [port], daemon: "sshd", pid: pid, details: { "\nlog \(log):\n\(readTextFile(log))" })
            return .started(SSHServer(
                port: port, directory: dir, configPath: config, logPath: log,
                authorizedKeysPath: authorizedKeys, hostKeyPath: hostKey, pid: pid,
                hostKeyFingerprint: String(fingerprint), hostPublicKeyLine: hostPub, options: options))
        }
    }

    /// "[127.0.0.1]:PORT <keytype> <base64>" for a known_hosts file.
    public func knownHostsLine() -> String {
        let fields = hostPublicKeyLine.split(separator: " ")
        return "[\(host)]:\(port) \(fields[0]) \(fields[1])"
    }

    /// The sshd log so far.
    public func log() -> String {
        readTextFile(logPath)
    }

    /// Appends a public key line to the shared authorized_keys file (valid for every user).
    public func authorize(publicKeyLine: String) throws {
        authorizeLock.lock()
        defer { authorizeLock.unlock() }
        let line = publicKeyLine.trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
        guard let handle = FileHandle(forWritingAtPath: authorizedKeysPath) else {
            throw HarnessError("cannot open \(authorizedKeysPath) for writing")
        }
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(line.utf8))
        chmod(authorizedKeysPath, 0o644)
    }

    /// Authorizes `key` (its public key line).
    public func authorize(_ key: SSHUserKey) throws {
        try authorize(publicKeyLine: key.publicKeyLine)
    }

    /// True while the sshd master process runs.
    public func isAlive() -> Bool { ProcessRunner.isAlive(pid: pid) }

    /// Stops the sshd master (SIGTERM, then SIGKILL) and waits for it to exit. Open sessions'
    /// processes are left to end with their connections. Idempotent; also runs on deinit.
    public func stop() {
        stopOnce.terminate(pid: pid)
    }

    /// Makes a user key with `ssh-keygen -q` in `dir`.
    /// - Parameters:
    ///   - type: "ed25519", "rsa" or "ecdsa".
    ///   - bits: key size (rsa: 2048/3072/4096; ecdsa: 256/384/521); nil for ssh-keygen's default.
    ///   - passphrase: encrypts the private key when given.
    ///   - format: nil for ssh-keygen's default (the OpenSSH format), "PEM" for traditional PEM
    ///     (ssh-keygen ignores "PEM" for ed25519 and writes the OpenSSH format), or "PKCS8".
    public static func generateUserKey(
        type: String,
        bits: Int? = nil,
        passphrase: String? = nil,
        format: String? = nil,
        in dir: TemporaryDirectory
    ) throws -> SSHUserKey {
        let path = dir.file("id_\(type)_\(UUID().uuidString.prefix(8).lowercased())")
        var args = ["-q", "-t", type, "-N", passphrase ?? "", "-C", "certdeploy-test-\(type)", "-f", path]
        if let bits { args += ["-b", String(bits)] }
        if let format { args += ["-m", format] }
        try ProcessRunner.runChecked("ssh-keygen", args)
        let privateText = try String(contentsOfFile: path, encoding: .utf8)
        let publicLine = try String(contentsOfFile: path + ".pub", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return SSHUserKey(
            privateKeyPath: path, privateKeyPEM: privateText, publicKeyLine: publicLine,
            passphrase: passphrase, type: type)
    }
}
