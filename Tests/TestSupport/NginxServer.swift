import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private nginx (the Debian package's binary) serving TLS on 127.0.0.1 and a free port,
/// with its config, pid file, logs and temp paths in its own temporary directory.
public final class NginxServer: Sendable {
    public static let nginxPath = "/usr/sbin/nginx"

    public let host = "127.0.0.1"
    public let port: UInt16
    public let serverName: String
    public let directory: TemporaryDirectory
    /// The temp directory everything lives in (also what a connector would treat as nginx's prefix).
    public let prefixDir: String
    public let confPath: String
    public let errorLogPath: String
    public let pidPath: String
    /// The snippet the server block includes (nil when the cert/key are set in nginx.conf directly).
    public let includeSnippetPath: String?
    /// The master's PID (unchanged across `nginx -s reload`).
    public let masterPID: pid_t
    /// ["/usr/sbin/nginx", "-t", "-c", conf, "-e", errlog]
    public let validateCommand: [String]
    /// ["/usr/sbin/nginx", "-s", "reload", "-c", conf, "-e", errlog]
    public let reloadCommand: [String]

    private let stopOnce = StopOnce()

    private init(
        port: UInt16, serverName: String, directory: TemporaryDirectory, confPath: String,
        errorLogPath: String, pidPath: String, includeSnippetPath: String?, masterPID: pid_t
    ) {
        self.port = port
        self.serverName = serverName
        self.directory = directory
        self.prefixDir = directory.path
        self.confPath = confPath
        self.errorLogPath = errorLogPath
        self.pidPath = pidPath
        self.includeSnippetPath = includeSnippetPath
        self.masterPID = masterPID
        self.validateCommand = [Self.nginxPath, "-t", "-c", confPath, "-e", errorLogPath]
        self.reloadCommand = [Self.nginxPath, "-s", "reload", "-c", confPath, "-e", errorLogPath]
    }

    deinit { stop() }

    /// Starts nginx and returns once it accepts TCP connections.
    ///
    /// - Parameters:
    ///   - certificatePath, keyPath: the PEM chain and key to serve.
    ///   - includeSnippetPath: when given, the server block has `include <snippet>;` instead of the
    ///     `ssl_certificate*` directives (the code under test writes that snippet). If the snippet
    ///     does not exist yet, it is created with `ssl_certificate <cert>; ssl_certificate_key <key>;`.
    ///   - dir: where to put everything (default: a new temporary directory).
    public static func start(
        certificatePath: String,
        keyPath: String,
        includeSnippetPath: String?,
        serverName: String = "example.test",
        in dir: TemporaryDirectory? = nil,
        listenAddress: String = "127.0.0.1",
        namespace: TestNetworkNamespace? = nil
    ) throws -> NginxServer {
        try Services.require([nginxPath])
        let dir = try dir ?? TemporaryDirectory(prefix: "certdeploy-nginx")
        let errorLog = dir.file("error.log")
        let pidFile = dir.file("nginx.pid")
        let temp = try dir.makeDirectory("nginx-temp")

        let tlsLines: String
        if let snippet = includeSnippetPath {
            try writeFileIfMissing(
                snippet, "ssl_certificate \(certificatePath);\nssl_certificate_key \(keyPath);\n",
                what: "nginx snippet")
            tlsLines = "        include \(snippet);"
        } else {
            tlsLines = "        ssl_certificate \(certificatePath);\n        ssl_certificate_key \(keyPath);"
        }

        return try retryOnPortRace("nginx") {
            let port = try FreePort.allocate()
            let conf = """
                worker_processes 1;
                pid \(pidFile);
                error_log \(errorLog) info;

                events {
                    worker_connections 256;
                }

                http {
                    access_log off;
                    default_type text/plain;
                    client_body_temp_path \(temp)/client_body;
                    proxy_temp_path \(temp)/proxy;
                    fastcgi_temp_path \(temp)/fastcgi;
                    uwsgi_temp_path \(temp)/uwsgi;
                    scgi_temp_path \(temp)/scgi;

                    server {
                        listen \(listenAddress):\(port) ssl;
                        server_name \(serverName);
                \(tlsLines)
                        location / {
                            return 200 "ok\\n";
                        }
                    }
                }

                """
            let confPath = try dir.write("nginx.conf", conf, mode: 0o644)
            unlink(pidFile)

            // In a namespace, the master (and so every worker it forks) lives there; signals still reach it by PID.
            let started = try namespace.map { try $0.run(nginxPath, ["-c", confPath, "-e", errorLog]) }
                ?? ProcessRunner.run(nginxPath, ["-c", confPath, "-e", errorLog], timeout: 30)
            if started.status != 0 {
                let logText = readTextFile(errorLog)
                let error = "nginx exited \(started.status): \(started.stderr)\nerror log:\n\(logText)"
                if started.stderr.contains("Address already in use") { return .portLost(error) }
                throw HarnessError(error)
            }
            // nginx binds before it daemonizes and writes the pid file once the master runs.
            let pid = try waitForPIDFile(pidFile, timeout: 10, log: errorLog)
            if namespace == nil {
                try waitUntilListening([port], daemon: "nginx", pid: pid)
            } else {
                try FreePort.waitUntilListening(port: port, host: listenAddress, timeout: 10)
            }
            return .started(NginxServer(
                port: port, serverName: serverName, directory: dir, confPath: confPath,
                errorLogPath: errorLog, pidPath: pidFile, includeSnippetPath: includeSnippetPath,
                masterPID: pid))
        }
    }

    /// The error log so far.
    public func errorLog() -> String {
        readTextFile(errorLogPath)
    }

    /// True while the master process runs.
    public func isAlive() -> Bool { ProcessRunner.isAlive(pid: masterPID) }

    /// The current worker PIDs (children of the master).
    public func workerPIDs() -> [pid_t] { ProcessRunner.children(of: masterPID) }

    /// The worker PIDs once a reload has settled: old workers finish their connections and exit, so until then
    /// there are more than the one `worker_processes` starts (waits up to `timeout` seconds).
    public func settledWorkerPIDs(timeout: TimeInterval = 10) -> [pid_t] {
        let deadline = Date().addingTimeInterval(timeout)
        var workers = workerPIDs()
        while workers.count > 1, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            workers = workerPIDs()
        }
        return workers
    }

    /// Runs `validateCommand` (`nginx -t`).
    @discardableResult
    public func validate() throws -> ProcessResult {
        try ProcessRunner.run(argv: validateCommand)
    }

    /// Runs `reloadCommand` (`nginx -s reload`). The command returns before new workers serve.
    @discardableResult
    public func reload() throws -> ProcessResult {
        try ProcessRunner.run(argv: reloadCommand)
    }

    /// Stops nginx: SIGTERM to the master (fast shutdown), SIGKILL after 5 s, then kills any
    /// worker left behind, and waits until they are gone. Idempotent; also runs on deinit.
    public func stop() {
        stopOnce.terminate(pid: masterPID)
    }

    /// The installed nginx version, e.g. "1.22.1" (from `nginx -v`), or "unknown".
    public static func version() -> String {
        VendorVersion.read(executable: nginxPath, arguments: ["-v"], after: "nginx/", stderrFirst: true)
    }
}
