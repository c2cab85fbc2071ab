import CertdeployAPI
import Store

/// `paths`: every route the server answers, in the order the API reference lists them.
enum OpenAPIPaths {
    typealias Param = OpenAPIComponents.Parameter
    typealias Status = OpenAPIComponents.ErrorStatus

    /// Who may call an operation.
    enum Access {
        /// No key needed (`security: []`): exactly the routes in `ServerSecurity.PublicRoutes`.
        case `public`
        /// Any valid API key.
        case key
        /// An admin API key: 403 for any other key.
        case admin
    }

    /// One method on one path.
    struct Operation {
        var method: String
        var path: String
        var id: String
        var tag: String
        var summary: String
        var description: String? = nil
        var access: Access = .key
        var parameters: [SpecValue] = []
        /// A `components.schemas` name; the body is required JSON.
        var body: String? = nil
        /// The success responses (and, for `/ready`, its 503).
        var success: [(String, SpecValue)]
        /// Error statuses beyond those the operation's shape implies: 429 always; 401 with a key, 403 for admin;
        /// 422 for a query parameter; 404 for a path parameter (400 too for a UUID one); 400/413/415/422 for a body.
        var errors: [Status] = []
        /// OpenAPI links from the first success response: which operations take the object it returns (so a
        /// stateful client, schemathesis' stateful phase among them, walks real objects instead of made-up ids).
        var links: [Link] = []
    }

    /// An OpenAPI link: `operationId`, with each of `parameters` taken from the response (a runtime expression).
    struct Link {
        var name: String
        var operationId: String
        var parameters: [(String, String)]
    }

    /// Links from a response carrying a target (`id`) to everything done with one target.
    static let targetLinks: [Link] = [
        ("GetTarget", "getTarget"), ("ReplaceTarget", "replaceTarget"), ("TestTarget", "testTarget"),
        ("GetTargetStaplingConfig", "getTargetStaplingConfig"), ("VerifyTarget", "verifyTarget"), ("DeleteTarget", "deleteTarget"),
    ].map { Link(name: $0.0, operationId: $0.1, parameters: [("target", "$response.body#/id")]) }
        + [Link(name: "ListTargetDeployments", operationId: "listDeployments", parameters: [("target", "$response.body#/id")])]

    // MARK: - Routes

    static let operations: [Operation] = service + connectors + certificates + targets + deployments + rollouts + windows + audit

    static let service: [Operation] = [
        Operation(method: "get", path: "/health", id: "getHealth", tag: "service", summary: "Liveness: the process is up.",
                  access: .public, success: [("200", json("HealthResponse", "Up."))]),
        Operation(method: "get", path: "/ready", id: "getReadiness", tag: "service",
                  summary: "Readiness: the store answers and the workers run.", access: .public,
                  success: [("200", json("ReadinessResponse", "Ready.")),
                            ("503", json("ReadinessResponse", "Not ready: `store` or `workers` says which part is not."))]),
        Operation(method: "get", path: "/api/v1/version", id: "getVersion", tag: "service", summary: "The server's version.",
                  access: .public, success: [("200", json("VersionResponse", "The versions."))]),
        Operation(method: "get", path: "/api/v1/auth/info", id: "getAuthInfo", tag: "service",
                  summary: "How to authenticate, and who the presented key is.",
                  description: "Needs no key. When a valid key is presented, `name` and `admin` describe it.",
                  access: .public, success: [("200", json("AuthInfoResponse", "How to authenticate."))]),
        Operation(method: "get", path: "/metrics", id: "getMetrics", tag: "service", summary: "Prometheus metrics.",
                  success: [("200", text("text/plain; version=0.0.4", "Metrics in the Prometheus text exposition format 0.0.4."))]),
        Operation(method: "get", path: "/api/v1/openapi.yaml", id: "getOpenAPIDocument", tag: "service",
                  summary: "This OpenAPI document.",
                  success: [("200", text("application/yaml", "The OpenAPI 3.1 document, for this server's connectors."))]),
    ]

    static let connectors: [Operation] = [
        Operation(method: "get", path: "/api/v1/connectors", id: "listConnectors", tag: "connectors",
                  summary: "The connectors this server has, with their config schemas.",
                  description: "Takes no query parameters; any is refused (422).",
                  success: [("200", json("ConnectorList", "Every connector, in registry order, on one page."))],
                  errors: [.unprocessableContent]),
        Operation(method: "get", path: "/api/v1/connectors/{id}", id: "getConnector", tag: "connectors",
                  summary: "One connector.", parameters: [Param.connectorID.ref],
                  success: [("200", json("ConnectorView", "The connector."))]),
    ]

