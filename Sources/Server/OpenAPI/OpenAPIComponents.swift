import Store

/// The reusable pieces operations point at: parameters, error responses, headers and the security scheme.
/// (The body schemas are in ``OpenAPISchemas``.)
enum OpenAPIComponents {
    static let bearerScheme = "bearerAuth"

    static let securitySchemes: SpecValue = [
        bearerScheme: [
            "type": "http",
            "scheme": "bearer",
            "description": """
                An API key from `CERTDEPLOY_API_KEYS` (or `CERTDEPLOY_API_KEYS_FILE`), sent as `Authorization: Bearer <key>`. \
                Admin keys may also create and delete certificates and targets.
                """,
        ],
    ]

    // MARK: - Parameters

    enum Parameter: String, CaseIterable {
        case limit = "Limit"
        case cursor = "Cursor"
        case namePrefix = "NamePrefix"
        case certificateName = "CertificateName"
        case targetRef = "TargetRef"
        case deploymentID = "DeploymentID"
        case rolloutID = "RolloutID"
        case windowName = "WindowName"
        case connectorID = "ConnectorID"

        var ref: SpecValue { ["$ref": .string("#/components/parameters/\(rawValue)")] }

        var definition: SpecValue {
            switch self {
            case .limit:
                return query("limit", "How many items a page holds.",
                             ["type": "integer", "minimum": 1, "maximum": .integer(StoreLimits.maximumPageSize), "default": 100])
            case .cursor:
                return query("cursor", "The `nextCursor` of the previous page. Opaque.",
                             ["type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"])
            case .namePrefix:
                return query("namePrefix", "Only items whose name starts with this.", Schema.string)
            case .certificateName:
                return path("name", "The certificate's name.", Schema.ref("Name"))
            case .targetRef:
                return path("target", "The target's id (a UUID) or its name.", Schema.ref("Name"))
            case .deploymentID:
                return path("id", "The deployment's id.", Schema.uuid)
            case .rolloutID:
                return path("id", "The rollout's id.", Schema.uuid)
            case .windowName:
                return path("name", "The window's name.", Schema.ref("Name"))
            case .connectorID:
                return path("id", "The connector's id.", Schema.ref("ConnectorID"))
            }
        }

        /// What the server answers when this parameter is refused or names nothing.
        var impliedErrors: [ErrorStatus] {
            switch self {
            case .limit, .cursor, .namePrefix: [.unprocessableContent]
            case .certificateName, .targetRef, .connectorID, .windowName: [.notFound]
            case .deploymentID, .rolloutID: [.badRequest, .notFound]
            }
        }
    }

    static var parameters: SpecValue {
        .object(Parameter.allCases.map { ($0.rawValue, $0.definition) })
    }

    static func query(_ name: String, _ description: String, _ schema: SpecValue) -> SpecValue {
        ["name": .string(name), "in": "query", "description": .string(description), "required": false, "schema": schema]
    }

    static func path(_ name: String, _ description: String, _ schema: SpecValue) -> SpecValue {
        ["name": .string(name), "in": "path", "description": .string(description), "required": true, "schema": schema]
    }

    // MARK: - Error responses

    /// The error statuses the API answers, each a `Problem`.
    enum ErrorStatus: Int, CaseIterable, Comparable {
        case badRequest = 400
        case unauthorized = 401
        case forbidden = 403
        case notFound = 404
        case conflict = 409
        case contentTooLarge = 413
        case unsupportedMediaType = 415
        case unprocessableContent = 422
        case tooManyRequests = 429

        static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

        var componentName: String {
            switch self {
            case .badRequest: "BadRequest"
            case .unauthorized: "Unauthorized"
            case .forbidden: "Forbidden"
            case .notFound: "NotFound"
            case .conflict: "Conflict"
            case .contentTooLarge: "ContentTooLarge"
            case .unsupportedMediaType: "UnsupportedMediaType"
            case .unprocessableContent: "UnprocessableContent"
            case .tooManyRequests: "TooManyRequests"
            }
        }

        var ref: SpecValue { ["$ref": .string("#/components/responses/\(componentName)")] }

