import CertdeployAPI
import Core
import Foundation

/// Follows a rollout to its end (or to an approval gate, or to a halt or pause once what ran has ended) by reading it
/// every half second: robust to a server
/// restart or another replica driving it (a read that fails is retried until `giveUpAfter`).
///
/// On a terminal it redraws a live view: one progress bar per wave (done, failed and running counts, elapsed time,
/// an ETA from the finished waves' pace) and the current wave's targets with their step. Elsewhere it prints plain
/// lines, one per change: waves starting and finishing, each target's end, halts and gates.
struct RolloutFollower: Sendable {
    let client: APIClient
    let console: Console
    /// Redraw in place (standard output is a terminal).
    var live: Bool
    /// Keep following through an approval gate (someone else approves) instead of returning there.
    var waitApproval: Bool
    var pollInterval: Duration = .milliseconds(500)
    var giveUpAfter: Duration = .seconds(120)
    /// False: print nothing while following.
    var printProgress = true

    struct Outcome {
        var rollout: RolloutView
        var error: String?
    }

    func follow(_ id: UUID) async -> Outcome {
        var seenChildren: [UUID: String] = [:]
        var seenWaves: [Int: String] = [:]
        var seenState: String?
        var drawnLines = 0
        var stepsPrinted = Set<UUID>()
        var latest: RolloutView?
        var failingSince: ContinuousClock.Instant?
        let started = ContinuousClock.now
        while true {
            let rollout: RolloutView
            do {
                rollout = try await client.rollout(id)
                failingSince = nil
            } catch {
                if let apiError = error as? APIError, apiError.status != nil, let latest {
                    return Outcome(rollout: latest, error: apiError.messageLines.first ?? "\(apiError)")
                }
                let since = failingSince ?? .now
                failingSince = since
                if ContinuousClock.now - since > giveUpAfter, let latest {
                    return Outcome(rollout: latest, error: "lost track of the rollout: \(error)")
                }
                try? await Task.sleep(for: pollInterval)
                continue
            }
            latest = rollout
            if printProgress {
                if live {
                    let lines = RolloutReport.liveView(rollout, elapsed: ContinuousClock.now - started)
                    var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)A\u{1B}[J" : ""
                    text += lines.joined(separator: "\n")
                    console.line(text)
                    drawnLines = lines.count
                } else {
                    await printFinishedSteps(rollout, printed: &stepsPrinted)
                    for line in RolloutReport.changes(rollout, seenChildren: &seenChildren, seenWaves: &seenWaves, seenState: &seenState) {
                        console.line(line)
                    }
                }
            }
            if rollout.isFinished { return Outcome(rollout: rollout) }
            // Halted or paused, nothing new starts: once what was running has ended, there is nothing more to see
            // until an operator acts.
            let running = rollout.waves.flatMap(\.targets).contains { $0.status == "running" || $0.status == "queued" }
            if rollout.state == "halted" || rollout.state == "paused", !running { return Outcome(rollout: rollout) }
            if rollout.state == "waiting_approval" && !waitApproval { return Outcome(rollout: rollout) }
            do { try await Task.sleep(for: pollInterval) } catch { return Outcome(rollout: rollout, error: "stopped following") }
        }
    }
}

extension RolloutFollower {
    /// Plain output: each target's steps once it finished, prefixed with its name (`web-1  [ok  ] write …`), as a
    /// deploy to one target prints them.
    func printFinishedSteps(_ rollout: RolloutView, printed: inout Set<UUID>) async {
        let children = rollout.waves.flatMap(\.targets)
        let width = children.map { ($0.targetName ?? "").count }.max() ?? 0
        for child in children where !printed.contains(child.deploymentID) && RolloutReport.isFinal(child.status) && child.status != "cancelled" {
            printed.insert(child.deploymentID)
            guard let deployment = try? await client.deployment(child.deploymentID) else { continue }
            let name = child.targetName ?? String(child.targetID.lowercasedText.prefix(8))
            let prefix = name + String(repeating: " ", count: max(0, width - name.count)) + "  "
            for step in deployment.steps {
                if let text = StepPrinter.text(step, prefix: prefix) { console.line(text) }
            }
        }
    }
}

