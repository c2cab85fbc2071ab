import CertdeployAPI
import Core
import Foundation

/// A target file for `certdeploy targets add|update --file`: the `certdeploy deploy --config` shape
/// (`{"name", "connector", "ssh": {…} or "kubernetes": {…}, "config": {…}}`), optionally with `labels` and
/// `certificate`, i.e. a whole `TargetInput`. Only the shape is checked here; the server checks the contents and
/// names the fields at fault.
struct TargetInputFile: Equatable {
    var name: String?
    var connector: String?
    var labels: [String: String]?
    var certificate: String?
    var ssh: JSONValue?
    var kubernetes: JSONValue?
    var config: JSONValue?
    var path: String

    static let allowedFields: Set<String> = ["name", "connector", "labels", "certificate", "ssh", "kubernetes", "config"]

    static func load(path: String) throws(InputError) -> TargetInputFile {
        try build(TargetFileMembers.read(path: path, allowed: allowedFields), path: path)
    }

    static func parse(_ data: Data, path: String) throws(InputError) -> TargetInputFile {
        try build(TargetFileMembers.parse(data, path: path, allowed: allowedFields), path: path)
    }

    private static func build(_ members: [String: JSONValue], path: String) throws(InputError) -> TargetInputFile {
        if members["ssh"] != nil, members["kubernetes"] != nil {
            throw InputError("\(path): /kubernetes: give either ssh or kubernetes, not both")
        }
        func string(_ key: String) throws(InputError) -> String? {
            switch members[key] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            case let other?: throw InputError("\(path): /\(key): must be a string, not \(other.typeName)")
            }
        }
        func object(_ key: String) throws(InputError) -> JSONValue? {
            switch members[key] {
            case nil, .null?: return nil
            case let value? where value.isObject: return value
            case let other?: throw InputError("\(path): /\(key): must be an object, not \(other.typeName)")
            }
        }
        var labels: [String: String]?
        if let raw = try object("labels"), case .object(let entries) = raw {
            var parsed: [String: String] = [:]
            for (key, value) in entries {
                guard case .string(let text) = value else { throw InputError("\(path): /labels/\(key): must be a string") }
                parsed[key] = text
            }
            labels = parsed
        }
        return TargetInputFile(name: try string("name"), connector: try string("connector"), labels: labels, certificate: try string("certificate"),
                               ssh: try object("ssh"), kubernetes: try object("kubernetes"), config: try object("config"), path: path)
    }

    /// The input for `POST /targets`: flags win over the file; `--label` values are added to (or replace keys of)
    /// the file's labels.
    func input(name flagName: String?, connector flagConnector: String?, labels flagLabels: [String: String],
               certificate flagCertificate: String?) throws(InputError) -> TargetInput {
        guard ssh != nil || kubernetes != nil else {
            throw InputError("\(path): /ssh: is required (or /kubernetes for a Kubernetes connector)")
        }
        guard let config else { throw InputError("\(path): /config: is required") }
        let name = flagName ?? self.name ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        guard let connector = flagConnector ?? self.connector else {
            throw InputError("name the connector with --connector or \"connector\" in \(path)")
        }
        let merged = (labels ?? [:]).merging(flagLabels) { $1 }
        return TargetInput(name: name, connector: connector, labels: merged, certificate: flagCertificate ?? certificate, ssh: ssh,
                           kubernetes: kubernetes, config: config)
    }

    /// Applies the file to a stored target for `PUT`: each field the file has replaces the stored one (an `ssh`
    /// section replaces a `kubernetes` one and the other way round). Secrets the file leaves out stay as stored.
    func apply(to input: inout TargetInput) {
        if let name { input.name = name }
        if let connector { input.connector = connector }
        if let labels { input.labels = labels }
        if let certificate { input.certificate = certificate }
        if let ssh {
            input.ssh = ssh
            input.kubernetes = nil
        }
        if let kubernetes {
            input.kubernetes = kubernetes
            input.ssh = nil
        }
        if let config { input.config = config }
    }
}

extension JSONValue {
    fileprivate var isObject: Bool {
        if case .object = self { return true }
        return false
    }
}
