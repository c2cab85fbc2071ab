import Core
import Foundation

/// Authenticates, throttles, authorizes and answers one request against the fake's state, in the order the
/// real API server's filter chain does (authentication → priority and fairness → authorization → handler).
struct FakeRouter {
    var state: FakeClusterState
    let request: FakeRequest
    var user: String?
    var groups: [String] = []
    var authentication = "anonymous"

    init(state: FakeClusterState, request: FakeRequest) {
        self.state = state
        self.request = request
    }

    mutating func route() -> FakeResponse {
        // Authentication ("Authenticating"): x509 client certificate (CN = user, O = groups), else bearer token,
        // else anonymous. A bearer token that matches nothing is 401 on every path.
        if let der = request.clientCertificate, let identity = FakeClusterCA.identity(ofDER: der) {
            user = identity.user
            groups = identity.groups + ["system:authenticated"]
            authentication = "x509"
        } else if let header = request.headers["authorization"] {
            guard header.hasPrefix("Bearer "), let identity = state.tokens[String(header.dropFirst(7))] else {
                authentication = "token"
                return Self.status(401, reason: "Unauthorized", message: "Unauthorized")
            }
            user = identity.user
            groups = identity.groups + ["system:authenticated"]
            authentication = "token"
        } else {
            user = "system:anonymous"
            groups = ["system:unauthenticated"]
        }

        // API Priority and Fairness: 429 with Retry-After.
        if state.throttleRemaining > 0 {
            state.throttleRemaining -= 1
            var response = Self.status(429, reason: "TooManyRequests", message: "Too many requests, please try again later.",
                                       details: ["retryAfterSeconds": .number(Double(state.retryAfterSeconds))])
            response.headers.append(("Retry-After", String(state.retryAfterSeconds)))
            return response
        }

        if state.failRemaining > 0 {
            state.failRemaining -= 1
            return switch state.failStatus {
            case 503: Self.status(503, reason: "ServiceUnavailable", message: "the server is currently unable to handle the request", details: [:])
            case 504: Self.status(504, reason: "Timeout", message: "the server was unable to return a response in the time allotted, but may still be processing the request",
                                  details: [:])
            default: Self.status(state.failStatus, reason: "InternalError", message: "Internal error occurred: etcdserver: request timed out",
                                 details: ["causes": .array([.object(["message": .string("etcdserver: request timed out")])])])
            }
        }

        let parts = request.path.split(separator: "/").map(String.init)
        switch (request.method, parts.count) {
        case ("GET", 1) where parts == ["version"]:
            return version()
        default:
            break
        }
        if parts.count == 4, parts[0...2] == ["api", "v1", "namespaces"] {
            return namespace(parts[3])
        }
        if parts.count >= 5, parts[0...2] == ["api", "v1", "namespaces"], parts[4] == "secrets" {
            return secrets(namespace: parts[3], name: parts.count == 6 ? parts[5] : nil)
        }
        if parts.count == 7, parts[0...3] == ["apis", "apps", "v1", "namespaces"],
           let kind = FakeKubernetesAPIServer.WorkloadKind(rawValue: parts[5]) {
            return workload(kind, namespace: parts[4], name: parts[6])
        }
        return Self.status(404, reason: "NotFound", message: "the server could not find the requested resource", details: [:])
    }

    // MARK: Status bodies (API Concepts, "Status"; apimachinery StatusError)

    /// `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":…,"reason":…,"details":{…},"code":…}`;
    /// `details` is omitted when nil, as the API server omits it (401 has none).
    static func status(_ code: Int, reason: String, message: String, details: [String: JSONValue]? = nil) -> FakeResponse {
        var object: [String: JSONValue] = [
            "kind": .string("Status"), "apiVersion": .string("v1"), "metadata": .object([:]),
            "status": .string("Failure"), "message": .string(message), "reason": .string(reason), "code": .number(Double(code)),
        ]
        if let details { object["details"] = .object(details) }
        return FakeResponse(status: code, body: .object(object))
    }

    static func notFound(_ resource: String, group: String = "", name: String) -> FakeResponse {
        var details: [String: JSONValue] = ["name": .string(name), "kind": .string(resource)]
        if !group.isEmpty { details["group"] = .string(group) }
        let qualified = group.isEmpty ? resource : "\(resource).\(group)"
        return status(404, reason: "NotFound", message: "\(qualified) \"\(name)\" not found", details: details)
    }

    static func conflict(_ resource: String, name: String, _ message: String) -> FakeResponse {
        status(409, reason: "Conflict", message: "Operation cannot be fulfilled on \(resource) \"\(name)\": \(message)",
               details: ["name": .string(name), "kind": .string(resource)])
    }

