import Core
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A faithful in-process Kubernetes API server for tests: no real one can be installed here, so this one
/// follows the API reference closely enough that the client and the engine are proven against API
/// behaviour, not against a mock of our own client.
///
/// What it does, and which part of the reference each behaviour follows:
/// - HTTPS with its own CA (``FakeClusterCA``); client certificates are requested and, when presented,
///   verified against that CA ("Authenticating": X509 client certificates, CN = user, O = groups).
/// - Bearer tokens ("Authenticating": static token file / service account tokens); an unknown token is
///   401 Unauthorized on every path, `/version` included; no credentials is `system:anonymous`.
/// - RBAC per user ("Using RBAC Authorization"; verbs as in "Authorization: Determine the Request Verb":
///   GET → get/list, POST → create, PUT → update, PATCH → patch, DELETE → delete), refusals worded as the
///   API server words them.
/// - API Priority and Fairness throttling on demand: 429 TooManyRequests with `Retry-After` ("API Priority
///   and Fairness": "Response: 429").
/// - Secrets per namespace ("Secret v1 core" operations; "API Concepts": resource versions, optimistic
///   concurrency with 409 Conflict), validation as `ValidateSecret`/`ValidateSecretUpdate` (422 Invalid with
///   field causes: kubernetes.io/tls needs tls.crt and tls.key, type and immutable Secrets are immutable),
///   the NamespaceLifecycle admission 404 for a create in a missing namespace, 409 AlreadyExists, delete
///   preconditions, no-op updates that keep their resourceVersion.
/// - Deployments and StatefulSets ("Deployment v1 apps", "StatefulSet v1 apps"): strategic-merge or merge
///   PATCH; a pod template change bumps `metadata.generation`, and the rollout then advances over
///   ``rolloutDuration`` (observedGeneration, updatedReplicas, availableReplicas, conditions) — or never, for a
///   workload marked stuck.
/// - `GET /version` with ``gitVersion``.
/// - Every failure is a `Status` object in the API's own shape:
///   `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":…,"reason":…,"details":{…},"code":…}`.
public final class FakeKubernetesAPIServer: Sendable {
    public static let gitVersion = "v1.31.0"

    public let ca: FakeClusterCA
    public let port: Int
    public var url: String { "https://127.0.0.1:\(port)" }
    private let channel: NIOLockedValueBox<(any Channel)?>
    let state: NIOLockedValueBox<FakeClusterState>

    /// One request as the fake saw it.
    public struct RecordedRequest: Sendable {
        public var method: String
        public var path: String
        public var userAgent: String?
        /// The authenticated user (`system:anonymous` without credentials); nil when authentication failed.
        public var user: String?
        /// "token" or "x509" or "anonymous".
        public var authentication: String
        /// The bearer token sent, if any (this is a test fake: it records it so tests can see rotation).
        public var token: String?
        public var contentType: String?
        public var status: Int
    }

    /// A workload kind the fake serves under `/apis/apps/v1`.
    public enum WorkloadKind: String, Sendable {
        case deployments, statefulsets

        var kind: String { self == .deployments ? "Deployment" : "StatefulSet" }
    }

