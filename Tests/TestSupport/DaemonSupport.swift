import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Small helpers the daemon harness classes (NginxServer, ApacheServer, HAProxyServer, PostfixServer,
// EnvoyServer, SSHServer, PostgresServer) share. All internal: the tests see none of them.

/// A flag that lets a stop routine run once: the first `run` runs its body, later calls do nothing.
final class StopOnce: Sendable {
    private let done = Locked(false)

    init() {}

    /// True the first time only (and marks it done).
    func claim() -> Bool {
        done.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
    }

    /// Runs `body` on the first call only.
    func run(_ body: () -> Void) {
        guard claim() else { return }
        body()
    }

    /// The first call SIGTERMs `pid` (SIGKILL after 5 s, then its leftover children) and waits
    /// until it is gone; later calls do nothing.
    func terminate(pid: pid_t) {
        run { ProcessRunner.terminate(pid: pid, signal: SIGTERM, timeout: 5) }
    }
}

extension ProcessRunner {
    /// Runs a command given as one argv array (`argv[0]` is the executable), e.g. a harness's
    /// `validateCommand` or `reloadCommand`. A non-zero status is not an error; check `status`.
    @discardableResult
    static func run(argv: [String], timeout: TimeInterval = 60) throws -> ProcessResult {
        guard let executable = argv.first else { throw HarnessError("cannot run an empty command") }
        return try run(executable, Array(argv.dropFirst()), timeout: timeout)
    }
}

/// Reads a vendor binary's version from its output.
enum VendorVersion {
    static let unknown = "unknown"

    /// The token up to the first whitespace.
    static func word(_ text: Substring) -> String? { String(text.prefix { !$0.isWhitespace }) }

    /// Runs `executable` with `arguments` and returns its result, or nil when it could not run (or
    /// is not executable, with `requireExecutable`, or exited non-zero, with `requireSuccess`).
    static func output(
        executable: String, arguments: [String], timeout: TimeInterval = 10,
        requireExecutable: Bool = false, requireSuccess: Bool = false
    ) -> ProcessResult? {
        if requireExecutable && access(executable, X_OK) != 0 { return nil }
        guard let result = try? ProcessRunner.run(executable, arguments, timeout: timeout) else { return nil }
        if requireSuccess && !result.succeeded { return nil }
        return result
    }

    /// Runs `executable` with `arguments`, finds `marker` in its output (stdout then stderr, or
    /// stderr then stdout with `stderrFirst`) and returns `token` of the text after it; "unknown"
    /// when the command cannot run, the marker is missing or the token is nil or empty.
    static func read(
        executable: String, arguments: [String], after marker: String, timeout: TimeInterval = 10,
        requireExecutable: Bool = false, stderrFirst: Bool = false,
        token: (Substring) -> String? = word
    ) -> String {
        guard let result = output(
            executable: executable, arguments: arguments, timeout: timeout, requireExecutable: requireExecutable)
        else { return unknown }
        let text = stderrFirst ? result.stderr + result.stdout : result.stdout + result.stderr
        guard let range = text.range(of: marker), let version = token(text[range.upperBound...]),
            !version.isEmpty
        else { return unknown }
        return version
    }
}

/// What one start attempt of `retryOnPortRace` came to.
enum StartAttempt<Server> {
    /// The daemon runs.
    case started(Server)
    /// The port was lost to a race (or is otherwise unusable); try again on a new one.
    case portLost(String)
}

/// Runs `attempt` up to `attempts` times while it reports `.portLost`, and returns the first
/// started server; an error thrown by `attempt` ends the tries at once. After the last lost port
/// it throws "<name> did not start after <attempts> tries: <last error>".
func retryOnPortRace<Server>(
    _ name: String, attempts: Int = 5, _ attempt: () throws -> StartAttempt<Server>
) throws -> Server {
    var lastError = ""
    for _ in 0..<attempts {
        switch try attempt() {
        case .started(let server): return server
        case .portLost(let error): lastError = error
        }
    }
    throw HarnessError("\(name) did not start after \(attempts) tries: \(lastError)")
}

/// The text of a file (a log, a pid file), or "" when it is missing or unreadable.
func readTextFile(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

/// Reading daemons' pid files.
enum PIDFile {
    /// The PID a pid file holds (surrounding whitespace and newlines ignored: Postfix right-aligns it
    /// in 10+ spaces); nil when missing or unreadable.
    static func read(_ path: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The PID on the first line of a pid file (spaces around it ignored); nil when missing or unreadable.
    static func readFirstLine(_ path: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return pid_t(text.split(separator: "\n").first?.trimmingCharacters(in: .whitespaces) ?? "")
    }

    /// Polls `reader(path)` until it names a live process; after `timeout` seconds throws
    /// "<missing> in <path> after <timeout>s" (e.g. missing: "haproxy: no live pid").
    static func waitForLivePID(
        _ path: String, timeout: TimeInterval, reader: (String) -> pid_t? = read, missing: String
    ) throws -> pid_t {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let pid = reader(path), ProcessRunner.isAlive(pid: pid) { return pid }
            if Date() >= deadline { throw HarnessError("\(missing) in \(path) after \(timeout)s") }
            usleep(10_000)
        }
    }
}

/// Writes `text` to `path` unless a file is already there (a config snippet the code under test
/// may later rewrite). Throws "cannot write the <what> <path>: …" on failure.
func writeFileIfMissing(_ path: String, _ text: String, what: String) throws {
    guard access(path, F_OK) != 0 else { return }
    try writeFile(path, text, what: what)
}

/// Writes `text` to `path`. Throws "cannot write the <what> <path>: …" on failure.
func writeFile(_ path: String, _ text: String, what: String) throws {
    do {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    } catch {
        throw HarnessError("cannot write the \(what) \(path): \(error)")
    }
}

/// Polls a daemon's pid file until it holds a live PID. Fails early when `failed` says the
/// log (read on each poll) shows the daemon gave up ("<daemon> failed to start …").
func waitForPIDFile(
    _ path: String, timeout: TimeInterval, log: String, daemon: String = "daemon",
    failed: (String) -> Bool = { _ in false }
) throws -> pid_t {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if let pid = PIDFile.read(path), ProcessRunner.isAlive(pid: pid) { return pid }
        let logText = readTextFile(log)
        if failed(logText) {
            throw HarnessError("\(daemon) failed to start (no pid in \(path)); log \(log):\n\(logText)")
        }
        if Date() >= deadline {
            throw HarnessError("no live pid in \(path) after \(timeout)s; log \(log):\n\(logText)")
        }
        usleep(10_000)
    }
}

/// Waits up to `timeout` seconds for something to listen on each of `ports` (127.0.0.1). When one
/// stays closed it ends the daemon (`cleanup`, by default `ProcessRunner.terminate(pid:)`) and throws
/// "<daemon> (pid <pid>) did not listen on <port>[/<port>…]: <error><details()>".
func waitUntilListening(
    _ ports: [UInt16], daemon: String, pid: pid_t, timeout: TimeInterval = 10,
    details: () -> String = { "" }, cleanup: ((pid_t) -> Void)? = nil
) throws {
    do {
        for port in ports { try FreePort.waitUntilListening(port: port, timeout: timeout) }
    } catch {
        if let cleanup { cleanup(pid) } else { ProcessRunner.terminate(pid: pid) }
        let list = ports.map(String.init).joined(separator: "/")
        throw HarnessError("\(daemon) (pid \(pid)) did not listen on \(list): \(error)\(details())")
    }
}
