import Core

extension K8sConnector {
    /// A Kubernetes target's config. Field docs live in ``K8sConnector/fields``.
    public struct Config: Codable, Sendable, Equatable {
        public var namespace: String
        public var secretName: String
        public var includeCA: Bool
        public var ocspStaple: Bool
        public var rollouts: [Rollout]
        public var rolloutTimeoutSeconds: Int
        public var verify: ConnectorKit.VerifyConfig

        public struct Rollout: Codable, Sendable, Equatable {
            public var kind: RolloutTarget.Kind
            public var name: String
        }
    }

    static let rolloutFields: [ConfigField] = [
        ConfigField("kind", .choice(RolloutTarget.Kind.allCases.map(\.rawValue)), required: true, "Workload kind."),
        ConfigField("name", .string, required: true, "Workload name, in the Secret's namespace."),
    ]

    /// `verify` as for SSH connectors, but off by default and with no default host: a cluster target has no SSH host.
    static let verifyFields: [ConfigField] = ConnectorKit.verifyFields().map { field in
        var field = field
        switch field.name {
        case "enabled":
            field.defaultValue = .bool(false)
            field.summary = "Prove by TLS handshake to an endpoint that serves the Secret (an Ingress, a Service) that the new leaf is served; roll back if not. Off by default."
        case "host":
            field.summary = "Host to handshake with (the Ingress or load balancer address). Required when verify is enabled."
        default:
            break
        }
        return field
    }

    static let fields: [ConfigField] = [
        ConfigField("namespace", .string, required: true, "Namespace of the Secret (a DNS-1123 label). Always explicit: it is never taken from the kubeconfig context, so switching contexts cannot redirect a deploy."),
        ConfigField("secretName", .string, required: true, "Name of the `kubernetes.io/tls` Secret (a DNS-1123 subdomain), e.g. the one an Ingress names in `spec.tls[].secretName`."),
        ConfigField("includeCA", .boolean, default: .bool(false), "Also write `ca.crt` with the root certificate (the bundle must include the root; it never goes into `tls.crt`)."),
        ConfigField("ocspStaple", .boolean, default: .bool(true), "Write the OCSP response certdeploy fetched to `tls.ocsp-staple` (DER), for consumers that staple from the Secret. A stale staple key is removed when there is none."),
        ConfigField("rollouts", .objectArray(rolloutFields), default: .array([]), "Deployments and StatefulSets to restart after the write (pod template annotation `certdeploy.io/restartedAt`), waiting until every replica is updated and available."),
        ConfigField("rolloutTimeoutSeconds", .integer(minimum: 1, maximum: 3600), default: .number(300), "Deadline for all rollouts together; past it the Secret is rolled back."),
        ConfigField("verify", .object(verifyFields), "Post-deploy TLS verification against an endpoint serving the Secret."),
    ]
}