    static let certificates: [Operation] = [
        Operation(method: "post", path: "/api/v1/certificates", id: "uploadCertificate", tag: "certificates",
                  summary: "Add a certificate version (creating the certificate on its first upload).",
                  description: """
                      The bundle is checked before it is stored: the leaf must match the private key and the chain must \
                      verify; a problem is 422 naming it. The private key is stored encrypted and never returned.
                      """,
                  access: .admin, body: "CertificateUpload",
                  success: [("201", json("CertificateVersionView", "The new version."))],
                  links: [("GetCertificate", "getCertificate"), ("ListCertificateDeployments", "listDeployments"), ("DeleteCertificate", "deleteCertificate")]
                      .map { Link(name: $0.0, operationId: $0.1, parameters: [($0.1 == "listDeployments" ? "certificate" : "name", "$response.body#/name")]) }),
        Operation(method: "get", path: "/api/v1/certificates", id: "listCertificates", tag: "certificates",
                  summary: "List certificates, ordered by name.",
                  parameters: [Param.namePrefix.ref, Param.limit.ref, Param.cursor.ref],
                  success: [("200", json("CertificateList", "One page of certificates (without `versions`)."))]),
        Operation(method: "get", path: "/api/v1/certificates/{name}", id: "getCertificate", tag: "certificates",
                  summary: "One certificate, with every version.", parameters: [Param.certificateName.ref],
                  success: [("200", json("CertificateView", "The certificate."))]),
        Operation(method: "delete", path: "/api/v1/certificates/{name}", id: "deleteCertificate", tag: "certificates",
                  summary: "Delete a certificate and all its versions.",
                  description: "409 while a target is bound to it or a deployment of it is queued or running.",
                  access: .admin, parameters: [Param.certificateName.ref],
                  success: [("204", ["description": "Deleted."])], errors: [.conflict]),
    ]

    static let targets: [Operation] = [
        Operation(method: "post", path: "/api/v1/targets", id: "createTarget", tag: "targets", summary: "Create a target.",
                  description: """
                      The `config` is validated against the connector's schema, and the `ssh` or `kubernetes` section against \
                      the transport's; every bad field is named in `errors` (422). 409 when the name is taken.
                      """,
                  access: .admin, body: "TargetInput",
                  success: [("201", json("TargetView", "The target, secrets redacted."))], errors: [.conflict], links: targetLinks),
        Operation(method: "get", path: "/api/v1/targets", id: "listTargets", tag: "targets",
                  summary: "List targets, ordered by name.",
                  parameters: [
                      OpenAPIComponents.query("label", "Only targets carrying every one of these labels.", Schema.ref("LabelSelector")),
                      OpenAPIComponents.query("connector", "Only targets of this connector.", Schema.ref("ConnectorID")),
                      Param.namePrefix.ref, Param.limit.ref, Param.cursor.ref,
                  ],
                  success: [("200", json("TargetList", "One page of targets."))]),
        Operation(method: "get", path: "/api/v1/targets/{target}", id: "getTarget", tag: "targets", summary: "One target.",
                  parameters: [Param.targetRef.ref], success: [("200", json("TargetView", "The target, secrets redacted."))]),
        Operation(method: "put", path: "/api/v1/targets/{target}", id: "replaceTarget", tag: "targets", summary: "Replace a target.",
                  description: """
                      Secret fields left out, or sent as `<redacted>`, keep their stored values. 409 when `version` is given \
                      and the target has changed since that version, or when the new name is taken.
                      """,
                  access: .admin, parameters: [Param.targetRef.ref], body: "TargetInput",
                  success: [("200", json("TargetView", "The target as stored, secrets redacted."))], errors: [.conflict]),
        Operation(method: "delete", path: "/api/v1/targets/{target}", id: "deleteTarget", tag: "targets", summary: "Delete a target.",
                  description: "409 while a deployment to it is queued or running.",
                  access: .admin, parameters: [Param.targetRef.ref], success: [("204", ["description": "Deleted."])],
                  errors: [.conflict]),
        Operation(method: "post", path: "/api/v1/targets/{target}/test", id: "testTarget", tag: "targets",
                  summary: "Check a target without changing it.",
                  description: "Validates the config, connects, checks the host key and authentication, the paths and the server's config check. Writes nothing live.",
                  parameters: [Param.targetRef.ref],
                  success: [("200", json("TargetTestReport", "What was checked; `ok` is true when every check passed."))]),
        Operation(method: "get", path: "/api/v1/targets/{target}/stapling-config", id: "getTargetStaplingConfig", tag: "targets",
                  summary: "The stapling decision and config snippets for the bound certificate.",
                  description: "409 when the target has no certificate bound, or the connector cannot plan for it.",
                  parameters: [Param.targetRef.ref],
                  success: [("200", json("StaplingConfigView", "What the connector would emit."))], errors: [.conflict]),
        Operation(method: "post", path: "/api/v1/targets/{target}/verify", id: "verifyTarget", tag: "targets",
                  summary: "Check now that the target serves what certdeploy deployed.",
                  description: """
                      Handshakes with the target's verify endpoint and compares the served leaf with the one last deployed, and \
                      the served OCSP staple's status and age. Records the result as the target's status; with `autoRemediate` on, \
                      a drifted target gets a forced redeploy of the expected version (queued, actor `drift-remediation`).
                      """,
                  parameters: [Param.targetRef.ref],
                  success: [("200", json("TargetStatusView", "The target's status after the check (`expectedSHA256` included)."))]),
    ]

