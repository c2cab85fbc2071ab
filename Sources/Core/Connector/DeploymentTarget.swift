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
    /// True once the engine asked the responder: then a nil `staple` means none could be had (and a
    /// staple-file connector serves without one), not "not fetched yet".
    public var stapleLookedUp: Bool
    /// The self-signed root that issued the top of the bundle's chain, found by the engine in the target's trust
    /// anchors when the bundle has none: for vendors that verify staples up to a root (nginx). Never served.
    public var trustedRoot: TrustedRoot?

    public init(targetID: String, transportHost: String? = nil, now: Date = Date(), staple: OCSPStaple? = nil, stapleLookedUp: Bool = false) {
        self.targetID = targetID
        self.transportHost = transportHost
        self.now = now
        self.staple = staple
        self.stapleLookedUp = stapleLookedUp
    }

    /// For staple-file connectors: no staple will be served because the engine found none.
    public var stapleUnavailable: Bool { stapleLookedUp && staple == nil }
}

/// A root certificate and where the engine found it ("the system trust store", "verify.caBundle").
public struct TrustedRoot: Sendable, Equatable {
    public var pem: String
    public var source: String

    public init(pem: String, source: String) {
        self.pem = pem
        self.source = source
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