    /// Starts on 127.0.0.1 (a free port) with namespace `default` and the given extra namespaces.
    public static func start(namespaces: [String] = [], rolloutDuration: Duration = .milliseconds(300)) async throws -> FakeKubernetesAPIServer {
        let ca = try FakeClusterCA()
        let serving = try ca.issue(commonName: "kube-apiserver", dnsNames: ["localhost", "kubernetes.default.svc"], ipAddresses: [[127, 0, 0, 1]], serverAuth: true)
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(serving.certificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(serving.keyPEM.utf8), format: .pem)))
        // Request a client certificate; verify it against the cluster CA when one is presented.
        tls.certificateVerification = .optionalVerification
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca.certificatePEM.utf8)))
        let context = try NIOSSLContext(configuration: tls)
        let state = NIOLockedValueBox(FakeClusterState(namespaces: Set(["default", "kube-system"] + namespaces), rolloutDuration: rolloutDuration))
        let core = FakeClusterCore(state: state)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(FakeAPIHandler(core: core))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeKubernetesAPIServer(ca: ca, port: channel.localAddress?.port ?? 0, channel: channel, state: state)
    }

    private init(ca: FakeClusterCA, port: Int, channel: any Channel, state: NIOLockedValueBox<FakeClusterState>) {
        self.ca = ca
        self.port = port
        self.channel = NIOLockedValueBox(channel)
        self.state = state
    }

    public func stop() async {
        let channel = self.channel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
    }

    // MARK: Setup

    public func addNamespace(_ name: String) {
        state.withLockedValue { _ = $0.namespaces.insert(name) }
    }

    /// A bearer token for `user` (e.g. `system:serviceaccount:web:deployer`).
    public func addToken(_ token: String, user: String, groups: [String] = []) {
        state.withLockedValue { $0.tokens[token] = (user, groups) }
    }

    /// The token stops authenticating (as a rotated-out service account token does).
    public func revokeToken(_ token: String) {
        state.withLockedValue { _ = $0.tokens.removeValue(forKey: token) }
    }

    /// An RBAC rule: `user` may use `verbs` on `resources` (in API `group`), in `namespace` (nil: all
    /// namespaces, as a ClusterRoleBinding). `"*"` matches every verb or resource.
    public func grant(_ user: String, verbs: [String], resources: [String], group: String = "", namespace: String? = nil) {
        state.withLockedValue { $0.rules.append(RBACRule(user: user, verbs: Set(verbs), resources: Set(resources), group: group, namespace: namespace)) }
    }

    /// Everything, everywhere (cluster-admin).
    public func grantAll(_ user: String) {
        grant(user, verbs: ["*"], resources: ["*"], group: "*")
    }

    /// The next `count` authenticated requests get 429 with `Retry-After: retryAfterSeconds`.
    public func throttle(next count: Int, retryAfterSeconds: Int = 1) {
        state.withLockedValue {
            $0.throttleRemaining = count
            $0.retryAfterSeconds = retryAfterSeconds
        }
    }

    /// The next `count` authenticated requests fail with `status` (500, 503, 504: an overloaded or restarting
    /// API server, or etcd timing out).
    public func fail(next count: Int, status: Int = 503) {
        state.withLockedValue {
            $0.failRemaining = count
            $0.failStatus = status
        }
    }

    /// Runs `hook` once, just before the first request whose method and path match is handled (outside the
    /// fake's lock, so the hook may change the fake as another client would).
    public func beforeNext(_ method: String, pathSuffix: String, _ hook: @escaping @Sendable (FakeKubernetesAPIServer) -> Void) {
        let box = HookBox(server: self, run: hook)
        state.withLockedValue { $0.hooks.append(PendingHook(method: method, pathSuffix: pathSuffix, run: { box.run(box.server) })) }
    }

    /// Stores a Secret directly, as another client would have created or updated it; returns its resourceVersion.
    @discardableResult
    public func putSecret(namespace: String, name: String, type: String = "kubernetes.io/tls", data: [String: [UInt8]],
                          labels: [String: String] = [:], annotations: [String: String] = [:], immutable: Bool? = nil,
                          extraMetadata: [String: JSONValue] = [:]) -> String {
        state.withLockedValue { state in
            var metadata = extraMetadata
            metadata["name"] = .string(name)
            metadata["namespace"] = .string(namespace)
            if !labels.isEmpty { metadata["labels"] = .object(labels.mapValues(JSONValue.string)) }
            if !annotations.isEmpty { metadata["annotations"] = .object(annotations.mapValues(JSONValue.string)) }
            var object: [String: JSONValue] = [
                "apiVersion": .string("v1"), "kind": .string("Secret"), "type": .string(type),
                "metadata": .object(metadata),
                "data": .object(data.mapValues { .string(Data($0).base64EncodedString()) }),
            ]
            if let immutable { object["immutable"] = .bool(immutable) }
            return state.storeSecret(.object(object), namespace: namespace, name: name, existing: state.secrets[namespace]?[name])
        }
    }

    /// Changes a stored Secret as a concurrent writer would (its resourceVersion moves on).
    public func mutateSecret(namespace: String, name: String, _ change: (inout FakeSecret) -> Void) {
        state.withLockedValue { state in
            guard let stored = state.secrets[namespace]?[name] else { return }
            var secret = FakeSecret(stored)
            change(&secret)
            _ = state.storeSecret(secret.object, namespace: namespace, name: name, existing: stored)
        }
    }

    /// The stored Secret, decoded, or nil.
    public func secret(namespace: String, name: String) -> FakeSecret? {
        state.withLockedValue { $0.secrets[namespace]?[name].map(FakeSecret.init) }
    }

    /// A Deployment or StatefulSet with `replicas` ready pods. A `stuck` one never finishes a rollout (its new
    /// pods never become available).
    public func addWorkload(_ kind: WorkloadKind, namespace: String, name: String, replicas: Int = 3, stuck: Bool = false) {
        state.withLockedValue { state in
            state.namespaces.insert(namespace)
            let object: JSONValue = .object([
                "apiVersion": .string("apps/v1"), "kind": .string(kind.kind),
                "metadata": .object(["name": .string(name), "namespace": .string(namespace), "generation": .number(1)]),
                "spec": .object([
                    "replicas": .number(Double(replicas)),
                    "selector": .object(["matchLabels": .object(["app": .string(name)])]),
                    "template": .object([
                        "metadata": .object(["labels": .object(["app": .string(name)])]),
                        "spec": .object(["containers": .array([.object(["name": .string(name), "image": .string("registry.example/\(name):1")])])]),
                    ]),
                ]),
            ])
            state.resourceVersion += 1
            state.workloads[WorkloadKey(kind: kind, namespace: namespace, name: name)] =
                FakeWorkload(object: object, resourceVersion: state.resourceVersion, rolloutStarted: nil, stuck: stuck)
        }
    }

    /// The workload as a GET would return it, status included.
    public func workload(_ kind: WorkloadKind, namespace: String, name: String) -> JSONValue? {
        state.withLockedValue { state in
            state.workloads[WorkloadKey(kind: kind, namespace: namespace, name: name)].map { state.render($0) }
        }
    }

    /// Every request so far, in order.
    public var requests: [RecordedRequest] {
        state.withLockedValue { $0.log }
    }

    public func clearRequests() {
        state.withLockedValue { $0.log = [] }
    }
}

