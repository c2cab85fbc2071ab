import Core
import Foundation
import NIOConcurrencyHelpers
import XCTest

@testable import Store

/// The behaviour every `Store` backend must have. Runs once per backend: `SQLiteStoreTests` and
/// `PostgresStoreTests` subclass it and say how to open a fresh store. (Run on this base class itself,
/// every test is skipped.)
class StoreContractTests: XCTestCase {
    let clock = TestClock()

    /// A new, empty store on the backend under test (closed after the test).
    func makeStore() async throws -> any Store {
        throw XCTSkip("StoreContractTests is abstract: its subclasses run it against each backend")
    }

    /// The store `makeStore()` opened last, opened again (migrations run again).
    func reopenStore() async throws -> any Store {
        throw XCTSkip("abstract")
    }

    // MARK: - Certificates

    func testCertificatesCreateVersionsGetListDelete() async throws {
        let store = try await makeStore()
        let created = try await store.createCertificate(name: "web", actor: "alice")
        XCTAssertEqual(created.name, "web")
        XCTAssertEqual(created.createdAt, clock.now.storePrecision)
        XCTAssertNil(created.latestVersion)
        await assertThrows(.conflict(field: "name"), try await store.createCertificate(name: "web", actor: "alice"))
        await assertInvalidArgument(try await store.createCertificate(name: "", actor: "alice"))

        clock.advance(by: 60)
        let v1 = try await store.addCertificateVersion(Fixture.version("web", 1, mustStaple: true), actor: "alice")
        let v2 = try await store.addCertificateVersion(Fixture.version("web", 2), actor: "bob")
        XCTAssertEqual([v1.version, v2.version], [1, 2])
        let expected = Fixture.version("web", 1, mustStaple: true)
        XCTAssertEqual(v1.certificatePEM, expected.certificatePEM)
        XCTAssertEqual(v1.chainPEM, expected.chainPEM)
        XCTAssertEqual(v1.encryptedPrivateKey, expected.encryptedPrivateKey)
        XCTAssertEqual(v1.sha256, expected.sha256)
        XCTAssertEqual(v1.notAfter.unixMicroseconds, expected.notAfter.unixMicroseconds)
        XCTAssertEqual(v1.subjectAlternativeNames, expected.subjectAlternativeNames)
        XCTAssertTrue(v1.mustStaple)
        XCTAssertFalse(v2.mustStaple)

        let fetched = try await store.certificate(named: "web")
        XCTAssertEqual(fetched.latestVersion, 2)
        XCTAssertEqual(fetched.updatedAt, clock.now.storePrecision)
        await assertEqual(try await store.certificateVersion(name: "web", version: nil), v2)
        await assertEqual(try await store.certificateVersion(name: "web", version: 1), v1)
        await assertEqual(try await store.certificateVersions(name: "web"), [v1, v2])

        await assertThrows(.notFound(objectType: "certificate", id: "nope"), try await store.certificate(named: "nope"))
        await assertThrows(.notFound(objectType: "certificateVersion", id: "web@9"), try await store.certificateVersion(name: "web", version: 9))
        await assertThrows(.notFound(objectType: "certificate", id: "nope"), try await store.certificateVersion(name: "nope", version: nil))
        await assertThrows(.notFound(objectType: "certificate", id: "nope"), try await store.certificateVersions(name: "nope"))
        await assertThrows(
            .notFound(objectType: "certificate", id: "nope"), try await store.addCertificateVersion(Fixture.version("nope"), actor: "alice"))
        var badHash = Fixture.version("web", 3)
        badHash.sha256 = "ABC"
        await assertInvalidArgument(try await store.addCertificateVersion(badHash, actor: "alice"))

        // Listing: by name, prefix, pages.
        for name in ["api", "web-2", "web-1", "mail"] { _ = try await store.createCertificate(name: name, actor: "alice") }
        let all = try await store.listCertificates(namePrefix: nil, limit: 500, cursor: nil)
        XCTAssertEqual(all.items.map(\.name), ["api", "mail", "web", "web-1", "web-2"])
        XCTAssertNil(all.nextCursor)
        XCTAssertEqual(all.items.first { $0.name == "web" }?.latestVersion, 2)
        let first = try await store.listCertificates(namePrefix: "web", limit: 2, cursor: nil)
        XCTAssertEqual(first.items.map(\.name), ["web", "web-1"])
        let second = try await store.listCertificates(namePrefix: "web", limit: 2, cursor: try XCTUnwrap(first.nextCursor))
        XCTAssertEqual(second.items.map(\.name), ["web-2"])
        XCTAssertNil(second.nextCursor)

        // Delete: refused while bound or deploying, then gone with its versions.
        let target = try await store.createTarget(Fixture.target("t1", certificate: "web"), actor: "alice")
        await assertThrows(.conflict(field: "targets"), try await store.deleteCertificate(name: "web", actor: "alice"))
        var unbound = target
        unbound.certificateName = nil
        _ = try await store.updateTarget(unbound, actor: "alice")
        let deployment = try await store.enqueue(
            NewDeployment(targetID: target.id, certificateName: "web", certificateVersion: 2), actor: "alice", now: clock.now)
        await assertThrows(.conflict(field: "deployments"), try await store.deleteCertificate(name: "web", actor: "alice"))
        _ = try await store.cancel(deploymentID: deployment.id, actor: "alice", now: clock.now)
        try await store.deleteCertificate(name: "web", actor: "alice")
        await assertThrows(.notFound(objectType: "certificate", id: "web"), try await store.certificate(named: "web"))
        await assertThrows(.notFound(objectType: "certificate", id: "web"), try await store.deleteCertificate(name: "web", actor: "alice"))
        let versions = try await rawSQL(store, "SELECT COUNT(*) AS n FROM certificate_versions WHERE certificate_name = 'web'")
        XCTAssertEqual(try versions.first?.int("n"), 0)
    }

    // MARK: - Targets

