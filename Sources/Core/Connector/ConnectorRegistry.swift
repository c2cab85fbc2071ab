import Foundation

/// The registry refused a connector list.
public struct RegistryError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A connector with its config checked and decoded: ready to plan.
public struct ConfiguredConnector: Sendable {
    public let descriptor: ConnectorDescriptor
    /// The config as validated, with defaults filled in.
    public let normalizedConfig: JSONValue
    private let planner: @Sendable (CertificateBundle, PlanContext) throws -> DeploymentPlan

    init(descriptor: ConnectorDescriptor, normalizedConfig: JSONValue, planner: @escaping @Sendable (CertificateBundle, PlanContext) throws -> DeploymentPlan) {
        self.descriptor = descriptor
        self.normalizedConfig = normalizedConfig
        self.planner = planner
    }

    public func plan(for bundle: CertificateBundle, context: PlanContext) throws -> DeploymentPlan {
        try planner(bundle, context)
    }
}

/// A connector type seen through its descriptor, so callers never switch on ids.
public struct RegisteredConnector: Sendable {
    public let descriptor: ConnectorDescriptor
    private let makeConfigured: @Sendable (JSONValue) throws -> ConfiguredConnector

    init<Connector: DeploymentTarget>(_ connector: Connector.Type) {
        let descriptor = Connector.descriptor
        self.descriptor = descriptor
        self.makeConfigured = { raw in
            let (normalized, schemaIssues) = ConfigValidator.validate(raw, fields: descriptor.configFields)
            guard schemaIssues.isEmpty else { throw ConfigError(connectorID: descriptor.id, issues: schemaIssues) }
            let config: Connector.Config
            do {
                config = try JSONValueDecoder().decode(Connector.Config.self, from: normalized)
            } catch let error as DecodingError {
                throw ConfigError(connectorID: descriptor.id, issues: [ConfigIssue(decodingError: error)])
            }
            let issues = Connector.validate(config)
            guard issues.isEmpty else { throw ConfigError(connectorID: descriptor.id, issues: issues) }
            return ConfiguredConnector(descriptor: descriptor, normalizedConfig: normalized) { bundle, context in
                try Connector.plan(for: bundle, config: config, context: context)
            }
        }
    }

    /// Validates raw config strictly and decodes it. Throws ``ConfigError`` naming each bad field.
    public func configure(_ config: JSONValue) throws -> ConfiguredConnector {
        try makeConfigured(config)
    }
}

extension ConfigIssue {
    init(decodingError: DecodingError) {
        func pointer(_ path: [any CodingKey]) -> String {
            path.map { "/" + ConfigValidator.escape($0.intValue.map(String.init) ?? $0.stringValue) }.joined()
        }
        switch decodingError {
        case .keyNotFound(let key, let context):
            self.init(pointer: pointer(context.codingPath + [key]), message: "is required")
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            self.init(pointer: pointer(context.codingPath), message: context.debugDescription)
        @unknown default:
            self.init(pointer: "", message: "\(decodingError)")
        }
    }
}

/// Maps connector ids to connectors. Built once from the explicit list in the executable.
public struct ConnectorRegistry: Sendable {
    public let connectors: [RegisteredConnector]

    /// Refuses an empty, malformed or duplicate id, and a sample config its own schema rejects.
    public init(_ types: [any DeploymentTarget.Type]) throws {
        var seen = Set<String>()
        var registered: [RegisteredConnector] = []
        for type in types {
            let connector = Self.register(type)
            let id = connector.descriptor.id
            guard id.range(of: "^[a-z][a-z0-9-]{1,31}\\z", options: .regularExpression) != nil else {  // \z, not $: `$` also matches before a final newline
                throw RegistryError(message: "connector id \"\(id)\" is not valid: use 2–32 lowercase letters, digits or -, starting with a letter")
            }
            guard seen.insert(id).inserted else {
                throw RegistryError(message: "connector id \"\(id)\" is registered twice")
            }
            do {
                _ = try connector.configure(connector.descriptor.sampleConfig)
            } catch {
                throw RegistryError(message: "connector \"\(id)\": its sample config does not validate: \(error)")
            }
            registered.append(connector)
        }
        connectors = registered
    }

    private static func register<T: DeploymentTarget>(_ type: T.Type) -> RegisteredConnector {
        RegisteredConnector(type)
    }

    public var ids: [String] { connectors.map(\.descriptor.id) }

    public func connector(id: String) -> RegisteredConnector? {
        connectors.first { $0.descriptor.id == id }
    }
}
