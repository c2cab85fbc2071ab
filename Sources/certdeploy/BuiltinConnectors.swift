import Core
import NginxConnector

/// The one list of connectors built into this binary. Adding a vendor adds one line here.
enum BuiltinConnectors {
    static let all: [any DeploymentTarget.Type] = [
        NginxConnector.self,
    ]

    static func registry() throws -> ConnectorRegistry {
        try ConnectorRegistry(all)
    }
}
