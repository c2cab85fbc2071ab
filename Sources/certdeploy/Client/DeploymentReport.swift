import CertdeployAPI
import Core
import Foundation

/// How server deployments end up on the terminal and in the exit status.
enum DeploymentReport {
    /// The exit status for one deployment status, as `certdeploy deploy` maps outcomes: 0 succeeded or unchanged,
    /// 1 failed, interrupted, cancelled (or not finished), 3 rolled back, 4 rollback failed.
    static func exitStatus(status: String) -> Int32 {
        if let outcome = DeploymentOutcome(rawValue: status) { return DeployCommand.exitStatus(outcome) }
        return 1
    }

    /// The worst of the deployments' exit statuses (4 > 3 > 1 > 0); 0 for none.
    static func exitStatus(statuses: [String]) -> Int32 {
        statuses.map { exitStatus(status: $0) }.max() ?? 0
    }

    /// The target's name, or the start of its id when the target is gone.
    static func targetName(_ deployment: DeploymentView) -> String {
        deployment.targetName ?? String(deployment.targetID.lowercasedText.prefix(8))
    }

    /// Why a deployment ended as it did, in a few words.
    static func detail(_ deployment: DeploymentView, error: String? = nil) -> String {
        if let failure = deployment.failure { return "\(failure.step.rawValue): \(failure.message)" }
        if let error { return error }
        if let note = deployment.statusNote { return note }
        if deployment.options.dryRun == true { return "dry run" }
        return ""
    }

    /// `TARGET STATUS DURATION DETAIL`, then what an operator must look at for each `rollback_failed`.
    static func summary(_ results: [FollowedDeployment]) -> [String] {
        let rows = results.map { result in
            let deployment = result.deployment
            return [targetName(deployment), deployment.status, ClientFormat.duration(from: deployment.startedAt, to: deployment.finishedAt),
                    detail(deployment, error: result.error)]
        }
        var lines = TextTable.render(["TARGET", "STATUS", "DURATION", "DETAIL"], rows)
        for result in results {
            guard let attention = result.deployment.attention, !attention.isEmpty else { continue }
            lines.append("Operator action needed on \(targetName(result.deployment)):")
            lines += attention.map { "  - \($0)" }
        }
        return lines
    }

    /// The queued deployments: `TARGET DEPLOYMENT STATUS`.
    static func queued(_ deployments: [DeploymentView]) -> [String] {
        TextTable.render(["TARGET", "DEPLOYMENT", "STATUS"], deployments.map { [targetName($0), $0.id.lowercasedText, $0.status] })
    }

    /// One deployment in full: fields, steps as `certdeploy deploy` prints them, and the reason it failed.
    static func details(_ deployment: DeploymentView) -> [String] {
        var options: [String] = []
        if deployment.options.dryRun == true { options.append("dry run") }
        if deployment.options.force == true { options.append("force") }
        if deployment.options.allowMustStapleWithoutStapling == true { options.append("allow Must-Staple without stapling") }
        var fields: [[String]] = [
            ["deployment", deployment.id.lowercasedText],
            ["target", "\(deployment.targetName ?? "(deleted)") (\(deployment.targetID.lowercasedText))"],
            ["certificate", "\(deployment.certificate) v\(deployment.certificateVersion)"],
            ["status", deployment.status],
            ["actor", deployment.actor],
            ["attempts", "\(deployment.attempts)"],
            ["created", ClientFormat.date(deployment.createdAt)],
            ["started", ClientFormat.date(deployment.startedAt)],
            ["finished", ClientFormat.date(deployment.finishedAt)
                + (deployment.finishedAt == nil ? "" : " (\(ClientFormat.duration(from: deployment.startedAt, to: deployment.finishedAt)))")],
        ]
        if !options.isEmpty { fields.append(["options", options.joined(separator: ", ")]) }
        if let note = deployment.statusNote { fields.append(["note", note]) }
        var lines = TextTable.columns(fields)
        if !deployment.steps.isEmpty {
            lines.append("Steps:")
            lines += deployment.steps.map { StepPrinter.text($0) ?? "  [... ] \($0.name.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) running" }
        }
        if let failure = deployment.failure { lines.append("Reason: \(failure)") }
        if let attention = deployment.attention, !attention.isEmpty {
            lines.append("Operator action needed:")
            lines += attention.map { "  - \($0)" }
        }
        return lines
    }
}
