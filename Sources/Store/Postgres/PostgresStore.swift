import Foundation
import Logging

extension SQLStore where Backend == PostgresBackend {
    /// Connects to the database named by `url` (see ``PostgresURL`` for the accepted form and `sslmode`) and
    /// applies the migrations it lacks. Fails fast, with the server's reason, when no connection can be made.
    ///
    /// - Parameters:
    ///   - maximumConnections: the pool's size.
    ///   - clock: the time stamped on records and audit events by calls that take no `now`.
    public static func open(
        url: String,
        maximumConnections: Int = 10,
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "certdeploy.store")
    ) async throws -> PostgresStore {
        try await open(url: PostgresURL(parsing: url), maximumConnections: maximumConnections, clock: clock, logger: logger)
    }

    public static func open(
        url: PostgresURL,
        maximumConnections: Int = 10,
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "certdeploy.store")
    ) async throws -> PostgresStore {
        guard maximumConnections > 0 else { throw StoreError.invalidArgument("maximumConnections must be positive") }
        let driver = try await PostgresDriver.open(url: url, maximumConnections: maximumConnections, logger: logger)
        do {
            _ = try await Migrations.apply(
                Migrations.postgres, with: driver, lockStatement: PostgresDriver.migrationLock, now: clock().storePrecision)
        } catch {
            try? await driver.close()
            throw error
        }
        return PostgresStore(driver: driver, location: url.description, clock: clock, logger: logger)
    }
}