/// A hook and the server it acts on; Sendable because both are.
private struct HookBox: Sendable {
    let server: FakeKubernetesAPIServer
    let run: @Sendable (FakeKubernetesAPIServer) -> Void
}

/// A stored Secret, decoded for tests.
public struct FakeSecret: Sendable, Equatable {
    public var object: JSONValue

    init(_ object: JSONValue) { self.object = object }

    public var type: String { if case .string(let text)? = object["type"] { text } else { "Opaque" } }
    public var resourceVersion: String { if case .string(let text)? = object["metadata"]?["resourceVersion"] { text } else { "" } }

    public var data: [String: [UInt8]] {
        get {
            guard case .object(let members)? = object["data"] else { return [:] }
            return members.compactMapValues { if case .string(let text) = $0 { Data(base64Encoded: text).map(Array.init) } else { nil } }
        }
        set { set(["data"], .object(newValue.mapValues { .string(Data($0).base64EncodedString()) })) }
    }

    public var labels: [String: String] {
        get { strings(object["metadata"]?["labels"]) }
        set { set(["metadata", "labels"], .object(newValue.mapValues(JSONValue.string))) }
    }

    public var annotations: [String: String] {
        get { strings(object["metadata"]?["annotations"]) }
        set { set(["metadata", "annotations"], .object(newValue.mapValues(JSONValue.string))) }
    }

    private func strings(_ value: JSONValue?) -> [String: String] {
        guard case .object(let members)? = value else { return [:] }
        return members.compactMapValues { if case .string(let text) = $0 { text } else { nil } }
    }

    private mutating func set(_ path: [String], _ value: JSONValue) {
        object = FakeJSON.setting(object, path: path[...], to: value)
    }
}

// MARK: - State

struct RBACRule: Sendable {
    var user: String
    var verbs: Set<String>
    var resources: Set<String>
    var group: String
    var namespace: String?

    func allows(user: String, verb: String, resource: String, group: String, namespace: String?) -> Bool {
        self.user == user && (verbs.contains("*") || verbs.contains(verb)) && (resources.contains("*") || resources.contains(resource))
            && (self.group == "*" || self.group == group) && (self.namespace == nil || self.namespace == namespace)
    }
}

struct PendingHook: Sendable {
    var method: String
    var pathSuffix: String
    var run: @Sendable () -> Void
}

struct WorkloadKey: Hashable, Sendable {
    var kind: FakeKubernetesAPIServer.WorkloadKind
    var namespace: String
    var name: String
}

