import Foundation

/// What a cluster connector wants: one Secret with these keys, labels and annotations, and optionally
/// workloads to restart so they pick it up. The engine carries it out through a ``ClusterConnection``.
public struct SecretPlan: Sendable, Equatable {
    public var namespace: String
    public var name: String
    /// `kubernetes.io/tls`. A Secret's type is immutable: an existing Secret of another type is refused.
    public var type: String
    /// Keys this deploy writes (`tls.crt`, `tls.key`, …) and their bytes. Other keys already in the
    /// Secret are kept.
    public var data: [String: [UInt8]]
    /// Keys that must not exist afterwards (a staple left from another certificate).
    public var removedKeys: [String]
    /// Labels this deploy sets; other labels on the Secret are kept.
    public var labels: [String: String]
    /// Annotations this deploy sets and compares; other annotations on the Secret are kept.
    public var annotations: [String: String]
    /// Annotations that record this deployment (its id): written with every write, never compared, so a
    /// second deploy of the same certificate is still `unchanged`.
    public var deploymentAnnotations: [String: String]
    /// The key that holds a DER OCSP staple, when one is planned: a staple still fresh in the Secret is kept
    /// instead of rewriting the Secret for a newer response.
    public var stapleKey: String?
    /// Workloads restarted after the write (pod template annotation), whose rollout must finish in time.
    public var rollouts: [RolloutTarget]
    public var rolloutTimeout: Duration

    public init(namespace: String, name: String, type: String = SecretPlan.tlsType, data: [String: [UInt8]], removedKeys: [String] = [],
                labels: [String: String] = [:], annotations: [String: String] = [:], deploymentAnnotations: [String: String] = [:],
                stapleKey: String? = nil, rollouts: [RolloutTarget] = [], rolloutTimeout: Duration = .seconds(300)) {
        self.namespace = namespace
        self.name = name
        self.type = type
        self.data = data
        self.removedKeys = removedKeys
        self.labels = labels
        self.annotations = annotations
        self.deploymentAnnotations = deploymentAnnotations
        self.stapleKey = stapleKey
        self.rollouts = rollouts
        self.rolloutTimeout = rolloutTimeout
    }

    public static let tlsType = "kubernetes.io/tls"

    /// "Secret web/site-tls".
    public var objectDescription: String { "Secret \(namespace)/\(name)" }

    /// The plan step's sentence.
    public var summary: String {
        var text = "\(objectDescription) (\(type)) with keys \(data.keys.sorted().joined(separator: ", "))"
        if !removedKeys.isEmpty { text += "; removes \(removedKeys.sorted().joined(separator: ", ")) if present" }
        if !rollouts.isEmpty { text += "; then restarts \(rollouts.map(\.description).joined(separator: ", ")) (deadline \(rolloutTimeout))" }
        return text
    }

    /// `current` with this plan applied: our keys, labels and annotations set, removed keys gone, everything
    /// else (other keys, other controllers' labels and annotations, preserved metadata) as it was.
    public func applied(to current: ClusterSecret?) -> ClusterSecret {
        var secret = current ?? ClusterSecret(namespace: namespace, name: name, type: type)
        secret.type = type
        for key in removedKeys { secret.data[key] = nil }
        secret.data.merge(data) { $1 }
        secret.labels.merge(labels) { $1 }
        secret.annotations.merge(annotations) { $1 }
        secret.annotations.merge(deploymentAnnotations) { $1 }
        return secret
    }

    /// Whether `current` already holds what this plan writes (deployment annotations aside). A key whose
    /// value `keep` accepts counts as matching (a still-fresh staple).
    public func isSatisfied(by current: ClusterSecret, keep: (String, [UInt8]) -> Bool = { _, _ in false }) -> Bool {
        differences(from: current, keep: keep).isEmpty
    }

    /// What differs between `current` and this plan, for the compare step: "data tls.crt", "label …".
    public func differences(from current: ClusterSecret, keep: (String, [UInt8]) -> Bool = { _, _ in false }) -> [String] {
        var result: [String] = []
        if current.type != type { result.append("type \(current.type) → \(type)") }
        for key in data.keys.sorted() where current.data[key] != data[key] {
            if let existing = current.data[key], keep(key, existing) { continue }
            result.append("data \(key)")
        }
        for key in removedKeys.sorted() where current.data[key] != nil { result.append("data \(key) (to remove)") }
        for key in labels.keys.sorted() where current.labels[key] != labels[key] { result.append("label \(key)") }
        for key in annotations.keys.sorted() where current.annotations[key] != annotations[key] { result.append("annotation \(key)") }
        return result
    }
}

/// A workload whose pods use the Secret: restarted by changing its pod template, then awaited.
public struct RolloutTarget: Sendable, Codable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case deployment = "Deployment"
        case statefulSet = "StatefulSet"

        /// The API resource: `deployments`, `statefulsets` (group `apps`).
        public var resource: String {
            switch self {
            case .deployment: "deployments"
            case .statefulSet: "statefulsets"
            }
        }
    }

    public var kind: Kind
    public var name: String

    public init(kind: Kind, name: String) {
        self.kind = kind
        self.name = name
    }

    /// The pod template annotation a restart sets, as `kubectl rollout restart` sets its own
    /// `kubectl.kubernetes.io/restartedAt`.
    public static let restartAnnotation = "certdeploy.io/restartedAt"

    /// "Deployment web".
    public var description: String { "\(kind.rawValue) \(name)" }
}