    struct Cause {
        var reason: String
        var message: String
        var field: String
    }

    /// 422 Invalid as `NewInvalid` builds it: `Secret "x" is invalid: field: message` (several in brackets).
    static func invalid(kind: String, name: String, _ causes: [Cause]) -> FakeResponse {
        let rendered = causes.map { "\($0.field): \($0.message)" }
        let summary = rendered.count == 1 ? rendered[0] : "[" + rendered.joined(separator: ", ") + "]"
        return status(422, reason: "Invalid", message: "\(kind) \"\(name)\" is invalid: \(summary)", details: [
            "name": .string(name), "kind": .string(kind),
            "causes": .array(causes.map { .object(["reason": .string($0.reason), "message": .string($0.message), "field": .string($0.field)]) }),
        ])
    }

    static func badRequest(_ message: String) -> FakeResponse {
        status(400, reason: "BadRequest", message: message)
    }

    // MARK: Authorization (RBAC)

    /// nil when allowed; else 403 worded as the RBAC authorizer words it.
    func authorize(_ verb: String, _ resource: String, group: String = "", namespace: String?, name: String?) -> FakeResponse? {
        guard let user else { return Self.status(401, reason: "Unauthorized", message: "Unauthorized") }
        if groups.contains("system:masters") { return nil }
        if state.rules.contains(where: { $0.allows(user: user, verb: verb, resource: resource, group: group, namespace: namespace) }) {
            return nil
        }
        let qualified = group.isEmpty ? resource : "\(resource).\(group)"
        let subject = name.map { "\(qualified) \"\($0)\"" } ?? qualified
        let scope = namespace.map { " in the namespace \"\($0)\"" } ?? " at the cluster scope"
        var details: [String: JSONValue] = ["kind": .string(resource)]
        if let name { details["name"] = .string(name) }
        if !group.isEmpty { details["group"] = .string(group) }
        return Self.status(403, reason: "Forbidden",
                           message: "\(subject) is forbidden: User \"\(user)\" cannot \(verb) resource \"\(resource)\" in API group \"\(group)\"\(scope)",
                           details: details)
    }

    // MARK: /version, namespaces

    func version() -> FakeResponse {
        let minor = FakeKubernetesAPIServer.gitVersion.split(separator: ".")[1]
        return FakeResponse(status: 200, body: .object([
            "major": .string("1"), "minor": .string(String(minor)), "gitVersion": .string(FakeKubernetesAPIServer.gitVersion),
            "gitCommit": .string("9edcffcde5595e8a5b1a35f88c421764e575afce"), "gitTreeState": .string("clean"),
            "buildDate": .string("2024-08-13T07:28:49Z"), "goVersion": .string("go1.22.5"), "compiler": .string("gc"),
            "platform": .string("linux/amd64"),
        ]))
    }