struct FakeWorkload: Sendable {
    var object: JSONValue
    var resourceVersion: Int
    /// When the current generation's rollout began (nil: nothing rolling since creation).
    var rolloutStarted: Date?
    var stuck: Bool
}

/// Everything the fake stores. Only touched under the server's lock.
struct FakeClusterState: Sendable {
    var namespaces: Set<String>
    var rolloutDuration: Duration
    /// etcd's revision: one counter for every object, as real resourceVersions are.
    var resourceVersion = 1000
    var tokens: [String: (user: String, groups: [String])] = [:]
    var rules: [RBACRule] = []
    var secrets: [String: [String: JSONValue]] = [:]
    var workloads: [WorkloadKey: FakeWorkload] = [:]
    var throttleRemaining = 0
    var retryAfterSeconds = 1
    var failRemaining = 0
    var failStatus = 503
    var hooks: [PendingHook] = []
    var log: [FakeKubernetesAPIServer.RecordedRequest] = []

    init(namespaces: Set<String>, rolloutDuration: Duration) {
        self.namespaces = namespaces
        self.rolloutDuration = rolloutDuration
    }

    /// Writes a Secret with server-owned metadata (uid, creationTimestamp kept from `existing`) and a new
    /// resourceVersion — unless nothing changed, in which case the stored object and its version stay.
    mutating func storeSecret(_ object: JSONValue, namespace: String, name: String, existing: JSONValue?) -> String {
        var object = object
        let uid = existing?["metadata"]?["uid"] ?? .string(UUID().uuidString.lowercased())
        let created = existing?["metadata"]?["creationTimestamp"] ?? .string(FakeJSON.timestamp(Date()))
        object = FakeJSON.setting(object, path: ["metadata", "uid"], to: uid)
        object = FakeJSON.setting(object, path: ["metadata", "creationTimestamp"], to: created)
        object = FakeJSON.setting(object, path: ["metadata", "namespace"], to: .string(namespace))
        object = FakeJSON.setting(object, path: ["metadata", "name"], to: .string(name))
        if let existing {
            let previousVersion = existing["metadata"]?["resourceVersion"] ?? .null
            let candidate = FakeJSON.setting(object, path: ["metadata", "resourceVersion"], to: previousVersion)
            if candidate == existing, case .string(let version) = previousVersion { return version }
        }
        resourceVersion += 1
        object = FakeJSON.setting(object, path: ["metadata", "resourceVersion"], to: .string(String(resourceVersion)))
        secrets[namespace, default: [:]][name] = object
        return String(resourceVersion)
    }

    /// The workload with its status as the controller would report it now.
    func render(_ workload: FakeWorkload, now: Date = Date()) -> JSONValue {
        let object = workload.object
        let generation = FakeJSON.int(object["metadata"]?["generation"]) ?? 1
        let replicas = FakeJSON.int(object["spec"]?["replicas"]) ?? 1
        var observed = generation
        var updated = replicas
        var available = replicas
        var progressing = "NewReplicaSetAvailable"
        if let started = workload.rolloutStarted {
            let elapsed = now.timeIntervalSince(started)
            let duration = Double(rolloutDuration.components.seconds) + Double(rolloutDuration.components.attoseconds) / 1e18
            // The controller notices the new generation after a moment, then replaces pods one by one.
            observed = elapsed < min(0.03, duration / 10) ? generation - 1 : generation
            if workload.stuck {
                updated = min(1, replicas)
                available = max(replicas - 1, 0)  // the new pod never becomes ready; maxUnavailable took one old pod down
                progressing = "ReplicaSetUpdated"
            } else if elapsed < duration {
                updated = min(replicas, Int(Double(replicas) * elapsed / duration))
                progressing = "ReplicaSetUpdated"
            }
        }
        var status: [String: JSONValue] = [
            "observedGeneration": .number(Double(observed)),
            "replicas": .number(Double(replicas)),
            "updatedReplicas": .number(Double(updated)),
            "readyReplicas": .number(Double(available)),
            "availableReplicas": .number(Double(available)),
        ]
        if case .string("Deployment")? = object["kind"] {
            status["conditions"] = .array([
                .object(["type": .string("Available"), "status": .string("True"), "reason": .string("MinimumReplicasAvailable")]),
                .object(["type": .string("Progressing"), "status": .string("True"), "reason": .string(progressing)]),
            ])
        }
        var rendered = FakeJSON.setting(object, path: ["status"], to: .object(status))
        rendered = FakeJSON.setting(rendered, path: ["metadata", "resourceVersion"], to: .string(String(workload.resourceVersion)))
        return rendered
    }
}

