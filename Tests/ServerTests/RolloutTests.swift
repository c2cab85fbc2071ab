import CertdeployAPI
import Core
import Foundation
import NIOHTTP1
import Server
import ServerTestSupport
import Store
import TestSupport
import XCTest

/// Rollouts through the API against a fleet on the real sshd: two real nginx targets and file targets whose validate
/// is a real shell command a test can make fail. On SQLite (this class) and PostgreSQL (the subclass).
class RolloutTests: XCTestCase {
    func databaseURL() throws -> String? { nil }

    func startServer(configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        let server = try await TestServer.start(registry: try testRegistry(), databaseURL: try databaseURL(), configure: configure)
        addTeardownBlock { await server.stop() }
        return server
    }

    /// Polls the rollout until its state is one of `states`.
    func waitForRollout(_ server: TestServer, _ id: UUID, _ states: Set<String>, timeout: Duration = .seconds(120)) async throws -> RolloutView {
        let deadline = ContinuousClock.now + timeout
        while true {
            let view = try await server.request(.GET, "/api/v1/rollouts/\(id.lowercasedText)").decode(RolloutView.self)
            if states.contains(view.state) { return view }
            if ContinuousClock.now > deadline {
                throw TestServerError("rollout \(id) still \(view.state) after \(timeout): \(view.counts) \(view.stopReason ?? "")")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func startRollout(_ server: TestServer, _ request: DeploymentRequest, as caller: TestServer.Caller = .admin) async throws -> RolloutView {
        let answer = try await server.send(.POST, "/api/v1/rollouts", json: request, as: caller)
        XCTAssertEqual(answer.status, 202, answer.text)
        return try answer.decode(RolloutView.self)
    }

    /// 40 targets: two real nginx (`web-a`, `web-b`) and 38 file targets, labelled `fleet=one`.
    func testABadSubsetHaltsTheRolloutBeforeTheRestIsTouchedAndResumeFinishesIt() async throws {
        let site = try NginxSite()
        let second = try NginxSite()
        let fleet = try FileFleet(site: site, count: 38)
        let server = try await startServer { $0.workerConcurrency = 8 }
        let leaf = try site.ca.issueLeaf()
        try await server.upload(site.upload(leaf, name: "example"))
        try await server.createTarget(site.target(name: "web-a", labels: ["fleet": "one"]))
        try await server.createTarget(second.target(name: "web-b", labels: ["fleet": "one"]))
        for index in fleet.names.indices { try await server.createTarget(fleet.target(index, labels: ["fleet": "one"])) }
        // Names sort file-00 … file-37, web-a, web-b. Canary: file-00. Waves of 10: file-01…10, 11…20, 21…30, 31…37 + web-a, web-b.
        let brokenInWave2 = [3, 5, 8]
        for index in brokenInWave2 { try fleet.setBroken(index, true) }

        let started = try await startRollout(server, DeploymentRequest(
            certificate: "example", selector: "fleet=one", strategy: RolloutStrategy(canary: .count(1), waves: .count(10), failureBudget: .count(2))))
        XCTAssertEqual(started.targetCount, 40)
        XCTAssertEqual(started.waves.map(\.targets.count), [1, 10, 10, 10, 9])
        XCTAssertEqual(started.waves[0].targets.map(\.targetName), ["file-00"])
        XCTAssertEqual(started.failureBudget, 2)

        let halted = try await waitForRollout(server, started.id, ["halted", "succeeded", "failed"])
        XCTAssertEqual(halted.state, "halted", "\(halted.counts)")
        let stop = try XCTUnwrap(halted.stopReason)
        XCTAssertTrue(stop.contains("failure budget exceeded (2 allowed, 3 failed) in wave 2 of 5"), stop)
        XCTAssertTrue(stop.contains("config test failed"), stop)
        let culprit = try XCTUnwrap(halted.stopDeploymentID)
        XCTAssertTrue(halted.waves[1].targets.contains { $0.deploymentID == culprit && ["failed", "rolled_back"].contains($0.status) })
        // The canary succeeded; nothing of waves 3–5 started, and those targets keep their old files.
        XCTAssertEqual(halted.waves[0].targets.map(\.status), ["succeeded"])
        XCTAssertTrue(try fleet.holds(0, leaf))
        for wave in halted.waves[2...] {
            XCTAssertEqual(Set(wave.targets.map(\.status)), ["pending"], "wave \(wave.index)")
            XCTAssertEqual(wave.state, "pending")
        }
        for index in 11..<38 { XCTAssertEqual(try fleet.certificateFile(index), fleet.oldContent, fleet.names[index]) }
        for index in brokenInWave2 { XCTAssertEqual(try fleet.certificateFile(index), fleet.oldContent, "rolled back: \(fleet.names[index])") }
        await assertEqual(try await site.served(), site.oldLeaf.sha256Hex)

        // Resume without fixing: the failures so far are accepted, the rest goes on… but a retry is what fixes
        // them. Fix the subset, retry the failed: the rollout runs them in their wave and finishes.
        for index in brokenInWave2 { try fleet.setBroken(index, false) }
        let retried = try await server.request(.POST, "/api/v1/rollouts/\(started.id.lowercasedText)/retry", as: .deployer)
        XCTAssertEqual(retried.status, 200, retried.text)
        let done = try await waitForRollout(server, started.id, ["succeeded", "failed", "halted"])
        XCTAssertEqual(done.state, "succeeded", "\(done.counts) \(done.stopReason ?? "")")
        XCTAssertEqual(done.counts, ["succeeded": 40])
        for index in fleet.names.indices { XCTAssertTrue(try fleet.holds(index, leaf), fleet.names[index]) }
        await assertEqual(try await site.served(expecting: leaf.sha256Hex), leaf.sha256Hex)
        await assertEqual(try await second.served(expecting: leaf.sha256Hex), leaf.sha256Hex)
        // The retried targets ran twice, every other once.
        let attempts = Dictionary(uniqueKeysWithValues: done.waves.flatMap(\.targets).map { ($0.targetName ?? "", $0.attempts) })
        for (index, name) in fleet.names.enumerated() { XCTAssertEqual(attempts[name], brokenInWave2.contains(index) ? 2 : 1, name) }

        // Audited with actors; the event stream replays the story and ends.
        let audit = try await server.request(.GET, "/api/v1/audit?objectType=rollout&objectID=\(started.id.lowercasedText)")
            .decode(ListResponse<AuditEventView>.self).items
        XCTAssertTrue(audit.contains { $0.action == "rollout.retry" && $0.actor == TestServer.deployerName })
        XCTAssertTrue(audit.contains { $0.action == "rollout.progress" && $0.outcome == "halted" })
        let events = try await server.events("/api/v1/rollouts/\(started.id.lowercasedText)/events")
        let kinds = events.filter { $0.event == RolloutEventName.progress }
            .compactMap { try? JSONDecoder.api.decode(RolloutProgressEvent.self, from: Data($0.data.utf8)).kind }
        XCTAssertEqual(kinds.filter { $0 == "wave_started" }.count, 5, "\(kinds)")  // the retry runs in wave 2, which had not finished
        XCTAssertTrue(kinds.contains("halted"))
        XCTAssertEqual(kinds.last, "succeeded")
        XCTAssertEqual(events.last?.event, RolloutEventName.end)
        let metrics = try await server.request(.GET, "/metrics").text
        XCTAssertTrue(metrics.contains(#"certdeploy_rollout_transitions_total{state="halted"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"certdeploy_rollout_transitions_total{state="succeeded"} 1"#), metrics)
    }

    func testAnApprovalGateHoldsTheFleetAfterTheCanary() async throws {
        let site = try NginxSite()
        let fleet = try FileFleet(site: site, count: 5)
        let server = try await startServer()
        let leaf = try site.ca.issueLeaf()
        try await server.upload(site.upload(leaf, name: "example"))
        for index in fleet.names.indices { try await server.createTarget(fleet.target(index, labels: ["tier": "edge"])) }
        let started = try await startRollout(server, DeploymentRequest(
            certificate: "example", selector: "tier=edge", strategy: RolloutStrategy(approval: .afterCanary)), as: .deployer)
        let waiting = try await waitForRollout(server, started.id, ["waiting_approval", "succeeded"])
        XCTAssertEqual(waiting.state, "waiting_approval")
        XCTAssertEqual(waiting.waves[0].targets.map(\.status), ["succeeded"])
        XCTAssertTrue(try fleet.holds(0, leaf))
        for index in 1..<5 { XCTAssertEqual(try fleet.certificateFile(index), fleet.oldContent) }
        // Nothing moves while it waits.
        try await Task.sleep(for: .milliseconds(600))
        for index in 1..<5 { XCTAssertEqual(try fleet.certificateFile(index), fleet.oldContent) }
        let approved = try await server.request(.POST, "/api/v1/rollouts/\(started.id.lowercasedText)/approve", as: .deployer)
        XCTAssertEqual(approved.status, 200, approved.text)
        let done = try await waitForRollout(server, started.id, ["succeeded", "failed", "halted"])
        XCTAssertEqual(done.state, "succeeded")
        for index in 0..<5 { XCTAssertTrue(try fleet.holds(index, leaf)) }
        let again = try await server.request(.POST, "/api/v1/rollouts/\(started.id.lowercasedText)/approve")
        XCTAssertEqual(again.status, 409, again.text)
        XCTAssertTrue(try again.problem().detail.contains("is succeeded; approve needs a rollout that is waiting for approval"), again.text)
    }

    func testAbortWithRollbackPutsThePreviousVersionBackAndCancelsTheRest() async throws {
        let site = try NginxSite()
        let fleet = try FileFleet(site: site, count: 4)
        let server = try await startServer()
        let first = try site.ca.issueLeaf()
        try await server.upload(site.upload(first, name: "example"))
        for index in fleet.names.indices { try await server.createTarget(fleet.target(index, labels: ["pool": "p"])) }
        // Version 1 everywhere (waves of 100 %: canary then all).
        let initial = try await startRollout(server, DeploymentRequest(certificate: "example", selector: "pool=p",
                                                                        strategy: RolloutStrategy(waves: .percent(100))))
        await assertEqual(try await waitForRollout(server, initial.id, ["succeeded", "failed", "halted"]).state, "succeeded")

        let second = try site.ca.issueLeaf()
        try await server.upload(site.upload(second, name: "example"))
        let rollout = try await startRollout(server, DeploymentRequest(certificate: "example", selector: "pool=p",
                                                                        strategy: RolloutStrategy(approval: .afterCanary)))
        let waiting = try await waitForRollout(server, rollout.id, ["waiting_approval", "succeeded"])
        XCTAssertEqual(waiting.state, "waiting_approval")
        XCTAssertTrue(try fleet.holds(0, second))

        // A deployer key may not abort with rollback; an admin may.
        let refused = try await server.send(.POST, "/api/v1/rollouts/\(rollout.id.lowercasedText)/abort", json: RolloutActionRequest(rollback: true),
                                            as: .deployer)
        XCTAssertEqual(refused.status, 403, refused.text)
        let answer = try await server.send(.POST, "/api/v1/rollouts/\(rollout.id.lowercasedText)/abort", json: RolloutActionRequest(rollback: true))
        XCTAssertEqual(answer.status, 200, answer.text)
        let response = try answer.decode(RolloutActionResponse.self)
        XCTAssertEqual(response.rollout.state, "aborted")
        XCTAssertEqual(response.rollout.counts, ["succeeded": 1, "cancelled": 3])
        let rollbackID = try XCTUnwrap(response.rollbackRollouts?.first)
        let rollback = try await waitForRollout(server, rollbackID, ["succeeded", "failed", "halted"])
        XCTAssertEqual(rollback.state, "succeeded", "\(rollback.counts)")
        XCTAssertEqual(rollback.certificateVersion, 1)
        XCTAssertEqual(rollback.waves.flatMap(\.targets).map(\.targetName), ["file-00"])
        for index in 0..<4 { XCTAssertTrue(try fleet.holds(index, first), fleet.names[index]) }
        let audit = try await server.request(.GET, "/api/v1/audit?action=rollout.abort").decode(ListResponse<AuditEventView>.self).items
        XCTAssertEqual(audit.map(\.actor), [TestServer.adminName])
    }

    func testWavesOrderedByZoneNeverTakeAWholeZone() async throws {
        let site = try NginxSite()
        let fleet = try FileFleet(site: site, count: 9)
        let server = try await startServer()
        try await server.upload(site.upload(try site.ca.issueLeaf(), name: "example"))
        let zones = ["a", "a", "a", "b", "b", "b", "c", "c", "c"]
        for index in fleet.names.indices { try await server.createTarget(fleet.target(index, labels: ["zone": zones[index], "app": "z"])) }
        let started = try await startRollout(server, DeploymentRequest(
            certificate: "example", selector: "app=z", strategy: RolloutStrategy(canary: .count(0), waves: .percent(100), order: .label("zone"))))
        let done = try await waitForRollout(server, started.id, ["succeeded", "failed", "halted"])
        XCTAssertEqual(done.state, "succeeded")
        let zoneOf = Dictionary(uniqueKeysWithValues: fleet.names.enumerated().map { ($1, zones[$0]) })
        XCTAssertGreaterThan(done.waves.count, 1, "one wave of 100 % would take every zone out")
        for wave in done.waves {
            var perZone: [String: Int] = [:]
            for target in wave.targets { perZone[zoneOf[target.targetName ?? ""] ?? "?", default: 0] += 1 }
            XCTAssertTrue(perZone.values.allSatisfy { $0 < 3 }, "wave \(wave.index): \(perZone)")
        }
    }

    func testAChildOutsideItsWindowWaitsAndStartsWhenTheWindowGoes() async throws {
        let site = try NginxSite()
        let fleet = try FileFleet(site: site, count: 2)
        let server = try await startServer()
        let leaf = try site.ca.issueLeaf()
        try await server.upload(site.upload(leaf, name: "example"))
        try await server.createTarget(fleet.target(0, labels: ["dc": "berlin"]))
        try await server.createTarget(fleet.target(1, labels: ["dc": "tokyo"]))
        // Berlin's window is a minute that is not now (tomorrow at this time, in Berlin).
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/Berlin")!
        let later = Date().addingTimeInterval(6 * 3600)
        let hour = calendar.component(.hour, from: later)
        let schedule = String(format: "daily %02d:00-%02d:30 Europe/Berlin", hour, hour)
        let window = try await server.send(.POST, "/api/v1/windows", json: WindowRequest(name: "berlin-nights", selector: "dc=berlin", schedule: schedule))
        XCTAssertEqual(window.status, 201, window.text)
        XCTAssertEqual(try window.decode(WindowView.self).activeNow, false)
        // A bad schedule names the field.
        let bad = try await server.send(.POST, "/api/v1/windows", json: WindowRequest(name: "bad", selector: "dc=x", schedule: "Mon-Fri 01:00-04:00 Mars/Olympus"))
        XCTAssertEqual(bad.status, 422, bad.text)
        XCTAssertEqual(try bad.problem().errors?.first?.pointer, "/schedule")

        let started = try await startRollout(server, DeploymentRequest(certificate: "example", targets: ["file-00", "file-01"],
                                                                        strategy: RolloutStrategy(canary: .count(0), waves: .percent(100))))
        var view = try await waitForRollout(server, started.id, ["running"])
        let deadline = ContinuousClock.now + .seconds(30)
        while view.waves[0].targets.first(where: { $0.targetName == "file-01" })?.status != "succeeded", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            view = try await server.request(.GET, "/api/v1/rollouts/\(started.id.lowercasedText)").decode(RolloutView.self)
        }
        let berlin = try XCTUnwrap(view.waves[0].targets.first { $0.targetName == "file-00" })
        XCTAssertEqual(berlin.status, "waiting_window", "\(berlin)")
        let startsAt = try XCTUnwrap(berlin.startsAt)
        XCTAssertGreaterThan(startsAt, Date())
        XCTAssertTrue(berlin.statusNote?.contains("berlin-nights") == true, berlin.statusNote ?? "")
        XCTAssertEqual(try fleet.certificateFile(0), fleet.oldContent)
        XCTAssertTrue(try fleet.holds(1, leaf))
        XCTAssertEqual(view.state, "running")

        // A deployment to that one target now is refused with the reason; an admin may ignore the window (audited).
        let refused = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", targets: ["file-00"]))
        XCTAssertEqual(refused.status, 409, refused.text)
        XCTAssertTrue(try refused.problem().detail.contains("target file-00 is outside its maintenance window berlin-nights"), refused.text)
        let notAdmin = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", targets: ["file-00"],
                                                                                                   options: .init(dryRun: true), ignoreWindows: true),
                                             as: .deployer)
        XCTAssertEqual(notAdmin.status, 403, notAdmin.text)
        let urgent = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", targets: ["file-00"],
                                                                                                 options: .init(dryRun: true), ignoreWindows: true))
        XCTAssertEqual(urgent.status, 202, urgent.text)
        let urgentID = try XCTUnwrap(try urgent.decode(ListResponse<DeploymentView>.self).items.first?.id)
        await assertEqual(try await server.waitForDeployment(urgentID).status, "succeeded")
        let ignored = try await server.request(.GET, "/api/v1/audit?action=deployment.ignore_windows").decode(ListResponse<AuditEventView>.self).items
        XCTAssertEqual(ignored.map(\.actor), [TestServer.adminName])
        XCTAssertTrue(ignored.first?.detail?.contains("although outside its maintenance window berlin-nights") == true, ignored.first?.detail ?? "")

        // The window goes (an operator's emergency): the waiting child is placed again and runs.
        let removed = try await server.request(.DELETE, "/api/v1/windows/berlin-nights")
        XCTAssertEqual(removed.status, 204, removed.text)
        let done = try await waitForRollout(server, started.id, ["succeeded", "failed", "halted"])
        XCTAssertEqual(done.state, "succeeded")
        XCTAssertTrue(try fleet.holds(0, leaf))
    }

