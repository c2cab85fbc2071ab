import Core
import Foundation

/// How to reach a cluster: the `kubernetes` section of a target (the alternative to `ssh`).
public struct KubernetesTarget: Codable, Sendable, Equatable {
    /// kubeconfig file; nil: `$KUBECONFIG`'s first file, else `~/.kube/config`.
    public var kubeconfig: String?
    /// kubeconfig context; nil: its `current-context`.
    public var context: String?
    /// Use the pod's service account instead of a kubeconfig.
    public var inCluster: Bool
    /// Where the service account is mounted (for `inCluster`).
    public var serviceAccountDirectory: String
    /// Accept a cluster with `insecure-skip-tls-verify: true`.
    public var allowInsecure: Bool

    public init(kubeconfig: String? = nil, context: String? = nil, inCluster: Bool = false,
                serviceAccountDirectory: String = KubernetesAccess.serviceAccountDirectory, allowInsecure: Bool = false) {
        self.kubeconfig = kubeconfig
        self.context = context
        self.inCluster = inCluster
        self.serviceAccountDirectory = serviceAccountDirectory
        self.allowInsecure = allowInsecure
    }

    /// The schema of the `kubernetes` section: validation, JSON schema and docs all come from it.
    public static let configFields: [ConfigField] = [
        ConfigField("kubeconfig", .absolutePath, "kubeconfig file. Default: the first file in $KUBECONFIG, else ~/.kube/config."),
        ConfigField("context", .string, "kubeconfig context. Default: its current-context."),
        ConfigField("inCluster", .boolean, default: .bool(false), "Use the pod's service account (token re-read on every request, CA, API server from KUBERNETES_SERVICE_HOST/PORT) instead of a kubeconfig."),
        ConfigField("serviceAccountDirectory", .absolutePath, default: .string(KubernetesAccess.serviceAccountDirectory), "Where the service account is mounted (inCluster)."),
        ConfigField("allowInsecure", .boolean, default: .bool(false), "Accept a kubeconfig cluster with `insecure-skip-tls-verify: true` (the API server's certificate is then not checked). Off by default."),
    ]

    /// Validates raw JSON strictly and decodes it, naming each bad field under `pointer`.
    public static func decode(_ raw: JSONValue, pointer: String = "/kubernetes") throws -> KubernetesTarget {
        let (normalized, issues) = ConfigValidator.validate(raw, fields: configFields, pointer: pointer)
        guard issues.isEmpty else { throw ConfigError(issues: issues) }
        let target = try JSONValueDecoder().decode(KubernetesTarget.self, from: normalized)
        if target.inCluster, target.kubeconfig != nil || target.context != nil {
            throw ConfigError(issues: [ConfigIssue(pointer: pointer + "/inCluster", message: "inCluster: true uses the service account; remove kubeconfig and context")])
        }
        return target
    }

    /// The server and credentials this section names.
    public func access() throws -> KubernetesAccess {
        if inCluster {
            return try KubernetesAccess.inCluster(directory: serviceAccountDirectory)
        }
        return try KubernetesAccess.kubeConfig(path: kubeconfig, context: context, allowInsecure: allowInsecure)
    }
}