/// The request-handling side, shared by every connection's handler.
final class FakeClusterCore: Sendable {
    let state: NIOLockedValueBox<FakeClusterState>

    init(state: NIOLockedValueBox<FakeClusterState>) {
        self.state = state
    }

    func handle(_ request: FakeRequest) -> FakeResponse {
        // One-shot hooks run first, outside the lock, like another client racing this request.
        let due = state.withLockedValue { state -> [PendingHook] in
            var due: [PendingHook] = []
            state.hooks.removeAll { hook in
                let matches = hook.method == request.method && request.path.hasSuffix(hook.pathSuffix)
                if matches { due.append(hook) }
                return matches
            }
            return due
        }
        for hook in due { hook.run() }
        return state.withLockedValue { state in
            var router = FakeRouter(state: state, request: request)
            let response = router.route()
            state = router.state
            state.log.append(.init(method: request.method, path: request.path, userAgent: request.headers["user-agent"],
                                   user: router.user, authentication: router.authentication,
                                   token: request.headers["authorization"].map { String($0.dropFirst("Bearer ".count)) }, contentType: request.headers["content-type"],
                                   status: response.status))
            return response
        }
    }
}

// MARK: - HTTP

struct FakeRequest: Sendable {
    var method: String
    var path: String
    var query: String?
    /// Lowercased names.
    var headers: [String: String]
    var body: [UInt8]
    /// DER of the verified client certificate, when one was presented.
    var clientCertificate: [UInt8]?
}

/// An answer; also the failure side of body decoding.
struct FakeResponse: Error, Sendable {
    var status: Int
    var body: JSONValue
    var headers: [(String, String)] = []
}

/// HTTP/1.1 on top of TLS: collects each request, lets the core answer it, writes JSON back (keep-alive).
final class FakeAPIHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let core: FakeClusterCore
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(core: FakeClusterCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(let buffer):
            body += Array(buffer: buffer)
        case .end:
            guard let head else { return }
            self.head = nil
            let certificate = (try? context.pipeline.syncOperations.nioSSL_peerCertificate()).flatMap { $0 }.flatMap { try? $0.toDERBytes() }
            var headers: [String: String] = [:]
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            let request = FakeRequest(method: head.method.rawValue, path: String(parts[0]).removingPercentEncoding ?? String(parts[0]),
                                      query: parts.count > 1 ? String(parts[1]) : nil, headers: headers, body: body, clientCertificate: certificate)
            let response = core.handle(request)
            let bytes = Array(response.body.jsonText(pretty: false).utf8)
            var responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: response.status))
            responseHead.headers.add(name: "Content-Type", value: "application/json")
            responseHead.headers.add(name: "Content-Length", value: String(bytes.count))
            responseHead.headers.add(name: "Audit-Id", value: UUID().uuidString.lowercased())
            for (name, value) in response.headers { responseHead.headers.add(name: name, value: value) }
            if !head.isKeepAlive { responseHead.headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            let keepAlive = head.isKeepAlive
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { channel.close(promise: nil) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

// MARK: - JSON helpers

enum FakeJSON {
    static func setting(_ value: JSONValue, path: ArraySlice<String>, to newValue: JSONValue?) -> JSONValue {
        guard let key = path.first else { return newValue ?? .null }
        var members: [String: JSONValue] = [:]
        if case .object(let existing) = value { members = existing }
        if path.count == 1 {
            members[key] = newValue
        } else {
            members[key] = setting(members[key] ?? .object([:]), path: path.dropFirst(), to: newValue)
        }
        return .object(members)
    }

    static func int(_ value: JSONValue?) -> Int? {
        if case .number(let number)? = value { Int(number) } else { nil }
    }

    /// RFC 7386 JSON merge patch (what a strategic merge patch does for maps, the only thing patched here).
    static func mergePatch(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let patchMembers) = patch else { return patch }
        var members: [String: JSONValue] = [:]
        if case .object(let existing) = target { members = existing }
        for (key, value) in patchMembers {
            if value == .null { members[key] = nil } else { members[key] = mergePatch(members[key] ?? .null, value) }
        }
        return .object(members)
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
