import CertdeployAPI
import Foundation

/// A deploy through the server: `POST /deployments`, then either the queued deployments, or (`follow`) each
/// target's steps live and a summary. Shared by `certdeploy deploy <certificate> --to …` and `certdeploy push`.
struct RemoteDeploy {
    var request: DeploymentRequest
    var follow: Bool
    /// Following a rollout: keep going through approval gates (someone else approves).
    var waitApproval = false
    /// Following a rollout on a terminal: redraw a live view.
    var live = false

    /// What to print.
    enum Printing {
        /// Progress and the summary as text.
        case text
        /// The deployments' JSON (`ListResponse<DeploymentView>`) at the end.
        case json
        /// Nothing: the caller prints.
        case none
    }

    struct Outcome {
        var status: Int32
        var deployments: [DeploymentView]
        /// Set when the server staged the deploy as a rollout (more than one target).
        var rollout: RolloutView?
    }

    func execute(client: APIClient, console: Console, printing: Printing) async throws -> Outcome {
        let created = try await client.createDeployments(request).items
        guard !created.isEmpty else {
            throw InputError("no target matches --to \(describeSelection())")
        }
        if let rolloutID = created.first?.rolloutID {
            return try await executeRollout(rolloutID, created: created, client: client, console: console, printing: printing)
        }
        guard follow else {
            switch printing {
            case .text:
                console.line("Queued \(created.count) deployment\(created.count == 1 ? "" : "s") of \(versionText(created)):")
                DeploymentReport.queued(created).forEach(console.line)
                console.line("Watch one with `certdeploy deployments show <deployment>`, or deploy with --follow.")
            case .json:
                try console.json(ListResponse(items: created))
            case .none:
                break
            }
            return Outcome(status: 0, deployments: created)
        }
        if printing == .text {
            let dryRun = request.options?.dryRun == true ? " (dry run)" : ""
            console.line("Deploying \(versionText(created)) to \(created.count) target\(created.count == 1 ? "" : "s")\(dryRun)")
        }
        let results = await DeploymentFollower(client: client, console: console, printSteps: printing == .text).follow(created)
        switch printing {
        case .text:
            DeploymentReport.summary(results).forEach(console.line)
        case .json:
            try console.json(ListResponse(items: results.map(\.deployment)))
        case .none:
            break
        }
        // A deployment not followed to its end is still queued or running, which counts as 1.
        return Outcome(status: DeploymentReport.exitStatus(statuses: results.map(\.deployment.status)), deployments: results.map(\.deployment))
    }

    /// Several targets: the server made a rollout. Followed wave by wave; its outcome is the exit status.
    func executeRollout(_ id: UUID, created: [DeploymentView], client: APIClient, console: Console, printing: Printing) async throws -> Outcome {
        let rollout = try await client.rollout(id)
        let dryRun = rollout.options.dryRun == true ? " (dry run)" : ""
        if printing == .text {
            console.line("Rollout \(id.lowercasedText): \(rollout.certificate) v\(rollout.certificateVersion) to \(rollout.targetCount) targets in \(rollout.waves.count) "
                         + "wave\(rollout.waves.count == 1 ? "" : "s")\(dryRun) (\(RolloutReport.strategyText(rollout.strategy)))")
        }
        guard follow else {
            switch printing {
            case .text: console.line("Watch it with `certdeploy rollouts show \(id.lowercasedText) --follow`, or deploy with --follow.")
            case .json: try console.json(rollout)
            case .none: break
            }
            return Outcome(status: 0, deployments: created, rollout: rollout)
        }
        let followed = await RolloutFollower(client: client, console: console, live: live && printing == .text, waitApproval: waitApproval,
                                             printProgress: printing == .text).follow(id)
        switch printing {
        case .text:
            console.line("")
            RolloutReport.details(followed.rollout).forEach(console.line)
            if let error = followed.error { console.error("error: \(error)") }
        case .json:
            try console.json(followed.rollout)
        case .none:
            break
        }
        return Outcome(status: RolloutReport.exitStatus(followed.rollout), deployments: created, rollout: followed.rollout)
    }

    private func versionText(_ deployments: [DeploymentView]) -> String {
        guard let first = deployments.first else { return request.certificate }
        return "\(first.certificate) v\(first.certificateVersion)"
    }

    private func describeSelection() -> String {
        ((request.targets ?? []) + (request.selector.map { [$0] } ?? [])).joined(separator: " ")
    }
}
