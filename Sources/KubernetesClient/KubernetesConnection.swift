import Core
import Foundation
import NIOHTTP1

/// Options for talking to one API server.
public struct KubernetesClientOptions: Sendable {
    /// Sent on every request, e.g. `certdeploy/0.1.0 (linux/amd64)`.
    public var userAgent: String
    public var retry: KubernetesRetryPolicy
    /// Deadline for each request.
    public var requestTimeout: Duration
    /// Deadline for a connection (TCP and TLS handshake); a TLS failure surfaces when it passes.
    public var connectTimeout: Duration

    public init(userAgent: String, retry: KubernetesRetryPolicy = .init(), requestTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(10)) {
        self.userAgent = userAgent
        self.retry = retry
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
    }

    /// `certdeploy/<version> (<os>/<arch>)`, the shape kubectl uses for its own.
    public static func userAgent(version: String) -> String {
        #if arch(x86_64)
        let arch = "amd64"
        #elseif arch(arm64)
        let arch = "arm64"
        #else
        let arch = "unknown"
        #endif
        #if os(Linux)
        let os = "linux"
        #elseif os(macOS)
        let os = "darwin"
        #else
        let os = "unknown"
        #endif
        return "certdeploy/\(version) (\(os)/\(arch))"
    }
}

/// Core's ``ClusterConnection`` over the Kubernetes API: Secrets (`/api/v1`), Deployments and StatefulSets
/// (`/apis/apps/v1`), with optimistic concurrency on every write.
///
/// **Why read + `PUT` with `resourceVersion` (and `POST` when absent), not server-side apply.** A replace that
/// names the resourceVersion we read is refused with 409 if anyone wrote in between. That is what lets the
/// engine (a) notice a concurrent writer and refuse to clobber its data, and (b) roll back to exactly the
/// data it read, and only if nobody wrote after us. Server-side apply would merge field ownership
/// instead: it cannot express "only if unchanged since I read it" for a rollback, and forcing conflicts would
/// silently take fields from other managers. The replace starts from the object as read, so metadata
/// certdeploy does not manage (ownerReferences, finalizers, other labels and annotations) is kept.
public final class KubernetesConnection: ClusterConnection {
    let api: KubernetesAPI
    /// `gitVersion` from `GET /version`, e.g. `v1.31.0`.
    public let serverVersion: String

    private init(api: KubernetesAPI, serverVersion: String) {
        self.api = api
        self.serverVersion = serverVersion
    }

    /// Opens the client and checks the server by `GET /version` (which also proves the credentials: a bad
    /// token is refused with 401 there, before anything is read).
    public static func connect(_ access: KubernetesAccess, options: KubernetesClientOptions) async throws -> KubernetesConnection {
        let api = try KubernetesAPI(access: access, userAgent: options.userAgent, retry: options.retry, timeout: options.requestTimeout,
                                    connectTimeout: options.connectTimeout)
        do {
            let response = try await api.send(.GET, "/version", operation: APIOperation(verb: "get", resource: "version"))
            guard let json = response.json, case .string(let version)? = json["gitVersion"] else {
                throw ClusterError(.protocolError, "\(access.server)/version did not answer with a gitVersion; is this a Kubernetes API server?")
            }
            return KubernetesConnection(api: api, serverVersion: version)
        } catch {
            await api.shutdown()
            throw error
        }
    }

    public var endpointDescription: String { "\(api.access.server) (\(api.access.origin))" }

    public var connectionDetail: String { "Kubernetes \(serverVersion); authenticated by \(api.access.credentialDescription)" }

    public func close() async {
        await api.shutdown()
    }

    // MARK: Secrets (API reference: Secret v1, core; operations get, create, replace, delete)

    static func secretPath(_ namespace: String, _ name: String? = nil) -> String {
        "/api/v1/namespaces/\(escape(namespace))/secrets" + (name.map { "/" + escape($0) } ?? "")
    }

    public func getSecret(namespace: String, name: String) async throws -> ClusterSecret? {
        let operation = APIOperation(verb: "get", resource: "secrets", namespace: namespace, name: name)
        let response = try await api.send(.GET, Self.secretPath(namespace, name), operation: operation, accept: [404])
        if response.status == 404 { return nil }
        return try SecretCoding.decode(response, operation: operation)
    }

    public func createSecret(_ secret: ClusterSecret) async throws -> ClusterSecret {
        let operation = APIOperation(verb: "create", resource: "secrets", namespace: secret.namespace, name: secret.name)
        let response = try await api.send(.POST, Self.secretPath(secret.namespace), body: SecretCoding.encode(secret, resourceVersion: nil), operation: operation)
        return try SecretCoding.decode(response, operation: operation)
    }

    public func replaceSecret(_ secret: ClusterSecret, resourceVersion: String) async throws -> ClusterSecret {
        let operation = APIOperation(verb: "update", resource: "secrets", namespace: secret.namespace, name: secret.name)
        let response = try await api.send(.PUT, Self.secretPath(secret.namespace, secret.name),
                                          body: SecretCoding.encode(secret, resourceVersion: resourceVersion), operation: operation)
        return try SecretCoding.decode(response, operation: operation)
    }

    public func deleteSecret(namespace: String, name: String, resourceVersion: String) async throws {
        let operation = APIOperation(verb: "delete", resource: "secrets", namespace: namespace, name: name)
        // DeleteOptions with a resourceVersion precondition: refused with 409 when someone wrote after us.
        let options: JSONValue = .object([
            "kind": .string("DeleteOptions"), "apiVersion": .string("v1"),
            "preconditions": .object(["resourceVersion": .string(resourceVersion)]),
        ])
        _ = try await api.send(.DELETE, Self.secretPath(namespace, name), body: options, operation: operation)
    }

