import CertdeployAPI
import Core
import Foundation

/// A deployment followed to its end, and what went wrong following it, if anything.
struct FollowedDeployment: Sendable {
    var deployment: DeploymentView
    /// Set when the deployment could not be followed to its end (the server went away, …).
    var error: String?
}

/// Follows deployments to their end through their event streams, all at once, printing each step as it ends
/// prefixed with the target's name (`web-1   [ok  ] write     3 files written (40 ms)`).
///
/// A stream that closes before its `end` event is not trusted: the deployment is read, and while it is still
/// queued or running the stream is opened again. Steps are printed once each, whatever the stream repeats; steps
/// the stream did not show (a deployment that finished before its stream opened) are printed from the final record.
struct DeploymentFollower: Sendable {
    let client: APIClient
    let console: Console
    /// False: print nothing while following (JSON output).
    var printSteps = true
    /// Pause before opening a stream again.
    var retryDelay: Duration = .seconds(1)

    func follow(_ deployments: [DeploymentView]) async -> [FollowedDeployment] {
        let width = deployments.map { DeploymentReport.targetName($0).count }.max() ?? 0
        let finished = await withTaskGroup(of: FollowedDeployment.self) { group in
            for deployment in deployments {
                let prefix = DeploymentReport.targetName(deployment)
                let padded = prefix + String(repeating: " ", count: width - prefix.count) + "  "
                group.addTask { await followOne(deployment, prefix: padded) }
            }
            var results: [UUID: FollowedDeployment] = [:]
            for await result in group { results[result.deployment.id] = result }
            return results
        }
        return deployments.map { finished[$0.id] ?? FollowedDeployment(deployment: $0, error: "not followed") }
    }

    private func followOne(_ start: DeploymentView, prefix: String) async -> FollowedDeployment {
        var latest = start
        var printed = Set<String>()
        func show(_ step: StepRecord) {
            guard printSteps, let text = StepPrinter.text(step, prefix: prefix) else { return }
            guard printed.insert("\(step.name.rawValue)@\(step.startedAt.timeIntervalSinceReferenceDate)").inserted else { return }
            console.line(text)
        }
        while true {
            var ended = false
            var streamError: String?
            do {
                for try await raw in try await client.deploymentEvents(start.id) {
                    guard let event = try? DeploymentEvent(raw) else { continue }
                    switch event {
                    case .step(let step):
                        show(step)
                    case .status(let view):
                        latest = view
                    case .end(let view):
                        latest = view
                        ended = true
                    case .other:
                        break
                    }
                    if ended { break }
                }
            } catch let error as APIError where error.status != nil {
                return FollowedDeployment(deployment: latest, error: "event stream: " + (error.messageLines.first ?? "\(error)").replacingOccurrences(of: "error: ", with: ""))
            } catch {
                if Task.isCancelled { return FollowedDeployment(deployment: latest, error: "stopped following") }
                streamError = "\(error)"
            }
            if !ended {
                do {
                    latest = try await client.deployment(start.id)
                } catch {
                    let reason = (error as? APIError)?.messageLines.first?.replacingOccurrences(of: "error: ", with: "") ?? streamError ?? "\(error)"
                    return FollowedDeployment(deployment: latest, error: "lost track of the deployment: \(reason)")
                }
            }
            latest.steps.forEach(show)
            if !latest.isLive { return FollowedDeployment(deployment: latest) }
            do {
                try await Task.sleep(for: retryDelay)
            } catch {
                return FollowedDeployment(deployment: latest, error: "stopped following")
            }
        }
    }
}
