/// Runs `operation` to its end even when the calling task is cancelled. A transaction cut off between `BEGIN` and
/// `COMMIT`/`ROLLBACK` (a client hanging up on an event stream, a heartbeat task cancelled at the end of a deploy)
/// would leave the connection inside the transaction: on SQLite the next `BEGIN` fails with "cannot start a
/// transaction within a transaction", on PostgreSQL a pooled connection would go back mid-transaction. Transactions are
/// short, so finishing them is cheaper than any repair.
///
/// - Parameter executor: where `operation` runs (nil: the global concurrent executor).
func runToCompletion<T: Sendable>(on executor: (any TaskExecutor)? = nil, _ operation: @Sendable () async throws -> T) async throws -> T {
    // The child task is awaited before this function returns, so `operation` does not really escape.
    try await withoutActuallyEscaping(operation) { escapable in
        try await Task(executorPreference: executor) { try await escapable() }.value
    }
}