    func testAutoRolloutOnUploadReachesEveryBoundTarget() async throws {
        let site = try NginxSite()
        let fleet = try FileFleet(site: site, count: 3)
        let server = try await startServer()
        try await server.upload(site.upload(try site.ca.issueLeaf(), name: "example"))
        for index in fleet.names.indices { try await server.createTarget(fleet.target(index, certificate: "example")) }
        try await server.createTarget(fleet.site.target(name: "unbound"))  // not bound: not part of the auto-rollout

        let badPolicy = try await server.send(.PUT, "/api/v1/certificates/example/policy",
                                              json: CertificatePolicyRequest(autoRollout: true, strategy: RolloutStrategy(waves: .count(0))))
        XCTAssertEqual(badPolicy.status, 422, badPolicy.text)
        XCTAssertEqual(try badPolicy.problem().errors?.first?.pointer, "/strategy/waves")
        let policy = try await server.send(.PUT, "/api/v1/certificates/example/policy",
                                           json: CertificatePolicyRequest(autoRollout: true, strategy: RolloutStrategy(waves: .percent(50))))
        XCTAssertEqual(policy.status, 200, policy.text)

        let renewed = try site.ca.issueLeaf()
        let uploaded = try await server.send(.POST, "/api/v1/certificates", json: site.upload(renewed, name: "example"))
        XCTAssertEqual(uploaded.status, 201, uploaded.text)
        let rolloutID = try XCTUnwrap(try uploaded.decode(CertificateVersionView.self).autoRollout)
        let done = try await waitForRollout(server, rolloutID, ["succeeded", "failed", "halted"])
        XCTAssertEqual(done.state, "succeeded")
        XCTAssertEqual(done.certificateVersion, 2)
        XCTAssertEqual(done.strategy.waves, .percent(50))
        XCTAssertEqual(done.reason, "auto-rollout of version 2")
        XCTAssertEqual(Set(done.waves.flatMap(\.targets).compactMap(\.targetName)), Set(fleet.names))
        for index in fleet.names.indices { XCTAssertTrue(try fleet.holds(index, renewed)) }
        await assertEqual(try await site.served(), site.oldLeaf.sha256Hex)  // the unbound nginx target was not touched

        // `push --dry-run` with the policy on: the upload's rollout gets the push's options (and a bad strategy is
        // refused before anything is stored).
        let third = try site.ca.issueLeaf()
        var badUpload = site.upload(third, name: "example")
        badUpload.rolloutStrategy = RolloutStrategy(failureBudget: .percent(150))
        let badAnswer = try await server.send(.POST, "/api/v1/certificates", json: badUpload)
        XCTAssertEqual(badAnswer.status, 422, badAnswer.text)
        XCTAssertEqual(try badAnswer.problem().errors?.first?.pointer, "/rolloutStrategy/failureBudget")
        await assertEqual(try await server.request(.GET, "/api/v1/certificates/example").decode(CertificateView.self).latestVersion, 2)
        var dryUpload = site.upload(third, name: "example")
        dryUpload.rolloutOptions = .init(dryRun: true)
        let dry = try await server.send(.POST, "/api/v1/certificates", json: dryUpload)
        XCTAssertEqual(dry.status, 201, dry.text)
        let dryID = try XCTUnwrap(try dry.decode(CertificateVersionView.self).autoRollout)
        let dryDone = try await waitForRollout(server, dryID, ["succeeded", "failed", "halted"])
        XCTAssertEqual(dryDone.state, "succeeded")
        XCTAssertEqual(dryDone.options.dryRun, true)
        for index in fleet.names.indices { XCTAssertTrue(try fleet.holds(index, renewed), "a dry run writes nothing") }
    }