    func testTargetsCreateGetUpdateDelete() async throws {
        let store = try await makeStore()
        _ = try await store.createCertificate(name: "web", actor: "alice")
        let id = UUID()
        let new = Fixture.target("edge-1", labels: ["env": "prod", "app.kubernetes.io/name": "edge"], certificate: "web")
        var withID = new
        withID.id = id
        let created = try await store.createTarget(withID, actor: "alice")
        XCTAssertEqual(created.id, id)
        XCTAssertEqual(created.name, "edge-1")
        XCTAssertEqual(created.labels, ["env": "prod", "app.kubernetes.io/name": "edge"])
        XCTAssertEqual(created.connectorID, "nginx")
        XCTAssertEqual(created.configJSON, new.configJSON)
        XCTAssertEqual(created.transportJSON, new.transportJSON)
        XCTAssertEqual(created.certificateName, "web")
        XCTAssertEqual(created.version, 1)
        XCTAssertEqual(created.createdAt, clock.now.storePrecision)
        XCTAssertEqual(created.updatedAt, created.createdAt)
        await assertEqual(try await store.target(id: id), created)
        await assertEqual(try await store.target(named: "edge-1"), created)

        await assertThrows(.conflict(field: "name"), try await store.createTarget(Fixture.target("edge-1"), actor: "alice"))
        var sameID = Fixture.target("edge-other")
        sameID.id = id
        await assertThrows(.conflict(field: "id"), try await store.createTarget(sameID, actor: "alice"))
        await assertThrows(
            .notFound(objectType: "certificate", id: "missing"),
            try await store.createTarget(Fixture.target("edge-2", certificate: "missing"), actor: "alice"))
        await assertInvalidArgument(try await store.createTarget(Fixture.target("bad-labels", labels: ["": "x"]), actor: "alice"))
        await assertInvalidArgument(try await store.createTarget(Fixture.target("bad-labels", labels: ["k": "a,b"]), actor: "alice"))
        var badJSON = Fixture.target("bad-json")
        badJSON.configJSON = "{not json"
        await assertInvalidArgument(try await store.createTarget(badJSON, actor: "alice"))
        await assertThrows(.notFound(objectType: "target", id: "missing"), try await store.target(named: "missing"))
        let unknown = UUID()
        await assertThrows(.notFound(objectType: "target", id: unknown.uuidString.lowercased()), try await store.target(id: unknown))

        // Optimistic update.
        clock.advance(by: 30)
        var edit = created
        edit.name = "edge-1a"
        edit.labels = ["env": "staging"]
        edit.configJSON = #"{"certificatePath":"/etc/ssl/new.pem"}"#
        edit.certificateName = nil
        let updated = try await store.updateTarget(edit, actor: "bob")
        XCTAssertEqual(updated.version, 2)
        XCTAssertEqual(updated.name, "edge-1a")
        XCTAssertEqual(updated.labels, ["env": "staging"])
        XCTAssertNil(updated.certificateName)
        XCTAssertEqual(updated.createdAt, created.createdAt)
        XCTAssertEqual(updated.updatedAt, clock.now.storePrecision)
        await assertEqual(try await store.target(id: id), updated)
        await assertThrows(.staleVersion(expected: 1, current: 2), try await store.updateTarget(edit, actor: "carol"))

        let other = try await store.createTarget(Fixture.target("edge-3"), actor: "alice")
        var rename = other
        rename.name = "edge-1a"
        await assertThrows(.conflict(field: "name"), try await store.updateTarget(rename, actor: "alice"))
        await assertEqual(try await store.target(id: other.id).version, 1, "a refused update changes nothing")
        var ghost = other
        ghost.id = unknown
        await assertThrows(.notFound(objectType: "target", id: unknown.uuidString.lowercased()), try await store.updateTarget(ghost, actor: "alice"))

        try await store.deleteTarget(id: id, actor: "alice")
        await assertThrows(.notFound(objectType: "target", id: id.uuidString.lowercased()), try await store.target(id: id))
        await assertThrows(.notFound(objectType: "target", id: id.uuidString.lowercased()), try await store.deleteTarget(id: id, actor: "alice"))
        let labels = try await rawSQL(store, "SELECT COUNT(*) AS n FROM target_labels WHERE target_id = $1", [.uuid(id)])
        XCTAssertEqual(try labels.first?.int("n"), 0, "labels go with the target")
    }