    static let deployments: [Operation] = [
        Operation(method: "post", path: "/api/v1/deployments", id: "createDeployments", tag: "deployments",
                  summary: "Queue deployments of a certificate version.",
                  description: """
                      Queues one deployment per target named in `targets` or matched by `selector` (a target both names and \
                      matches is deployed once). More than one target (or a `strategy`) makes it a rollout (see \
                      `POST /api/v1/rollouts`): the deployments are created `pending`, carry `rolloutID` and `wave`, and are \
                      released wave by wave. One target outside its maintenance window is a 409 (a rollout would wait for the \
                      window), unless `ignoreWindows` (an admin key, else 403; audited) says to deploy now. 422 when the certificate or the version does not exist, a named target does \
                      not exist, no target matches the selector, or neither `targets` nor `selector` is given. Follow each \
                      deployment with `GET /api/v1/deployments/{id}/events`.
                      """,
                  body: "DeploymentRequest",
                  success: [("202", json("DeploymentList", "The queued deployments, one per target."))], errors: [.forbidden, .conflict],
                  links: [("GetDeployment", "getDeployment"), ("CancelDeployment", "cancelDeployment"), ("StreamDeploymentEvents", "streamDeploymentEvents")]
                      .map { Link(name: $0.0, operationId: $0.1, parameters: [("id", "$response.body#/items/0/id")]) }),
        Operation(method: "get", path: "/api/v1/deployments", id: "listDeployments", tag: "deployments",
                  summary: "List deployments, newest first.",
                  parameters: [
                      OpenAPIComponents.query("target", "Only deployments to this target (id or name).", Schema.ref("Name")),
                      OpenAPIComponents.query("certificate", "Only deployments of this certificate.", Schema.ref("Name")),
                      OpenAPIComponents.query("status", "Only deployments in one of these statuses (comma-separated).", [
                          "type": "string",
                          "pattern": .string(statusListPattern),
                      ]),
                      OpenAPIComponents.query("rollout", "Only the deployments of this rollout.", Schema.uuid),
                      Param.limit.ref, Param.cursor.ref,
                  ],
                  success: [("200", json("DeploymentList", "One page of deployments."))]),
        Operation(method: "get", path: "/api/v1/deployments/{id}", id: "getDeployment", tag: "deployments", summary: "One deployment.",
                  parameters: [Param.deploymentID.ref], success: [("200", json("DeploymentView", "The deployment, with its steps so far."))]),
        Operation(method: "post", path: "/api/v1/deployments/{id}/cancel", id: "cancelDeployment", tag: "deployments",
                  summary: "Cancel a queued deployment.", description: "409 when the deployment is no longer queued.",
                  parameters: [Param.deploymentID.ref],
                  success: [("200", json("DeploymentView", "The deployment, now `cancelled`."))], errors: [.conflict]),
        Operation(method: "get", path: "/api/v1/deployments/{id}/events", id: "streamDeploymentEvents", tag: "deployments",
                  summary: "Follow a deployment as Server-Sent Events.",
                  description: """
                      `event: \(DeploymentEventName.step)` (data: a `StepRecord`, as each step starts and ends), \
                      `event: \(DeploymentEventName.status)` (data: the `DeploymentView`, on every status change), and a last \
                      `event: \(DeploymentEventName.end)` (data: the final `DeploymentView`), after which the server closes the \
                      stream. If the deployment can no longer be read, `event: error` (data: `{"detail": …}`) ends the stream instead.
                      """,
                  parameters: [Param.deploymentID.ref],
                  success: [("200", ["description": "The event stream; its schema describes one event.",
                                     "content": ["text/event-stream": ["schema": Schema.ref("DeploymentEvent")]]])]),
    ]

