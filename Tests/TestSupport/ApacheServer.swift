import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private Apache httpd (the Debian package's binary) serving TLS on 127.0.0.1 and a free
/// port, from a self-contained httpd.conf (no /etc/apache2 config, no `${APACHE_*}` variables)
/// with its pid file, mutexes, logs and document root in its own temporary directory.
///
/// The config has two include points the code under test may rewrite:
/// - `serverSnippetPath`, included at server level (e.g. `SSLStaplingCache shmcb:…`, which
///   Apache accepts only outside a `<VirtualHost>`);
/// - `vhostSnippetPath`, included inside `<VirtualHost 127.0.0.1:PORT>` after `SSLEngine on`
///   (`SSLCertificateFile` with the chain, `SSLCertificateKeyFile`, maybe `SSLUseStapling on`).
///
/// Trap (see shared/design/test-services.md): `apache2ctl -t` accepts a key that does not match
/// its certificate, and `-k graceful` with such a pair makes Apache exit while the command
/// returns 0. `isAlive()` notices (a dead or zombie master counts as dead).
public final class ApacheServer: Sendable {
    public static let apache2Path = "/usr/sbin/apache2"
    public static let apache2ctlPath = "/usr/sbin/apache2ctl"
    public static let modulesDir = "/usr/lib/apache2/modules"

    public let host = "127.0.0.1"
    public let port: UInt16
    public let serverName: String
    public let directory: TemporaryDirectory
    public let confPath: String
    public let errorLogPath: String
    public let pidPath: String
    public let vhostSnippetPath: String
    public let serverSnippetPath: String
    /// The master's PID at start (unchanged across graceful reloads).
    public let masterPID: pid_t
    /// ["/usr/sbin/apache2ctl", "-t", "-f", conf]
    public let validateCommand: [String]
    /// ["/usr/sbin/apache2ctl", "-f", conf, "-k", "graceful"]
    public let reloadCommand: [String]

    private let stopOnce = StopOnce()

    private init(
        port: UInt16, serverName: String, directory: TemporaryDirectory, confPath: String,
        errorLogPath: String, pidPath: String, vhostSnippetPath: String, serverSnippetPath: String,
        masterPID: pid_t
    ) {
        self.port = port
        self.serverName = serverName
        self.directory = directory
        self.confPath = confPath
        self.errorLogPath = errorLogPath
        self.pidPath = pidPath
        self.vhostSnippetPath = vhostSnippetPath
        self.serverSnippetPath = serverSnippetPath
        self.masterPID = masterPID
        self.validateCommand = [Self.apache2ctlPath, "-t", "-f", confPath]
        self.reloadCommand = [Self.apache2ctlPath, "-f", confPath, "-k", "graceful"]
    }

    deinit { stop() }

    /// Starts Apache and returns once it accepts TCP connections.
    ///
    /// - Parameters:
    ///   - certificatePath, keyPath: the PEM chain (leaf first) and key, written into a new
    ///     vhost snippet when `vhostSnippetPath` does not exist yet.
    ///   - vhostSnippetPath: included inside the `<VirtualHost>`; created if missing with
    ///     `SSLCertificateFile <cert>` / `SSLCertificateKeyFile <key>`.
    ///   - serverSnippetPath: included at server level; created empty if missing.
    ///   - dir: where to put everything (default: a new temporary directory).
    public static func start(
        certificatePath: String,
        keyPath: String,
        vhostSnippetPath: String,
        serverSnippetPath: String,
        serverName: String = "example.test",
        in dir: TemporaryDirectory? = nil
    ) throws -> ApacheServer {
        try Services.require([apache2Path, apache2ctlPath, "\(modulesDir)/mod_ssl.so"])
        let dir = try dir ?? TemporaryDirectory(prefix: "certdeploy-apache")
        let errorLog = dir.file("error.log")
        let pidFile = dir.file("httpd.pid")
        let runDir = try dir.makeDirectory("run")
        let docRoot = try dir.makeDirectory("htdocs")
        try dir.write("htdocs/index.html", "ok\n")
        let mimeTypes = try dir.write("mime.types", "text/html html htm\ntext/plain txt\n")

        try writeFileIfMissing(
            vhostSnippetPath, "SSLCertificateFile \(certificatePath)\nSSLCertificateKeyFile \(keyPath)\n",
            what: "Apache snippet")
        try writeFileIfMissing(serverSnippetPath, "", what: "Apache snippet")

        // As root, Apache must switch its children to an unprivileged user (without `User`
        // they run as uid -1 and log AH02155). The master reads certs and keys as root.
        var userLines = ""
        if geteuid() == 0 {
            let user = getpwnam("www-data") != nil ? "www-data" : "nobody"
            let group = getgrnam("www-data") != nil ? "www-data" : "nogroup"
            userLines = "User \(user)\nGroup \(group)\n"
        }

        let modules = ["mpm_event", "authz_core", "mime", "dir", "socache_shmcb", "ssl"]
            .map { "LoadModule \($0)_module \(modulesDir)/mod_\($0).so" }
            .joined(separator: "\n")

        return try retryOnPortRace("apache2") {
            let port = try FreePort.allocate()
            let conf = """
                # certdeploy test Apache: self-contained, everything under \(dir.path)
                ServerRoot \(dir.path)
                DefaultRuntimeDir \(runDir)
                PidFile \(pidFile)
                Mutex file:\(runDir) default
                ErrorLog \(errorLog)
                LogLevel info
                \(userLines)
                \(modules)

                ServerName \(serverName)
                TypesConfig \(mimeTypes)
                DocumentRoot \(docRoot)
                DirectoryIndex index.html
                StartServers 1
                ServerLimit 4
                ThreadsPerChild 25
                MaxRequestWorkers 100
                MinSpareThreads 25
                MaxSpareThreads 75
                KeepAliveTimeout 2
                GracefulShutdownTimeout 3

                Listen 127.0.0.1:\(port)

                # Server-level snippet (e.g. SSLStaplingCache).
                Include \(serverSnippetPath)

                <VirtualHost 127.0.0.1:\(port)>
                    ServerName \(serverName)
                    DocumentRoot \(docRoot)
                    SSLEngine on
                    # Vhost snippet (SSLCertificateFile, SSLCertificateKeyFile, SSLUseStapling, ...).
                    Include \(vhostSnippetPath)
                </VirtualHost>

                """
            let confPath = try dir.write("httpd.conf", conf, mode: 0o644)
            unlink(pidFile)

            let started = try ProcessRunner.run(
                apache2ctlPath, ["-f", confPath, "-k", "start"], timeout: 30)
            if started.status != 0 {
                let logText = readTextFile(errorLog)
                let error = "apache2 exited \(started.status): \(started.stdout)\(started.stderr)\nerror log:\n\(logText)"
                if (started.stdout + started.stderr + logText).contains("Address already in use") { return .portLost(error) }
                throw HarnessError(error)
            }
            // apache2 binds before it detaches; the detached master writes the pid file.
            let pid: pid_t
            do {
                pid = try waitForPIDFile(pidFile, timeout: 10, log: errorLog, daemon: "apache2") { logText in
                    logText.contains("Configuration Failed") || logText.contains("Address already in use")
                        || logText.contains("AH00015")
                }
            } catch {
                if "\(error)".contains("Address already in use") { return .portLost("\(error)") }
                throw error
            }
            try waitUntilListening([port], daemon: "apache2", pid: pid)
            return .started(ApacheServer(
                port: port, serverName: serverName, directory: dir, confPath: confPath,
                errorLogPath: errorLog, pidPath: pidFile, vhostSnippetPath: vhostSnippetPath,
                serverSnippetPath: serverSnippetPath, masterPID: pid))
        }
    }

    /// The error log so far.
    public func errorLog() -> String {
        readTextFile(errorLogPath)
    }

    /// The master's PID from the pid file (nil when missing or unreadable).
    public func pidFromFile() -> pid_t? {
        PIDFile.read(pidPath)
    }

    /// True while the master process runs (not a zombie) and the pid file, if present, names it.
    /// False after a graceful reload that made Apache exit (AH00016/AH00020 "Configuration
    /// Failed"), even though `apache2ctl -k graceful` returned 0.
    public func isAlive() -> Bool {
        guard ProcessRunner.isAlive(pid: masterPID) else { return false }
        if let filePID = pidFromFile(), filePID != masterPID {
            return false  // a different Apache took over this config
        }
        return true
    }

    /// The current child (worker) PIDs of the master.
    public func childPIDs() -> [pid_t] { ProcessRunner.children(of: masterPID) }

    /// Runs `validateCommand` (`apache2ctl -t`; "Syntax OK" is on stderr).
    @discardableResult
    public func validate() throws -> ProcessResult {
        try ProcessRunner.run(argv: validateCommand)
    }

    /// Runs `reloadCommand` (`apache2ctl -k graceful`). It returns before the new generation
    /// serves (allow ~1.5 s), and returns 0 even when the new config makes Apache exit:
    /// check `isAlive()`.
    @discardableResult
    public func reload() throws -> ProcessResult {
        try ProcessRunner.run(argv: reloadCommand)
    }

    /// Stops Apache: SIGTERM to the master, SIGKILL after 5 s, then kills any child left
    /// behind, and waits until they are gone. Idempotent; also runs on deinit.
    public func stop() {
        stopOnce.terminate(pid: masterPID)
    }

    /// The installed Apache version, e.g. "2.4.71" (from `apache2 -v`), or "unknown".
    public static func version() -> String {
        VendorVersion.read(executable: apache2Path, arguments: ["-v"], after: "Apache/")
    }
}
