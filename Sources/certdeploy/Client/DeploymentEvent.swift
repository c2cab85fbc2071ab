import CertdeployAPI
import Core
import Foundation

/// An event of `GET /api/v1/deployments/{id}/events`, decoded.
enum DeploymentEvent {
    /// A step started (outcome `running`) or ended.
    case step(StepRecord)
    /// The deployment's status changed.
    case status(DeploymentView)
    /// The last event: the final deployment. The server closes the stream after it.
    case end(DeploymentView)
    /// An event this client does not know; ignored.
    case other(ServerSentEvent)

    init(_ event: ServerSentEvent) throws {
        let data = Data(event.data.utf8)
        switch event.event {
        case DeploymentEventName.step: self = .step(try JSONDecoder.api.decode(StepRecord.self, from: data))
        case DeploymentEventName.status: self = .status(try JSONDecoder.api.decode(DeploymentView.self, from: data))
        case DeploymentEventName.end: self = .end(try JSONDecoder.api.decode(DeploymentView.self, from: data))
        default: self = .other(event)
        }
    }
}
