import Core
import Foundation
import KubernetesClient
import SSHTransport

/// A target described in a JSON file for a direct (serverless) deploy:
/// `{"name": "web-1", "connector": "nginx", "ssh": {…}, "config": {…}}`, or with `"kubernetes": {…}`
/// instead of `ssh` for a connector whose transport is the Kubernetes API.
struct TargetFile {
    var name: String
    var connectorID: String?
    /// Exactly one of `ssh` and `kubernetes` is set.
    var ssh: SSHTarget?
    var kubernetes: KubernetesTarget?
    var config: JSONValue
    var path: String

    static let fields: [ConfigField] = [
        ConfigField("name", .string, "Target name, used in messages and locks. Default: the file name."),
        ConfigField("connector", .string, "Connector id (or pass --connector)."),
        ConfigField("ssh", .object(SSHTarget.configFields), "How to reach the target over SSH (SSH connectors)."),
        ConfigField("kubernetes", .object(KubernetesTarget.configFields), "How to reach the cluster's API (the k8s connector); instead of ssh."),
        ConfigField("config", .stringMap, required: true, "The connector's config."),
    ]

    static func load(path: String) throws -> TargetFile {
        let members = try TargetFileMembers.read(path: path, allowed: ["name", "connector", "ssh", "kubernetes", "config"])
        switch (members["ssh"], members["kubernetes"]) {
        case (nil, nil): throw InputError("\(path): /ssh: is required (or /kubernetes for a Kubernetes connector)")
        case (_?, _?): throw InputError("\(path): /kubernetes: give either ssh or kubernetes, not both")
        default: break
        }
        guard let config = members["config"] else { throw InputError("\(path): /config: is required") }
        var ssh: SSHTarget?
        var kubernetes: KubernetesTarget?
        do {
            ssh = try members["ssh"].map { try SSHTarget.decode($0) }
            kubernetes = try members["kubernetes"].map { try KubernetesTarget.decode($0) }
        } catch let error as ConfigError {
            throw InputError("\(path): \(error)")
        }
        var name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        if case .string(let given)? = members["name"] { name = given }
        var connectorID: String?
        if case .string(let given)? = members["connector"] { connectorID = given }
        return TargetFile(name: name, connectorID: connectorID, ssh: ssh, kubernetes: kubernetes, config: config, path: path)
    }

    /// Checks that the file's transport section is the one the connector talks over.
    func requireTransport(_ transport: ConnectorDescriptor.Transport, connectorID: String) throws {
        switch transport {
        case .ssh where ssh == nil:
            throw InputError("\(path): /ssh: is required for connector \(connectorID), which deploys over SSH (the file has a kubernetes section)")
        case .kubernetes where kubernetes == nil:
            throw InputError("\(path): /kubernetes: is required for connector \(connectorID), which talks to the Kubernetes API (the file has an ssh section)")
        default:
            break
        }
    }
}

/// Bad input (target file, certificate, key, connector): `deploy` prints it as "error: …" and exits 2.
struct InputError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