/// How rollouts look on the terminal, and their exit status.
enum RolloutReport {
    /// 0 succeeded; 5 waiting for approval; 3 when every target that did not succeed was rolled back; 4 when one
    /// needs an operator (rollback failed); 1 otherwise (failed, halted, aborted, or still running).
    static func exitStatus(_ rollout: RolloutView) -> Int32 {
        switch rollout.state {
        case "succeeded": return 0
        case "waiting_approval": return 5
        default:
            let statuses = rollout.waves.flatMap(\.targets).map(\.status)
            if statuses.contains("rollback_failed") { return 4 }
            let bad = statuses.filter { !["succeeded", "unchanged", "pending", "cancelled"].contains($0) }
            if !bad.isEmpty, bad.allSatisfy({ $0 == "rolled_back" }) { return 3 }
            return 1
        }
    }

    static func isFinal(_ status: String) -> Bool {
        !["pending", "waiting_window", "queued", "running"].contains(status)
    }

    /// `ROLLOUT CERTIFICATE STATE WAVE TARGETS CREATED`.
    static func table(_ rollouts: [RolloutView]) -> [String] {
        TextTable.render(["ROLLOUT", "CERTIFICATE", "STATE", "WAVE", "TARGETS", "CREATED"], rollouts.map { rollout in
            [rollout.id.lowercasedText, "\(rollout.certificate) v\(rollout.certificateVersion)", rollout.state,
             "\(rollout.currentWave)/\(rollout.waves.count)", countsText(rollout.counts, total: rollout.targetCount), ClientFormat.date(rollout.createdAt)]
        })
    }

    /// `40 targets: 38 succeeded, 2 failed`.
    static func countsText(_ counts: [String: Int], total: Int) -> String {
        let parts = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
        return "\(total): " + parts.joined(separator: ", ")
    }

    static func strategyText(_ strategy: RolloutStrategy) -> String {
        var parts: [String] = []
        switch strategy.canary {
        case .count(let count): parts.append("canary \(count)")
        case .targets(let names): parts.append("canary \(names.joined(separator: ","))")
        }
        parts.append("waves \(strategy.waves)")
        parts.append("failure budget \(strategy.failureBudget)")
        if let maxParallel = strategy.maxParallel { parts.append("max parallel \(maxParallel)") }
        if let pause = strategy.pauseBetweenWaves { parts.append("pause \(pause)") }
        if strategy.approval != .none { parts.append("approval \(strategy.approval.rawValue)") }
        if strategy.order != .name { parts.append("order \(strategy.order)") }
        return parts.joined(separator: ", ")
    }

    /// The rollout in full: fields, then each wave with its targets.
    static func details(_ rollout: RolloutView) -> [String] {
        var fields: [[String]] = [
            ["rollout", rollout.id.lowercasedText],
            ["certificate", "\(rollout.certificate) v\(rollout.certificateVersion)"],
            ["state", rollout.state],
            ["strategy", strategyText(rollout.strategy)],
            ["targets", countsText(rollout.counts, total: rollout.targetCount)],
            ["wave", "\(rollout.currentWave) of \(rollout.waves.count)"],
            ["actor", rollout.actor],
            ["created", ClientFormat.date(rollout.createdAt)],
            ["finished", ClientFormat.date(rollout.finishedAt)],
        ]
        if let reason = rollout.reason { fields.append(["reason", reason]) }
        let options = [(rollout.options.dryRun, "dry run"), (rollout.options.force, "force"),
                       (rollout.options.allowMustStapleWithoutStapling, "allow Must-Staple without stapling")].filter { $0.0 == true }.map(\.1)
        if !options.isEmpty { fields.append(["options", options.joined(separator: ", ")]) }
        if rollout.ignoreWindows { fields.append(["windows", "ignored"]) }
        if let stop = rollout.stopReason { fields.append(["stopped", stop]) }
        if let next = rollout.nextWaveAt { fields.append(["next wave", ClientFormat.date(next)]) }
        if let driver = rollout.drivenBy { fields.append(["driven by", driver]) }
        var lines = TextTable.columns(fields)
        var rows: [[String]] = []
        for wave in rollout.waves {
            for child in wave.targets {
                rows.append(["\(wave.index)\(wave.canary ? " (canary)" : "")", child.targetName ?? String(child.targetID.lowercasedText.prefix(8)),
                             child.status + (child.step.map { " (\($0))" } ?? ""), ClientFormat.duration(from: child.startedAt, to: child.finishedAt),
                             childDetail(child)])
            }
        }
        if !rows.isEmpty {
            lines.append("")
            lines += TextTable.render(["WAVE", "TARGET", "STATUS", "DURATION", "DETAIL"], rows)
        }
        if rollout.state == "waiting_approval" {
            lines.append("Waiting for approval: certdeploy rollouts approve \(rollout.id.lowercasedText)")
        }
        return lines
    }

