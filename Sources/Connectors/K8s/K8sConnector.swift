import Core
import Foundation

/// Kubernetes: a `kubernetes.io/tls` Secret (`tls.crt` leaf + chain, `tls.key`, optional `ca.crt` and
/// `tls.ocsp-staple`), written by the engine's cluster path through the Kubernetes API; optional rollout
/// restarts; verified by reading it back, awaiting the rollouts, and an optional TLS handshake.
public enum K8sConnector: DeploymentTarget {
    public static let managedByLabel = "app.kubernetes.io/managed-by"
    public static let certificateAnnotation = "certdeploy.io/certificate-sha256"
    public static let notAfterAnnotation = "certdeploy.io/not-after"
    public static let sansAnnotation = "certdeploy.io/sans"
    public static let deploymentIDAnnotation = "certdeploy.io/deployment-id"
    public static let stapleKey = "tls.ocsp-staple"

    public static let descriptor = ConnectorDescriptor(
        id: "k8s",
        displayName: "Kubernetes",
        summary: "A `kubernetes.io/tls` Secret written through the Kubernetes API with optimistic concurrency (resourceVersion), optional Deployment/StatefulSet rollout restarts, verified by reading it back.",
        transport: .kubernetes,
        configFields: fields,
        capabilities: .init(atomicFiles: true, validate: false, hotReload: false, staplingModes: [.stapleFile, .none], verify: true, rollback: true),
        vendorVersions: [
            .init(vendor: "Kubernetes API", versionRange: ">= 1.25", testedVersion: "v1.31.0", status: .tested,
                  tests: ["K8sTests.K8sEndToEndTests"],
                  quirks: [
                      "Tested against certdeploy's in-process API server (`Tests/KubernetesTestSupport`), which follows the v1.31 API reference for Secrets, Deployments, StatefulSets, Status bodies, RBAC refusals and authentication; not against a real cluster.",
                      "StatefulSet rollouts are awaited on `availableReplicas`, reported since 1.25 (GA). A StatefulSet with `updateStrategy: OnDelete` never rolls by itself, so its restart times out.",
                  ]),
        ],
        sampleConfig: .object([
            "namespace": .string("web"),
            "secretName": .string("example-com-tls"),
        ])
    )

    public static func validate(_ config: Config) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        if let problem = DNS1123.labelProblem(config.namespace) {
            issues.append(ConfigIssue(pointer: "/namespace", message: problem))
        }
        if let problem = DNS1123.subdomainProblem(config.secretName) {
            issues.append(ConfigIssue(pointer: "/secretName", message: problem))
        }
        var seen = Set<String>()
        for (index, rollout) in config.rollouts.enumerated() {
            if let problem = DNS1123.subdomainProblem(rollout.name) {
                issues.append(ConfigIssue(pointer: "/rollouts/\(index)/name", message: problem))
            }
            if !seen.insert("\(rollout.kind.rawValue)/\(rollout.name)").inserted {
                issues.append(ConfigIssue(pointer: "/rollouts/\(index)", message: "\(rollout.kind.rawValue) \(rollout.name) is listed twice"))
            }
        }
        if config.verify.enabled, config.verify.host == nil {
            issues.append(ConfigIssue(pointer: "/verify/host", message: "is required when verify is enabled: a Kubernetes target has no SSH host to default to"))
        }
        return issues
    }

    public static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
        var data: [String: [UInt8]] = [
            "tls.crt": Array(bundle.fullChainPEM.utf8),  // leaf + intermediates; the root is never in it
            "tls.key": Array(bundle.privateKeyPEM.utf8),
        ]
        if config.includeCA {
            guard let root = bundle.rootPEM else {
                throw PlanError("includeCA is on but the bundle holds no root certificate; pass the root with the chain (it goes to ca.crt only, never into tls.crt)")
            }
            data["ca.crt"] = Array(root.utf8)
        }
        let stapling = ConnectorKit.stapleFileStapling(vendor: "the Secret's consumer (key \(stapleKey))", enabled: config.ocspStaple, bundle: bundle, context: context)
        var removed: [String] = []
        var notes: [String] = []
        if stapling.mode == .stapleFile, let staple = context.staple {
            data[stapleKey] = staple.der
        } else {
            removed.append(stapleKey)
            if stapling.mode == .none { notes.append("no \(stapleKey): \(stapling.reason)") }
        }
        let info = bundle.info
        let secret = SecretPlan(
            namespace: config.namespace, name: config.secretName, type: SecretPlan.tlsType, data: data, removedKeys: removed,
            labels: [managedByLabel: "certdeploy"],
            annotations: [
                certificateAnnotation: info.sha256,
                notAfterAnnotation: ISO8601DateFormatter().string(from: info.notAfter),
                sansAnnotation: info.subjectAlternativeNames.joined(separator: ","),
            ],
            deploymentAnnotations: [deploymentIDAnnotation: deploymentID(context)],
            stapleKey: data[stapleKey] == nil ? nil : stapleKey,
            rollouts: config.rollouts.map { RolloutTarget(kind: $0.kind, name: $0.name) },
            rolloutTimeout: .seconds(config.rolloutTimeoutSeconds))
        return DeploymentPlan(
            files: [],
            verify: try ConnectorKit.verifyEndpoint(config.verify, bundle: bundle, context: context),
            stapling: stapling,
            notes: notes,
            secret: secret)
    }

    /// `<target>@<UTC time>`: which deploy last wrote the Secret.
    static func deploymentID(_ context: PlanContext) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withYear, .withMonth, .withDay, .withTime, .withTimeZone]
        return "\(context.targetID)@\(formatter.string(from: context.now))"
    }
}

/// Kubernetes object-name rules (API conventions, "Object Names and IDs").
enum DNS1123 {
    /// RFC 1123 label: at most 63 lowercase alphanumerics or '-', starting and ending alphanumeric (namespaces).
    static func labelProblem(_ value: String) -> String? {
        if value.isEmpty { return "must not be empty" }
        if value.count > 63 { return "must be at most 63 characters (a DNS-1123 label)" }
        if value.range(of: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?\\z", options: .regularExpression) == nil {
            return "\"\(value)\" is not a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
        }
        return nil
    }

    /// RFC 1123 subdomain: at most 253 characters, dot-separated labels (Secrets, Deployments, StatefulSets).
    static func subdomainProblem(_ value: String) -> String? {
        if value.isEmpty { return "must not be empty" }
        if value.count > 253 { return "must be at most 253 characters (a DNS-1123 subdomain)" }
        if value.range(of: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\\z", options: .regularExpression) == nil {
            return "\"\(value)\" is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
        }
        return nil
    }
}
