import Foundation
import Logging
import VaporCSQLite

/// One SQLite connection on its own thread (``SQLiteThread``), used by one transaction at a time (an in-process FIFO
/// lock), with write transactions started as `BEGIN IMMEDIATE` so they also exclude other processes on the same file.
/// A whole transaction runs on that thread, statement after statement, with no thread switch in between.
final class SQLiteDriver: SQLDriver {
    let dialect = SQLDialect(name: "sqlite", skipLockedDeployments: "", claimTarget: "", keyShare: "", noKeyUpdate: "", forUpdate: "",
                             forUpdateSkipLocked: "")

    private let handle: SQLiteHandle
    private let thread: SQLiteThread
    private let checkpointer: SQLiteCheckpointer
    private let lock = AsyncLock()
    let path: String

    private init(handle: SQLiteHandle, thread: SQLiteThread, checkpointer: SQLiteCheckpointer, path: String) {
        self.handle = handle
        self.thread = thread
        self.checkpointer = checkpointer
        self.path = path
    }

    // A store dropped without close() still lets its thread exit (the handle closes the connection in its own deinit).
    deinit {
        checkpointer.stop()
        thread.stop()
    }

    /// Opens (creating it with mode 0600 if missing) the database file and sets WAL mode, a busy timeout and
    /// foreign keys; checkpoints run on a second connection (``SQLiteCheckpointer``).
    static func open(path: String, busyTimeout: Duration, logger: Logger) async throws -> SQLiteDriver {
        let fd = Foundation.open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError.unavailable("cannot open the SQLite database \(path): \(String(cString: strerror(errno)))")
        }
        Foundation.close(fd)

        let handle: SQLiteHandle
        let checkpointer: SQLiteCheckpointer
        do {
            handle = try SQLiteHandle(path: path)
            checkpointer = try SQLiteCheckpointer(path: path, logger: logger)
        } catch {
            throw StoreError.unavailable("cannot open the SQLite database \(path): \(error)")
        }
        let driver = SQLiteDriver(handle: handle, thread: SQLiteThread(name: "certdeploy-sqlite"), checkpointer: checkpointer, path: path)
        do {
            try await driver.onThread {
                let milliseconds = busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000
                handle.setBusyTimeout(milliseconds: Int32(clamping: milliseconds))
                let mode = try handle.query("PRAGMA journal_mode = WAL", []).first.flatMap { try? $0.string("journal_mode") }
                guard mode?.lowercased() == "wal" else {
                    throw StoreError.unavailable("SQLite database \(path) did not switch to WAL mode (journal_mode is \(mode ?? "unknown"))")
                }
                _ = try handle.query("PRAGMA synchronous = NORMAL", [])
                _ = try handle.query("PRAGMA foreign_keys = ON", [])
                handle.onWALCommit { pages in checkpointer.logGrew(toPages: pages) }
            }
        } catch {
            try? await driver.close()
            throw Self.map(error)
        }
        return driver
    }

    func transaction<Result: Sendable>(
        write: Bool, _ body: @Sendable (any SQLTransaction) async throws -> Result
    ) async throws -> Result {
        try await runToCompletion(on: thread) {
            try await self.lock.withLock {
                let tx = Transaction(handle: self.handle)
                do {
                    try tx.raw(write ? "BEGIN IMMEDIATE" : "BEGIN")
                } catch {
                    throw Self.map(error)
                }
                do {
                    let result = try await body(tx)
                    try tx.raw("COMMIT")
                    return result
                } catch {
                    try? tx.raw("ROLLBACK")
                    throw Self.map(error)
                }
            }
        }
    }

    /// Runs `work` on the connection's thread, holding the lock.
    private func onThread<T: Sendable>(_ work: @Sendable @escaping () throws -> T) async throws -> T {
        try await runToCompletion(on: thread) { try await self.lock.withLock { try work() } }
    }

    /// Log frames the background checkpoints have copied into the database file so far (tests).
    var backgroundCheckpointFrames: Int { checkpointer.copiedFrames }

    func close() async throws {
        // The checkpointer first, so the last connection's close can checkpoint the whole log and remove it.
        try await onThread { [handle, checkpointer] in
            checkpointer.stop()
            handle.close()
        }
        thread.stop()
    }

    /// Maps SQLite errors to `StoreError` (others pass through).
    static func map(_ error: any Error) -> any Error {
        guard let error = error as? SQLiteFailure else { return error }
        switch error.code {
        case SQLiteFailure.constraintUnique, SQLiteFailure.constraintPrimaryKey:
            // "UNIQUE constraint failed: targets.name"
            return StoreError.conflict(field: ConstraintNames.field(forSQLiteMessage: error.message))
        case SQLiteFailure.constraintForeignKey:
            return StoreError.conflict(field: "reference")
        default:
            switch error.primaryCode {
            case SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CANTOPEN, SQLITE_IOERR:
                return StoreError.unavailable(error.message)
            default:
                return StoreError.database(error.description)
            }
        }
    }

    /// Statements of one transaction: synchronous C calls on the connection's thread (the caller is already there).
    private struct Transaction: SQLTransaction {
        let handle: SQLiteHandle

        func raw(_ sql: String) throws {
            _ = try handle.query(sql, [])
        }

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try handle.query(sql, binds)
        }
    }
}
