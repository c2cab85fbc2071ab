import Foundation
import Logging

extension SQLStore where Backend == SQLiteBackend {
    /// The database file's name under the data directory.
    public static var fileName: String { "certdeploy.sqlite" }

    /// Opens (creating it, mode 0600, if missing) the SQLite database at `path` in WAL mode and applies the
    /// migrations it lacks.
    ///
    /// - Parameters:
    ///   - busyTimeout: how long a write waits for another process holding the database's write lock.
    ///   - clock: the time stamped on records and audit events by calls that take no `now`.
    public static func open(
        path: String,
        busyTimeout: Duration = .seconds(5),
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "certdeploy.store")
    ) async throws -> SQLiteStore {
        let driver = try await SQLiteDriver.open(path: path, busyTimeout: busyTimeout, logger: logger)
        do {
            _ = try await Migrations.apply(Migrations.sqlite, with: driver, lockStatement: nil, now: clock().storePrecision)
        } catch {
            try? await driver.close()
            throw error
        }
        return SQLiteStore(driver: driver, location: path, clock: clock, logger: logger)
    }

    /// Opens `<dataDirectory>/certdeploy.sqlite`, creating the directory (mode 0700) if needed.
    public static func open(
        dataDirectory: String,
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "certdeploy.store")
    ) async throws -> SQLiteStore {
        do {
            try FileManager.default.createDirectory(
                atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw StoreError.unavailable("cannot create the data directory \(dataDirectory): \(error)")
        }
        return try await open(path: (dataDirectory as NSString).appendingPathComponent(fileName), clock: clock, logger: logger)
    }
}
