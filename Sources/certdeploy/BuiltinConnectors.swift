import Core
import ApacheConnector
import EnvoyConnector
import HAProxyConnector
import K8sConnector
import NginxConnector
import PostfixConnector
// scaffold:imports

/// The one list of connectors built into this binary. Adding a vendor adds one line here.
enum BuiltinConnectors {
    static let all: [any DeploymentTarget.Type] = [
        NginxConnector.self,
        ApacheConnector.self,
        HAProxyConnector.self,
        EnvoyConnector.self,
        K8sConnector.self,
        PostfixConnector.self,
        // scaffold:registry (`certdeploy connectors new` adds a line above this one)
    ]

    static func registry() throws -> ConnectorRegistry {
        try ConnectorRegistry(all)
    }
}
