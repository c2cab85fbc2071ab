import Foundation

/// What a connector knows when it plans: nothing it would have to fetch.
public struct PlanContext: Sendable {
    /// The target's id, for messages.
    public var targetID: String
    /// The host the transport reaches; the default verify host.
    public var transportHost: String?
    public var now: Date
    /// A checked, good OCSP response for the leaf, when the engine fetched one. Connectors that serve
    /// staples from a file write it with the certificate.
    public var staple: OCSPStaple?

    public init(targetID: String, transportHost: String? = nil, now: Date = Date(), staple: OCSPStaple? = nil) {
        self.targetID = targetID
        self.transportHost = transportHost
        self.now = now
        self.staple = staple
    }
}

/// A connector could not make a plan for this bundle and config.
public struct PlanError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A vendor connector: describes itself, checks its config, and turns (bundle, config) into a plan.
///
/// Connectors describe, the engine acts: `plan` does no I/O, never sleeps, never retries.
public protocol DeploymentTarget: Sendable {
    associatedtype Config: Codable & Sendable

    static var descriptor: ConnectorDescriptor { get }

    /// Semantic checks beyond the schema (the schema already refused unknown fields, bad types,
    /// unsafe paths and commands). Each issue names its field by JSON pointer.
    static func validate(_ config: Config) -> [ConfigIssue]

    /// The plan for deploying `bundle` with `config`.
    static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan
}

extension DeploymentTarget {
    public static func validate(_ config: Config) -> [ConfigIssue] { [] }
}