    func testListTargetsWalksEveryPageExactlyOnceWithFilters() async throws {
        let store = try await makeStore()
        let count = 1_234
        // Names in an order unrelated to insertion, some sharing prefixes.
        let names = (0..<count).map { i in String(format: "t%04d", (i * 677) % count) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for (i, name) in names.enumerated() where i % 4 == worker {
                        let number = Int(name.dropFirst())!
                        _ = try await store.createTarget(
                            Fixture.target(
                                name,
                                labels: ["env": number % 2 == 0 ? "prod" : "dev", "team": number % 3 == 0 ? "a" : "b", "n": String(number)],
                                connector: i % 4 == 0 ? "haproxy" : "nginx"),
                            actor: "seeder")
                    }
                }
            }
            try await group.waitForAll()
        }
        let sorted = names.sorted()

        // All, 100 at a time: 13 pages, every target once, in name order.
        var seen: [String] = []
        var pages = 0
        var cursor: String?
        repeat {
            let page = try await store.listTargets(TargetFilter(), limit: 100, cursor: cursor)
            pages += 1
            seen += page.items.map(\.name)
            XCTAssertLessThanOrEqual(page.items.count, 100)
            cursor = page.nextCursor
        } while cursor != nil
        XCTAssertEqual(pages, 13)
        XCTAssertEqual(seen, sorted)
        XCTAssertEqual(Set(seen).count, count)

        // The labels come with each page.
        let firstPage = try await store.listTargets(TargetFilter(), limit: 3, cursor: nil)
        XCTAssertEqual(firstPage.items.map(\.name), ["t0000", "t0001", "t0002"])
        XCTAssertEqual(firstPage.items[1].labels, ["env": "dev", "team": "b", "n": "1"])

        // Filters, alone and combined, walked in small pages.
        func walk(_ filter: TargetFilter, pageSize: Int) async throws -> [String] {
            var names: [String] = []
            var cursor: String?
            repeat {
                let page = try await store.listTargets(filter, limit: pageSize, cursor: cursor)
                names += page.items.map(\.name)
                cursor = page.nextCursor
            } while cursor != nil
            return names
        }
        let number = { (name: String) in Int(name.dropFirst())! }
        let connectorOf = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0 % 4 == 0 ? "haproxy" : "nginx") })
        let prod = try await walk(TargetFilter(labelSelector: "env=prod"), pageSize: 77)
        XCTAssertEqual(prod, sorted.filter { number($0) % 2 == 0 })
        await assertEqual(try await store.allTargets(TargetFilter(labelSelector: "env=prod")).map(\.name), prod)
        let prodTeamA = try await walk(TargetFilter(labelSelector: " env = prod , team=a "), pageSize: 50)
        XCTAssertEqual(prodTeamA, sorted.filter { number($0) % 6 == 0 })
        let haproxy = try await walk(TargetFilter(connectorID: "haproxy"), pageSize: 100)
        XCTAssertEqual(haproxy, sorted.filter { connectorOf[$0] == "haproxy" })
        let prefixed = try await walk(TargetFilter(namePrefix: "t01"), pageSize: 9)
        XCTAssertEqual(prefixed, sorted.filter { $0.hasPrefix("t01") })
        XCTAssertEqual(prefixed.count, 100)
        let combined = try await walk(TargetFilter(labelSelector: "env=dev", connectorID: "nginx", namePrefix: "t1"), pageSize: 13)
        XCTAssertEqual(combined, sorted.filter { $0.hasPrefix("t1") && number($0) % 2 == 1 && connectorOf[$0] == "nginx" })
        await assertEqual(try await walk(TargetFilter(labelSelector: "env=nowhere"), pageSize: 10), [])
        await assertEqual(try await walk(TargetFilter(namePrefix: "t%"), pageSize: 10), [], "the prefix is literal, not a LIKE pattern")
        await assertEqual(try await walk(TargetFilter(labelSelector: "n=42"), pageSize: 10), ["t0042"])

        // A page boundary survives changes: targets that exist throughout come exactly once.
        let page1 = try await store.listTargets(TargetFilter(), limit: 100, cursor: nil)
        try await store.deleteTarget(id: page1.items[99].id, actor: "alice")  // the cursor's own row
        _ = try await store.createTarget(Fixture.target("t0050a"), actor: "alice")  // before the cursor
        _ = try await store.createTarget(Fixture.target("t0500a"), actor: "alice")  // after it
        var rest: [String] = []
        cursor = page1.nextCursor
        while let current = cursor {
            let page = try await store.listTargets(TargetFilter(), limit: 100, cursor: current)
            rest += page.items.map(\.name)
            cursor = page.nextCursor
        }
        XCTAssertEqual(page1.items.map(\.name) + rest, (Array(sorted.prefix(100)) + Array(sorted.dropFirst(100)) + ["t0500a"]).sorted())

        // Bad arguments.
        await assertInvalidArgument(try await store.listTargets(TargetFilter(), limit: 0, cursor: nil))
        await assertInvalidArgument(try await store.listTargets(TargetFilter(), limit: 501, cursor: nil))
        await assertEqual(try await store.listTargets(TargetFilter(), limit: 500, cursor: nil).items.count, 500)
        await assertInvalidArgument(try await store.listTargets(TargetFilter(), limit: 10, cursor: "not-a-cursor"))
        await assertInvalidArgument(try await store.listTargets(TargetFilter(labelSelector: "env"), limit: 10, cursor: nil))
        await assertInvalidArgument(try await store.listTargets(TargetFilter(labelSelector: "=prod"), limit: 10, cursor: nil))
        await assertInvalidArgument(try await store.listTargets(TargetFilter(labelSelector: "env=prod,"), limit: 10, cursor: nil))
    }

    // MARK: - Audit

    func testEveryMutationWritesAnAuditEvent() async throws {
        let store = try await makeStore()
        let start = clock.now.storePrecision
        _ = try await store.createCertificate(name: "web", actor: "alice")
        _ = try await store.addCertificateVersion(Fixture.version("web"), actor: "alice")
        clock.advance(by: 1)
        let target = try await store.createTarget(Fixture.target("t1"), actor: "bob")
        await assertThrows(.conflict(field: "name"), try await store.createTarget(Fixture.target("t1"), actor: "mallory"))
        var edit = target
        edit.labels = ["env": "prod"]
        _ = try await store.updateTarget(edit, actor: "bob")
        let deployment = try await store.enqueue(
            NewDeployment(targetID: target.id, certificateName: "web", certificateVersion: 1), actor: "carol", now: clock.now)
        _ = try await store.cancel(deploymentID: deployment.id, actor: "carol", now: clock.now)
        try await store.deleteTarget(id: target.id, actor: "bob")
        try await store.recordAuditEvent(
            NewAuditEvent(time: clock.now, actor: "anonymous", action: "auth.refused", objectType: "route", objectID: "/api/v1/targets",
                          outcome: "failure", detail: "no API key"))

        let page = try await store.auditEvents(AuditFilter(), limit: 500, cursor: nil)
        let summary = page.items.reversed().map { "\($0.actor) \($0.action) \($0.objectType) \($0.outcome)" }
        XCTAssertEqual(summary, [
            "alice certificate.create certificate success",
            "alice certificate.version.add certificate success",
            "bob target.create target success",
            "mallory target.create target failure",
            "bob target.update target success",
            "carol deployment.enqueue deployment success",
            "carol deployment.cancel deployment success",
            "bob target.delete target success",
            "anonymous auth.refused route failure",
        ])
        XCTAssertEqual(page.items.map(\.id), page.items.map(\.id).sorted(by: >), "newest first")
        let events = Array(page.items.reversed())
        XCTAssertEqual(events[0].time, start)
        XCTAssertEqual(events[0].objectID, "web")
        XCTAssertEqual(events[1].detail, "version 1, SHA-256 \(Fixture.version("web").sha256)")
        XCTAssertEqual(events[2].objectID, target.id.uuidString.lowercased())
        XCTAssertEqual(events[2].time, start.addingTimeInterval(1).storePrecision)
        XCTAssertTrue(events[3].detail?.contains("conflict") ?? false, events[3].detail ?? "")
        XCTAssertEqual(events[5].objectID, deployment.id.uuidString.lowercased())

        // Filters and pages.
        let aboutTarget = try await store.auditEvents(
            AuditFilter(objectType: "target", objectID: target.id.uuidString.lowercased()), limit: 500, cursor: nil)
        XCTAssertEqual(aboutTarget.items.map(\.action), ["target.delete", "target.update", "target.create"])
        let byBob = try await store.auditEvents(AuditFilter(actor: "bob"), limit: 2, cursor: nil)
        XCTAssertEqual(byBob.items.map(\.action), ["target.delete", "target.update"])
        let byBob2 = try await store.auditEvents(AuditFilter(actor: "bob"), limit: 2, cursor: try XCTUnwrap(byBob.nextCursor))
        XCTAssertEqual(byBob2.items.map(\.action), ["target.create"])
        XCTAssertNil(byBob2.nextCursor)
        let creates = try await store.auditEvents(AuditFilter(action: "target.create"), limit: 10, cursor: nil)
        XCTAssertEqual(creates.items.map(\.actor), ["mallory", "bob"])
    }

    // MARK: - Jobs

    /// A certificate "web" with one version and `count` targets.
    func seed(_ store: any Store, targets count: Int) async throws -> [TargetRecord] {
        _ = try await store.createCertificate(name: "web", actor: "alice")
        _ = try await store.addCertificateVersion(Fixture.version("web"), actor: "alice")
        var targets: [TargetRecord] = []
        for i in 0..<count {
            targets.append(try await store.createTarget(Fixture.target(String(format: "t%02d", i), certificate: "web"), actor: "alice"))
        }
        return targets
    }

    func enqueue(_ store: any Store, _ target: TargetRecord) async throws -> DeploymentRecord {
        try await store.enqueue(
            NewDeployment(targetID: target.id, certificateName: "web", certificateVersion: 1, optionsJSON: #"{"force":false}"#),
            actor: "alice", now: clock.now)
    }

    func testJobClaimHeartbeatComplete() async throws {
        let store = try await makeStore()
        let targets = try await seed(store, targets: 1)
        let queued = try await enqueue(store, targets[0])
        XCTAssertEqual(queued.status, .queued)
        XCTAssertEqual(queued.attempts, 0)
        XCTAssertEqual(queued.stepsJSON, "[]")
        XCTAssertEqual(queued.optionsJSON, #"{"force":false}"#)
        XCTAssertEqual(queued.actor, "alice")
        XCTAssertEqual(queued.createdAt, clock.now.storePrecision)
        await assertEqual(try await store.deployment(id: queued.id), queued)
        await assertThrows(
            .notFound(objectType: "certificateVersion", id: "web@7"),
            try await store.enqueue(NewDeployment(targetID: targets[0].id, certificateName: "web", certificateVersion: 7), actor: "a", now: clock.now))
        let ghost = UUID()
        await assertThrows(
            .notFound(objectType: "target", id: ghost.uuidString.lowercased()),
            try await store.enqueue(NewDeployment(targetID: ghost, certificateName: "web", certificateVersion: 1), actor: "a", now: clock.now))

        let t0 = clock.now
        let claimed = try await store.claimNext(owner: "worker-1", leaseDuration: .seconds(30), limit: 5, now: t0)
        XCTAssertEqual(claimed.map(\.id), [queued.id])
        let running = try XCTUnwrap(claimed.first)
        XCTAssertEqual(running.status, .running)
        XCTAssertEqual(running.leaseOwner, "worker-1")
        XCTAssertEqual(running.leaseExpiresAt, t0.addingTimeInterval(30).storePrecision)
        XCTAssertEqual(running.startedAt, t0.storePrecision)
        XCTAssertEqual(running.attempts, 1)
        await assertEqual(try await store.claimNext(owner: "worker-2", leaseDuration: .seconds(30), limit: 5, now: t0), [])

        let progress = try JSONEncoder.store.encodeText(Fixture.steps(at: t0).prefix(1).map { $0 })
        let beat = try await store.heartbeat(
            deploymentID: queued.id, owner: "worker-1", leaseDuration: .seconds(30), stepsJSON: progress, now: t0.addingTimeInterval(20))
        XCTAssertEqual(beat.leaseExpiresAt, t0.addingTimeInterval(50).storePrecision)
        XCTAssertEqual(try beat.steps().map(\.name), [.connect])
        await assertThrows(
            .leaseLost(deploymentID: queued.id),
            try await store.heartbeat(deploymentID: queued.id, owner: "worker-2", leaseDuration: .seconds(30), stepsJSON: nil, now: t0))
        await assertEqual(try await store.requeueExpiredLeases(now: t0.addingTimeInterval(40)), [], "the heartbeat extended the lease")

        let steps = Fixture.steps(.failed, at: t0)
        let failure = try JSONDecoder().decode(
            DeployFailure.self, from: Data(#"{"targetID":"t00","step":"reload","message":"nginx: [emerg] bad config"}"#.utf8))
        let done = try await store.complete(
            deploymentID: queued.id, owner: "worker-1",
            completion: try DeploymentCompletion(outcome: .rolledBack, steps: steps, failure: failure), now: t0.addingTimeInterval(45))
        XCTAssertEqual(done.status, .rolledBack)
        XCTAssertEqual(done.finishedAt, t0.addingTimeInterval(45).storePrecision)
        XCTAssertNil(done.leaseExpiresAt)
        XCTAssertEqual(done.leaseOwner, "worker-1", "who ran it stays on record")
        XCTAssertEqual(try done.steps(), steps)
        XCTAssertEqual(try done.failure(), failure)
        await assertEqual(try await store.deployment(id: queued.id), done)

        // Final: no second completion, no heartbeat, never claimed again, not requeued by an old lease.
        await assertThrows(
            .leaseLost(deploymentID: queued.id),
            try await store.complete(deploymentID: queued.id, owner: "worker-1", completion: try DeploymentCompletion(outcome: .succeeded, steps: []), now: t0))
        await assertThrows(
            .leaseLost(deploymentID: queued.id),
            try await store.heartbeat(deploymentID: queued.id, owner: "worker-1", leaseDuration: .seconds(30), stepsJSON: nil, now: t0))
        await assertEqual(try await store.claimNext(owner: "worker-2", leaseDuration: .seconds(30), limit: 5, now: t0.addingTimeInterval(3600)), [])
        await assertEqual(try await store.requeueExpiredLeases(now: t0.addingTimeInterval(3600)), [])
        let unknown = UUID()
        await assertThrows(
            .notFound(objectType: "deployment", id: unknown.uuidString.lowercased()),
            try await store.heartbeat(deploymentID: unknown, owner: "worker-1", leaseDuration: .seconds(30), stepsJSON: nil, now: t0))
        await assertThrows(.notFound(objectType: "deployment", id: unknown.uuidString.lowercased()), try await store.deployment(id: unknown))

        let audit = try await store.auditEvents(AuditFilter(objectType: "deployment"), limit: 10, cursor: nil).items
        XCTAssertEqual(audit.map { "\($0.actor) \($0.action) \($0.outcome)" }, [
            "worker-1 deployment.complete failure",  // the refused second completion
            "worker-1 deployment.complete rolled_back",
            "a deployment.enqueue failure",
            "a deployment.enqueue failure",
            "alice deployment.enqueue success",
        ])
        XCTAssertEqual(audit[1].detail, failure.description)
    }

    func testEnqueueingManyIsOneTransactionAllOrNone() async throws {
        let store = try await makeStore()
        let targets = try await seed(store, targets: 3)
        // More than one multi-row statement's worth, in an order that is not the targets' order.
        let count = 1_201
        let news = (0..<count).map { index in
            NewDeployment(targetID: targets[(index * 2) % 3].id, certificateName: "web", certificateVersion: 1, optionsJSON: #"{"dryRun":true}"#)
        }
        let records = try await store.enqueue(news, actor: "alice", now: clock.now)
        XCTAssertEqual(records.map(\.targetID), news.map(\.targetID), "records come back in the order given")
        XCTAssertEqual(Set(records.map(\.id)).count, count)
        XCTAssertTrue(records.allSatisfy { $0.status == .queued && $0.actor == "alice" && $0.optionsJSON == #"{"dryRun":true}"# })
        let newest = try await store.listDeployments(DeploymentFilter(), limit: 500, cursor: nil)
        XCTAssertEqual(newest.items.map(\.id), Array(records.reversed().prefix(500).map(\.id)), "queued in the order given")
        let audit = try await store.auditEvents(AuditFilter(action: AuditAction.deploymentEnqueue), limit: 500, cursor: nil).items
        XCTAssertEqual(audit.count, 500)
        XCTAssertEqual(audit.first?.objectID, records.last?.id.lowercasedText)
        XCTAssertEqual(audit.first?.detail, "certificate web version 1 to target \(news[count - 1].targetID.lowercasedText)")

        // One unknown target anywhere refuses the whole request, and it is audited once.
        let ghost = UUID()
        var refused = news.prefix(700).map { $0 }
        refused.insert(NewDeployment(targetID: ghost, certificateName: "web", certificateVersion: 1), at: 650)
        await assertThrows(.notFound(objectType: "target", id: ghost.lowercasedText), try await store.enqueue(refused, actor: "bob", now: clock.now))
        await assertThrows(
            .notFound(objectType: "certificateVersion", id: "web@9"),
            try await store.enqueue(news.prefix(3) + [NewDeployment(targetID: targets[0].id, certificateName: "web", certificateVersion: 9)],
                                    actor: "bob", now: clock.now))
        let after = try await store.listDeployments(DeploymentFilter(), limit: 1, cursor: nil)
        XCTAssertEqual(after.items.first?.id, records.last?.id, "nothing of a refused request was queued")
        let failures = try await store.auditEvents(AuditFilter(actor: "bob"), limit: 10, cursor: nil).items
        XCTAssertEqual(failures.map(\.outcome), ["failure", "failure"])
        XCTAssertTrue(failures.allSatisfy { $0.detail?.contains("none of the") == true }, "\(failures.map(\.detail))")
        await assertEqual(try await store.enqueue([], actor: "bob", now: clock.now), [])
    }

    func testExpiredLeaseIsInterruptedRequeuedOnceThenFinal() async throws {
        let store = try await makeStore()
        let targets = try await seed(store, targets: 1)
        let queued = try await enqueue(store, targets[0])
        let t0 = clock.now

        // Attempt 1: the worker dies. Its lease expires at t0+30.
        _ = try await store.claimNext(owner: "worker-a", leaseDuration: .seconds(30), limit: 1, now: t0)
        await assertEqual(try await store.requeueExpiredLeases(now: t0.addingTimeInterval(29)), [])
        let requeued = try await store.requeueExpiredLeases(now: t0.addingTimeInterval(31))
        XCTAssertEqual(requeued.map(\.id), [queued.id])
        let first = try XCTUnwrap(requeued.first)
        XCTAssertEqual(first.status, .queued)
        XCTAssertEqual(first.interruptions, 1)
        XCTAssertEqual(first.attempts, 1)
        XCTAssertNil(first.leaseOwner)
        XCTAssertNil(first.finishedAt)
        XCTAssertTrue(first.statusNote?.contains("interrupted") ?? false)
        XCTAssertTrue(first.statusNote?.contains("worker-a") ?? false)
        XCTAssertTrue(first.statusNote?.contains("re-queued") ?? false)
        await assertEqual(try await store.requeueExpiredLeases(now: t0.addingTimeInterval(3600)), [], "nothing is running now")

        // The dead worker comes back: its lease is gone.
        await assertThrows(
            .leaseLost(deploymentID: queued.id),
            try await store.heartbeat(deploymentID: queued.id, owner: "worker-a", leaseDuration: .seconds(30), stepsJSON: nil, now: t0.addingTimeInterval(32)))
        await assertThrows(
            .leaseLost(deploymentID: queued.id),
            try await store.complete(deploymentID: queued.id, owner: "worker-a", completion: try DeploymentCompletion(outcome: .succeeded, steps: []), now: t0.addingTimeInterval(32)))

        // Attempt 2: another worker claims it and dies too: final `interrupted`.
        let second = try await store.claimNext(owner: "worker-b", leaseDuration: .seconds(30), limit: 1, now: t0.addingTimeInterval(40))
        XCTAssertEqual(second.map(\.attempts), [2])
        XCTAssertEqual(second.first?.statusNote, first.statusNote, "the note stays until something new happens")
        let final = try await store.requeueExpiredLeases(now: t0.addingTimeInterval(71))
        XCTAssertEqual(final.map(\.status), [.interrupted])
        XCTAssertEqual(final.first?.interruptions, 2)
        XCTAssertEqual(final.first?.finishedAt, t0.addingTimeInterval(71).storePrecision)
        XCTAssertTrue(final.first?.statusNote?.contains("not retried") ?? false)
        await assertEqual(try await store.deployment(id: queued.id).status, .interrupted)
        await assertEqual(try await store.claimNext(owner: "worker-c", leaseDuration: .seconds(30), limit: 1, now: t0.addingTimeInterval(3600)), [])
        await assertEqual(try await store.requeueExpiredLeases(now: t0.addingTimeInterval(3600)), [])
        await assertThrows(
            .leaseLost(deploymentID: queued.id),
            try await store.complete(deploymentID: queued.id, owner: "worker-b", completion: try DeploymentCompletion(outcome: .succeeded, steps: []), now: t0.addingTimeInterval(72)))

        let audit = try await store.auditEvents(AuditFilter(action: AuditAction.deploymentInterrupt), limit: 10, cursor: nil).items
        XCTAssertEqual(audit.map { "\($0.actor) \($0.outcome)" }, ["system interrupted", "system requeued"])
    }

    /// A restarted worker (same id, new boot) ends its earlier boot's leases at once; another worker's, or a name
    /// that only starts like it, or a LIKE wildcard in the id, are left alone.
    func testARestartedWorkerEndsItsEarlierBootsLeasesOnly() async throws {
        let store = try await makeStore()
        let targets = try await seed(store, targets: 4)
        for target in targets { _ = try await enqueue(store, target) }
        let t0 = clock.now
        _ = try await store.claimNext(owner: "web_1/boot-a", leaseDuration: .seconds(60), limit: 1, now: t0)
        _ = try await store.claimNext(owner: "web_1/boot-b", leaseDuration: .seconds(60), limit: 1, now: t0)
        _ = try await store.claimNext(owner: "webx1/boot-a", leaseDuration: .seconds(60), limit: 1, now: t0)
        _ = try await store.claimNext(owner: "web_10/boot-a", leaseDuration: .seconds(60), limit: 1, now: t0)

        let ended = try await store.expireLeases(ownerPrefix: "web_1/", except: "web_1/boot-b", now: t0.addingTimeInterval(1))
        XCTAssertEqual(ended, 1, "only web_1's earlier boot; not its current one, not webx1 (an unescaped _), not web_10")
        let requeued = try await store.requeueExpiredLeases(now: t0.addingTimeInterval(1))
        XCTAssertEqual(requeued.map(\.status), [.queued])
        XCTAssertTrue(requeued.first?.statusNote?.contains("web_1/boot-a") ?? false, "\(String(describing: requeued.first?.statusNote))")
        let running = try await store.listDeployments(DeploymentFilter(statuses: [.running]), limit: 10, cursor: nil).items
        XCTAssertEqual(Set(running.compactMap(\.leaseOwner)), ["web_1/boot-b", "webx1/boot-a", "web_10/boot-a"])
        await assertEqual(try await store.expireLeases(ownerPrefix: "web_1/", except: "web_1/boot-b", now: t0.addingTimeInterval(2)), 0)
    }

    /// A target list shows each target's newest finished deployment, read in one query for the page.
    func testLastFinishedDeploymentsPerTarget() async throws {
        let store = try await makeStore()
        let targets = try await seed(store, targets: 3)
        let t0 = clock.now
        for (index, outcome) in [DeploymentOutcome.failed, .succeeded].enumerated() {
            let queued = try await enqueue(store, targets[0])
            _ = try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 1, now: t0.addingTimeInterval(Double(index)))
            _ = try await store.complete(deploymentID: queued.id, owner: "w", completion: try DeploymentCompletion(outcome: outcome, steps: []),
                                         now: t0.addingTimeInterval(Double(index) + 0.5))
        }
        _ = try await enqueue(store, targets[0])  // queued: not finished, not shown
        _ = try await enqueue(store, targets[1])
        let last = try await store.lastFinishedDeployments(targetIDs: targets.map(\.id))
        XCTAssertEqual(Array(last.keys), [targets[0].id], "targets without a finished deployment are absent")
        XCTAssertEqual(last[targets[0].id]?.status, .succeeded)
        XCTAssertEqual(last[targets[0].id]?.finishedAt, t0.addingTimeInterval(1.5).storePrecision)
        await assertEqual(try await store.lastFinishedDeployments(targetIDs: []).count, 0)
    }

    func testOneRunningDeploymentPerTarget() async throws {
        let store = try await makeStore()
        let targets = try await seed(store, targets: 2)
        let a1 = try await enqueue(store, targets[0])
        clock.advance(by: 1)
        let a2 = try await enqueue(store, targets[0])
        let b1 = try await enqueue(store, targets[1])
        let t0 = clock.now

        let first = try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 10, now: t0)
        XCTAssertEqual(Set(first.map(\.id)), [a1.id, b1.id], "one per target, the oldest first")
        await assertEqual(try await store.claimNext(owner: "w2", leaseDuration: .seconds(60), limit: 10, now: t0), [])

        // The database itself refuses a second running deployment on a target.
        do {
            try await rawSQL(
                store, "UPDATE deployments SET status = 'running', lease_owner = 'rogue', lease_expires_at = 1 WHERE id = $1", [.uuid(a2.id)])
            XCTFail("the partial unique index let a second deployment run on one target")
        } catch let error as StoreError {
            XCTAssertEqual(error, .conflict(field: "targetID"))
        }

        _ = try await store.complete(
            deploymentID: a1.id, owner: "w", completion: try DeploymentCompletion(outcome: .succeeded, steps: []), now: t0)
        let next = try await store.claimNext(owner: "w2", leaseDuration: .seconds(60), limit: 10, now: t0)
        XCTAssertEqual(next.map(\.id), [a2.id])
    }

    func testClaimOrderLimitAndConcurrentClaimersOnOneStore() async throws {
        let store = try await makeStore()
        let targets = try await seed(store, targets: 10)
        var enqueued: [DeploymentRecord] = []
        for _ in 0..<4 {
            for target in targets { enqueued.append(try await enqueue(store, target)) }
        }
        let firstBatch = try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 3, now: clock.now)
        XCTAssertEqual(firstBatch.map(\.id), enqueued.prefix(3).map(\.id), "oldest first, up to the limit")
        for deployment in firstBatch {
            _ = try await store.complete(
                deploymentID: deployment.id, owner: "w", completion: try DeploymentCompletion(outcome: .unchanged, steps: []), now: clock.now)
        }

        // Eight concurrent claimers drain the rest; nobody gets a deployment twice, no target runs two.
        let now = clock.now
        let seen = NIOLockedValueBox<(ids: [UUID], running: Set<UUID>, violations: [String])>(([], [], []))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    while true {
                        let claimed = try await store.claimNext(owner: "w\(worker)", leaseDuration: .seconds(60), limit: 2, now: now)
                        if claimed.isEmpty {
                            let left = try await store.listDeployments(DeploymentFilter(statuses: [.queued, .running]), limit: 1, cursor: nil)
                            if left.items.isEmpty { return }
                            try await Task.sleep(for: .milliseconds(1))
                            continue
                        }
                        seen.withLockedValue { state in
                            for deployment in claimed {
                                state.ids.append(deployment.id)
                                if !state.running.insert(deployment.targetID).inserted {
                                    state.violations.append("two running on \(deployment.targetID)")
                                }
                            }
                        }
                        for deployment in claimed {
                            seen.withLockedValue { _ = $0.running.remove(deployment.targetID) }
                            _ = try await store.complete(
                                deploymentID: deployment.id, owner: "w\(worker)",
                                completion: try DeploymentCompletion(outcome: .succeeded, steps: []), now: now)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let result = seen.withLockedValue { $0 }
        XCTAssertEqual(result.violations, [])
        XCTAssertEqual(result.ids.count, 37)
        XCTAssertEqual(Set(result.ids), Set(enqueued.dropFirst(3).map(\.id)))
        let page = try await store.listDeployments(DeploymentFilter(), limit: 500, cursor: nil)
        XCTAssertEqual(page.items.count, 40)
        XCTAssertTrue(page.items.allSatisfy { $0.attempts == 1 && $0.status.isFinal })
        XCTAssertEqual(page.items.map(\.id), enqueued.reversed().map(\.id), "newest first")
    }

    func testReleaseRetriesAfterBackoff() async throws {
        let store = try await makeStore()
        let targets = try await seed(store, targets: 1)
        let queued = try await enqueue(store, targets[0])
        let t0 = clock.now
        _ = try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 1, now: t0)
        let released = try await store.release(
            deploymentID: queued.id, owner: "w", retryAt: t0.addingTimeInterval(30), note: "connect: connection refused; retry 1 in 30 s",
            now: t0.addingTimeInterval(1))
        XCTAssertEqual(released.status, .queued)
        XCTAssertEqual(released.notBefore, t0.addingTimeInterval(30).storePrecision)
        XCTAssertEqual(released.statusNote, "connect: connection refused; retry 1 in 30 s")
        XCTAssertNil(released.leaseOwner)
        await assertThrows(
            .leaseLost(deploymentID: queued.id),
            try await store.release(deploymentID: queued.id, owner: "w", retryAt: t0, note: "again", now: t0))

        // A newer deployment of the same target waits behind the one being retried.
        let newer = try await enqueue(store, targets[0])
        await assertEqual(try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 5, now: t0.addingTimeInterval(29)), [])
        let retried = try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 5, now: t0.addingTimeInterval(30))
        XCTAssertEqual(retried.map(\.id), [queued.id])
        XCTAssertEqual(retried.first?.attempts, 2)
        _ = try await store.complete(
            deploymentID: queued.id, owner: "w", completion: try DeploymentCompletion(outcome: .succeeded, steps: []), now: t0.addingTimeInterval(31))
        await assertEqual(try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 5, now: t0.addingTimeInterval(31)).map(\.id), [newer.id])
    }

    func testCancelAndDeleteTargetWithDeployments() async throws {
        let store = try await makeStore()
        let targets = try await seed(store, targets: 2)
        let first = try await enqueue(store, targets[0])
        let second = try await enqueue(store, targets[0])
        let cancelled = try await store.cancel(deploymentID: second.id, actor: "bob", now: clock.now)
        XCTAssertEqual(cancelled.status, .cancelled)
        XCTAssertEqual(cancelled.statusNote, "cancelled by bob")
        XCTAssertEqual(cancelled.finishedAt, clock.now.storePrecision)
        await assertThrows(
            .invalidState("deployment \(second.id.uuidString.lowercased()) is cancelled; only a queued deployment can be cancelled"),
            try await store.cancel(deploymentID: second.id, actor: "bob", now: clock.now))
        let unknown = UUID()
        await assertThrows(
            .notFound(objectType: "deployment", id: unknown.uuidString.lowercased()), try await store.cancel(deploymentID: unknown, actor: "bob", now: clock.now))

        _ = try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 5, now: clock.now)
        await assertThrows(
            .invalidState("deployment \(first.id.uuidString.lowercased()) is running; only a queued deployment can be cancelled"),
            try await store.cancel(deploymentID: first.id, actor: "bob", now: clock.now))
        await assertThrows(.conflict(field: "deployments"), try await store.deleteTarget(id: targets[0].id, actor: "bob"))
        _ = try await store.complete(
            deploymentID: first.id, owner: "w", completion: try DeploymentCompletion(outcome: .succeeded, steps: []), now: clock.now)

        // Deleting a target cancels what is queued for it; the history stays.
        let third = try await enqueue(store, targets[0])
        try await store.deleteTarget(id: targets[0].id, actor: "bob")
        await assertEqual(try await store.deployment(id: third.id).status, .cancelled)
        await assertEqual(try await store.deployment(id: third.id).statusNote, "cancelled: the target was deleted")
        await assertEqual(try await store.deployment(id: first.id).status, .succeeded)
        let history = try await store.listDeployments(DeploymentFilter(targetID: targets[0].id), limit: 10, cursor: nil)
        XCTAssertEqual(history.items.map(\.id), [third.id, second.id, first.id])
        let finished = try await store.listDeployments(
            DeploymentFilter(targetID: targets[0].id, statuses: [.succeeded, .cancelled]), limit: 2, cursor: nil)
        XCTAssertEqual(finished.items.map(\.id), [third.id, second.id])
        let rest = try await store.listDeployments(
            DeploymentFilter(targetID: targets[0].id, statuses: [.succeeded, .cancelled]), limit: 2, cursor: finished.nextCursor)
        XCTAssertEqual(rest.items.map(\.id), [first.id])
        XCTAssertNil(rest.nextCursor)
    }

    // MARK: - Cancellation

    /// A caller cancelled mid-transaction (an event stream's client hanging up, a heartbeat task stopped) must not leave
    /// the connection inside a transaction: every later call still works.
    func testCancelledCallersNeverLeaveATransactionOpen() async throws {
        let store = try await makeStore()
        for round in 0..<40 {
            let task = Task {
                _ = try? await store.createTarget(NewTarget(name: "cancelled-\(round)", connectorID: "nginx"), actor: "alice")
                _ = try? await store.listTargets(TargetFilter(), limit: 10, cursor: nil)
            }
            for _ in 0..<(round % 4) { await Task.yield() }
            task.cancel()
            _ = await task.value
            _ = try await store.listTargets(TargetFilter(), limit: 10, cursor: nil)
            _ = try await store.createTarget(NewTarget(name: "after-\(round)", connectorID: "nginx"), actor: "alice")
        }
    }

    // MARK: - Settings and secret rotation

    func testSettingsAndSecretRotationAreOneTransaction() async throws {
        let store = try await makeStore()
        await assertEqual(try await store.setting(named: "secret-key"), nil)
        try await store.setSetting(named: "secret-key", value: "v1", actor: "alice")
        try await store.setSetting(named: "secret-key", value: "v2", actor: "alice")
        await assertEqual(try await store.setting(named: "secret-key"), "v2")
        await assertEqual(try await store.hasEncryptedData(targetHasSecret: { _ in false }), false)

        _ = try await store.createCertificate(name: "web", actor: "alice")
        var version = Fixture.version("web")
        version.encryptedPrivateKey = [1, 2, 3]
        _ = try await store.addCertificateVersion(version, actor: "alice")
        let target = try await store.createTarget(
            NewTarget(name: "t", connectorID: "nginx", configJSON: #"{"secret":"old"}"#, transportJSON: "{}"), actor: "alice")
        await assertEqual(try await store.hasEncryptedData(targetHasSecret: { _ in false }), true)

        // A failing transform changes nothing, the setting included.
        struct Refused: Error {}
        do {
            _ = try await store.rotateSecrets(
                settingName: "secret-key", settingValue: "v3", actor: "alice", privateKey: { _ in [9] }, target: { _ in throw Refused() })
            XCTFail("the rotation should have failed")
        } catch is Refused {}
        await assertEqual(try await store.setting(named: "secret-key"), "v2")
        await assertEqual(try await store.certificateVersion(name: "web", version: 1).encryptedPrivateKey, [1, 2, 3])

        let count = try await store.rotateSecrets(
            settingName: "secret-key", settingValue: "v3", actor: "alice", privateKey: { $0.encryptedPrivateKey.map { $0 + 1 } },
            target: { (configJSON: $0.configJSON.replacingOccurrences(of: "old", with: "new"), transportJSON: $0.transportJSON) })
        XCTAssertEqual(count, 2)
        await assertEqual(try await store.setting(named: "secret-key"), "v3")
        await assertEqual(try await store.certificateVersion(name: "web", version: 1).encryptedPrivateKey, [2, 3, 4])
        await assertEqual(try await store.target(id: target.id).configJSON, #"{"secret":"new"}"#)
        let audit = try await store.auditEvents(AuditFilter(action: AuditAction.secretsRotate), limit: 10, cursor: nil)
        XCTAssertEqual(audit.items.map(\.outcome), ["success", "failure"])
    }

    // MARK: - Target status

    func testTargetStatusPartsAreRecordedApartAndGoWithTheTarget() async throws {
        let store = try await makeStore()
        let a = try await store.createTarget(Fixture.target("a"), actor: "alice")
        let b = try await store.createTarget(Fixture.target("b"), actor: "alice")
        await assertEqual(try await store.targetStatus(targetID: a.id), nil)
        await assertEqual(try await store.targetStatuses(targetIDs: []), [:])

        clock.advance(by: 10)
        let checked = clock.now
        let synced = try await store.recordSyncStatus(
            targetID: a.id, TargetSyncObservation(sync: "drifted", detail: "serves another leaf", servedSHA256: "ab", checkedAt: checked))
        XCTAssertEqual(synced, TargetStatusRecord(
            targetID: a.id, autoRemediate: false, sync: "drifted", syncDetail: "serves another leaf", servedSHA256: "ab",
            checkedAt: checked.storePrecision, updatedAt: clock.now.storePrecision))

        // The staple part leaves the sync part alone, and the other way round.
        clock.advance(by: 5)
        let stapled = try await store.recordStapleStatus(
            targetID: a.id, TargetStapleObservation(staple: "staple_expiring", detail: "responder down", thisUpdate: checked.addingTimeInterval(-60),
                                                    nextUpdate: checked.addingTimeInterval(60), checkedAt: clock.now))
        XCTAssertEqual(stapled.sync, "drifted")
        XCTAssertEqual(stapled.servedSHA256, "ab")
        XCTAssertEqual(stapled.staple, "staple_expiring")
        XCTAssertEqual(stapled.stapleDetail, "responder down")
        XCTAssertEqual(stapled.stapleThisUpdate, checked.addingTimeInterval(-60).storePrecision)
        XCTAssertEqual(stapled.stapleNextUpdate, checked.addingTimeInterval(60).storePrecision)
        XCTAssertEqual(stapled.stapleCheckedAt, clock.now.storePrecision)
        let resynced = try await store.recordSyncStatus(targetID: a.id, TargetSyncObservation(sync: "in_sync", detail: nil, servedSHA256: "cd", checkedAt: clock.now))
        XCTAssertEqual(resynced.staple, "staple_expiring")
        XCTAssertNil(resynced.syncDetail)
        await assertEqual(try await store.targetStatus(targetID: a.id), resynced)

        // The flag is set on its own (audited) and survives later observations.
        try await store.setAutoRemediate(targetID: a.id, enabled: true, actor: "alice")
        try await store.setAutoRemediate(targetID: b.id, enabled: true, actor: "alice")
        try await store.setAutoRemediate(targetID: b.id, enabled: false, actor: "alice")
        let again = try await store.recordSyncStatus(targetID: a.id, TargetSyncObservation(sync: "unreachable", detail: "refused", servedSHA256: nil, checkedAt: clock.now))
        XCTAssertTrue(again.autoRemediate)
        XCTAssertEqual(again.staple, "staple_expiring")
        let all = try await store.targetStatuses(targetIDs: nil)
        XCTAssertEqual(Set(all.keys), [a.id, b.id])
        XCTAssertNil(all[b.id]?.sync)
        XCTAssertEqual(all[b.id]?.autoRemediate, false)
        await assertEqual(try await store.targetStatuses(targetIDs: [b.id]).keys.map { $0 }, [b.id])
        let audit = try await store.auditEvents(AuditFilter(action: AuditAction.targetRemediationSet), limit: 10, cursor: nil)
        XCTAssertEqual(audit.items.map(\.detail), ["off", "on", "on"])

        let unknown = UUID()
        await assertThrows(
            .notFound(objectType: "target", id: unknown.uuidString.lowercased()),
            try await store.recordSyncStatus(targetID: unknown, TargetSyncObservation(sync: nil, detail: nil, servedSHA256: nil, checkedAt: nil)))
        await assertThrows(
            .notFound(objectType: "target", id: unknown.uuidString.lowercased()),
            try await store.setAutoRemediate(targetID: unknown, enabled: true, actor: "alice"))

        try await store.deleteTarget(id: a.id, actor: "alice")
        await assertEqual(try await store.targetStatus(targetID: a.id), nil)
        await assertEqual(try await store.targetStatuses(targetIDs: nil).keys.map { $0 }, [b.id])
    }

    // MARK: - Migrations

    func testMigrationsAreVersionedAndIdempotent() async throws {
        let store = try await makeStore()
        await assertEqual(try await store.schemaVersion(), 4)
        _ = try await store.createCertificate(name: "kept", actor: "alice")
        try await store.close()

        let again = try await reopenStore()
        await assertEqual(try await again.schemaVersion(), 4)
        await assertEqual(try await again.certificate(named: "kept").name, "kept")
        let rows = try await rawSQL(again, "SELECT version, name FROM schema_migrations ORDER BY version")
        XCTAssertEqual(try rows.map { try $0.int("version") }, [1, 2, 3, 4])

        // A database from a newer certdeploy is refused, not half-used.
        try await rawSQL(again, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from the future', 0)")
        try await again.close()
        do {
            _ = try await reopenStore()
            XCTFail("opened a database with a newer schema")
        } catch StoreError.migration(let message) {
            XCTAssertTrue(message.contains("99"), message)
        }
    }
}
