import Foundation
import Logging
import NIOCore
import PostgresNIO

/// A PostgreSQL connection pool (postgres-nio's `PostgresClient`, run by a task this driver owns).
/// Transactions are READ COMMITTED; the job queue's row locks (`FOR UPDATE SKIP LOCKED` on deployments,
/// a `SKIP LOCKED` lock on the target row while claiming) and the partial unique index do the rest. A transaction that hits a deadlock or
/// serialization failure is retried (twice) before the error surfaces.
final class PostgresDriver: SQLDriver {
    /// Held (transaction-scoped) while migrations run, so replicas starting together apply them once.
    /// The two keys are "cd" and "mi" in ASCII.
    static let migrationLock = "SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock(25444, 28009)) AS l"

    let dialect = SQLDialect(
        name: "postgresql",
        skipLockedDeployments: "FOR UPDATE OF d SKIP LOCKED",
        claimTarget: "FOR NO KEY UPDATE SKIP LOCKED",
        keyShare: "FOR KEY SHARE",
        noKeyUpdate: "FOR NO KEY UPDATE",
        forUpdate: "FOR UPDATE",
        forUpdateSkipLocked: "FOR UPDATE SKIP LOCKED")

    private let client: PostgresClient
    private let runTask: Task<Void, Never>
    private let logger: Logger

    private init(client: PostgresClient, runTask: Task<Void, Never>, logger: Logger) {
        self.client = client
        self.runTask = runTask
        self.logger = logger
    }

