import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An error from the test harness: a service did not start, a command timed out, a binary is missing.
public struct HarnessError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The outcome of a finished command.
public struct ProcessResult: Sendable, CustomStringConvertible {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    public var succeeded: Bool { status == 0 }

    public var description: String {
        "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)"
    }
}

/// Runs external commands (ssh-keygen, nginx, openssl, ...) for tests.
///
/// Commands are started with posix_spawn (every descriptor but stdio closed, default signal
/// handling, own process group) and reaped by polling waitpid. stdout and stderr go to unlinked
/// temporary files rather than pipes, so large outputs cannot deadlock, and a command whose
/// children daemonize (sshd, nginx) cannot hang the caller by keeping inherited descriptors
/// open. (Foundation's `Process` on Linux waits for such descriptors to close: a `nginx` start
/// through it never returns.)
public enum ProcessRunner {
    /// Runs `executable` (an absolute path, or a name looked up with `which`) with `args`.
    ///
    /// - Parameters:
    ///   - environment: variables merged over the current process environment (nil: inherit as is).
    ///   - stdin: bytes fed to the command's standard input (nil: /dev/null).
    ///   - timeout: seconds before the command is killed (SIGTERM, then SIGKILL) and `HarnessError` thrown.
    /// - Returns: the exit status (or 128+signal when killed by a signal) and the decoded outputs.
    ///   A non-zero status is not an error; check `status`.
    @discardableResult
    public static func run(
        _ executable: String,
        _ args: [String],
        environment: [String: String]? = nil,
        stdin: Data? = nil,
        timeout: TimeInterval = 60
    ) throws -> ProcessResult {
        let path: String
        if executable.contains("/") {
            path = executable
        } else if let found = which(executable) {
            path = found
        } else {
            throw HarnessError("cannot run \(executable): not found in PATH (run `make test`, which installs it)")
        }
        let commandLine = ([path] + args).joined(separator: " ")

        let outFile = try TempFile()
        let errFile = try TempFile()
        let inFile: TempFile?
        if let stdin {
            let file = try TempFile()
            try file.handle.write(contentsOf: stdin)
            try file.handle.seek(toOffset: 0)
            inFile = file
        } else {
            inFile = nil
        }
        let nullFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard nullFD >= 0 else { throw HarnessError("cannot open /dev/null: \(errnoString())") }
        defer { close(nullFD) }

        var env = ProcessInfo.processInfo.environment
        if let environment { env.merge(environment) { _, new in new } }

        let pid = try spawn(
            path: path, args: args, environment: env,
            stdinFD: inFile?.handle.fileDescriptor ?? nullFD,
            stdoutFD: outFile.handle.fileDescriptor,
            stderrFD: errFile.handle.fileDescriptor)

        // Poll waitpid rather than wait for EOF on a pipe or socket: a daemon (nginx, sshd)
        // forked by the command keeps inherited descriptors open long after the command exits.
        let deadline = Date().addingTimeInterval(timeout)
        var delay: useconds_t = 500
        var rawStatus: Int32 = 0
        while true {
            let r = waitpid(pid, &rawStatus, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR {
                throw HarnessError("waitpid(\(pid)) for \(commandLine) failed: \(errnoString())")
            }
            if Date() >= deadline {
                // The child leads its own process group: end the group (e.g. `sh -c` and its children).
                kill(-pid, SIGTERM)
                kill(pid, SIGTERM)
                let grace = Date().addingTimeInterval(2)
                while waitpid(pid, &rawStatus, WNOHANG) == 0 && Date() < grace { usleep(10_000) }
                if kill(pid, 0) == 0 {
                    kill(-pid, SIGKILL)
                    kill(pid, SIGKILL)
                    _ = waitpid(pid, &rawStatus, 0)
                }
                throw HarnessError(
                    "timed out after \(timeout)s: \(commandLine)\nstdout: \(outFile.contents())\nstderr: \(errFile.contents())")
            }
            usleep(delay)
            delay = min(delay * 2, 10_000)
        }

        let status: Int32
        if rawStatus & 0x7f == 0 {
            status = (rawStatus >> 8) & 0xff  // exited
        } else {
            status = 128 + (rawStatus & 0x7f)  // killed by a signal
        }
        return ProcessResult(status: status, stdout: outFile.contents(), stderr: errFile.contents())
    }

    /// Starts a long-running process (a test server) with stdio on /dev/null; stop it with `terminate(pid:)`.
    public static func spawnBackground(_ executable: String, _ args: [String], environment: [String: String]? = nil) throws -> pid_t {
        let devNull = open("/dev/null", O_RDWR)
        guard devNull >= 0 else { throw HarnessError("cannot open /dev/null") }
        defer { close(devNull) }
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment ?? [:] { merged[key] = value }
        return try spawn(path: executable, args: args, environment: merged, stdinFD: devNull, stdoutFD: devNull, stderrFD: devNull)
    }

    /// posix_spawn with the given stdio, every other descriptor closed, default signal
    /// dispositions and an empty signal mask, in a new process group.
    private static func spawn(
        path: String, args: [String], environment: [String: String],
        stdinFD: Int32, stdoutFD: Int32, stderrFD: Int32
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinFD, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)
        if let closefrom = addCloseFrom {
            _ = closefrom(&actions, 3)
        } else {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            for fd in fds.compactMap({ Int32($0) }) where fd > 2 {
                posix_spawn_file_actions_addclose(&actions, fd)
            }
        }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attr, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attr, &allSignals)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(
            &attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = ([path] + args).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, envp)
        guard rc == 0 else {
            throw HarnessError("cannot launch \(([path] + args).joined(separator: " ")): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc 2.34+'s posix_spawn_file_actions_addclosefrom_np, which the Glibc module does not import.
    private static let addCloseFrom: AddCloseFrom? = {
        guard let handle = dlopen(nil, RTLD_NOW),
            let symbol = dlsym(handle, "posix_spawn_file_actions_addclosefrom_np")
        else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    /// Runs a command and throws unless it exits 0. Returns the result (stdout etc.).
    @discardableResult
    public static func runChecked(
        _ executable: String,
        _ args: [String],
        environment: [String: String]? = nil,
        stdin: Data? = nil,
        timeout: TimeInterval = 60
    ) throws -> ProcessResult {
        let result = try run(executable, args, environment: environment, stdin: stdin, timeout: timeout)
        guard result.status == 0 else {
            throw HarnessError(
                "command failed (exit \(result.status)): \(([executable] + args).joined(separator: " "))\n"
                    + "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        }
        return result
    }

    /// The absolute path of an executable named `name`, searching PATH and then
    /// /usr/sbin, /sbin, /usr/lib/postgresql/15/bin (often not on a non-root PATH).
    public static func which(_ name: String) -> String? {
        if name.contains("/") {
            return access(name, X_OK) == 0 ? name : nil
        }
        let pathVar = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        var dirs = pathVar.split(separator: ":").map(String.init)
        dirs += ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/lib/postgresql/15/bin"]
        for dir in dirs where !dir.isEmpty {
            let candidate = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }
}

/// An unlinked temporary file, open for reading and writing.
private final class TempFile {
    let handle: FileHandle

    init() throws {
        var template = Array("/tmp/certdeploy-proc-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw HarnessError("mkstemp failed: \(String(cString: strerror(errno)))")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)  // never leak into children spawned elsewhere
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    func contents() -> String {
        let fd = handle.fileDescriptor
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
            offset += off_t(n)
        }
        return String(decoding: data, as: UTF8.self)
    }
}

// MARK: - Daemon process control (by PID)

extension ProcessRunner {
    /// True while `pid` names a live process. A zombie (exited, not yet reaped: daemons are
    /// reparented to a PID 1 that may never reap them) counts as dead.
    public static func isAlive(pid: pid_t) -> Bool {
        guard pid > 0 else { return false }
        if kill(pid, 0) != 0 && errno == ESRCH { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else {
            return false
        }
        // Format: "pid (comm) S ..."; comm may contain spaces and parentheses.
        guard let close = stat.lastIndex(of: ")") else { return true }
        let rest = stat[stat.index(after: close)...].split(separator: " ")
        guard let state = rest.first else { return true }
        return state != "Z" && state != "X"
    }

    /// The PIDs whose parent is `pid` (from /proc).
    public static func children(of pid: pid_t) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var result: [pid_t] = []
        for entry in entries {
            guard let child = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let ppid = pid_t(fields[1]), ppid == pid {
                result.append(child)
            }
        }
        return result
    }

    /// Waits up to `timeout` seconds for `pid` to die. Returns true when it is gone.
    @discardableResult
    public static func waitForExit(pid: pid_t, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isAlive(pid: pid) {
            if Date() >= deadline { return false }
            // Reap it if it happens to be our own child; harmless otherwise.
            var status: Int32 = 0
            _ = waitpid(pid, &status, WNOHANG)
            usleep(10_000)
        }
        return true
    }

    /// Sends `signal` to `pid`, waits up to `timeout` for it to exit, then SIGKILLs it and
    /// any of its children that outlived it. Returns when everything is gone (or after SIGKILL).
    public static func terminate(pid: pid_t, signal: Int32 = SIGTERM, timeout: TimeInterval = 5) {
        guard isAlive(pid: pid) else { return }
        let kids = children(of: pid)
        kill(pid, signal)
        if !waitForExit(pid: pid, timeout: timeout) {
            kill(pid, SIGKILL)
            waitForExit(pid: pid, timeout: 2)
        }
        for kid in kids where isAlive(pid: kid) {
            kill(kid, SIGKILL)
            waitForExit(pid: kid, timeout: 2)
        }
    }
}

/// A lock-protected value, for the few bits of mutable state the Sendable harness classes keep.
/// @unchecked Sendable: `value` is private and only read or written inside `lock`.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
