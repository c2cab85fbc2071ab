import Core
import Foundation
import SSHTransport

/// A target described in a JSON file for a direct (serverless) deploy:
/// `{"name": "web-1", "connector": "nginx", "ssh": {…}, "config": {…}}`.
struct TargetFile {
    var name: String
    var connectorID: String?
    var ssh: SSHTarget
    var config: JSONValue

    static let fields: [ConfigField] = [
        ConfigField("name", .string, "Target name, used in messages and locks. Default: the file name."),
        ConfigField("connector", .string, "Connector id (or pass --connector)."),
        ConfigField("ssh", .object(SSHTarget.configFields), required: true, "How to reach the target."),
        ConfigField("config", .stringMap, required: true, "The connector's config."),
    ]

    static func load(path: String) throws -> TargetFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ValidationError("cannot read target file \(path): \(error.localizedDescription)")
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(data)
        } catch {
            throw ValidationError("\(path) is not valid JSON: \(error)")
        }
        guard case .object(let members) = json else { throw ValidationError("\(path): must be a JSON object") }
        let allowed: Set<String> = ["name", "connector", "ssh", "config"]
        if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ValidationError("\(path): /\(unknown): unknown field (expected name, connector, ssh, config)")
        }
        guard let sshJSON = members["ssh"] else { throw ValidationError("\(path): /ssh: is required") }
        guard let config = members["config"] else { throw ValidationError("\(path): /config: is required") }
        let ssh: SSHTarget
        do {
            ssh = try SSHTarget.decode(sshJSON)
        } catch let error as ConfigError {
            throw ValidationError("\(path): \(error)")
        }
        var name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        if case .string(let given)? = members["name"] { name = given }
        var connectorID: String?
        if case .string(let given)? = members["connector"] { connectorID = given }
        return TargetFile(name: name, connectorID: connectorID, ssh: ssh, config: config)
    }
}

/// A usage error printed as "Error: …" with exit status 64 by ArgumentParser.
struct ValidationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
