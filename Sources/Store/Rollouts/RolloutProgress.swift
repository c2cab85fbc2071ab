import Core
import Foundation

/// The rollout state machine, as a pure function: given a rollout and its children as stored, what to do now. The
/// store applies the decision in the same transaction it read the rows in (holding the rollout's row), so a
/// decision is taken once, by one replica, and a crash between two decisions loses nothing.
///
/// A wave is released (its pending children queued) only when every child of the previous wave has finished, the
/// pause between waves has passed, and the approval gate (if any) was opened. The failure budget is checked first on
/// every pass: once more children failed than it allows, nothing new starts.
enum RolloutProgress {
    struct Decision: Equatable {
        var state: RolloutState
        var currentWave: Int
        var waveFinishedAt: Date?
        /// Pending children to release now (in plan order).
        var release: [UUID] = []
        /// Put released-but-unclaimed children back to pending (halt, pause).
        var hold = false
        var stopReason: String?
        var stopDeploymentID: UUID?
        var finished = false
        /// What happened, for the audit log and the event stream: (outcome, detail).
        var events: [Event] = []
        /// When the next pass has something to do even if no child changes (the end of a pause).
        var wakeAt: Date?
    }

    struct Event: Equatable {
        var outcome: String
        var detail: String
    }

    static func decide(_ rollout: RolloutRecord, children all: [RolloutChild], now: Date) -> Decision {
        var decision = Decision(state: rollout.state, currentWave: rollout.currentWave, waveFinishedAt: rollout.waveFinishedAt,
                                stopReason: rollout.stopReason, stopDeploymentID: rollout.stopDeploymentID)
        guard rollout.state.isDriven else { return decision }
        let children = all.filter { !$0.superseded }
        if rollout.state == .pending {
            decision.state = .running
            decision.currentWave = 0
            decision.events.append(Event(outcome: "wave_started", detail: waveText(0, rollout.waveCount, children)))
            decision.release = release(through: 0, children, maxParallel: rollout.strategy.maxParallel)
            return decision
        }
        // The budget first: a failure halts at once, whichever wave it came from.
        let failures = children.filter(\.status.isFailure).sorted { ($0.finishedAt ?? .distantPast) < ($1.finishedAt ?? .distantPast) }
        let allowed = rollout.strategy.allowedFailures(targetCount: rollout.targetCount)
        if failures.count - rollout.acknowledgedFailures > allowed {
            let culprit = failures[min(failures.count - 1, allowed + rollout.acknowledgedFailures)]
            decision.state = .halted
            decision.hold = true
            decision.stopDeploymentID = culprit.id
            let what = "\(culprit.targetName ?? culprit.targetID.lowercasedText) \(culprit.status.rawValue)" + (culprit.failure.map { ": \($0)" } ?? "")
            decision.stopReason = "failure budget exceeded (\(allowed) allowed, \(failures.count - rollout.acknowledgedFailures) failed) in wave "
                + "\(culprit.wave + 1) of \(rollout.waveCount): \(what)"
            decision.events.append(Event(outcome: "halted", detail: decision.stopReason!))
            return decision
        }
        let wave = rollout.currentWave
        // Waves up to the current one are open: a retry adds pending children to an earlier wave, which run before the
        // rollout moves on (without walking the finished waves again).
        let open = children.filter { $0.wave <= wave }
        if open.contains(where: { $0.status == .pending }) {
            decision.release = release(through: wave, children, maxParallel: rollout.strategy.maxParallel)
            return decision
        }
        guard open.allSatisfy(\.status.isFinal) else { return decision }
        let inWave = children.filter { $0.wave == wave }
        // The wave is done: when its last child finished (the pause between waves counts from there).
        let finishedAt = rollout.waveFinishedAt ?? inWave.compactMap(\.finishedAt).max() ?? now
        if rollout.waveFinishedAt == nil {
            decision.waveFinishedAt = finishedAt
            decision.events.append(Event(outcome: "wave_finished", detail: waveText(wave, rollout.waveCount, children) + ": " + counts(inWave)))
        }
        if wave + 1 >= rollout.waveCount {
            let bad = children.filter { !($0.status == .succeeded || $0.status == .unchanged || $0.status == .cancelled) }
            decision.finished = true
            decision.state = bad.isEmpty ? .succeeded : .failed
            decision.stopReason = bad.isEmpty ? nil : "\(bad.count) of \(children.count) target\(children.count == 1 ? "" : "s") did not succeed (within the failure budget)"
            decision.events.append(Event(outcome: decision.state.rawValue, detail: counts(children)))
            return decision
        }
        let gated: Bool
        switch rollout.strategy.approval {
        case .none: gated = false
        case .afterCanary: gated = wave == 0 && hasCanary(rollout.strategy)
        case .everyWave: gated = true
        }
        if gated && rollout.approvedWave <= wave {
            decision.state = .waitingApproval
            decision.events.append(Event(outcome: "waiting_approval", detail: "wave \(wave + 2) of \(rollout.waveCount) waits for approval"))
            return decision
        }
        if let pause = rollout.strategy.pauseBetweenWaves, pause.seconds > 0 {
            let resumeAt = finishedAt.addingTimeInterval(TimeInterval(pause.seconds))
            if now < resumeAt {
                decision.wakeAt = resumeAt
                return decision
            }
        }
        decision.currentWave = wave + 1
        decision.waveFinishedAt = nil
        decision.events.append(Event(outcome: "wave_started", detail: waveText(wave + 1, rollout.waveCount, children)))
        decision.release = release(through: wave + 1, children, maxParallel: rollout.strategy.maxParallel)
        return decision
    }

    private static func hasCanary(_ strategy: RolloutStrategy) -> Bool {
        if case .count(0) = strategy.canary { return false }
        return true
    }

    /// The pending children of waves up to `wave` to release (plan order), within `maxParallel` live children of the
    /// whole rollout.
    private static func release(through wave: Int, _ children: [RolloutChild], maxParallel: Int?) -> [UUID] {
        let pending = children.filter { $0.wave <= wave && $0.status == .pending }.map(\.id)
        guard let maxParallel else { return pending }
        let live = children.filter(\.status.isLive).count
        return Array(pending.prefix(max(0, maxParallel - live)))
    }

    private static func waveText(_ wave: Int, _ count: Int, _ children: [RolloutChild]) -> String {
        let size = children.filter { $0.wave == wave }.count
        return "wave \(wave + 1) of \(count) (\(size) target\(size == 1 ? "" : "s"))"
    }

    static func counts(_ children: [RolloutChild]) -> String {
        var byStatus: [String: Int] = [:]
        for child in children { byStatus[child.status.rawValue, default: 0] += 1 }
        return byStatus.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    }
}
