import Foundation

/// A Secret as the cluster holds it now.
public struct ClusterSecret: Sendable, Equatable {
    public var namespace: String
    public var name: String
    public var type: String
    public var data: [String: [UInt8]]
    public var labels: [String: String]
    public var annotations: [String: String]
    /// The version the API server gave this state; writes name it so a concurrent change is refused (409).
    /// Empty for a Secret not yet created.
    public var resourceVersion: String
    /// The object as read (ownerReferences, finalizers, `immutable`, …): a replace starts from it, so fields
    /// certdeploy does not manage survive. `.null` for a new Secret.
    public var preserved: JSONValue

    public init(namespace: String, name: String, type: String, data: [String: [UInt8]] = [:], labels: [String: String] = [:],
                annotations: [String: String] = [:], resourceVersion: String = "", preserved: JSONValue = .null) {
        self.namespace = namespace
        self.name = name
        self.type = type
        self.data = data
        self.labels = labels
        self.annotations = annotations
        self.resourceVersion = resourceVersion
        self.preserved = preserved
    }

    /// Same type, data, labels and annotations (versions and preserved metadata aside).
    public func sameContent(as other: ClusterSecret) -> Bool {
        type == other.type && data == other.data && labels == other.labels && annotations == other.annotations
    }
}

/// How far a workload's rollout has got, as its status reports it.
public struct RolloutProgress: Sendable, Equatable, CustomStringConvertible {
    /// `metadata.generation`: bumped by the API server on every spec change.
    public var generation: Int
    /// `status.observedGeneration`: the generation the controller has acted on.
    public var observedGeneration: Int
    /// `spec.replicas`: what the rollout must reach.
    public var replicas: Int
    public var updatedReplicas: Int
    public var availableReplicas: Int
    /// Set when the controller gave up (Deployment condition Progressing=False, ProgressDeadlineExceeded).
    public var failure: String?

    public init(generation: Int, observedGeneration: Int, replicas: Int, updatedReplicas: Int, availableReplicas: Int, failure: String? = nil) {
        self.generation = generation
        self.observedGeneration = observedGeneration
        self.replicas = replicas
        self.updatedReplicas = updatedReplicas
        self.availableReplicas = availableReplicas
        self.failure = failure
    }

    /// What `kubectl rollout status` waits for: the controller saw the new template, and every replica is
    /// updated and available.
    public var isComplete: Bool {
        observedGeneration >= generation && updatedReplicas == replicas && availableReplicas == replicas
    }

    public var description: String {
        "generation \(generation) (observed \(observedGeneration)), \(updatedReplicas)/\(replicas) updated, \(availableReplicas)/\(replicas) available"
            + (failure.map { "; \($0)" } ?? "")
    }
}

/// Why a cluster call failed. `code` follows the API's Status reasons; `message` is for people and names
/// the object, and for a refusal the permission that is missing.
public struct ClusterError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable {
        /// 401: the credentials were rejected.
        case unauthorized
        /// 403: RBAC refused the verb on the resource.
        case forbidden
        /// 404.
        case notFound = "not_found"
        /// 409 Conflict: the resourceVersion named is stale (or a delete precondition failed).
        case conflict
        /// 409 AlreadyExists on create.
        case alreadyExists = "already_exists"
        /// 422 Invalid (or 400 BadRequest): the API refused the object.
        case invalid
        /// 429 after the retries ran out.
        case tooManyRequests = "too_many_requests"
        /// 5xx after the retries ran out.
        case server
        /// TLS, connect, timeout.
        case transport
        /// kubeconfig or in-cluster setup is unusable.
        case configuration
        /// An answer that does not parse as the API's.
        case protocolError = "protocol"
    }

    public var code: Code
    /// HTTP status, when the server answered.
    public var status: Int?
    public var message: String

    public init(_ code: Code, status: Int? = nil, _ message: String) {
        self.code = code
        self.status = status
        self.message = message
    }

    public var description: String { message }
}

/// The operations the engine's cluster path needs. The Kubernetes client implements them over the API
/// (HTTPS); every call runs within a deadline, and retries only what is safe to retry (429, 5xx).
public protocol ClusterConnection: Sendable {
    /// "https://10.0.0.1:6443 (context prod)", for messages.
    var endpointDescription: String { get }
    /// What the step record should say about the session: who we are, the server's version.
    var connectionDetail: String { get }
    /// The Secret, or nil when it (or its namespace) does not exist.
    func getSecret(namespace: String, name: String) async throws -> ClusterSecret?
    /// Creates the Secret; fails with `.alreadyExists` when it appeared meanwhile. Returns the stored state.
    func createSecret(_ secret: ClusterSecret) async throws -> ClusterSecret
    /// Replaces the Secret only if it is still at `resourceVersion` (else `.conflict`). Returns the stored state.
    func replaceSecret(_ secret: ClusterSecret, resourceVersion: String) async throws -> ClusterSecret
    /// Deletes the Secret only if it is still at `resourceVersion` (else `.conflict`).
    func deleteSecret(namespace: String, name: String, resourceVersion: String) async throws
    /// Restarts a workload's pods by stamping its pod template (`kubectl rollout restart`).
    func restartRollout(_ target: RolloutTarget, namespace: String, stamp: String) async throws
    func rolloutStatus(_ target: RolloutTarget, namespace: String) async throws -> RolloutProgress
    /// Ends the session; safe to call twice.
    func close() async
}
