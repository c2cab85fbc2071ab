import Foundation
import XCTest

@testable import Store
import TestSupport

/// The store contract on SQLite, plus what only SQLite has (the file, WAL mode).
final class SQLiteStoreTests: StoreContractTests {
    private var path: String?

    override func makeStore() async throws -> any Store {
        let dir = try TemporaryDirectory(prefix: "certdeploy-store")
        addTeardownBlock { dir.remove() }
        let path = dir.file("data/\(SQLiteStore.fileName)")
        self.path = path
        let store = try await SQLiteStore.open(dataDirectory: dir.file("data"), clock: clock.function)
        addTeardownBlock { try? await store.close() }
        return store
    }

    override func reopenStore() async throws -> any Store {
        let store = try await SQLiteStore.open(path: try XCTUnwrap(path), clock: clock.function)
        addTeardownBlock { try? await store.close() }
        return store
    }

    func testDatabaseFileIsPrivateAndInWALMode() async throws {
        let store = try await makeStore()
        let path = try XCTUnwrap(self.path)
        let dataDir = (path as NSString).deletingLastPathComponent
        let fileMode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        XCTAssertEqual(fileMode & 0o777, 0o600)
        let dirMode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: dataDir)[.posixPermissions] as? Int)
        XCTAssertEqual(dirMode & 0o777, 0o700)
        let mode = try await rawSQL(store, "PRAGMA journal_mode")
        XCTAssertEqual(try mode.first?.string("journal_mode"), "wal")
        let foreignKeys = try await rawSQL(store, "PRAGMA foreign_keys")
        XCTAssertEqual(try foreignKeys.first?.int("foreign_keys"), 1)
        _ = try await store.createCertificate(name: "web", actor: "alice")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "-wal"))
    }

    func testTwoStoresOnOneFileShareTheQueue() async throws {
        // Two processes' worth of connections on one file: BEGIN IMMEDIATE makes each claim exclusive.
        let first = try await makeStore()
        let second = try await reopenStore()
        let targets = try await seed(first, targets: 3)
        for target in targets { _ = try await enqueue(first, target) }
        for target in targets { _ = try await enqueue(second, target) }
        let now = clock.now
        async let a = first.claimNext(owner: "a", leaseDuration: .seconds(60), limit: 3, now: now)
        async let b = second.claimNext(owner: "b", leaseDuration: .seconds(60), limit: 3, now: now)
        let claimed = try await a + b
        XCTAssertEqual(claimed.count, 3)
        XCTAssertEqual(Set(claimed.map(\.targetID)).count, 3)
    }

    func testALargeLogIsCheckpointedInTheBackgroundAndWritesGoOn() async throws {
        let store = try await makeStore()
        let driver = try XCTUnwrap((store as? any SQLBackedStore)?.driver as? SQLiteDriver)
        XCTAssertEqual(driver.backgroundCheckpointFrames, 0)
        // One commit of about 17 MB: past the 4,000-page threshold at 4 KiB pages.
        _ = try await rawSQL(store, "CREATE TABLE filler (bytes BLOB)")
        _ = try await rawSQL(store, "INSERT INTO filler VALUES (randomblob(17000000))")
        let deadline = Date().addingTimeInterval(20)
        while driver.backgroundCheckpointFrames < Int(SQLiteCheckpointer.threshold), Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertGreaterThanOrEqual(driver.backgroundCheckpointFrames, Int(SQLiteCheckpointer.threshold),
                                    "the checkpoint connection copied the log into the database file")
        // The writer goes on, and the data is there after a reopen (which reads the database file).
        _ = try await store.createCertificate(name: "after-checkpoint", actor: "alice")
        try await store.close()
        let reopened = try await reopenStore()
        let rows = try await rawSQL(reopened, "SELECT length(bytes) AS size FROM filler")
        XCTAssertEqual(try rows.first?.int("size"), 17_000_000)
        _ = try await reopened.certificate(named: "after-checkpoint")
    }
}
