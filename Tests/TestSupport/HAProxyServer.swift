import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private HAProxy 2.6 (the Debian package's binary) in master-worker mode, terminating TLS on
/// 127.0.0.1 and a free port and answering every request with `200 ok`, with its Runtime API on a
/// loopback TCP stats socket (`level admin`). Config and pid file live in its own temporary directory.
///
/// Facts checked against HAProxy 2.6.12 (Debian 12):
/// - `bind … ssl crt <combined.pem>`: the PEM holds the leaf, the chain and the key. A DER OCSP
///   response in `<combined.pem>.ocsp` is stapled from the first handshake (the issuer must be in
///   the PEM's chain, or in `<combined.pem>.issuer`).
/// - Reload: `kill -USR2 <master>` re-reads the config and the PEM (and `.ocsp`) files; the master
///   PID stays, a new worker replaces the old one (which lingers while it has open connections).
///   Do not put `pidfile` in the config as well as `-p` on the command line: haproxy then prints
///   "[ALERT] … 'pidfile' already specified. Continuing." (harmless, but an ALERT line).
/// - Runtime API payloads (the `<<` form): the command line ends with ` <<`, then the payload lines
///   follow, and an EMPTY LINE ends the payload. So the bytes sent are
///   `"set ssl cert /abs/site.pem <<\n" + pem + "\n"` where `pem` ends with "\n" (no blank lines inside).
///   Without the final empty line haproxy waits for more payload and never answers (the connection hangs).
///   One command per connection (non-interactive mode: haproxy answers and closes). Transactions
///   survive between connections:
///     `set ssl cert <path> <<\n<PEM>\n\n`        → "Transaction created for certificate <path>!"
///     `set ssl cert <path>.ocsp <<\n<base64 DER>\n\n` → "Transaction updated for certificate <path>!"
///     `commit ssl cert <path>\n`                 → "Committing <path>.\nSuccess!"
///     `abort ssl cert <path>\n`                  → drops an uncommitted transaction
///     `set ssl ocsp-response <base64 DER>\n`     → "OCSP Response updated!"
///     `set ssl ocsp-response <<\n<base64 DER>\n\n` → same (payload form also works)
///     `show ssl cert <path>\n`, `show ssl ocsp-response\n`
///   `<path>` is the exact path the config (or crt-list) names. A committed cert is served by new
///   handshakes at once, without a reload; open TLS connections (keep-alive) are untouched.
///   Runtime API changes are in memory only: the next reload serves what is on disk again, so write
///   the files too.
/// - Trap: `set ssl ocsp-response` only works for a certificate whose OCSP CertID haproxy registered,
///   i.e. one loaded with a `.ocsp` file or committed with a `.ocsp` payload in its transaction. After
///   `set ssl cert` + `commit` without the `.ocsp` part, it answers "OCSP single response: Certificate ID
///   does not match any certificate or issuer." — send the staple in the same transaction instead.
public final class HAProxyServer: Sendable {
    public static let haproxyPath = "/usr/sbin/haproxy"

    public let host = "127.0.0.1"
    /// The TLS frontend's port.
    public let port: UInt16
    /// The Runtime API's port (`stats socket ipv4@127.0.0.1:<statsPort> level admin`).
    public let statsPort: UInt16
    public let serverName: String
    public let directory: TemporaryDirectory
    public let confPath: String
    public let pidPath: String
    /// The combined PEM (leaf + chain + key) the frontend serves.
    public let combinedPEMPath: String
    /// The crt-list the `bind` line uses instead of `crt`, when started with one.
    public let crtListPath: String?
    /// The master's PID (unchanged across `kill -USR2` reloads).
    public let masterPID: pid_t
    /// ["/usr/sbin/haproxy", "-c", "-f", conf]
    public let validateCommand: [String]
    /// ["/bin/sh", "-c", "kill -USR2 $(cat <pidfile>)"]
    public let reloadCommand: [String]

    private let stopOnce = StopOnce()

    private init(
        port: UInt16, statsPort: UInt16, serverName: String, directory: TemporaryDirectory,
        confPath: String, pidPath: String, combinedPEMPath: String, crtListPath: String?, masterPID: pid_t
    ) {
        self.port = port
        self.statsPort = statsPort
        self.serverName = serverName
        self.directory = directory
        self.confPath = confPath
        self.pidPath = pidPath
        self.combinedPEMPath = combinedPEMPath
        self.crtListPath = crtListPath
        self.masterPID = masterPID
        self.validateCommand = [Self.haproxyPath, "-c", "-f", confPath]
        self.reloadCommand = ["/bin/sh", "-c", "kill -USR2 $(cat \(pidPath))"]
    }

    deinit { stop() }

    /// Starts HAProxy (master-worker, daemonized) and returns once the master runs and the
    /// frontend accepts TCP connections.
    ///
    /// - Parameters:
    ///   - combinedPEMPath: leaf + chain + key in one PEM (an optional DER `<path>.ocsp` beside it is stapled).
    ///   - crtListPath: when given, the bind line says `crt-list <crtListPath>` instead of `crt <pem>`.
    ///     If the file does not exist yet it is created with the line `<combinedPEMPath> <serverName>`.
    ///   - dir: where to put everything (default: a new temporary directory).
    public static func start(
        combinedPEMPath: String,
        crtListPath: String? = nil,
        serverName: String = "example.test",
        in dir: TemporaryDirectory? = nil
    ) throws -> HAProxyServer {
        try Services.require([haproxyPath])
        let dir = try dir ?? TemporaryDirectory(prefix: "certdeploy-haproxy")
        let pidFile = dir.file("haproxy.pid")

        let certArgument: String
        if let crtListPath {
            try writeFileIfMissing(crtListPath, "\(combinedPEMPath) \(serverName)\n", what: "crt-list")
            certArgument = "crt-list \(crtListPath)"
        } else {
            certArgument = "crt \(combinedPEMPath)"
        }

        return try retryOnPortRace("haproxy") {
            let port = try FreePort.allocate()
            let statsPort = try FreePort.allocate()
            // No `user`/`group`/`chroot`: it runs as whoever starts it (root here) and needs no
            // privilege drop. No `pidfile` here: `-p` on the command line sets it (see above).
            let conf = """
                global
                    stats socket ipv4@127.0.0.1:\(statsPort) level admin
                    stats timeout 30s

                defaults
                    mode http
                    timeout connect 5s
                    timeout client 30s
                    timeout server 30s
                    timeout http-request 10s
                    timeout http-keep-alive 30s

                frontend fe_tls
                    bind 127.0.0.1:\(port) ssl \(certArgument)
                    http-request return status 200 content-type text/plain string ok

                """
            let confPath = try dir.write("haproxy.cfg", conf, mode: 0o644)
            unlink(pidFile)

            let started = try ProcessRunner.run(
                haproxyPath, ["-W", "-D", "-f", confPath, "-p", pidFile], timeout: 30)
            if started.status != 0 {
                let error = "haproxy exited \(started.status): \(started.stdout)\(started.stderr)"
                if (started.stderr + started.stdout).contains("cannot bind") { return .portLost(error) }
                throw HarnessError(error)
            }
            let pid = try PIDFile.waitForLivePID(
                pidFile, timeout: 10, reader: PIDFile.readFirstLine,
                missing: "haproxy: no live pid")
            try waitUntilListening([port, statsPort], daemon: "haproxy", pid: pid)
            return .started(HAProxyServer(
                port: port, statsPort: statsPort, serverName: serverName, directory: dir,
                confPath: confPath, pidPath: pidFile, combinedPEMPath: combinedPEMPath,
                crtListPath: crtListPath, masterPID: pid))
        }
    }

    /// Sends one Runtime API command over the stats TCP socket (`command` + "\n"), reads the
    /// answer until haproxy closes the connection, and returns it.
    ///
    /// For the `<<` payload form pass the whole thing, ending with the empty line, e.g.
    /// `"set ssl cert \(path) <<\n\(pem)\n"` (pem ending in "\n"); or use `runtimeAPI(_:payload:)`.
    public func runtimeAPI(_ command: String, timeout: TimeInterval = 10) throws -> String {
        let text = command.hasSuffix("\n") ? command : command + "\n"
        let answer = try LoopbackExchange.exchange(port: statsPort, send: Data(text.utf8), timeout: timeout)
        return String(decoding: answer, as: UTF8.self)
    }

    /// Sends `<command> <<` followed by `payload` and the empty line that ends it.
    /// Empty lines inside `payload` are dropped (haproxy would take the first as the end).
    public func runtimeAPI(_ command: String, payload: String, timeout: TimeInterval = 10) throws -> String {
        let lines = payload.split(separator: "\n", omittingEmptySubsequences: true)
            .map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
            .filter { !$0.isEmpty }
        let text = command + " <<\n" + lines.joined(separator: "\n") + "\n\n"
        let answer = try LoopbackExchange.exchange(port: statsPort, send: Data(text.utf8), timeout: timeout)
        return String(decoding: answer, as: UTF8.self)
    }

    /// True while the master process runs.
    public func isAlive() -> Bool { ProcessRunner.isAlive(pid: masterPID) }

    /// The current worker PIDs (children of the master; an old worker lingers after a reload
    /// while it still has connections).
    public func workerPIDs() -> [pid_t] { ProcessRunner.children(of: masterPID) }

    /// Runs `validateCommand` (`haproxy -c`).
    @discardableResult
    public func validate() throws -> ProcessResult {
        try ProcessRunner.run(argv: validateCommand)
    }

    /// Runs `reloadCommand` (`kill -USR2 <master>`), then waits up to `timeout` seconds for a new
    /// worker to appear (the signal returns at once; the master re-reads the config in the background).
    @discardableResult
    public func reload(timeout: TimeInterval = 10) throws -> ProcessResult {
        let before = Set(workerPIDs())
        let result = try ProcessRunner.run(argv: reloadCommand)
        guard result.succeeded else { return result }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if workerPIDs().contains(where: { !before.contains($0) && ProcessRunner.isAlive(pid: $0) }) { break }
            usleep(10_000)
        }
        return result
    }

    /// Stops HAProxy: SIGTERM to the master (it hard-stops the workers), SIGKILL after 5 s, then
    /// kills any worker left behind. Idempotent; also runs on deinit.
    public func stop() {
        stopOnce.terminate(pid: masterPID)
    }

    /// The installed HAProxy version without the Debian suffix, e.g. "2.6.12" (from `haproxy -v`), or "unknown".
    public static func version() -> String {
        VendorVersion.read(executable: haproxyPath, arguments: ["-v"], after: "version ") { text in
            String(text.prefix { $0.isNumber || $0 == "." })
        }
    }
}

/// One request/answer over a loopback TCP connection: connect to 127.0.0.1:`port`, send the
/// bytes, shut down nothing, read until the peer closes (HAProxy's Runtime API, Envoy's admin
/// with Connection: close). Each step is bounded by `timeout`.
enum LoopbackExchange {
    static func exchange(port: UInt16, send bytes: Data, timeout: TimeInterval) throws -> Data {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed: \(errnoString())") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else { throw HarnessError("connect to 127.0.0.1:\(port) failed: \(errnoString())") }
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw HarnessError("send to 127.0.0.1:\(port) failed: \(errnoString())")
                }
                offset += n
            }
        }
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw HarnessError(
                        "127.0.0.1:\(port): no end of answer after \(timeout)s (a `<<` payload must end with an "
                            + "empty line); got so far: \(String(decoding: answer, as: UTF8.self))")
                }
                throw HarnessError("recv from 127.0.0.1:\(port) failed: \(errnoString())")
            }
            answer.append(contentsOf: buffer[0..<n])
        }
        return answer
    }
}