    static func childDetail(_ child: RolloutChildView) -> String {
        if let failure = child.failure { return failure }
        if child.status == "waiting_window", let starts = child.startsAt { return "waits for its window: starts \(ClientFormat.date(starts))" }
        return child.statusNote ?? ""
    }

    /// Plain lines for what changed since the last call.
    static func changes(_ rollout: RolloutView, seenChildren: inout [UUID: String], seenWaves: inout [Int: String], seenState: inout String?) -> [String] {
        var lines: [String] = []
        let width = rollout.waves.flatMap(\.targets).map { ($0.targetName ?? "").count }.max() ?? 8
        for wave in rollout.waves {
            // seenWaves: nil (nothing said), "started", "finished".
            if wave.state != "pending", seenWaves[wave.index] == nil {
                seenWaves[wave.index] = "started"
                lines.append("wave \(wave.index)/\(rollout.waves.count)\(wave.canary ? " (canary)" : "") started: \(wave.targets.count) target\(wave.targets.count == 1 ? "" : "s")")
            }
            for child in wave.targets where child.status != seenChildren[child.deploymentID] {
                seenChildren[child.deploymentID] = child.status
                guard ["succeeded", "unchanged", "failed", "rolled_back", "rollback_failed", "interrupted", "cancelled", "waiting_window"].contains(child.status)
                else { continue }
                let name = (child.targetName ?? String(child.targetID.lowercasedText.prefix(8))).padding(toLength: width, withPad: " ", startingAt: 0)
                let detail = childDetail(child)
                lines.append("  \(name)  \(child.status)\(detail.isEmpty ? "" : "  \(detail)")")
            }
            if wave.state == "finished", seenWaves[wave.index] == "started" {
                seenWaves[wave.index] = "finished"
                lines.append("wave \(wave.index)/\(rollout.waves.count) finished: \(countsText(wave.counts, total: wave.targets.count))")
            }
        }
        if seenState != rollout.state {
            seenState = rollout.state
            switch rollout.state {
            case "halted": lines.append("HALTED: \(rollout.stopReason ?? "")")
            case "waiting_approval": lines.append("waiting for approval: certdeploy rollouts approve \(rollout.id.lowercasedText)")
            case "paused": lines.append("paused")
            case "succeeded", "failed", "aborted": lines.append("rollout \(rollout.state)" + (rollout.stopReason.map { ": \($0)" } ?? ""))
            default: break
            }
        }
        return lines
    }

    /// The terminal view: a bar per wave and the current wave's targets.
    static func liveView(_ rollout: RolloutView, elapsed: Duration) -> [String] {
        var lines = ["Rollout \(rollout.id.lowercasedText.prefix(8)) of \(rollout.certificate) v\(rollout.certificateVersion): \(rollout.state), "
                     + "\(ClientFormat.duration(Double(elapsed.components.seconds)))"]
        let finishedWaves = rollout.waves.filter { $0.state == "finished" }
        let pace = finishedWaves.compactMap { wave in wave.startedAt.flatMap { start in wave.finishedAt.map { $0.timeIntervalSince(start) } } }
        let average = pace.isEmpty ? nil : pace.reduce(0, +) / Double(pace.count)
        for wave in rollout.waves {
            let total = max(1, wave.targets.count)
            let done = wave.targets.filter { !["pending", "queued", "running", "waiting_window"].contains($0.status) }.count
            let failed = wave.targets.filter { ["failed", "rolled_back", "rollback_failed", "interrupted"].contains($0.status) }.count
            let running = wave.targets.filter { $0.status == "running" }.count
            let width = 24
            let filled = done * width / total
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            var text = "wave \(wave.index)\(wave.canary ? "*" : " ") [\(bar)] \(done)/\(wave.targets.count) done, \(failed) failed, \(running) running"
            if let start = wave.startedAt {
                let end = wave.finishedAt ?? Date()
                text += ", \(ClientFormat.duration(end.timeIntervalSince(start)))"
                if wave.state == "running", let average { text += ", ETA \(ClientFormat.duration(max(0, average - end.timeIntervalSince(start))))" }
            }
            lines.append(text)
        }
        if let current = rollout.waves.first(where: { $0.index == rollout.currentWave }) {
            for child in current.targets where ["running", "queued", "waiting_window"].contains(child.status) {
                lines.append("  \(child.targetName ?? "?")  \(child.status)\(child.step.map { " (\($0))" } ?? "")")
            }
        }
        if let stop = rollout.stopReason { lines.append("stopped: \(stop)") }
        return lines
    }
}
