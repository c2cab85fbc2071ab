import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL 15 (the Debian package's binaries) on 127.0.0.1 and a free port, with its data
/// directory, Unix socket and log in its own temporary directory, trusting every local connection.
///
/// PostgreSQL refuses to run as root, so when the tests run as root the server runs as the `postgres`
/// user (`runuser -u postgres --`), which owns the temporary directory.
public final class PostgresServer: Sendable {
    public static let binDirectory = "/usr/lib/postgresql/15/bin"
    public static let superuser = "postgres"

    public let host = "127.0.0.1"
    public let port: UInt16
    public let directory: TemporaryDirectory
    public let dataDirectory: String
    /// The directory holding the Unix socket (`.s.PGSQL.<port>`).
    public let socketDirectory: String
    public let logPath: String
    /// The postmaster's PID.
    public let pid: pid_t

    private let stopOnce = StopOnce()
    private let databaseCounter = Locked(0)

    private init(port: UInt16, directory: TemporaryDirectory, dataDirectory: String, logPath: String, pid: pid_t) {
        self.port = port
        self.directory = directory
        self.dataDirectory = dataDirectory
        self.socketDirectory = directory.path
        self.logPath = logPath
        self.pid = pid
    }

    deinit { stop() }

    /// `postgres://postgres@127.0.0.1:<port>/<database>?sslmode=disable`
    public func url(database: String) -> String {
        "postgres://\(Self.superuser)@\(host):\(port)/\(database)?sslmode=disable"
    }

    /// Runs initdb in a new temporary directory and starts the server; returns once it accepts connections
    /// (`pg_ctl -w`). fsync, synchronous commit and full-page writes are off: a test server needs no durability.
    public static func start(in dir: TemporaryDirectory? = nil) throws -> PostgresServer {
        try Services.require([binDirectory + "/initdb", binDirectory + "/pg_ctl", binDirectory + "/psql"])
        let dir = try dir ?? TemporaryDirectory(prefix: "certdeploy-postgres")
        let dataDir = dir.file("data")
        let logPath = dir.file("postgres.log")
        if getuid() == 0 {
            guard let user = getpwnam(superuser) else {
                throw HarnessError("there is no \(superuser) user: install PostgreSQL (`make test` does)")
            }
            guard chown(dir.path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw HarnessError("chown \(dir.path) to \(superuser) failed: \(errnoString())")
            }
        }

        let initdb = try runAsServerUser(
            binDirectory + "/initdb",
            ["-D", dataDir, "-U", superuser, "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C"], timeout: 120)
        guard initdb.status == 0 else {
            throw HarnessError("initdb failed (exit \(initdb.status)):\n\(initdb.stdout)\n\(initdb.stderr)")
        }

        return try retryOnPortRace("PostgreSQL") {
            let port = try FreePort.allocate()
            let options = [
                "-p \(port)", "-k \(dir.path)", "-c listen_addresses=127.0.0.1", "-c fsync=off", "-c synchronous_commit=off",
                "-c full_page_writes=off", "-c max_connections=200", "-c shared_buffers=32MB",
            ].joined(separator: " ")
            let started = try runAsServerUser(
                binDirectory + "/pg_ctl", ["-D", dataDir, "-l", logPath, "-o", options, "-w", "-t", "60", "start"], timeout: 90)
            if started.status != 0 {
                let log = readTextFile(logPath)
                let error = "pg_ctl start exited \(started.status): \(started.stdout)\(started.stderr)\nlog:\n\(log)"
                if log.contains("Address already in use") || log.contains("could not bind") { return .portLost(error) }
                throw HarnessError(error)
            }
            guard let pid = PIDFile.readFirstLine(dataDir + "/postmaster.pid") else {
                throw HarnessError("PostgreSQL started but \(dataDir)/postmaster.pid is unreadable")
            }
            return .started(PostgresServer(port: port, directory: dir, dataDirectory: dataDir, logPath: logPath, pid: pid))
        }
    }

    /// Creates a database with a fresh name (`<prefix>_<n>`) and returns its name.
    public func createDatabase(prefix: String = "certdeploy_test") throws -> String {
        let n = databaseCounter.withLock { counter -> Int in
            counter += 1
            return counter
        }
        let name = "\(prefix)_\(n)"
        try psql("CREATE DATABASE \(name)")
        return name
    }

    /// Runs SQL through psql as the superuser (over the Unix socket) and returns its output (unaligned,
    /// tuples only). Throws when psql fails.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        let result = try Self.runAsServerUser(
            Self.binDirectory + "/psql",
            ["-h", socketDirectory, "-p", String(port), "-U", Self.superuser, "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t",
             "-c", sql],
            timeout: 60)
        guard result.status == 0 else {
            throw HarnessError("psql failed (exit \(result.status)) running \(sql): \(result.stderr)")
        }
        return result.stdout
    }

    /// The server log so far.
    public func log() -> String {
        readTextFile(logPath)
    }

    public func isAlive() -> Bool { ProcessRunner.isAlive(pid: pid) }

    /// Stops the server (`pg_ctl stop -m fast`, then SIGKILL by PID if it is still there) and removes its
    /// temporary directory. Idempotent; also runs on deinit.
    public func stop() {
        guard stopOnce.claim() else { return }
        _ = try? Self.runAsServerUser(Self.binDirectory + "/pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "-t", "20", "stop"], timeout: 30)
        if isAlive() { ProcessRunner.terminate(pid: pid, signal: SIGQUIT, timeout: 5) }
        directory.remove()
    }

    /// Runs a PostgreSQL binary as the `postgres` user when we are root (PostgreSQL refuses root), else as we are.
    private static func runAsServerUser(_ executable: String, _ args: [String], timeout: TimeInterval) throws -> ProcessResult {
        let environment = ["PGTZ": "UTC", "LC_ALL": "C"]
        if getuid() == 0 {
            return try ProcessRunner.run("/usr/sbin/runuser", ["-u", superuser, "--", executable] + args, environment: environment, timeout: timeout)
        }
        return try ProcessRunner.run(executable, args, environment: environment, timeout: timeout)
    }
}
