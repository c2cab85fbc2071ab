/// One deploy of one bundle to one target.
public struct DeployRequest: Sendable {
    public var targetID: String
    public var bundle: CertificateBundle
    public var plan: DeploymentPlan
    public var options: DeployOptions
    /// Strings to scrub from every record (transport passwords, tokens); key PEMs are always scrubbed.
    public var secrets: [String]

    public init(targetID: String, bundle: CertificateBundle, plan: DeploymentPlan, options: DeployOptions = .init(), secrets: [String] = []) {
        self.targetID = targetID
        self.bundle = bundle
        self.plan = plan
        self.options = options
        self.secrets = secrets
    }
}
