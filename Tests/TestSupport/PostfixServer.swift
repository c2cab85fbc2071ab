import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private Postfix 3.7 (the Debian package's binaries) listening for SMTP on 127.0.0.1 and a free
/// port and offering STARTTLS with the certificate in `smtpd_tls_chain_files`. Its config directory
/// (main.cf, master.cf), queue directory, data directory and log file all live in its own temporary
/// directory; nothing under /etc/postfix or /var/spool/postfix is used or needed (there need not be
/// an /etc/postfix/main.cf). Must run as root (Postfix's master and `postfix start` require it).
///
///     <dir>/etc/main.cf, master.cf    configDirectory (`postfix -c <dir>/etc …`)
///     <dir>/spool/                    queue_directory (pid/master.pid, private/, public/, …)
///     <dir>/data/                     data_directory (master.lock; created by Postfix, owned by postfix)
///     <dir>/postfix.log               maillog_file (written by postlogd)
///
/// Facts checked against Postfix 3.7.11 (Debian 12):
/// - `postfix -c <dir> start|stop|reload|check` works as root without `alternate_config_directories`
///   (that list is only consulted by the set-gid commands postdrop/postqueue) and without a default
///   main.cf. `<dir>` must be ABSOLUTE: postfix chdirs to the queue directory first, and a relative
///   `-c` path makes every command exit 1 without a word on stdout/stderr.
/// - The queue directory must exist (root, 0755) before `postfix start`; `start` (and `check`) run
///   `post-install create-missing`, which creates its subdirectories and the data directory with the
///   right owners. Do NOT pre-create the data directory: post-install creates it postfix:0700 but does not
///   chown an existing one, and master then dies with "open lock file …/master.lock: Permission denied".
/// - Logging to a file: `maillog_file` plus the `postlog unix-dgram … postlogd` service in master.cf,
///   AND `maillog_file_prefixes` must cover the path (default "/var, /dev/stdout"; postlogd rejects a
///   log under /tmp otherwise). Error messages of `postfix start`/`reload` go to that log, not to
///   stderr (stderr is not a terminal), so this class puts the log into its errors.
/// - The master sets SO_REUSEPORT on inet listeners: a second Postfix (as the same uid) started on a
///   port already used by another Postfix starts fine and the kernel splits connections between the
///   two. `start` therefore checks /proc/net/tcp for exactly one listener on its port and retries on
///   a new port otherwise. (A non-Postfix listener on the port makes master log
///   "fatal: bind 127.0.0.1 port N: Address already in use" and `postfix start` exit 1; also retried.)
/// - smtpd reads `smtpd_tls_chain_files` (key first, then leaf, then chain, one PEM file) as root
///   before it chroots (the Debian master.cf chroots smtpd into the queue directory), so the file may
///   live anywhere and be mode 0600.
/// - Reload: `postfix -c <dir> reload` (SIGHUP to the master) returns in ~50 ms; the first STARTTLS
///   handshake after it returns already shows the new certificate (16 of 16 tries): idle smtpd processes
///   of the old generation exit at once (gone within ~50 ms) and each new smtpd reads the chain file
///   when it starts. The master PID stays.
/// - Trap: `postfix -c <dir> check` (the validateCommand) does NOT read the TLS files: it exits 0 when
///   `smtpd_tls_chain_files` names a missing file, a file without PEM data, or a key that does not
///   match its certificate. A reload with such a file also exits 0 and the master stays alive
///   (`isAlive()` is true); each smtpd logs "warning: error opening chain file: …" or "… key at index 1
///   … does not match next certificate … disabling TLS support", still advertises STARTTLS in its EHLO
///   answer, and fails every handshake. Check the served certificate after a reload, or validate with
///   `strictValidateCommand`, which does catch these three cases.
/// - Processes: the master is a session leader and every daemon of the instance is in its process
///   group; `postfix stop` SIGTERMs the master, which ends its group. No init reaps orphans on this
///   machine, so the daemons stay as zombies: `isAlive()` treats a zombie master as dead.
public final class PostfixServer: Sendable {
    public static let postfixPath = "/usr/sbin/postfix"
    public static let postconfPath = "/usr/sbin/postconf"
    public static let masterPath = "/usr/lib/postfix/sbin/master"

    public let host = "127.0.0.1"
    /// The SMTP (STARTTLS) port.
    public let port: UInt16
    /// `myhostname` (shown in the 220 banner and the EHLO answer).
    public let serverName: String
    public let directory: TemporaryDirectory
    /// Holds main.cf and master.cf (the `-c` argument of every postfix command).
    public let configDirectory: String
    public let mainCFPath: String
    public let masterCFPath: String
    public let queueDirectory: String
    public let dataDirectory: String
    /// The `maillog_file`.
    public let logPath: String
    /// `<queueDirectory>/pid/master.pid`.
    public let pidPath: String
    /// The file `smtpd_tls_chain_files` names at start: private key, then certificate chain (leaf first).
    public let chainFilesPath: String
    /// The master's PID (unchanged across reloads).
    public let masterPID: pid_t
    /// ["/usr/sbin/postfix", "-c", configDirectory, "check"] (does not read the TLS files; see above)
    public let validateCommand: [String]
    /// ["/usr/sbin/postfix", "-c", configDirectory, "reload"]
    public let reloadCommand: [String]
    /// A validate command that does catch bad TLS files: `postfix check`, then the (single) file
    /// `postconf -xh smtpd_tls_chain_files` names must be readable and its first private key must match
    /// its first certificate (`openssl pkey -pubout` = `openssl x509 -pubkey`). Non-zero for a missing,
    /// garbage or mismatched chain file. ["/bin/sh", "-c", "<script>", "postfix-strict-check"]
    public let strictValidateCommand: [String]

    private let stopOnce = StopOnce()

    private init(
        port: UInt16, serverName: String, directory: TemporaryDirectory, configDirectory: String,
        queueDirectory: String, dataDirectory: String, logPath: String, chainFilesPath: String, masterPID: pid_t
    ) {
        self.port = port
        self.serverName = serverName
        self.directory = directory
        self.configDirectory = configDirectory
        self.mainCFPath = configDirectory + "/main.cf"
        self.masterCFPath = configDirectory + "/master.cf"
        self.queueDirectory = queueDirectory
        self.dataDirectory = dataDirectory
        self.logPath = logPath
        self.pidPath = queueDirectory + "/pid/master.pid"
        self.chainFilesPath = chainFilesPath
        self.masterPID = masterPID
        self.validateCommand = [Self.postfixPath, "-c", configDirectory, "check"]
        self.reloadCommand = [Self.postfixPath, "-c", configDirectory, "reload"]
        let script = """
            \(Self.postfixPath) -c '\(configDirectory)' check || exit 1
            f=$(\(Self.postconfPath) -c '\(configDirectory)' -xh smtpd_tls_chain_files) || exit 1
            [ -r "$f" ] || { echo "smtpd_tls_chain_files: cannot read '$f'" >&2; exit 1; }
            k=$(/usr/bin/openssl pkey -in "$f" -pubout) || { echo "no private key in $f" >&2; exit 1; }
            c=$(/usr/bin/openssl x509 -in "$f" -noout -pubkey) || { echo "no certificate in $f" >&2; exit 1; }
            [ "$k" = "$c" ] || { echo "the private key in $f does not match its first certificate" >&2; exit 1; }
            """
        self.strictValidateCommand = ["/bin/sh", "-c", script, "postfix-strict-check"]
    }

    deinit { stop() }

    /// Starts Postfix (`postfix -c <dir>/etc start`) and returns once the master runs and is the
    /// only listener on its port.
    ///
    /// - Parameters:
    ///   - chainFilesPath: one PEM file with the private key followed by the certificate chain (leaf
    ///     first), as `smtpd_tls_chain_files` expects (Postfix ≥ 3.4). Absolute, without spaces or commas.
    ///   - serverName: `myhostname`.
    ///   - dir: where to put everything (default: a new temporary directory). Must be absolute (it is
    ///     for `TemporaryDirectory`).
    public static func start(
        chainFilesPath: String,
        serverName: String = "example.test",
        in dir: TemporaryDirectory? = nil
    ) throws -> PostfixServer {
        try Services.require([postfixPath, postconfPath, masterPath])
        guard geteuid() == 0 else {
            throw HarnessError("PostfixServer needs root (postfix start/stop/reload run as root)")
        }
        guard getpwnam("postfix") != nil, getgrnam("postdrop") != nil else {
            throw HarnessError("PostfixServer: the postfix user or postdrop group is missing (reinstall the postfix package)")
        }
        guard chainFilesPath.hasPrefix("/"),
            !chainFilesPath.contains(where: { $0.isWhitespace || $0 == "," })
        else {
            throw HarnessError("PostfixServer: chainFilesPath must be absolute, without spaces or commas: \(chainFilesPath)")
        }
        let dir = try dir ?? TemporaryDirectory(prefix: "certdeploy-postfix")
        let configDirectory = try dir.makeDirectory("etc")
        // Root-owned 0755; post-install fills it in. The data directory must not be created here.
        let queueDirectory = try dir.makeDirectory("spool")
        let dataDirectory = dir.file("data")
        let logPath = dir.file("postfix.log")

        return try retryOnPortRace("postfix") {  // also retried: a port shared with another Postfix
            let port = try FreePort.allocate()
            try dir.write("etc/main.cf", mainCF(
                directory: dir.path, queueDirectory: queueDirectory, dataDirectory: dataDirectory,
                logPath: logPath, serverName: serverName, chainFilesPath: chainFilesPath), mode: 0o644)
            try dir.write("etc/master.cf", masterCF(port: port), mode: 0o644)
            unlink(queueDirectory + "/pid/master.pid")
            let logOffset = fileSize(logPath)

            let started = try ProcessRunner.run(postfixPath, ["-c", configDirectory, "start"], timeout: 60)
            let newLog = { () -> String in
                let text = readTextFile(logPath)
                let bytes = Array(text.utf8)
                return logOffset < bytes.count ? String(decoding: bytes[logOffset...], as: UTF8.self) : ""
            }
            if started.status != 0 {
                let error = "postfix start exited \(started.status): \(started.stdout)\(started.stderr)\nlog \(logPath):\n\(newLog())"
                // Master may have died after writing its pid file; make sure nothing is left.
                if let pid = PIDFile.read(queueDirectory + "/pid/master.pid") { killInstance(masterPID: pid) }
                if error.contains("Address already in use") { return .portLost(error) }
                throw HarnessError(error)
            }
            let pid: pid_t
            do {
                pid = try PIDFile.waitForLivePID(
                    queueDirectory + "/pid/master.pid", timeout: 10, missing: "postfix: no live master pid")
            } catch {
                throw HarnessError("\(error)\nlog \(logPath):\n\(newLog())")
            }
            try waitUntilListening(
                [port], daemon: "postfix master", pid: pid, details: { "\nlog \(logPath):\n\(newLog())" },
                cleanup: { killInstance(masterPID: $0) })
            // SO_REUSEPORT: another Postfix may share this port. Then both retry elsewhere.
            let listeners = listenerCount(port: port)
            if listeners != 1 {
                _ = try? ProcessRunner.run(postfixPath, ["-c", configDirectory, "stop"], timeout: 20)
                killInstance(masterPID: pid)
                return .portLost(
                    "\(listeners) listeners on 127.0.0.1:\(port) (another Postfix shares the port via SO_REUSEPORT)")
            }
            return .started(PostfixServer(
                port: port, serverName: serverName, directory: dir, configDirectory: configDirectory,
                queueDirectory: queueDirectory, dataDirectory: dataDirectory, logPath: logPath,
                chainFilesPath: chainFilesPath, masterPID: pid))
        }
    }

    /// The main.cf `start` writes.
    static func mainCF(
        directory: String, queueDirectory: String, dataDirectory: String, logPath: String,
        serverName: String, chainFilesPath: String
    ) -> String {
        """
        # certdeploy test Postfix: self-contained, everything under \(directory)
        # (config_directory is \(directory)/etc, given with `postfix -c`)
        compatibility_level = 3.6
        queue_directory = \(queueDirectory)
        data_directory = \(dataDirectory)
        mail_owner = postfix
        setgid_group = postdrop
        myhostname = \(serverName)
        myorigin = $myhostname
        mydestination =
        mynetworks = 127.0.0.0/8
        relayhost =
        inet_interfaces = 127.0.0.1
        inet_protocols = ipv4
        # No /etc/aliases here: no local delivery at all.
        alias_maps =
        alias_database =
        local_recipient_maps =
        biff = no
        # Log to a file via postlogd (needs the postlog service in master.cf); postlogd only opens
        # files under maillog_file_prefixes (default /var, /dev/stdout).
        maillog_file = \(logPath)
        maillog_file_prefixes = \(directory)
        smtpd_tls_security_level = may
        smtpd_tls_loglevel = 1
        smtpd_tls_chain_files = \(chainFilesPath)

        """
    }

    /// Debian's /etc/postfix/master.cf.proto (Postfix 3.7) with the `smtp inet` service bound to
    /// 127.0.0.1:`port`, and without the pipe(8) transports for optional software.
    static func masterCF(port: UInt16) -> String {
        """
        # certdeploy test Postfix master.cf (from Debian's master.cf.proto)
        # service type  private unpriv  chroot  wakeup  maxproc command + args
        #               (yes)   (yes)   (no)    (never) (100)
        127.0.0.1:\(port) inet n       -       y       -       -       smtpd
        pickup    unix  n       -       y       60      1       pickup
        cleanup   unix  n       -       y       -       0       cleanup
        qmgr      unix  n       -       n       300     1       qmgr
        tlsmgr    unix  -       -       y       1000?   1       tlsmgr
        rewrite   unix  -       -       y       -       -       trivial-rewrite
        bounce    unix  -       -       y       -       0       bounce
        defer     unix  -       -       y       -       0       bounce
        trace     unix  -       -       y       -       0       bounce
        verify    unix  -       -       y       -       1       verify
        flush     unix  n       -       y       1000?   0       flush
        proxymap  unix  -       -       n       -       -       proxymap
        proxywrite unix -       -       n       -       1       proxymap
        smtp      unix  -       -       y       -       -       smtp
        relay     unix  -       -       y       -       -       smtp
                -o syslog_name=postfix/$service_name
        showq     unix  n       -       y       -       -       showq
        error     unix  -       -       y       -       -       error
        retry     unix  -       -       y       -       -       error
        discard   unix  -       -       y       -       -       discard
        local     unix  -       n       n       -       -       local
        virtual   unix  -       n       n       -       -       virtual
        lmtp      unix  -       -       y       -       -       lmtp
        anvil     unix  -       -       y       -       1       anvil
        scache    unix  -       -       y       -       1       scache
        postlog   unix-dgram n  -       n       -       1       postlogd

        """
    }

    /// Postfix's log so far.
    public func log() -> String {
        readTextFile(logPath)
    }

    /// The master's PID from `<queue>/pid/master.pid` (nil when missing or unreadable).
    public func pidFromFile() -> pid_t? { PIDFile.read(pidPath) }

    /// True while the master runs (not a zombie) and the pid file, if present, names it.
    public func isAlive() -> Bool {
        guard ProcessRunner.isAlive(pid: masterPID) else { return false }
        if let filePID = pidFromFile(), filePID != masterPID { return false }
        return true
    }

    /// The live (non-zombie) processes of this instance: the master and every daemon in its process group.
    public func processIDs() -> [pid_t] { Self.liveProcesses(inGroup: masterPID) }

    /// Runs `validateCommand` (`postfix check`; exits 0 even when the TLS files are missing).
    @discardableResult
    public func validate() throws -> ProcessResult {
        try ProcessRunner.run(argv: validateCommand, timeout: 60)
    }

    /// Runs `reloadCommand` (`postfix reload`: SIGHUP to the master; returns at once). New STARTTLS
    /// handshakes show the new certificate right away. Then waits up to `timeout` seconds for the
    /// smtpd processes started before the reload to exit (they hold the old certificate).
    @discardableResult
    public func reload(timeout: TimeInterval = 10) throws -> ProcessResult {
        let before = Self.liveProcesses(inGroup: masterPID).filter { Self.command(of: $0) == "smtpd" }
        let result = try ProcessRunner.run(argv: reloadCommand, timeout: 60)
        guard result.succeeded else { return result }
        let deadline = Date().addingTimeInterval(timeout)
        while before.contains(where: { ProcessRunner.isAlive(pid: $0) }) && Date() < deadline {
            usleep(10_000)
        }
        return result
    }

    /// The leaf certificate (PEM) of a STARTTLS handshake, from
    /// `openssl s_client -starttls smtp -connect 127.0.0.1:<port> -servername <serverName>`.
    /// Throws when the handshake fails or shows no certificate.
    public func servedLeafPEM(serverName: String? = nil, timeout: TimeInterval = 15) throws -> String {
        let result = try ProcessRunner.run(
            "openssl",
            ["s_client", "-starttls", "smtp", "-connect", "127.0.0.1:\(port)", "-servername", serverName ?? self.serverName],
            stdin: Data(), timeout: timeout)
        let text = result.stdout
        guard let begin = text.range(of: "-----BEGIN CERTIFICATE-----"),
            let end = text.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<text.endIndex)
        else {
            throw HarnessError("no certificate in the STARTTLS handshake with 127.0.0.1:\(port): \(result)")
        }
        return String(text[begin.lowerBound..<end.upperBound]) + "\n"
    }

    /// Stops Postfix: `postfix -c <dir> stop`, then SIGTERM/SIGKILL to the master if it is still
    /// there, then SIGKILL to any process left in its process group. Other instances are untouched.
    /// Idempotent; also runs on deinit.
    public func stop() {
        guard stopOnce.claim() else { return }
        if ProcessRunner.isAlive(pid: masterPID) {
            _ = try? ProcessRunner.run(Self.postfixPath, ["-c", configDirectory, "stop"], timeout: 20)
        }
        Self.killInstance(masterPID: masterPID)
    }

    /// The installed Postfix version, e.g. "3.7.11" (from `postconf -d -h mail_version`), or "unknown".
    public static func version() -> String {
        guard let result = VendorVersion.output(
            executable: postconfPath, arguments: ["-d", "-h", "mail_version"], timeout: 30,
            requireExecutable: true, requireSuccess: true)
        else { return VendorVersion.unknown }
        let version = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return version.isEmpty ? VendorVersion.unknown : version
    }

    // MARK: - Helpers

    /// Ends the master (SIGTERM, SIGKILL after 5 s) and SIGKILLs whatever is left in its process group.
    private static func killInstance(masterPID: pid_t) {
        ProcessRunner.terminate(pid: masterPID, signal: SIGTERM, timeout: 5)
        // The master SIGTERMs its group on the way out; give the daemons a moment, then force.
        let deadline = Date().addingTimeInterval(3)
        while !liveProcesses(inGroup: masterPID).isEmpty && Date() < deadline { usleep(10_000) }
        for pid in liveProcesses(inGroup: masterPID) {
            kill(pid, SIGKILL)
            ProcessRunner.waitForExit(pid: pid, timeout: 2)
        }
    }

    /// Live (non-zombie) processes whose process group is `pgid`.
    static func liveProcesses(inGroup pgid: pid_t) -> [pid_t] {
        guard pgid > 1, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var result: [pid_t] = []
        for entry in entries {
            guard let pid = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After "(comm)": state ppid pgrp ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, let group = pid_t(fields[2]), group == pgid else { continue }
            if fields[0] != "Z" && fields[0] != "X" { result.append(pid) }
        }
        return result
    }

    /// The process's comm (e.g. "smtpd"), or "" when it is gone.
    private static func command(of pid: pid_t) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// How many sockets LISTEN on 127.0.0.1:`port` (from /proc/net/tcp).
    private static func listenerCount(port: UInt16) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return 1 }
        let local = String(format: "0100007F:%04X", port)
        var count = 0
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            // sl local_address rem_address st ...; st 0A = LISTEN
            if fields.count > 3, fields[1] == local, fields[3] == "0A" { count += 1 }
        }
        return count
    }

    private static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }
}
