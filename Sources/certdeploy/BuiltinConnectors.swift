import Core
import ApacheConnector
import EnvoyConnector
import HAProxyConnector
import NginxConnector

/// The one list of connectors built into this binary. Adding a vendor adds one line here.
enum BuiltinConnectors {
    static let all: [any DeploymentTarget.Type] = [
        NginxConnector.self,
        ApacheConnector.self,
        HAProxyConnector.self,
        EnvoyConnector.self,
    ]

    static func registry() throws -> ConnectorRegistry {
        try ConnectorRegistry(all)
    }
}