        /// The problem `type` slug and `title` the server uses for this status.
        private var slugAndTitle: (String, String) {
            switch self {
            case .badRequest: ("bad-request", "Bad request")
            case .unauthorized: ("unauthorized", "Unauthorized")
            case .forbidden: ("forbidden", "Forbidden")
            case .notFound: ("not-found", "Not found")
            case .conflict: ("conflict", "Conflict")
            case .contentTooLarge: ("too-large", "Request body too large")
            case .unsupportedMediaType: ("unsupported-media-type", "Unsupported media type")
            case .unprocessableContent: ("validation", "Invalid field")
            case .tooManyRequests: ("rate-limited", "Too many requests")
            }
        }

        private var meaning: String {
            switch self {
            case .badRequest: "The request is malformed: the body is not JSON, or a path parameter is not a UUID where one is expected."
            case .unauthorized: "No API key, or one the server does not know."
            case .forbidden: "The API key is valid but not an admin key, and the operation needs one."
            case .notFound: "The object named in the path does not exist."
            case .conflict: "The object's state does not allow this now (see the operation's description)."
            case .contentTooLarge: "The request body is larger than the server's limit (1 MiB unless configured otherwise)."
            case .unsupportedMediaType: "The request body is not `application/json`."
            case .unprocessableContent: """
                A field is missing, unknown or invalid: in the body (a JSON pointer) or in the query (`query:<name>`, \
                including an unknown query parameter). `errors` names each.
                """
            case .tooManyRequests: "Over the rate limit for this API key (or source address, without a key). Retry after `Retry-After` seconds."
            }
        }

        private var example: SpecValue {
            let (slug, title) = slugAndTitle
            var members: [(String, SpecValue)] = [
                ("type", .string("https://certdeploy.dev/problems/\(slug)")),
                ("title", .string(title)),
                ("status", .integer(rawValue)),
            ]
            switch self {
            case .badRequest:
                members += [("detail", "the body is not valid JSON"), ("instance", "/api/v1/targets")]
            case .unauthorized:
                members += [("detail", "send an API key as \"Authorization: Bearer <key>\""), ("instance", "/api/v1/targets")]
            case .forbidden:
                members += [("detail", "deleting a target needs an admin API key; \"ci\" is not admin"), ("instance", "/api/v1/targets/web1")]
            case .notFound:
                members += [("detail", "target web1 not found"), ("instance", "/api/v1/targets/web1")]
            case .conflict:
                members += [("detail", "targets still use this certificate; rebind or delete them first"),
                            ("instance", "/api/v1/certificates/example-com")]
            case .contentTooLarge:
                members += [("detail", "the request body exceeds 1048576 bytes"), ("instance", "/api/v1/certificates")]
            case .unsupportedMediaType:
                members += [("detail", "send the body as application/json (got text/plain)"), ("instance", "/api/v1/targets")]
            case .unprocessableContent:
                members += [("detail", "/config/sslCert: unknown field"), ("instance", "/api/v1/targets"),
                            ("errors", [["pointer": "/config/sslCert", "detail": "unknown field"]])]
            case .tooManyRequests:
                members += [("detail", "rate limit exceeded; retry after 2 s"), ("instance", "/api/v1/deployments")]
            }
            return .object(members)
        }

        var definition: SpecValue {
            var response: [(String, SpecValue)] = [("description", .string(meaning))]
            switch self {
            case .unauthorized: response.append(("headers", ["WWW-Authenticate": ["$ref": "#/components/headers/WWWAuthenticate"]]))
            case .tooManyRequests: response.append(("headers", ["Retry-After": ["$ref": "#/components/headers/RetryAfter"]]))
            default: break
            }
            response.append(("content", ["application/problem+json": ["schema": Schema.ref("Problem"), "example": example]]))
            return .object(response)
        }
    }

    static var responses: SpecValue {
        .object(ErrorStatus.allCases.map { ($0.componentName, $0.definition) })
    }

    static let headers: SpecValue = [
        "WWWAuthenticate": [
            "description": "The scheme to authenticate with: `Bearer realm=\"certdeploy\"`.",
            "required": true,
            "schema": ["type": "string"],
        ],
        "RetryAfter": [
            "description": "Whole seconds to wait before retrying (at least 1).",
            "required": true,
            "schema": ["type": "integer", "minimum": 1],
        ],
    ]
}
