import CertdeployAPI
import Core
import Foundation
import XCTest

@testable import certdeploy

/// How a rollout looks on a terminal and in plain lines, and the exit status it maps to, on fixed views.
final class RolloutReportTests: XCTestCase {
    func child(_ name: String, _ status: String, step: String? = nil, failure: String? = nil) -> RolloutChildView {
        RolloutChildView(deploymentID: UUID(), targetID: UUID(), targetName: name, status: status, step: step, statusNote: nil, failure: failure,
                         attempts: status == "pending" ? 0 : 1, startsAt: nil, startedAt: nil, finishedAt: nil)
    }

    func rollout(_ state: String, waves: [[RolloutChildView]], current: Int, stop: String? = nil) -> RolloutView {
        let start = Date().addingTimeInterval(-60)
        let views = waves.enumerated().map { index, targets in
            let finished = targets.allSatisfy { !["pending", "queued", "running", "waiting_window"].contains($0.status) }
            let pending = targets.allSatisfy { $0.status == "pending" }
            return RolloutWaveView(index: index + 1, canary: index == 0, state: finished ? "finished" : (pending ? "pending" : "running"),
                                   counts: [:], targets: targets, startedAt: pending ? nil : start.addingTimeInterval(Double(index * 10)),
                                   finishedAt: finished ? start.addingTimeInterval(Double(index * 10 + 4)) : nil)
        }
        return RolloutView(id: UUID(), certificate: "example", certificateVersion: 3, strategy: .default, state: state, currentWave: current, waves: views,
                           counts: [:], targetCount: waves.flatMap { $0 }.count, failureBudget: 0, stopReason: stop, stopDeploymentID: nil,
                           ignoreWindows: false, reason: nil, options: .init(), actor: "admin", createdAt: start, updatedAt: start, finishedAt: nil,
                           drivenBy: nil, nextWaveAt: nil)
    }

    func testTheLiveViewHasABarPerWaveAndTheCurrentWavesTargets() {
        let view = rollout("running", waves: [[child("web-1", "succeeded")], [child("web-2", "succeeded"), child("web-3", "running", step: "validate"),
                                                                             child("web-4", "failed", failure: "validate: broken")],
                                              [child("web-5", "pending")]], current: 2)
        let lines = RolloutReport.liveView(view, elapsed: .seconds(12))
        XCTAssertTrue(lines[0].hasPrefix("Rollout ") && lines[0].contains("of example v3: running, 12.0s"), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("wave 1* [########################] 1/1 done, 0 failed, 0 running, 4.0s"), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("wave 2  [################........] 2/3 done, 1 failed, 1 running"), lines[2])
        XCTAssertTrue(lines[2].contains("ETA"), "an ETA from the finished waves' pace: \(lines[2])")
        XCTAssertEqual(lines[3], "wave 3  [........................] 0/1 done, 0 failed, 0 running")
        XCTAssertEqual(lines[4], "  web-3  running (validate)")
        XCTAssertEqual(lines.count, 5)
    }

    func testPlainLinesSayEachChangeOnce() {
        var children: [UUID: String] = [:]
        var waves: [Int: String] = [:]
        var state: String?
        let first = rollout("running", waves: [[child("web-1", "running")], [child("web-2", "pending")]], current: 1)
        XCTAssertEqual(RolloutReport.changes(first, seenChildren: &children, seenWaves: &waves, seenState: &state),
                       ["wave 1/2 (canary) started: 1 target"])
        XCTAssertEqual(RolloutReport.changes(first, seenChildren: &children, seenWaves: &waves, seenState: &state), [])
        var halted = first
        halted.state = "halted"
        halted.stopReason = "failure budget exceeded"
        halted.waves[0].targets[0].status = "failed"
        halted.waves[0].targets[0].failure = "validate: broken"
        halted.waves[0].state = "finished"
        halted.waves[0].counts = ["failed": 1]
        XCTAssertEqual(RolloutReport.changes(halted, seenChildren: &children, seenWaves: &waves, seenState: &state),
                       ["  web-1  failed  validate: broken", "wave 1/2 finished: 1: 1 failed", "HALTED: failure budget exceeded"])
    }

    func testExitStatus() {
        XCTAssertEqual(RolloutReport.exitStatus(rollout("succeeded", waves: [[child("a", "succeeded")]], current: 1)), 0)
        XCTAssertEqual(RolloutReport.exitStatus(rollout("waiting_approval", waves: [[child("a", "succeeded")], [child("b", "pending")]], current: 1)), 5)
        XCTAssertEqual(RolloutReport.exitStatus(rollout("halted", waves: [[child("a", "rolled_back")], [child("b", "pending")]], current: 1)), 3)
        XCTAssertEqual(RolloutReport.exitStatus(rollout("halted", waves: [[child("a", "failed")], [child("b", "pending")]], current: 1)), 1)
        XCTAssertEqual(RolloutReport.exitStatus(rollout("failed", waves: [[child("a", "rollback_failed"), child("b", "rolled_back")]], current: 1)), 4)
        XCTAssertEqual(RolloutReport.exitStatus(rollout("aborted", waves: [[child("a", "succeeded")], [child("b", "cancelled")]], current: 1)), 1)
        XCTAssertEqual(RolloutReport.exitStatus(rollout("paused", waves: [[child("a", "succeeded")], [child("b", "pending")]], current: 1)), 1)
    }
}