    /// Checks that one connection can be made (so a wrong password, TLS failure or unreachable host fails
    /// now, with the server's reason), then starts the pool.
    static func open(url: PostgresURL, maximumConnections: Int, logger: Logger) async throws -> PostgresDriver {
        let probeConfiguration = try url.connectionConfiguration()
        let clientConfiguration = try url.clientConfiguration(maximumConnections: maximumConnections)
        do {
            let probe = try await PostgresConnection.connect(configuration: probeConfiguration, id: 0, logger: logger)
            try await probe.close()
        } catch {
            throw StoreError.unavailable("cannot connect to \(url): \(Self.describe(error))")
        }
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        // Started immediately (up to its first suspension, which is after it marks the client running), so
        // the first query does not race it and log postgres-nio's "run() hasn't been called yet" warning.
        let runTask: Task<Void, Never>
        if #available(macOS 26, *) {
            runTask = Task.immediate { await client.run() }
        } else {
            runTask = Task { await client.run() }
        }
        return PostgresDriver(client: client, runTask: runTask, logger: logger)
    }

    func transaction<Result: Sendable>(
        write: Bool, _ body: @Sendable (any SQLTransaction) async throws -> Result
    ) async throws -> Result {
        var attempt = 1
        while true {
            do {
                return try await runToCompletion { try await self.client.withConnection { connection in
                    let tx = Transaction(connection: connection, logger: logger)
                    try await tx.raw("BEGIN")
                    do {
                        let result = try await body(tx)
                        try await tx.raw("COMMIT")
                        return result
                    } catch {
                        try? await tx.raw("ROLLBACK")
                        // An error of the caller's own (a closure given to `rotateSecrets`) passes through unmapped.
                        let isDatabaseError = error is PSQLError || error is StoreError || error is PostgresDecodingError || error is CancellationError
                        throw isDatabaseError ? error : CallerError(underlying: error)
                    }
                } }
            } catch let error as CallerError {
                throw error.underlying
            } catch {
                if attempt < 3, Self.isRetryable(error) {
                    attempt += 1
                    logger.debug("retrying a transaction after \(Self.describe(error))")
                    continue
                }
                throw Self.map(error)
            }
        }
    }

    func close() async throws {
        runTask.cancel()
        await runTask.value
    }

    // MARK: Errors

    /// SQLSTATE classes: 40001 serialization_failure, 40P01 deadlock_detected.
    /// Wraps an error thrown by the caller's code inside a transaction, so it is not mistaken for a pool failure.
    struct CallerError: Error {
        let underlying: any Error
    }

    static func isRetryable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    static func map(_ error: any Error) -> any Error {
        if error is StoreError { return error }
        if let error = error as? PostgresDecodingError {
            return StoreError.corrupt("column \(error.columnName): cannot decode \(error.postgresType) as \(error.targetType)")
        }
        if error is CancellationError { return error }
        guard let error = error as? PSQLError else {
            // Errors of the transaction body were handled above; anything else comes from the pool
            // (shut down, circuit breaker open after failing connects, …): the database is out of reach.
            return StoreError.unavailable(String(describing: error))
        }
        switch error.code {
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            switch state {
            case "23505":
                return StoreError.conflict(field: ConstraintNames.field(forPostgresConstraint: error.serverInfo?[.constraintName]))
            case "23503":
                return StoreError.conflict(field: "reference")
            case "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300":
                return StoreError.unavailable(describe(error))
            default:
                if state.hasPrefix("08") { return StoreError.unavailable(describe(error)) }
                return StoreError.database(describe(error))
            }
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .uncleanShutdown,
            .sslUnsupported, .failedToAddSSLHandler:
            return StoreError.unavailable(describe(error))
        default:
            return StoreError.database(describe(error))
        }
    }

    /// The server's message and SQLSTATE, or the client-side code and cause. Never the query's bind values.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return String(describing: error) }
        if let info = error.serverInfo {
            var text = info[.message] ?? "server error"
            if let state = info[.sqlState] { text += " (SQLSTATE \(state))" }
            if let detail = info[.detail] { text += ": \(detail)" }
            return text
        }
        var text = error.code.description
        if let underlying = error.underlying { text += ": \(underlying)" }
        return text
    }

    // MARK: Statements

    private struct Transaction: SQLTransaction {
        let connection: PostgresConnection
        let logger: Logger

        func raw(_ sql: String) async throws {
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
        }

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            var bindings = PostgresBindings(capacity: binds.count)
            for value in binds {
                switch value {
                case .null: bindings.appendNull()
                case .int(let int): bindings.append(int)
                case .text(let text): bindings.append(text)
                case .blob(let bytes): bindings.append(ByteBuffer(bytes: bytes))
                case .bool(let bool): bindings.append(bool)
                case .uuid(let uuid): bindings.append(uuid)
                }
            }
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).collect()
            return try rows.map(Self.convert)
        }

        static func convert(_ row: PostgresRow) throws -> SQLRow {
            var values: [String: SQLValue] = [:]
            for cell in row {
                guard cell.bytes != nil else {
                    values[cell.columnName] = .null
                    continue
                }
                switch cell.dataType {
                case .uuid: values[cell.columnName] = .uuid(try cell.decode(UUID.self))
                case .int2, .int4, .int8: values[cell.columnName] = .int(try cell.decode(Int64.self))
                case .bool: values[cell.columnName] = .bool(try cell.decode(Bool.self))
                case .bytea: values[cell.columnName] = .blob(Array(try cell.decode(ByteBuffer.self).readableBytesView))
                case .text, .varchar, .name, .bpchar: values[cell.columnName] = .text(try cell.decode(String.self))
                default:
                    throw StoreError.corrupt("column \(cell.columnName): unexpected PostgreSQL type \(cell.dataType)")
                }
            }
            return SQLRow(values)
        }
    }
}

/// Which field a unique or primary-key violation is about, by constraint (PostgreSQL) or by the columns in
/// SQLite's message, so both backends report the same `StoreError.conflict(field:)`.
enum ConstraintNames {
    static func field(forPostgresConstraint name: String?) -> String {
        switch name {
        case "certificates_pkey", "targets_name_unique", "maintenance_windows_name_unique": "name"
        case "targets_pkey", "deployments_pkey": "id"
        case "certificate_versions_pkey": "version"
        case "deployments_one_running_per_target": "targetID"
        case let other: other ?? "unknown"
        }
    }

    /// "UNIQUE constraint failed: targets.name" → "name".
    static func field(forSQLiteMessage message: String) -> String {
        let columns = message.components(separatedBy: "failed: ").last ?? message
        switch columns {
        case "certificates.name", "targets.name", "maintenance_windows.name": return "name"
        case "targets.id", "deployments.id": return "id"
        case "certificate_versions.certificate_name, certificate_versions.version": return "version"
        case "deployments.target_id": return "targetID"
        default: return columns
        }
    }
}
