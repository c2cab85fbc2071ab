import Foundation

/// Everything a connector says about itself. The registry, the API's connector list, CLI help and the
/// generated docs all read this; no other list of connector facts exists.
public struct ConnectorDescriptor: Sendable, Codable, Equatable {
    /// Short lowercase id: `nginx`, `haproxy`. Validated by the registry.
    public var id: String
    public var displayName: String
    public var summary: String
    public var transport: Transport
    public var configFields: [ConfigField]
    public var capabilities: Capabilities
    public var vendorVersions: [VendorSupport]
    /// A config an operator can start from; must pass validation (a test checks it).
    public var sampleConfig: JSONValue

    public enum Transport: String, Sendable, Codable {
        case ssh
        case kubernetes
    }

    public struct Capabilities: Sendable, Codable, Equatable {
        public var atomicFiles: Bool
        public var validate: Bool
        public var hotReload: Bool
        public var staplingModes: [StaplingDecision.Mode]
        public var verify: Bool
        public var rollback: Bool

        public init(atomicFiles: Bool, validate: Bool, hotReload: Bool, staplingModes: [StaplingDecision.Mode], verify: Bool, rollback: Bool) {
            self.atomicFiles = atomicFiles
            self.validate = validate
            self.hotReload = hotReload
            self.staplingModes = staplingModes
            self.verify = verify
            self.rollback = rollback
        }
    }

    public struct VendorSupport: Sendable, Codable, Equatable {
        public enum Status: String, Sendable, Codable { case tested, untested }
        public var vendor: String
        public var versionRange: String
        public var testedVersion: String?
        public var status: Status
        /// Test names that ran against `testedVersion` (a `tested` row must name at least one).
        public var tests: [String]
        public var quirks: [String]

        public init(vendor: String, versionRange: String, testedVersion: String?, status: Status, tests: [String] = [], quirks: [String] = []) {
            self.vendor = vendor
            self.versionRange = versionRange
            self.testedVersion = testedVersion
            self.status = status
            self.tests = tests
            self.quirks = quirks
        }
    }

    public init(
        id: String, displayName: String, summary: String, transport: Transport, configFields: [ConfigField],
        capabilities: Capabilities, vendorVersions: [VendorSupport], sampleConfig: JSONValue
    ) {
        self.id = id
        self.displayName = displayName
        self.summary = summary
        self.transport = transport
        self.configFields = configFields
        self.capabilities = capabilities
        self.vendorVersions = vendorVersions
        self.sampleConfig = sampleConfig
    }

    /// The config's JSON Schema.
    public var configSchema: JSONValue { JSONSchemaWriter.schema(for: configFields, title: "\(displayName) target config") }
}
