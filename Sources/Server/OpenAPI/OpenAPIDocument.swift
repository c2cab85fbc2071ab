import Core
import Foundation

/// The OpenAPI 3.1 description of the HTTP API: served at `GET /api/v1/openapi.yaml`, and committed as
/// `docs/reference/openapi.yaml` (`certdeploy openapi --out …`; `--check` fails when the copy drifts).
///
/// Built from Swift values (``OpenAPISchemas``, ``OpenAPIPaths``, ``OpenAPIComponents``) and written with Yams, so
/// the same registry and version always give the same text. The connector ids come from the registry only.
public enum OpenAPIDocument {
    public static let openAPIVersion = "3.1.0"
    /// Where the repository keeps its copy, relative to the package root.
    public static let committedPath = "docs/reference/openapi.yaml"

    /// The document as YAML.
    public static func yaml(registry: ConnectorRegistry, version: String) -> String {
        header + document(registry: registry, version: version).yaml()
    }

    /// Writes ``yaml(registry:version:)`` to `path`, creating its directory.
    public static func write(to path: String, registry: ConnectorRegistry, version: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(yaml(registry: registry, version: version).utf8).write(to: url, options: .atomic)
    }

    /// True when the file at `path` is exactly what ``yaml(registry:version:)`` generates (false when it differs or
    /// cannot be read).
    public static func check(path: String, registry: ConnectorRegistry, version: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else { return false }
        return data == Data(yaml(registry: registry, version: version).utf8)
    }

    static let header = """
        # The certdeploy HTTP API. Generated from the server's code by `certdeploy openapi`: do not edit by hand.
        # Reference for people: docs/reference/api.md

        """

    static func document(registry: ConnectorRegistry, version: String) -> SpecValue {
        [
            "openapi": .string(openAPIVersion),
            "info": [
                "title": "certdeploy API",
                "version": .string(version),
                "summary": "Store certificates and targets, and deploy certificates to targets, atomically and verified.",
                "description": .string(description),
            ],
            "security": [[OpenAPIComponents.bearerScheme: []]],
            "tags": tags,
            "paths": OpenAPIPaths.all,
            "components": [
                "schemas": OpenAPISchemas.all(registry: registry),
                "parameters": OpenAPIComponents.parameters,
                "responses": OpenAPIComponents.responses,
                "headers": OpenAPIComponents.headers,
                "securitySchemes": OpenAPIComponents.securitySchemes,
            ],
        ]
    }

    static let description = """
        Every route except `GET /health`, `GET /ready`, `GET /api/v1/version` and `GET /api/v1/auth/info` needs an API \
        key: `Authorization: Bearer <key>`. Without a key, or with one the server does not know, the answer is 401; a \
        non-admin key on an admin operation gets 403.

        Errors are RFC 9457 problems (`application/problem+json`, schema `Problem`); `errors` names each field at \
        fault. Request bodies are JSON, at most 1 MiB (413 above that), and unknown fields are refused. Over the rate \
        limit the answer is 429 with `Retry-After`.

        Lists are pages: `limit` (1–500, default 100) items and a `nextCursor` to pass as `cursor` for the next page; \
        the last page has no `nextCursor`.
        """

    static let tags: SpecValue = [
        ["name": "service", "description": "Health, readiness, version, authentication, metrics and this document."],
        ["name": "connectors", "description": "The connectors this server was built with, and their config schemas."],
        ["name": "certificates", "description": "Certificates and their versions. Private keys are write-only."],
        ["name": "targets", "description": "Where certificates go: a connector, how to reach the server, and its config."],
        ["name": "deployments", "description": "Deploying a certificate version to targets, and following it."],
        ["name": "rollouts", "description": "Staged pushes to many targets: canary, waves, a failure budget, approval gates."],
        ["name": "windows", "description": "Maintenance windows and freezes that rollouts respect."],
        ["name": "audit", "description": "Who did what, when."],
    ]
}
