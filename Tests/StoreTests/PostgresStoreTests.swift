import Foundation
import NIOConcurrencyHelpers
import XCTest

@testable import Store
import TestSupport

/// The store contract on a private PostgreSQL (one server for the class, a fresh database per test), plus
/// several replicas sharing one queue.
final class PostgresStoreTests: StoreContractTests {
    /// One server for the whole class (started in `setUp()`, stopped in `tearDown()`), or why it did not start.
    private static let server = NIOLockedValueBox<Result<PostgresServer, HarnessError>?>(nil)
    private var url: String?

    override class func setUp() {
        super.setUp()
        do {
            let started = try PostgresServer.start()
            server.withLockedValue { $0 = .success(started) }
        } catch {
            server.withLockedValue { $0 = .failure(HarnessError("PostgreSQL did not start: \(error)")) }
        }
    }

    override class func tearDown() {
        let current = server.withLockedValue { current in
            defer { current = nil }
            return current
        }
        if case .success(let server)? = current { server.stop() }
        super.tearDown()
    }

    private func runningServer() throws -> PostgresServer {
        guard let result = Self.server.withLockedValue({ $0 }) else { throw HarnessError("PostgreSQL was not started") }
        return try result.get()
    }

    override func makeStore() async throws -> any Store {
        let server = try runningServer()
        let url = server.url(database: try server.createDatabase())
        self.url = url
        let store = try await PostgresStore.open(url: url, maximumConnections: 8, clock: clock.function)
        addTeardownBlock { try? await store.close() }
        return store
    }

    override func reopenStore() async throws -> any Store {
        let store = try await PostgresStore.open(url: try XCTUnwrap(url), maximumConnections: 4, clock: clock.function)
        addTeardownBlock { try? await store.close() }
        return store
    }

    func testTwoReplicasShareTheQueueWithoutDoubleDeploys() async throws {
        let setup = try await makeStore()
        let targets = try await seed(setup, targets: 50)
        var enqueued: [DeploymentRecord] = []
        for _ in 0..<4 {
            for target in targets { enqueued.append(try await enqueue(setup, target)) }
        }
        XCTAssertEqual(enqueued.count, 200)
        let order = Dictionary(uniqueKeysWithValues: enqueued.enumerated().map { ($1.id, $0) })

        // Two replicas: independent stores, each with its own connection pool, four workers each.
        let url = try XCTUnwrap(self.url)
        let replicas = [
            try await PostgresStore.open(url: url, maximumConnections: 4),
            try await PostgresStore.open(url: url, maximumConnections: 4),
        ]
        for replica in replicas { addTeardownBlock { try? await replica.close() } }

        struct Ledger {
            var claims: [UUID: String] = [:]
            var running: [UUID: UUID] = [:]  // target → deployment
            var startOrder: [UUID: [UUID]] = [:]  // target → deployments in the order they started
            var perReplica = [0, 0]
            var completed = 0
            var violations: [String] = []
        }
        let ledger = NIOLockedValueBox(Ledger())
        let deadline = Date().addingTimeInterval(40)
        let now = clock.now  // the deployments were queued at the test clock's time

        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, replica) in replicas.enumerated() {
                for worker in 0..<4 {
                    let owner = "replica\(index)-worker\(worker)"
                    group.addTask {
                        while ledger.withLockedValue({ $0.completed }) < 200, Date() < deadline {
                            let claimed = try await replica.claimNext(owner: owner, leaseDuration: .seconds(60), limit: 2, now: now)
                            if claimed.isEmpty {
                                try await Task.sleep(for: .milliseconds(2))
                                continue
                            }
                            ledger.withLockedValue { ledger in
                                for deployment in claimed {
                                    if let other = ledger.claims[deployment.id] {
                                        ledger.violations.append("\(deployment.id) claimed by \(other) and \(owner)")
                                    }
                                    ledger.claims[deployment.id] = owner
                                    if let other = ledger.running[deployment.targetID] {
                                        ledger.violations.append("target \(deployment.targetID) runs \(other) and \(deployment.id)")
                                    }
                                    ledger.running[deployment.targetID] = deployment.id
                                    ledger.startOrder[deployment.targetID, default: []].append(deployment.id)
                                    ledger.perReplica[index] += 1
                                }
                            }
                            try await Task.sleep(for: .milliseconds(1))  // the "deploy"
                            for deployment in claimed {
                                // Off the ledger before the database hears of it: a correct store cannot let anyone
                                // start this target's next deployment until `complete` has committed.
                                ledger.withLockedValue { _ = $0.running.removeValue(forKey: deployment.targetID) }
                                _ = try await replica.complete(
                                    deploymentID: deployment.id, owner: owner,
                                    completion: try DeploymentCompletion(outcome: .succeeded, steps: []), now: now)
                                ledger.withLockedValue { $0.completed += 1 }
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }

        let result = ledger.withLockedValue { $0 }
        XCTAssertEqual(result.violations, [])
        XCTAssertEqual(result.completed, 200)
        XCTAssertEqual(result.claims.count, 200)
        XCTAssertGreaterThan(result.perReplica[0], 0, "replica 0 claimed nothing: \(result.perReplica)")
        XCTAssertGreaterThan(result.perReplica[1], 0, "replica 1 claimed nothing: \(result.perReplica)")
        for (target, started) in result.startOrder {
            XCTAssertEqual(started, started.sorted { order[$0]! < order[$1]! }, "target \(target) ran its deployments out of order")
        }
        let all = try await setup.listDeployments(DeploymentFilter(), limit: 500, cursor: nil).items
        XCTAssertEqual(all.count, 200)
        XCTAssertTrue(all.allSatisfy { $0.status == .succeeded && $0.attempts == 1 }, "every deployment ran exactly once")
    }

    func testConnectsOverTheUnixSocket() async throws {
        let server = try runningServer()
        let database = try server.createDatabase()
        let store = try await PostgresStore.open(
            url: "postgres://postgres@/\(database)?host=\(server.socketDirectory)&port=\(server.port)&application_name=certdeploy-test")
        addTeardownBlock { try? await store.close() }
        _ = try await store.createCertificate(name: "over-the-socket", actor: "alice")
        let seen = try server.psql("SELECT name FROM certificates", database: database)
        XCTAssertEqual(seen.trimmingCharacters(in: .whitespacesAndNewlines), "over-the-socket")
    }

    func testUnreachableServerFailsFastWithTheReason() async throws {
        let port = try FreePort.allocate()
        do {
            _ = try await PostgresStore.open(url: "postgres://postgres@127.0.0.1:\(port)/nothing?sslmode=disable&connect_timeout=5")
            XCTFail("opened a store on a closed port")
        } catch StoreError.unavailable(let message) {
            XCTAssertTrue(message.contains("127.0.0.1:\(port)"), message)
        }
        let server = try runningServer()
        do {
            _ = try await PostgresStore.open(url: server.url(database: "no_such_database"))
            XCTFail("opened a store on a missing database")
        } catch StoreError.unavailable(let message) {
            XCTAssertTrue(message.contains("no_such_database"), message)
        }
    }
}
