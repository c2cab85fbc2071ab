import Foundation
import VaporCSQLite

/// An SQLite result code with the connection's message, as SQLite reports a failure.
struct SQLiteFailure: Error, CustomStringConvertible {
    /// The extended result code (`SQLITE_CONSTRAINT_UNIQUE`, …); `code & 0xff` is the primary one.
    let code: Int32
    let message: String

    var primaryCode: Int32 { code & 0xff }

    // Extended codes are function-like macros in sqlite3.h, which Swift does not import.
    static let constraintUnique = SQLITE_CONSTRAINT | (8 << 8)
    static let constraintPrimaryKey = SQLITE_CONSTRAINT | (6 << 8)
    static let constraintForeignKey = SQLITE_CONSTRAINT | (3 << 8)
    var description: String { "SQLite error \(code): \(message)" }
}

/// One SQLite connection through the C API (the SQLite that sqlite-nio builds, whose symbols it prefixes), with its
/// prepared statements cached by SQL text.
///
/// Not thread-safe: the driver uses it from one transaction at a time, on ``SQLiteThread``; the checkpoint connection
/// only from ``SQLiteCheckpointer``'s thread.
final class SQLiteHandle: @unchecked Sendable {
    // @unchecked Sendable: every use is serialised by the handle's owner: SQLiteDriver's transaction lock (one caller
    // at a time), or for the checkpoint connection SQLiteCheckpointer's own thread.
    private var database: OpaquePointer?
    private var statements: [String: CachedStatement] = [:]
    private var walHook: WALHook?
    /// Statements built with a variable number of placeholders would grow the cache without end; past this it starts over.
    private static let cacheLimit = 256

    private struct CachedStatement {
        let statement: OpaquePointer
        let columns: SQLColumns
    }

    /// Opens (creating if missing) the database file. No mutex inside SQLite: the driver serialises all use.
    init(path: String) throws {
        var database: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite_nio_sqlite3_open_v2(path, &database, flags, nil)
        guard status == SQLITE_OK, let database else {
            let message = database.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite_nio_sqlite3_close_v2(database)
            throw SQLiteFailure(code: status, message: message)
        }
        self.database = database
        sqlite_nio_sqlite3_extended_result_codes(database, 1)
    }

    deinit { close() }

    var isOpen: Bool { database != nil }

    /// How long a statement waits for another process's lock before failing with `SQLITE_BUSY`.
    func setBusyTimeout(milliseconds: Int32) {
        sqlite_nio_sqlite3_busy_timeout(database, milliseconds)
    }

    /// Runs one statement (`$1`… placeholders) with `binds` and returns its rows.
    func query(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] {
        let cached = try statement(for: sql)
        let statement = cached.statement
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        for (offset, value) in binds.enumerated() {
            try check(bind(value, at: Int32(offset + 1), in: statement))
        }
        var rows: [SQLRow] = []
        let width = cached.columns.count
        while true {
            let status = sqlite_nio_sqlite3_step(statement)
            if status == SQLITE_DONE { return rows }
            guard status == SQLITE_ROW else { throw failure(status) }
            var cells: [SQLValue] = []
            cells.reserveCapacity(width)
            for column in 0..<Int32(width) {
                cells.append(try cell(column, of: statement, named: cached.columns.names[Int(column)]))
            }
            rows.append(SQLRow(columns: cached.columns, cells: cells))
        }
    }

