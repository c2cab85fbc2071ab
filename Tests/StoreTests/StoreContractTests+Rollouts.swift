import Core
import Foundation
import XCTest

@testable import Store

/// Rollouts, windows and policies: the store's state machine driven by hand (claims and completions as a worker would
/// make them) on an injected clock, on every backend.
extension StoreContractTests {
    /// `count` targets `t0…` and certificate `web` version 1.
    func rolloutFixture(_ store: any Store, count: Int, labels: (Int) -> [String: String] = { _ in [:] }) async throws -> [TargetRecord] {
        _ = try await store.createCertificate(name: "web", actor: "alice")
        _ = try await store.addCertificateVersion(Fixture.version("web", 1), actor: "alice")
        var targets: [TargetRecord] = []
        for index in 0..<count { targets.append(try await store.createTarget(Fixture.target("t\(index)", labels: labels(index)), actor: "alice")) }
        return targets
    }

    /// Claims every claimable child and completes each with `outcome(target name)`.
    func runClaimable(_ store: any Store, _ targets: [TargetRecord], now: Date, outcome: (String) -> DeploymentOutcome = { _ in .succeeded }) async throws
        -> [String]
    {
        let names = Dictionary(uniqueKeysWithValues: targets.map { ($0.id, $0.name) })
        var ran: [String] = []
        for deployment in try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 100, now: now) {
            let name = names[deployment.targetID] ?? "?"
            let result = outcome(name)
            let failure = result == .succeeded ? nil : DeployFailure(targetID: name, step: .validate, message: "config test failed on \(name)")
            _ = try await store.complete(deploymentID: deployment.id, owner: "w",
                                         completion: try DeploymentCompletion(outcome: result, steps: [], failure: failure), now: now)
            ran.append(name)
        }
        return ran.sorted()
    }

    func statuses(_ store: any Store, _ rollout: UUID) async throws -> [String] {
        try await store.rolloutChildren(rolloutID: rollout).filter { !$0.superseded }.map { "\($0.targetName ?? "?"):\($0.status.rawValue)" }
    }

    func testRolloutReleasesWaveByWaveHaltsOnTheBudgetAndResumes() async throws {
        let store = try await makeStore()
        let targets = try await rolloutFixture(store, count: 5)
        let t0 = clock.now
        let rollout = try await store.createRollout(
            NewRollout(certificateName: "web", certificateVersion: 1, strategy: RolloutStrategy(failureBudget: .count(0)),
                       waves: [[targets[0].id], [targets[1].id, targets[2].id], [targets[3].id, targets[4].id]]),
            actor: "alice", now: t0)
        XCTAssertEqual(rollout.state, .pending)
        XCTAssertEqual(rollout.waveCount, 3)
        // Nothing is claimable before the driver releases a wave.
        await assertEqual(try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 100, now: t0), [])
        _ = try await store.advanceRollouts(driver: "d1", only: nil, now: t0)
        await assertEqual(try await statuses(store, rollout.id), ["t0:queued", "t1:pending", "t2:pending", "t3:pending", "t4:pending"])
        await assertEqual(try await runClaimable(store, targets, now: t0), ["t0"])
        // An advance that finds nothing to do changes nothing.
        _ = try await store.advanceRollouts(driver: "d1", only: nil, now: t0)
        await assertEqual(try await statuses(store, rollout.id), ["t0:succeeded", "t1:queued", "t2:queued", "t3:pending", "t4:pending"])
        // Wave 2: t2 fails. The budget (0) is exceeded: halted; wave 3 never starts.
        await assertEqual(try await runClaimable(store, targets, now: t0, outcome: { $0 == "t2" ? .failed : .succeeded }), ["t1", "t2"])
        let advances = try await store.advanceRollouts(driver: "d1", only: nil, now: t0)
        XCTAssertEqual(advances.first?.events.map(\.outcome), ["halted"])
        let halted = try await store.rollout(id: rollout.id)
        XCTAssertEqual(halted.state, .halted)
        XCTAssertTrue(halted.stopReason?.contains("t2 failed: validate: config test failed on t2") == true, halted.stopReason ?? "")
        _ = try await store.advanceRollouts(driver: "d1", only: nil, now: t0)
        await assertEqual(try await statuses(store, rollout.id), ["t0:succeeded", "t1:succeeded", "t2:failed", "t3:pending", "t4:pending"])
        // Only the states that allow an action take it.
        await assertThrows(.invalidState("rollout \(rollout.id.lowercasedText) is halted; approve needs a rollout that is waiting for approval"),
                           try await store.actOnRollout(id: rollout.id, action: .approve, actor: "bob", now: t0))
        // Resume accepts the failure: wave 3 runs, and the rollout ends failed (one target did not succeed).
        XCTAssertNotNil(halted.stopDeploymentID)
        let resumed = try await store.actOnRollout(id: rollout.id, action: .resume, actor: "bob", now: t0)
        XCTAssertEqual(resumed.state, .running)
        XCTAssertNil(resumed.stopReason)
        XCTAssertNil(resumed.stopDeploymentID, "a resumed rollout no longer names a culprit")
        _ = try await store.advanceRollouts(driver: "d2", only: nil, now: t0)
        await assertEqual(try await runClaimable(store, targets, now: t0), ["t3", "t4"])
        _ = try await store.advanceRollouts(driver: "d2", only: nil, now: t0)
        let failed = try await store.rollout(id: rollout.id)
        XCTAssertEqual(failed.state, .failed)
        XCTAssertEqual(failed.drivenBy, "d2")
        XCTAssertNotNil(failed.finishedAt)
        // Retry: t2 runs again (a new child; the old one is kept, superseded), and the rollout succeeds.
        _ = try await store.actOnRollout(id: rollout.id, action: .retry, actor: "bob", now: t0)
        _ = try await store.advanceRollouts(driver: "d2", only: nil, now: t0)
        await assertEqual(try await runClaimable(store, targets, now: t0), ["t2"])
        for _ in 0..<3 { _ = try await store.advanceRollouts(driver: "d2", only: nil, now: t0) }
        await assertEqual(try await store.rollout(id: rollout.id).state, .succeeded)
        let children = try await store.rolloutChildren(rolloutID: rollout.id)
        XCTAssertEqual(children.count, 6)
        XCTAssertEqual(children.filter(\.superseded).map(\.status), [.failed])
        let actions = try await store.auditEvents(AuditFilter(objectType: "rollout", objectID: rollout.id.lowercasedText), limit: 100, cursor: nil)
            .items.reversed().map { "\($0.action):\($0.outcome)" }
        XCTAssertEqual(actions.filter { $0.hasPrefix("rollout.progress:wave_started") }.count, 3, "a retry runs in its wave, no wave starts again: \(actions)")
        XCTAssertTrue(actions.contains("rollout.resume:success"))
        XCTAssertTrue(actions.contains("rollout.approve:failure"))
    }

    func testMaintenanceWindowsAndFreezesOnAnInjectedClock() async throws {
        let store = try await makeStore()
        let targets = try await rolloutFixture(store, count: 2) { ["dc": $0 == 0 ? "berlin" : "paris"] }
        // 2027-01-04 is a Monday. 00:30 UTC.
        let monday = try Date("2027-01-04T00:30:00Z", strategy: .iso8601)
        _ = try await store.createWindow(NewMaintenanceWindow(name: "nights", selector: "dc=berlin", schedule: "Mon-Fri 01:00-02:00 UTC"),
                                         actor: "alice", now: monday)
        _ = try await store.createWindow(NewMaintenanceWindow(name: "paris-nights", targetID: targets[1].id, schedule: "daily 01:00-02:00 Europe/Paris"),
                                         actor: "alice", now: monday)
        // A freeze over Monday's Paris window (00:00–01:00 UTC): Paris waits for Tuesday.
        _ = try await store.createWindow(NewMaintenanceWindow(name: "freeze", selector: "dc=paris",
                                                              freezeFrom: monday.addingTimeInterval(-3600), freezeUntil: monday.addingTimeInterval(6 * 3600)),
                                         actor: "alice", now: monday)
        await assertInvalidArgument(try await store.createWindow(NewMaintenanceWindow(name: "bad", selector: "dc=x", schedule: "Someday 1-2"),
                                                                 actor: "alice", now: monday))
        await assertInvalidArgument(try await store.createWindow(NewMaintenanceWindow(name: "both", selector: "dc=x", targetID: targets[0].id,
                                                                                      schedule: "daily 01:00-02:00"), actor: "alice", now: monday))
        await assertThrows(.conflict(field: "name"), try await store.createWindow(
            NewMaintenanceWindow(name: "nights", selector: "dc=x", schedule: "daily 01:00-02:00"), actor: "alice", now: monday))

        let rollout = try await store.createRollout(
            NewRollout(certificateName: "web", certificateVersion: 1, strategy: .default, waves: [[targets[0].id, targets[1].id]]),
            actor: "alice", now: monday)
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: monday)
        var children = try await store.rolloutChildren(rolloutID: rollout.id)
        XCTAssertEqual(children.map(\.status), [.waitingWindow, .waitingWindow])
        XCTAssertEqual(children[0].notBefore, try Date("2027-01-04T01:00:00Z", strategy: .iso8601))
        XCTAssertTrue(children[0].statusNote?.contains("outside its maintenance window nights (Mon,Tue,Wed,Thu,Fri 01:00-02:00 UTC)") == true,
                      children[0].statusNote ?? "")
        // Paris: 01:00 Europe/Paris is 00:00 UTC; Monday's is frozen, so Tuesday's.
        XCTAssertEqual(children[1].notBefore, try Date("2027-01-05T00:00:00Z", strategy: .iso8601))
        XCTAssertTrue(children[1].statusNote?.contains("frozen by freeze") == true, children[1].statusNote ?? "")
        await assertEqual(try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 10, now: monday.addingTimeInterval(3600)), [])

        // A minute before the window: still waiting. At 01:00: Berlin is queued and runs; Paris still waits.
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: monday.addingTimeInterval(29 * 60))
        await assertEqual(try await store.rolloutChildren(rolloutID: rollout.id).map(\.status), [.waitingWindow, .waitingWindow])
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: monday.addingTimeInterval(30 * 60))
        children = try await store.rolloutChildren(rolloutID: rollout.id)
        XCTAssertEqual(children.map(\.status), [.queued, .waitingWindow])
        await assertEqual(try await runClaimable(store, targets, now: monday.addingTimeInterval(30 * 60)), ["t0"])
        // Tuesday 00:00 UTC: Paris opens; the rollout finishes.
        let tuesday = try Date("2027-01-05T00:00:00Z", strategy: .iso8601)
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: tuesday)
        await assertEqual(try await runClaimable(store, targets, now: tuesday), ["t1"])
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: tuesday)
        await assertEqual(try await store.rollout(id: rollout.id).state, .succeeded)

        // ignoreWindows: straight to the queue.
        let urgent = try await store.createRollout(
            NewRollout(certificateName: "web", certificateVersion: 1, strategy: .default, waves: [[targets[1].id]], ignoreWindows: true),
            actor: "admin", now: monday)
        _ = try await store.advanceRollouts(driver: "d", only: urgent.id, now: monday)
        await assertEqual(try await store.rolloutChildren(rolloutID: urgent.id).map(\.status), [.queued])
        let rules = try await store.maintenanceRules(targetID: targets[1].id)
        XCTAssertEqual(rules.windows.map(\.name), ["paris-nights"])
        XCTAssertEqual(rules.freezes.map(\.name), ["freeze"])
        try await store.deleteWindow(named: "freeze", actor: "alice", now: monday)
        await assertThrows(.notFound(objectType: "window", id: "freeze"), try await store.deleteWindow(named: "freeze", actor: "alice", now: monday))
        await assertEqual(try await store.windows().map(\.name), ["nights", "paris-nights"])
    }

    func testPauseBetweenWavesApprovalAndMaxParallel() async throws {
        let store = try await makeStore()
        let targets = try await rolloutFixture(store, count: 4)
        let t0 = clock.now
        let strategy = RolloutStrategy(maxParallel: 1, pauseBetweenWaves: RolloutDuration(seconds: 600), approval: .afterCanary)
        let rollout = try await store.createRollout(
            NewRollout(certificateName: "web", certificateVersion: 1, strategy: strategy,
                       waves: [[targets[0].id], [targets[1].id, targets[2].id], [targets[3].id]]),
            actor: "alice", now: t0)
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: t0)
        await assertEqual(try await runClaimable(store, targets, now: t0), ["t0"])
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: t0)
        await assertEqual(try await store.rollout(id: rollout.id).state, .waitingApproval)
        _ = try await store.actOnRollout(id: rollout.id, action: .approve, actor: "bob", now: t0)
        // Approved, but the pause runs from the canary's end: nothing before t0 + 600 s.
        let early = try await store.advanceRollouts(driver: "d", only: nil, now: t0.addingTimeInterval(599))
        XCTAssertEqual(early.first?.wakeAt, t0.addingTimeInterval(600).storePrecision)
        await assertEqual(try await statuses(store, rollout.id), ["t0:succeeded", "t1:pending", "t2:pending", "t3:pending"])
        let t1 = t0.addingTimeInterval(600)
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: t1)
        // maxParallel 1: one child of wave 2 at a time.
        await assertEqual(try await statuses(store, rollout.id), ["t0:succeeded", "t1:queued", "t2:pending", "t3:pending"])
        await assertEqual(try await runClaimable(store, targets, now: t1), ["t1"])
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: t1)
        await assertEqual(try await runClaimable(store, targets, now: t1), ["t2"])
        // Pause holds what was released and not claimed; resume goes on.
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: t1.addingTimeInterval(600))
        await assertEqual(try await statuses(store, rollout.id), ["t0:succeeded", "t1:succeeded", "t2:succeeded", "t3:queued"])
        _ = try await store.actOnRollout(id: rollout.id, action: .pause, actor: "bob", now: t1)
        await assertEqual(try await statuses(store, rollout.id), ["t0:succeeded", "t1:succeeded", "t2:succeeded", "t3:pending"])
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: t1.addingTimeInterval(700))
        await assertEqual(try await store.claimNext(owner: "w", leaseDuration: .seconds(60), limit: 10, now: t1.addingTimeInterval(700)), [])
        _ = try await store.actOnRollout(id: rollout.id, action: .resume, actor: "bob", now: t1)
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: t1.addingTimeInterval(700))
        await assertEqual(try await runClaimable(store, targets, now: t1.addingTimeInterval(700)), ["t3"])
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: t1.addingTimeInterval(700))
        await assertEqual(try await store.rollout(id: rollout.id).state, .succeeded)
        // Abort of a finished rollout is refused.
        await assertThrows(.invalidState("rollout \(rollout.id.lowercasedText) is succeeded; abort needs a rollout that is not finished"),
                           try await store.actOnRollout(id: rollout.id, action: .abort, actor: "bob", now: t1))
        let page = try await store.listRollouts(RolloutFilter(certificateName: "web", states: [.succeeded]), limit: 10, cursor: nil)
        XCTAssertEqual(page.items.map(\.id), [rollout.id])
        await assertEqual(try await store.listRollouts(RolloutFilter(states: [.running]), limit: 10, cursor: nil).items.count, 0)
    }

    /// Concurrent advances (two handles to the same database) start each wave exactly once.
    func testConcurrentAdvancesStartEachWaveOnce() async throws {
        let store = try await makeStore()
        let other = try await reopenStore()
        let targets = try await rolloutFixture(store, count: 6)
        let t0 = clock.now
        let rollout = try await store.createRollout(
            NewRollout(certificateName: "web", certificateVersion: 1, strategy: .default, waves: targets.map { [$0.id] }), actor: "alice", now: t0)
        for _ in 0..<6 {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<8 {
                    let handle = index.isMultiple(of: 2) ? store : other
                    group.addTask { _ = try? await handle.advanceRollouts(driver: "d\(index)", only: nil, now: t0) }
                }
            }
            _ = try await runClaimable(store, targets, now: t0)
        }
        for _ in 0..<2 { _ = try await store.advanceRollouts(driver: "d", only: nil, now: t0) }
        await assertEqual(try await store.rollout(id: rollout.id).state, .succeeded)
        let starts = try await store.auditEvents(AuditFilter(action: AuditAction.rolloutProgress), limit: 100, cursor: nil).items
            .filter { $0.outcome == "wave_started" }.compactMap(\.detail)
        XCTAssertEqual(starts.count, 6, "\(starts)")
        XCTAssertEqual(Set(starts).count, 6)
        let children = try await store.rolloutChildren(rolloutID: rollout.id)
        XCTAssertTrue(children.allSatisfy { $0.attempts == 1 }, "\(children.map(\.attempts))")
    }

    func testCertificatePolicyAndRolloutValidation() async throws {
        let store = try await makeStore()
        let targets = try await rolloutFixture(store, count: 2)
        await assertEqual(try await store.certificatePolicy(name: "web"), nil)
        let policy = CertificatePolicy(autoRollout: true, strategy: RolloutStrategy(waves: .percent(50)), behindAfterSeconds: 3600)
        await assertEqual(try await store.setCertificatePolicy(name: "web", policy, actor: "alice"), policy)
        await assertEqual(try await store.certificatePolicy(name: "web"), policy)
        await assertThrows(.notFound(objectType: "certificate", id: "nope"), try await store.certificatePolicy(name: "nope"))
        await assertInvalidArgument(try await store.createRollout(
            NewRollout(certificateName: "web", certificateVersion: 1, strategy: .default, waves: [[targets[0].id], [targets[0].id]]),
            actor: "a", now: clock.now))
        await assertThrows(.notFound(objectType: "certificateVersion", id: "web@7"), try await store.createRollout(
            NewRollout(certificateName: "web", certificateVersion: 7, strategy: .default, waves: [[targets[0].id]]), actor: "a", now: clock.now))
        let gone = UUID()
        await assertThrows(.notFound(objectType: "target", id: gone.lowercasedText), try await store.createRollout(
            NewRollout(certificateName: "web", certificateVersion: 1, strategy: .default, waves: [[gone]]), actor: "a", now: clock.now))
        // Nothing was created by the refused requests.
        await assertEqual(try await store.listRollouts(RolloutFilter(), limit: 10, cursor: nil).items.count, 0)
        // A target with a pending rollout child can be deleted: the child is cancelled, the rollout moves on.
        let rollout = try await store.createRollout(
            NewRollout(certificateName: "web", certificateVersion: 1, strategy: .default, waves: [[targets[0].id], [targets[1].id]]),
            actor: "a", now: clock.now)
        try await store.deleteTarget(id: targets[1].id, actor: "a")
        _ = try await store.advanceRollouts(driver: "d", only: nil, now: clock.now)
        _ = try await runClaimable(store, targets, now: clock.now)
        for _ in 0..<3 { _ = try await store.advanceRollouts(driver: "d", only: nil, now: clock.now) }
        let finished = try await store.rollout(id: rollout.id)
        XCTAssertEqual(finished.state, .succeeded)
        await assertEqual(try await store.rolloutChildren(rolloutID: rollout.id).map(\.status), [.succeeded, .cancelled])
    }
}