    func testADeploymentRequestToSeveralTargetsIsARolloutAndBadStrategiesNameTheField() async throws {
        let site = try NginxSite()
        let fleet = try FileFleet(site: site, count: 3)
        let server = try await startServer()
        try await server.upload(site.upload(try site.ca.issueLeaf(), name: "example"))
        for index in fleet.names.indices { try await server.createTarget(fleet.target(index, labels: ["g": "1"])) }
        let answer = try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "example", selector: "g=1"), as: .deployer)
        XCTAssertEqual(answer.status, 202, answer.text)
        let children = try answer.decode(ListResponse<DeploymentView>.self).items
        XCTAssertEqual(children.map(\.targetName), fleet.names)
        let rolloutID = try XCTUnwrap(children.first?.rolloutID)
        XCTAssertEqual(Set(children.compactMap(\.rolloutID)), [rolloutID])
        XCTAssertEqual(children.map(\.wave), [1, 2, 3])  // the default: a canary of 1, waves of 25 % of the rest (rounded up)
        for child in children { await assertEqual(try await server.waitForDeployment(child.id).status, "succeeded") }
        await assertEqual(try await waitForRollout(server, rolloutID, ["succeeded"]).state, "succeeded")
        let listed = try await server.request(.GET, "/api/v1/rollouts?state=succeeded&certificate=example").decode(ListResponse<RolloutView>.self)
        XCTAssertEqual(listed.items.map(\.id), [rolloutID])

        for (body, pointer) in [
            (#"{"certificate":"example","selector":"g=1","strategy":{"waves":"abc"}}"#, "/strategy/waves"),
            (#"{"certificate":"example","selector":"g=1","strategy":{"canary":["nope"]}}"#, "/strategy/canary"),
            (#"{"certificate":"example","selector":"g=1","strategy":{"failureBudget":-1}}"#, "/strategy/failureBudget"),
            (#"{"certificate":"example","selector":"g=1","strategy":{"approval":"maybe"}}"#, "/strategy/approval"),
            (#"{"certificate":"example","selector":"g=1","strategy":{"order":"zone"}}"#, "/strategy/order"),
            (#"{"certificate":"example","selector":"g=1","strategy":{"speed":1}}"#, "/strategy/speed"),
        ] {
            let refused = try await server.request(.POST, "/api/v1/rollouts", body: Data(body.utf8))
            XCTAssertEqual(refused.status, 422, "\(body): \(refused.text)")
            XCTAssertEqual(try refused.problem().errors?.first?.pointer, pointer, "\(body): \(refused.text)")
        }
        let ignore = try await server.send(.POST, "/api/v1/rollouts", json: DeploymentRequest(certificate: "example", selector: "g=1", ignoreWindows: true),
                                           as: .deployer)
        XCTAssertEqual(ignore.status, 403, ignore.text)
        let unknown = try await server.request(.POST, "/api/v1/rollouts/\(rolloutID.lowercasedText)/explode")
        XCTAssertEqual(unknown.status, 404, unknown.text)
        await assertEqual(try await server.request(.GET, "/api/v1/rollouts/\(UUID().lowercasedText)").status, 404)
        await assertEqual(try await server.request(.GET, "/api/v1/rollouts?state=bogus").status, 422)
    }
}

final class PostgresRolloutTests: RolloutTests {
    override func databaseURL() throws -> String? { try SharedPostgres.freshDatabaseURL() }

    /// Two replicas on one PostgreSQL both drive rollouts: each wave starts once, each child runs once.
    func testTwoReplicasDriveOneRolloutWithoutStartingAWaveTwice() async throws {
        let site = try NginxSite()
        let fleet = try FileFleet(site: site, count: 12)
        let url = try SharedPostgres.freshDatabaseURL()
        let registry = try testRegistry()
        let first = try await TestServer.start(registry: registry, databaseURL: url) { $0.workerID = "replica-a"; $0.pollInterval = .milliseconds(20) }
        addTeardownBlock { await first.stop() }
        let second = try await TestServer.start(registry: registry, databaseURL: url, environment: ["CERTDEPLOY_API_KEYS": "admin:\(first.adminKey):admin"]) {
            $0.workerID = "replica-b"
            $0.pollInterval = .milliseconds(20)
        }
        addTeardownBlock { await second.stop() }
        let leaf = try site.ca.issueLeaf()
        try await first.upload(site.upload(leaf, name: "example"))
        for index in fleet.names.indices { try await first.createTarget(fleet.target(index, labels: ["fleet": "pg"])) }
        let started = try await startRollout(first, DeploymentRequest(certificate: "example", selector: "fleet=pg",
                                                                       strategy: RolloutStrategy(canary: .count(1), waves: .count(2))))
        XCTAssertEqual(started.waves.count, 7)
        let done = try await waitForRollout(first, started.id, ["succeeded", "failed", "halted"])
        XCTAssertEqual(done.state, "succeeded", "\(done.counts)")
        XCTAssertTrue(["replica-a", "replica-b"].contains(done.drivenBy?.split(separator: "/").first.map(String.init) ?? ""), done.drivenBy ?? "")
        let audit = try await first.request(.GET, "/api/v1/audit?objectType=rollout&objectID=\(started.id.lowercasedText)&limit=500")
            .decode(ListResponse<AuditEventView>.self).items
        let waveStarts = audit.filter { $0.action == "rollout.progress" && $0.outcome == "wave_started" }.compactMap(\.detail)
        XCTAssertEqual(waveStarts.count, 7, "\(waveStarts)")
        XCTAssertEqual(Set(waveStarts).count, 7, "no wave started twice: \(waveStarts)")
        XCTAssertEqual(done.waves.flatMap(\.targets).map(\.attempts), Array(repeating: 1, count: 12))
        let completions = try await first.request(.GET, "/api/v1/audit?action=deployment.complete&limit=500").decode(ListResponse<AuditEventView>.self)
        XCTAssertEqual(completions.items.count, 12, "each child completed exactly once")
        for index in fleet.names.indices { XCTAssertTrue(try fleet.holds(index, leaf)) }
    }
}
