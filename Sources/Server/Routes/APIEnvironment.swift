import Core
import Foundation
import Logging
import Store

/// What the route handlers share.
struct APIEnvironment: Sendable {
    let store: any Store
    let registry: ConnectorRegistry
    let codec: TargetCodec
    let events: DeploymentEvents
    let worker: DeploymentWorker
    /// Moves rollouts on (wave by wave).
    let rollouts: RolloutDriver
    let metrics: ServerMetrics
    let configuration: ServerConfiguration
    let logger: Logger
    let openAPIDocument: @Sendable () -> String
    /// Staple refresh and drift detection.
    let watch: TargetWatch

    var vault: SecretVault { codec.vault }
}
