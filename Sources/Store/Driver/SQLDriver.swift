import Foundation

// The small SQL layer both backends implement. The store's logic (SQLStore and its extensions) is written
// once against it; each backend supplies a driver (connection handling, binding, error mapping) and a
// dialect (the few places where SQLite and PostgreSQL differ).

/// A value bound to, or read from, a statement.
enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case text(String)
    case blob([UInt8])
    case bool(Bool)
    /// PostgreSQL binds a `uuid`; SQLite binds lowercase text (so text order equals PostgreSQL's byte order).
    case uuid(UUID)

    static func optional(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
    static func time(_ date: Date) -> SQLValue { .int(date.unixMicroseconds) }
    static func int(_ value: Int) -> SQLValue { .int(Int64(value)) }
}

/// A result's column names and where each is in a row, shared by all the rows of one statement.
final class SQLColumns: Sendable {
    let names: [String]
    private let index: [String: Int]

    init(_ names: [String]) {
        self.names = names
        self.index = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }

    var count: Int { names.count }
    func position(of name: String) -> Int? { index[name] }
}

/// One result row, by column name.
struct SQLRow: Sendable {
    private let columns: SQLColumns
    private let cells: [SQLValue]

    init(columns: SQLColumns, cells: [SQLValue]) {
        self.columns = columns
        self.cells = cells
    }

    init(_ values: [String: SQLValue]) {
        let names = Array(values.keys)
        self.init(columns: SQLColumns(names), cells: names.map { values[$0]! })
    }

    private func cell(_ column: String) -> SQLValue? {
        columns.position(of: column).map { cells[$0] }
    }

    private func value(_ column: String) throws -> SQLValue {
        guard let value = cell(column) else {
            throw StoreError.corrupt("column \(column) missing from the result")
        }
        return value
    }

    private func mismatch(_ column: String, _ expected: String, _ value: SQLValue) -> StoreError {
        .corrupt("column \(column): expected \(expected), found \(value)")
    }

    func isNull(_ column: String) -> Bool { cell(column).map { $0 == .null } ?? true }

    func string(_ column: String) throws -> String {
        switch try value(column) {
        case .text(let text): return text
        case let other: throw mismatch(column, "text", other)
        }
    }

    func optionalString(_ column: String) throws -> String? {
        isNull(column) ? nil : try string(column)
    }

    func int64(_ column: String) throws -> Int64 {
        switch try value(column) {
        case .int(let int): return int
        case let other: throw mismatch(column, "integer", other)
        }
    }

    func optionalInt64(_ column: String) throws -> Int64? {
        isNull(column) ? nil : try int64(column)
    }

    func int(_ column: String) throws -> Int {
        let raw = try int64(column)
        guard let value = Int(exactly: raw) else { throw StoreError.corrupt("column \(column): \(raw) out of range") }
        return value
    }

    func bool(_ column: String) throws -> Bool {
        switch try value(column) {
        case .bool(let bool): return bool
        case .int(let int): return int != 0
        case let other: throw mismatch(column, "boolean", other)
        }
    }

    func bytes(_ column: String) throws -> [UInt8] {
        switch try value(column) {
        case .blob(let bytes): return bytes
        case let other: throw mismatch(column, "blob", other)
        }
    }

    func uuid(_ column: String) throws -> UUID {
        switch try value(column) {
        case .uuid(let uuid): return uuid
        case .text(let text):
            guard let uuid = UUID(text: text) else { throw StoreError.corrupt("column \(column): \(text) is not a UUID") }
            return uuid
        case let other: throw mismatch(column, "uuid", other)
        }
    }

    func date(_ column: String) throws -> Date { Date(unixMicroseconds: try int64(column)) }

    func optionalDate(_ column: String) throws -> Date? {
        isNull(column) ? nil : try date(column)
    }
}

/// Statements inside one transaction. SQL uses `$1, $2, …` placeholders in both dialects.
protocol SQLTransaction: Sendable {
    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
}

extension SQLTransaction {
    @discardableResult
    func query(_ sql: String) async throws -> [SQLRow] { try await query(sql, []) }
}

/// Where the dialects differ: PostgreSQL's row-lock clauses (SQLite needs none, its write transactions
/// already hold the single database write lock, so each is "" there).
struct SQLDialect: Sendable {
    /// "sqlite" or "postgresql" (for messages).
    let name: String
    /// On the SELECT of queued deployments `d` to claim: other claimers skip the rows this one looks at.
    let skipLockedDeployments: String
    /// On the SELECT of a target before one of its deployments becomes running: a claimer holds its target
    /// row for the rest of the transaction, and skips targets another transaction holds (a concurrent claim,
    /// or a delete).
    let claimTarget: String
    /// On the SELECT of a parent row a new row will depend on (the target and certificate of a new
    /// deployment): a concurrent delete waits for this transaction, and this one for it.
    let keyShare: String
    /// On the SELECT of a row about to be updated (not its key): a target being edited, a certificate
    /// getting a new version.
    let noKeyUpdate: String
    /// On the SELECT of a row about to be deleted.
    let forUpdate: String
    /// On the SELECT of rows one replica works on (open rollouts): another replica skips them instead of waiting.
    let forUpdateSkipLocked: String
}

/// A backend connection: runs transactions and maps its errors to `StoreError`.
protocol SQLDriver: Sendable {
    var dialect: SQLDialect { get }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws. `write`
    /// transactions on SQLite start with `BEGIN IMMEDIATE` (the single writer). Errors come out as
    /// `StoreError` (or whatever `body` threw).
    func transaction<Result: Sendable>(
        write: Bool, _ body: @Sendable (any SQLTransaction) async throws -> Result
    ) async throws -> Result

    func close() async throws
}

/// One schema change, as the statements that make it. Versions start at 1 and never change once released.
struct Migration: Sendable {
    let version: Int
    let name: String
    let statements: [String]
}

extension Date {
    /// Microseconds since 1970: how both backends store time (PostgreSQL's `timestamptz` resolution, and
    /// exact round trips through either backend).
    var unixMicroseconds: Int64 { Int64((timeIntervalSince1970 * 1_000_000).rounded()) }

    init(unixMicroseconds: Int64) {
        self.init(timeIntervalSince1970: Double(unixMicroseconds) / 1_000_000)
    }

    /// This date as the store keeps it (whole microseconds).
    var storePrecision: Date { Date(unixMicroseconds: unixMicroseconds) }
}
