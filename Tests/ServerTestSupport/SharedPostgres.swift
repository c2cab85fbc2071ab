import Foundation
import NIOConcurrencyHelpers
import TestSupport

/// One PostgreSQL server for the whole test process (started on first use, stopped at exit), a fresh database
/// per caller.
public enum SharedPostgres {
    private static let server = NIOLockedValueBox<Result<PostgresServer, HarnessError>?>(nil)

    public static func running() throws -> PostgresServer {
        try server.withLockedValue { current in
            if let current { return try current.get() }
            do {
                let started = try PostgresServer.start()
                current = .success(started)
                atexit { SharedPostgres.stopNow() }
                return started
            } catch {
                current = .failure(HarnessError("PostgreSQL did not start: \(error)"))
                throw HarnessError("PostgreSQL did not start: \(error)")
            }
        }
    }

    public static func freshDatabaseURL() throws -> String {
        let server = try running()
        return server.url(database: try server.createDatabase())
    }

    private static func stopNow() {
        if case .success(let server)? = server.withLockedValue({ $0 }) { server.stop() }
    }
}