    /// Calls `body` after each commit with the number of pages in the write-ahead log, instead of SQLite's
    /// automatic checkpoint; when `body` returns true the committing connection checkpoints (`PASSIVE`) itself.
    func onWALCommit(_ body: @escaping @Sendable (Int32) -> Bool) {
        let hook = WALHook(body)
        walHook = hook
        sqlite_nio_sqlite3_wal_hook(database, { context, database, schema, pages in
            guard let context else { return SQLITE_OK }
            if Unmanaged<WALHook>.fromOpaque(context).takeUnretainedValue().body(pages) {
                _ = sqlite_nio_sqlite3_wal_checkpoint_v2(database, schema, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(hook).toOpaque())
    }

    /// Owned by the handle so the C hook's context pointer lives exactly as long as the connection.
    private final class WALHook {
        let body: @Sendable (Int32) -> Bool
        init(_ body: @escaping @Sendable (Int32) -> Bool) { self.body = body }
    }

    /// A `PASSIVE` checkpoint: copies what it can of the log into the database without waiting for any lock.
    /// `logFrames` is the log's size and `checkpointedFrames` how much of it is now in the database file.
    func checkpointPassive() -> (status: Int32, logFrames: Int32, checkpointedFrames: Int32, message: String) {
        guard let database else { return (SQLITE_MISUSE, 0, 0, "the database is closed") }
        var logFrames: Int32 = 0
        var checkpointedFrames: Int32 = 0
        let status = sqlite_nio_sqlite3_wal_checkpoint_v2(database, nil, SQLITE_CHECKPOINT_PASSIVE, &logFrames, &checkpointedFrames)
        return (status, logFrames, checkpointedFrames, status == SQLITE_OK ? "" : String(cString: sqlite_nio_sqlite3_errmsg(database)))
    }

    /// Finalizes the cached statements and closes the connection. Idempotent.
    func close() {
        for cached in statements.values { sqlite_nio_sqlite3_finalize(cached.statement) }
        statements = [:]
        if let database {
            if walHook != nil { sqlite_nio_sqlite3_wal_hook(database, nil, nil) }
            sqlite_nio_sqlite3_close_v2(database)
            self.database = nil
        }
    }

    private func statement(for sql: String) throws -> CachedStatement {
        if let cached = statements[sql] { return cached }
        guard database != nil else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the database is closed") }
        if statements.count >= Self.cacheLimit {
            for cached in statements.values { sqlite_nio_sqlite3_finalize(cached.statement) }
            statements = [:]
        }
        // `$1` → `?1`: numbered parameters (the store's SQL has no `$` anywhere else). Byte-wise over UTF-8, where an
        // ASCII byte never occurs inside a multi-byte sequence.
        let sqliteSQL = String(decoding: sql.utf8.map { $0 == UInt8(ascii: "$") ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
        var prepared: OpaquePointer?
        var rest = ""
        let status = sqliteSQL.withCString { text in
            var tail: UnsafePointer<CChar>?
            let status = sqlite_nio_sqlite3_prepare_v3(database, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, &tail)
            rest = tail.map { String(cString: $0) } ?? ""  // points into `text`: read it here
            return status
        }
        guard status == SQLITE_OK, let prepared else {
            sqlite_nio_sqlite3_finalize(prepared)
            throw failure(status)
        }
        if rest.contains(where: { !$0.isWhitespace && $0 != ";" }) {
            sqlite_nio_sqlite3_finalize(prepared)
            throw SQLiteFailure(code: SQLITE_MISUSE, message: "one statement per query, got more: \(sql.prefix(80))")
        }
        let count = sqlite_nio_sqlite3_column_count(prepared)
        let names = (0..<count).map { String(cString: sqlite_nio_sqlite3_column_name(prepared, $0)) }
        let cached = CachedStatement(statement: prepared, columns: SQLColumns(names))
        statements[sql] = cached
        return cached
    }

    private func bind(_ value: SQLValue, at index: Int32, in statement: OpaquePointer) -> Int32 {
        switch value {
        case .null:
            return sqlite_nio_sqlite3_bind_null(statement, index)
        case .int(let int):
            return sqlite_nio_sqlite3_bind_int64(statement, index, int)
        case .bool(let bool):
            return sqlite_nio_sqlite3_bind_int64(statement, index, bool ? 1 : 0)
        case .text(let text):
            return bindText(text, at: index, in: statement)
        case .uuid(let uuid):
            // Lowercase text, so SQLite's text order is PostgreSQL's uuid byte order.
            return bindText(uuid.lowercasedText, at: index, in: statement)
        case .blob(let bytes):
            return bytes.withUnsafeBytes { buffer in
                // A zero-length blob still needs a non-NULL pointer, or SQLite binds NULL.
                sqlite_nio_sqlite3_bind_blob(statement, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buffer.count), Self.transient)
            }
        }
    }

    private func bindText(_ text: String, at index: Int32, in statement: OpaquePointer) -> Int32 {
        // An empty string's buffer may have no address, and a NULL pointer would bind NULL: "" is still text.
        if text.isEmpty { return sqlite_nio_sqlite3_bind_text(statement, index, "", 0, Self.transient) }
        var text = text
        return text.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                sqlite_nio_sqlite3_bind_text(statement, index, chars.baseAddress, Int32(chars.count), Self.transient)
            }
        }
    }

    private func cell(_ column: Int32, of statement: OpaquePointer, named name: String) throws -> SQLValue {
        switch sqlite_nio_sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER:
            return .int(sqlite_nio_sqlite3_column_int64(statement, column))
        case SQLITE_TEXT:
            let bytes = sqlite_nio_sqlite3_column_text(statement, column)
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            return .text(bytes.map { String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self) } ?? "")
        case SQLITE_BLOB:
            let bytes = sqlite_nio_sqlite3_column_blob(statement, column)
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            return .blob(bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? [])
        case SQLITE_NULL:
            return .null
        default:  // the schema has no REAL columns
            throw StoreError.corrupt("column \(name): unexpected floating-point value")
        }
    }

    private func check(_ status: Int32) throws {
        if status != SQLITE_OK { throw failure(status) }
    }

    private func failure(_ status: Int32) -> SQLiteFailure {
        guard let database else { return SQLiteFailure(code: status, message: "the database is closed") }
        return SQLiteFailure(code: sqlite_nio_sqlite3_extended_errcode(database), message: String(cString: sqlite_nio_sqlite3_errmsg(database)))
    }

    /// `SQLITE_TRANSIENT`: SQLite copies the bound bytes before the call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
