/// One deploy of one bundle to one target.
public struct DeployRequest: Sendable {
    public var targetID: String
    public var bundle: CertificateBundle
    /// The target's connector with its validated config: the engine plans through it (twice when a staple
    /// is fetched: once to learn the stapling decision, once with the staple).
    public var connector: ConfiguredConnector
    public var context: PlanContext
    public var options: DeployOptions
    /// Strings to scrub from every record (transport passwords, tokens); key PEMs are always scrubbed.
    public var secrets: [String]

    public init(targetID: String, bundle: CertificateBundle, connector: ConfiguredConnector, context: PlanContext,
                options: DeployOptions = .init(), secrets: [String] = []) {
        self.targetID = targetID
        self.bundle = bundle
        self.connector = connector
        self.context = context
        self.options = options
        self.secrets = secrets
    }
}