    // MARK: Rollouts (API reference: Deployment v1 apps, StatefulSet v1 apps; patch, read status)

    static func workloadPath(_ target: RolloutTarget, _ namespace: String) -> String {
        "/apis/apps/v1/namespaces/\(escape(namespace))/\(target.kind.resource)/\(escape(target.name))"
    }

    public func restartRollout(_ target: RolloutTarget, namespace: String, stamp: String) async throws {
        // What `kubectl rollout restart` does: a strategic merge patch of a pod template annotation. A template
        // change bumps metadata.generation and the controller rolls the pods.
        let patch: JSONValue = .object(["spec": .object(["template": .object(["metadata": .object([
            "annotations": .object([RolloutTarget.restartAnnotation: .string(stamp)]),
        ])])])])
        let operation = APIOperation(verb: "patch", resource: target.kind.resource, group: "apps", namespace: namespace, name: target.name)
        _ = try await api.send(.PATCH, Self.workloadPath(target, namespace), body: patch,
                               contentType: "application/strategic-merge-patch+json", operation: operation)
    }

    public func rolloutStatus(_ target: RolloutTarget, namespace: String) async throws -> RolloutProgress {
        let operation = APIOperation(verb: "get", resource: target.kind.resource, group: "apps", namespace: namespace, name: target.name)
        let response = try await api.send(.GET, Self.workloadPath(target, namespace), operation: operation)
        guard let json = response.json else {
            throw ClusterError(.protocolError, "\(operation.objectDescription): the answer is not JSON")
        }
        func int(_ value: JSONValue?) -> Int? { if case .number(let number)? = value { Int(number) } else { nil } }
        let status = json["status"]
        var failure: String?
        if case .array(let conditions)? = status?["conditions"] {
            for condition in conditions where condition["type"] == .string("Progressing") && condition["status"] == .string("False") {
                let reason = { if case .string(let text)? = condition["reason"] { text } else { "Progressing=False" } }()
                let message = { if case .string(let text)? = condition["message"] { text } else { "" } }()
                failure = "\(reason): \(message)"
            }
        }
        return RolloutProgress(
            generation: int(json["metadata"]?["generation"]) ?? 0,
            observedGeneration: int(status?["observedGeneration"]) ?? 0,
            replicas: int(json["spec"]?["replicas"]) ?? 1,
            updatedReplicas: int(status?["updatedReplicas"]) ?? 0,
            availableReplicas: int(status?["availableReplicas"]) ?? 0,
            failure: failure)
    }

    /// Percent-encodes a path segment (names are DNS-1123 already; this is belt and braces).
    static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._"))) ?? segment
    }
}

/// Secret objects to and from JSON (`data` values are base64).
enum SecretCoding {
    static func decode(_ response: APIResponse, operation: APIOperation) throws -> ClusterSecret {
        guard let json = response.json, json["kind"] == .string("Secret"), let metadata = json["metadata"],
              case .string(let name)? = metadata["name"] else {
            throw ClusterError(.protocolError, "\(operation.objectDescription): the answer is not a Secret")
        }
        func strings(_ value: JSONValue?) -> [String: String] {
            guard case .object(let members)? = value else { return [:] }
            return members.compactMapValues { if case .string(let text) = $0 { text } else { nil } }
        }
        var data: [String: [UInt8]] = [:]
        if case .object(let members)? = json["data"] {
            for (key, value) in members {
                guard case .string(let text) = value, let bytes = Data(base64Encoded: text) else {
                    throw ClusterError(.protocolError, "\(operation.objectDescription): data[\(key)] is not base64")
                }
                data[key] = Array(bytes)
            }
        }
        let namespace = { if case .string(let text)? = metadata["namespace"] { text } else { operation.namespace ?? "" } }()
        let type = { if case .string(let text)? = json["type"] { text } else { "Opaque" } }()
        let resourceVersion = { if case .string(let text)? = metadata["resourceVersion"] { text } else { "" } }()
        return ClusterSecret(namespace: namespace, name: name, type: type, data: data, labels: strings(metadata["labels"]),
                             annotations: strings(metadata["annotations"]), resourceVersion: resourceVersion, preserved: json)
    }

    /// The object to send: the one read (so unmanaged fields survive) with our type, data, labels, annotations
    /// and the resourceVersion precondition.
    static func encode(_ secret: ClusterSecret, resourceVersion: String?) -> JSONValue {
        var object: [String: JSONValue] = [:]
        if case .object(let members) = secret.preserved { object = members }
        var metadata: [String: JSONValue] = [:]
        if case .object(let members)? = object["metadata"] { metadata = members }
        metadata["name"] = .string(secret.name)
        metadata["namespace"] = .string(secret.namespace)
        metadata["labels"] = secret.labels.isEmpty ? nil : .object(secret.labels.mapValues(JSONValue.string))
        metadata["annotations"] = secret.annotations.isEmpty ? nil : .object(secret.annotations.mapValues(JSONValue.string))
        metadata["resourceVersion"] = resourceVersion.map(JSONValue.string)
        object["metadata"] = .object(metadata)
        object["apiVersion"] = .string("v1")
        object["kind"] = .string("Secret")
        object["type"] = .string(secret.type)
        object["stringData"] = nil
        object["data"] = .object(secret.data.mapValues { .string(Data($0).base64EncodedString()) })
        return .object(object)
    }
}