    func namespace(_ name: String) -> FakeResponse {
        guard request.method == "GET" else { return Self.status(405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource") }
        if let refusal = authorize("get", "namespaces", namespace: nil, name: name) { return refusal }
        guard state.namespaces.contains(name) else { return Self.notFound("namespaces", name: name) }
        return FakeResponse(status: 200, body: .object([
            "kind": .string("Namespace"), "apiVersion": .string("v1"),
            "metadata": .object(["name": .string(name)]),
            "spec": .object(["finalizers": .array([.string("kubernetes")])]),
            "status": .object(["phase": .string("Active")]),
        ]))
    }

    // MARK: Secrets (Secret v1 core: read, list, create, replace, delete)

    mutating func secrets(namespace: String, name: String?) -> FakeResponse {
        let verb: String
        switch (request.method, name) {
        case ("GET", nil): verb = "list"
        case ("GET", _): verb = "get"
        case ("POST", nil): verb = "create"
        case ("PUT", _?): verb = "update"
        case ("DELETE", _?): verb = "delete"
        case ("PATCH", _?): verb = "patch"
        default:
            return Self.status(405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
        }
        if let refusal = authorize(verb, "secrets", namespace: namespace, name: name) { return refusal }
        switch verb {
        case "list":
            let items = (state.secrets[namespace] ?? [:]).keys.sorted().compactMap { state.secrets[namespace]?[$0] }
            return FakeResponse(status: 200, body: .object([
                "kind": .string("SecretList"), "apiVersion": .string("v1"),
                "metadata": .object(["resourceVersion": .string(String(state.resourceVersion))]), "items": .array(items),
            ]))
        case "get":
            // A get does not check the namespace: a Secret in a missing namespace is simply not found.
            guard let stored = state.secrets[namespace]?[name!] else { return Self.notFound("secrets", name: name!) }
            return FakeResponse(status: 200, body: stored)
        case "create":
            return createSecret(namespace: namespace)
        case "update":
            return replaceSecret(namespace: namespace, name: name!)
        case "delete":
            return deleteSecret(namespace: namespace, name: name!)
        default:
            return Self.status(415, reason: "UnsupportedMediaType", message: "the fake API server does not patch Secrets")
        }
    }

    private func decodeBody() -> Result<JSONValue, FakeResponse> {
        guard let body = try? JSONValue.parse(Data(request.body)), case .object = body else {
            return .failure(Self.badRequest("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"))
        }
        return .success(body)
    }

    private static func string(_ value: JSONValue?) -> String? {
        if case .string(let text)? = value { text } else { nil }
    }

    private mutating func createSecret(namespace: String) -> FakeResponse {
        let body: JSONValue
        switch decodeBody() {
        case .success(let value): body = value
        case .failure(let response): return response
        }
        let name = Self.string(body["metadata"]?["name"]) ?? ""
        if let given = Self.string(body["metadata"]?["namespace"]), given != namespace {
            return Self.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        // NamespaceLifecycle admission: creating in a namespace that does not exist.
        guard state.namespaces.contains(namespace) else { return Self.notFound("namespaces", name: namespace) }
        var causes = Self.validateSecret(body, name: name)
        if name.isEmpty { causes.insert(Cause(reason: "FieldValueRequired", message: "Required value: name or generateName is required", field: "metadata.name"), at: 0) }
        if !causes.isEmpty { return Self.invalid(kind: "Secret", name: name, causes) }
        if state.secrets[namespace]?[name] != nil {
            return Self.status(409, reason: "AlreadyExists", message: "secrets \"\(name)\" already exists",
                               details: ["name": .string(name), "kind": .string("secrets")])
        }
        var object = FakeJSON.setting(body, path: ["metadata", "resourceVersion"], to: nil)
        object = FakeJSON.setting(object, path: ["type"], to: .string(Self.string(body["type"]) ?? "Opaque"))
        _ = state.storeSecret(object, namespace: namespace, name: name, existing: nil)
        return FakeResponse(status: 201, body: state.secrets[namespace]![name]!)
    }

    private mutating func replaceSecret(namespace: String, name: String) -> FakeResponse {
        let body: JSONValue
        switch decodeBody() {
        case .success(let value): body = value
        case .failure(let response): return response
        }
        let bodyName = Self.string(body["metadata"]?["name"]) ?? ""
        guard bodyName == name else {
            return Self.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        if let given = Self.string(body["metadata"]?["namespace"]), given != namespace {
            return Self.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        // Secrets do not allow create-on-update.
        guard let existing = state.secrets[namespace]?[name] else { return Self.notFound("secrets", name: name) }
        let current = Self.string(existing["metadata"]?["resourceVersion"]) ?? ""
        if let wanted = Self.string(body["metadata"]?["resourceVersion"]), !wanted.isEmpty, wanted != current {
            return Self.conflict("secrets", name: name, "the object has been modified; please apply your changes to the latest version and try again")
        }
        var object = body
        object = FakeJSON.setting(object, path: ["type"], to: .string(Self.string(body["type"]) ?? "Opaque"))
        var causes = Self.validateSecret(object, name: name)
        causes += Self.validateSecretUpdate(new: object, old: existing)
        if !causes.isEmpty { return Self.invalid(kind: "Secret", name: name, causes) }
        _ = state.storeSecret(object, namespace: namespace, name: name, existing: existing)
        return FakeResponse(status: 200, body: state.secrets[namespace]![name]!)
    }

    private mutating func deleteSecret(namespace: String, name: String) -> FakeResponse {
        guard let existing = state.secrets[namespace]?[name] else { return Self.notFound("secrets", name: name) }
        let current = Self.string(existing["metadata"]?["resourceVersion"]) ?? ""
        if !request.body.isEmpty, let options = try? JSONValue.parse(Data(request.body)),
           let wanted = Self.string(options["preconditions"]?["resourceVersion"]), wanted != current {
            return Self.conflict("secrets", name: name, "Precondition failed: ResourceVersion in precondition: \(wanted), ResourceVersion in object meta: \(current)")
        }
        state.secrets[namespace]?[name] = nil
        return FakeResponse(status: 200, body: .object([
            "kind": .string("Status"), "apiVersion": .string("v1"), "metadata": .object([:]), "status": .string("Success"),
            "details": .object(["name": .string(name), "kind": .string("secrets"), "uid": existing["metadata"]?["uid"] ?? .null]),
        ]))
    }

    /// `ValidateSecret`: name, data keys, total size, and the keys a type requires.
    static func validateSecret(_ object: JSONValue, name: String) -> [Cause] {
        var causes: [Cause] = []
        let subdomain = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
        if !name.isEmpty, name.count > 253 || name.range(of: subdomain, options: .regularExpression) == nil {
            causes.append(Cause(reason: "FieldValueInvalid", message: "Invalid value: \"\(name)\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')", field: "metadata.name"))
        }
        var data: [String: [UInt8]] = [:]
        if case .object(let members)? = object["data"] {
            for (key, value) in members.sorted(by: { $0.key < $1.key }) {
                if key.range(of: "^[-._a-zA-Z0-9]+$", options: .regularExpression) == nil || key.count > 253 {
                    causes.append(Cause(reason: "FieldValueInvalid", message: "Invalid value: \"\(key)\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')", field: "data[\(key)]"))
                }
                if case .string(let text) = value, let bytes = Data(base64Encoded: text) { data[key] = Array(bytes) }
            }
        }
        if data.values.reduce(0, { $0 + $1.count }) > 1024 * 1024 {
            causes.append(Cause(reason: "FieldValueTooLong", message: "Too long: must have at most 1048576 bytes", field: "data"))
        }
        if string(object["type"]) == "kubernetes.io/tls" {
            for key in ["tls.crt", "tls.key"] where data[key] == nil {
                causes.append(Cause(reason: "FieldValueRequired", message: "Required value", field: "data[\(key)]"))
            }
        }
        return causes
    }

    /// `ValidateSecretUpdate`: type is immutable, and so is everything of an `immutable: true` Secret.
    static func validateSecretUpdate(new: JSONValue, old: JSONValue) -> [Cause] {
        var causes: [Cause] = []
        let oldType = string(old["type"]) ?? "Opaque"
        let newType = string(new["type"]) ?? "Opaque"
        if oldType != newType {
            causes.append(Cause(reason: "FieldValueInvalid", message: "Invalid value: \"\(newType)\": field is immutable", field: "type"))
        }
        if old["immutable"] == .bool(true) {
            if new["immutable"] != .bool(true) {
                causes.append(Cause(reason: "FieldValueForbidden", message: "Forbidden: field is immutable when `immutable` is set", field: "immutable"))
            }
            if (new["data"] ?? .object([:])) != (old["data"] ?? .object([:])) {
                causes.append(Cause(reason: "FieldValueForbidden", message: "Forbidden: field is immutable when `immutable` is set", field: "data"))
            }
        }
        return causes
    }

    // MARK: Deployments, StatefulSets (apps/v1: read, patch)

    mutating func workload(_ kind: FakeKubernetesAPIServer.WorkloadKind, namespace: String, name: String) -> FakeResponse {
        let verb: String
        switch request.method {
        case "GET": verb = "get"
        case "PATCH": verb = "patch"
        default: return Self.status(405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
        }
        if let refusal = authorize(verb, kind.rawValue, group: "apps", namespace: namespace, name: name) { return refusal }
        let key = WorkloadKey(kind: kind, namespace: namespace, name: name)
        guard var workload = state.workloads[key] else { return Self.notFound(kind.rawValue, group: "apps", name: name) }
        if verb == "get" { return FakeResponse(status: 200, body: state.render(workload)) }

        let contentType = (request.headers["content-type"] ?? "").split(separator: ";")[0].trimmingCharacters(in: .whitespaces)
        guard ["application/strategic-merge-patch+json", "application/merge-patch+json"].contains(contentType) else {
            return Self.status(415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json")
        }
        guard let patch = try? JSONValue.parse(Data(request.body)), case .object = patch else {
            return Self.badRequest("error decoding patch: invalid JSON")
        }
        let before = workload.object
        var patched = FakeJSON.mergePatch(before, FakeJSON.setting(patch, path: ["status"], to: nil))
        if patched["spec"] != before["spec"] {
            // A spec change (the pod template) is a new generation; the controller starts rolling it out.
            let generation = (FakeJSON.int(before["metadata"]?["generation"]) ?? 1) + 1
            patched = FakeJSON.setting(patched, path: ["metadata", "generation"], to: .number(Double(generation)))
            workload.rolloutStarted = Date()
        }
        if patched != before {
            state.resourceVersion += 1
            workload.resourceVersion = state.resourceVersion
        }
        workload.object = patched
        state.workloads[key] = workload
        return FakeResponse(status: 200, body: state.render(workload))
    }
}