    static let audit: [Operation] = [
        Operation(method: "get", path: "/api/v1/audit", id: "listAuditEvents", tag: "audit", summary: "List audit events, newest first.",
                  parameters: [
                      OpenAPIComponents.query("actor", "Only events by this actor (an API key name, a worker id, or `system`).", Schema.string),
                      OpenAPIComponents.query("action", "Only events of this action (`target.create`, …).", Schema.string),
                      OpenAPIComponents.query("objectType", "Only events about this type of object (`certificate`, `target`, `deployment`, …).", Schema.string),
                      OpenAPIComponents.query("objectID", "Only events about this object.", Schema.string),
                      Param.limit.ref, Param.cursor.ref,
                  ],
                  success: [("200", json("AuditEventList", "One page of audit events."))]),
    ]

    /// `status=` takes one or more deployment statuses, comma-separated.
    static var statusListPattern: String {
        let one = "(" + DeploymentStatus.allCases.map(\.rawValue).joined(separator: "|") + ")"
        return "^\(one)(,\(one))*$"
    }

    // MARK: - Rendering

    /// The `paths` object: paths in first-appearance order, each with its methods.
    static var all: SpecValue {
        var order: [String] = []
        var byPath: [String: [Operation]] = [:]
        for operation in operations {
            if byPath[operation.path] == nil { order.append(operation.path) }
            byPath[operation.path, default: []].append(operation)
        }
        return .object(order.map { path in (path, .object(byPath[path]!.map { ($0.method, render($0)) })) })
    }

    static func render(_ operation: Operation) -> SpecValue {
        var members: [(String, SpecValue)] = [
            ("tags", [.string(operation.tag)]),
            ("summary", .string(operation.summary)),
        ]
        if let description = operation.description { members.append(("description", .string(description))) }
        members.append(("operationId", .string(operation.id)))
        if operation.access == .public { members.append(("security", [])) }
        if !operation.parameters.isEmpty { members.append(("parameters", .array(operation.parameters))) }
        if let body = operation.body {
            members.append(("requestBody", ["required": true, "content": ["application/json": ["schema": Schema.ref(body)]]]))
        }
        let errors = errorStatuses(of: operation).map { (String($0.rawValue), $0.ref) }
        var success = operation.success
        if !operation.links.isEmpty, let first = success.first {
            let links = SpecValue.object(operation.links.map { link in
                (link.name, ["operationId": .string(link.operationId), "parameters": .object(link.parameters.map { ($0.0, .string($0.1)) })])
            })
            success[0] = (first.0, first.1.adding([("links", links)]))
        }
        let responses = (success + errors).sorted { Int($0.0)! < Int($1.0)! }
        members.append(("responses", .object(responses)))
        return .object(members)
    }

    /// The operation's error statuses: those its shape implies plus its own, ascending.
    static func errorStatuses(of operation: Operation) -> [Status] {
        var statuses = Set(operation.errors)
        statuses.insert(.tooManyRequests)
        if operation.access != .public { statuses.insert(.unauthorized) }
        if operation.access == .admin { statuses.insert(.forbidden) }
        for parameter in operation.parameters { statuses.formUnion(impliedErrors(parameter)) }
        if operation.body != nil { statuses.formUnion([.badRequest, .contentTooLarge, .unsupportedMediaType, .unprocessableContent]) }
        return statuses.sorted()
    }

    /// A query parameter the server refuses is 422 (`query:<name>`); a path parameter naming nothing is 404, and one
    /// that is not a UUID where a UUID is expected is 400.
    private static func impliedErrors(_ parameter: SpecValue) -> [Status] {
        if let shared = Param.allCases.first(where: { $0.ref == parameter }) { return shared.impliedErrors }
        return parameter["in"] == .string("path") ? [.notFound] : [.unprocessableContent]
    }

    private static func json(_ schema: String, _ description: String) -> SpecValue {
        ["description": .string(description), "content": ["application/json": ["schema": Schema.ref(schema)]]]
    }

    private static func text(_ mediaType: String, _ description: String) -> SpecValue {
        ["description": .string(description), "content": [mediaType: ["schema": Schema.string]]]
    }
}
