import Foundation
import Logging
import NIOCore
import SQLiteNIO

/// One SQLite connection, used by one transaction at a time (an in-process FIFO lock), with write
/// transactions started as `BEGIN IMMEDIATE` so they also exclude other processes on the same file.
final class SQLiteDriver: SQLDriver {
    let dialect = SQLDialect(name: "sqlite", skipLockedDeployments: "", claimTarget: "", keyShare: "", noKeyUpdate: "", forUpdate: "")

    private let connection: SQLiteConnection
    private let lock = AsyncLock()
    let path: String

    private init(connection: SQLiteConnection, path: String) {
        self.connection = connection
        self.path = path
    }

    /// Opens (creating it with mode 0600 if missing) the database file and sets WAL mode, a busy timeout and
    /// foreign keys.
    static func open(path: String, busyTimeout: Duration, logger: Logger) async throws -> SQLiteDriver {
        let fd = Foundation.open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError.unavailable("cannot open the SQLite database \(path): \(String(cString: strerror(errno)))")
        }
        Foundation.close(fd)

        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw StoreError.unavailable("cannot open the SQLite database \(path): \(error)")
        }
        let driver = SQLiteDriver(connection: connection, path: path)
        do {
            // Replaces sqlite-nio's busy handler (which retries without sleeping) by SQLite's sleeping one.
            let milliseconds = busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000
            _ = try await connection.query("PRAGMA busy_timeout = \(milliseconds)")
            let mode = try await connection.query("PRAGMA journal_mode = WAL").first?.column("journal_mode")?.string
            guard mode?.lowercased() == "wal" else {
                throw StoreError.unavailable("SQLite database \(path) did not switch to WAL mode (journal_mode is \(mode ?? "unknown"))")
            }
            _ = try await connection.query("PRAGMA synchronous = NORMAL")
            _ = try await connection.query("PRAGMA foreign_keys = ON")
        } catch {
            try? await connection.close()
            throw Self.map(error)
        }
        return driver
    }

    func transaction<Result: Sendable>(
        write: Bool, _ body: @Sendable (any SQLTransaction) async throws -> Result
    ) async throws -> Result {
        try await runToCompletion { try await self.lockedTransaction(write: write, body) }
    }

    private func lockedTransaction<Result: Sendable>(
        write: Bool, _ body: @Sendable (any SQLTransaction) async throws -> Result
    ) async throws -> Result {
        try await lock.withLock {
            let tx = Transaction(connection: connection)
            do {
                try await tx.raw(write ? "BEGIN IMMEDIATE" : "BEGIN")
            } catch {
                throw Self.map(error)
            }
            do {
                let result = try await body(tx)
                try await tx.raw("COMMIT")
                return result
            } catch {
                try? await tx.raw("ROLLBACK")
                throw Self.map(error)
            }
        }
    }

    func close() async throws {
        try await lock.withLock {
            if !connection.isClosed { try await connection.close() }
        }
    }

    /// Maps SQLite errors to `StoreError` (others pass through).
    static func map(_ error: any Error) -> any Error {
        guard let error = error as? SQLiteError else { return error }
        switch error.reason {
        case .constraintUniqueFailed, .constraintPrimaryKeyFailed:
            // "UNIQUE constraint failed: targets.name"
            return StoreError.conflict(field: ConstraintNames.field(forSQLiteMessage: error.message))
        case .constraintForeignKeyFailed:
            return StoreError.conflict(field: "reference")
        case .busy, .busyTimeout, .busyInRecovery, .busyInSnapshot, .locked, .cantOpen, .ioError:
            return StoreError.unavailable(error.message)
        default:
            return StoreError.database(error.description)
        }
    }

    private struct Transaction: SQLTransaction {
        let connection: SQLiteConnection

        func raw(_ sql: String) async throws {
            _ = try await connection.query(sql, [])
        }

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            let rows = try await connection.query(Self.sqliteSQL(sql), binds.map(Self.sqliteData))
            return try rows.map { row in
                var values: [String: SQLValue] = [:]
                for column in row.columns {
                    switch column.data {
                    case .integer(let int): values[column.name] = .int(Int64(int))
                    case .text(let text): values[column.name] = .text(text)
                    case .blob(let buffer): values[column.name] = .blob(Array(buffer.readableBytesView))
                    case .null: values[column.name] = .null
                    case .float(let double):  // the schema has no REAL columns
                        throw StoreError.corrupt("column \(column.name): unexpected floating-point value \(double)")
                    }
                }
                return SQLRow(values)
            }
        }

        /// `$1` → `?1` (numbered parameters; the store's SQL has no `$` anywhere else). Byte-wise over UTF-8 (an ASCII
        /// byte never occurs inside a multi-byte sequence): Foundation's `replacingOccurrences` cost ~15 µs a query.
        static func sqliteSQL(_ sql: String) -> String {
            String(decoding: sql.utf8.map { $0 == UInt8(ascii: "$") ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
        }

        static func sqliteData(_ value: SQLValue) -> SQLiteData {
            switch value {
            case .null: .null
            case .int(let int): .integer(SQLiteInt64(int))
            case .text(let text): .text(text)
            case .blob(let bytes): .blob(ByteBuffer(bytes: bytes))
            case .bool(let bool): .integer(bool ? 1 : 0)
            case .uuid(let uuid): .text(uuid.uuidString.lowercased())
            }
        }
    }
}
