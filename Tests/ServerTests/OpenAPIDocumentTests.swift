import CertdeployAPI
import Core
import Foundation
import HAProxyConnector
import NginxConnector
@testable import Server
import ServerSecurity
import XCTest

/// The OpenAPI document's structure: it parses, names every route with the right methods, marks exactly the public
/// routes as needing no key, takes its connector ids from the registry, refuses unknown request fields, and its
/// schemas accept exactly what the API types encode. (That the committed copy matches what the executable serves is
/// `CLITests.OpenAPIDocumentDriftTests`.)
final class OpenAPIDocumentTests: XCTestCase {
    static let registry = try! ConnectorRegistry([NginxConnector.self, HAProxyConnector.self])

    /// The document for ``registry``, parsed once.
    static let parsed = Result { try SpecValue(yaml: OpenAPIDocument.yaml(registry: registry, version: "9.8.7")) }

    private func document(_ registry: ConnectorRegistry? = nil) throws -> SpecValue {
        guard let registry else { return try Self.parsed.get() }
        return try SpecValue(yaml: OpenAPIDocument.yaml(registry: registry, version: "9.8.7"))
    }

    private func schemas() throws -> SpecValue {
        try XCTUnwrap(try document()["components"]?["schemas"])
    }

    // MARK: - Shape

    func testParsesAsAnOpenAPI31Document() throws {
        let yaml = OpenAPIDocument.yaml(registry: Self.registry, version: "9.8.7")
        XCTAssertTrue(yaml.hasPrefix("# "), "starts with the generated-file notice")
        let spec = try SpecValue(yaml: yaml)
        XCTAssertEqual(spec["openapi"], .string("3.1.0"), "a string, not the number 3.1")
        XCTAssertEqual(spec["info"]?["version"], .string("9.8.7"))
        XCTAssertEqual(spec.keys, ["openapi", "info", "security", "tags", "paths", "components"])
        // Status codes are keys that must stay strings.
        XCTAssertTrue(yaml.contains("'200':"), "status code keys are quoted")
    }

    func testTheSameInputGivesTheSameText() {
        XCTAssertEqual(OpenAPIDocument.yaml(registry: Self.registry, version: "1.0.0"), OpenAPIDocument.yaml(registry: Self.registry, version: "1.0.0"))
    }

    /// Every route of the API, with its methods: no more, no fewer.
    static let routes: [String: Set<String>] = [
        "/health": ["get"],
        "/ready": ["get"],
        "/api/v1/version": ["get"],
        "/api/v1/auth/info": ["get"],
        "/metrics": ["get"],
        "/api/v1/openapi.yaml": ["get"],
        "/api/v1/connectors": ["get"],
        "/api/v1/connectors/{id}": ["get"],
        "/api/v1/certificates": ["get", "post"],
        "/api/v1/certificates/{name}": ["get", "delete"],
        "/api/v1/targets": ["get", "post"],
        "/api/v1/targets/{target}": ["get", "put", "delete"],
        "/api/v1/targets/{target}/test": ["post"],
        "/api/v1/targets/{target}/stapling-config": ["get"],
        "/api/v1/targets/{target}/verify": ["post"],
        "/api/v1/deployments": ["get", "post"],
        "/api/v1/deployments/{id}": ["get"],
        "/api/v1/deployments/{id}/cancel": ["post"],
        "/api/v1/deployments/{id}/events": ["get"],
        "/api/v1/rollouts": ["get", "post"],
        "/api/v1/rollouts/{id}": ["get"],
        "/api/v1/rollouts/{id}/pause": ["post"],
        "/api/v1/rollouts/{id}/resume": ["post"],
        "/api/v1/rollouts/{id}/approve": ["post"],
        "/api/v1/rollouts/{id}/abort": ["post"],
        "/api/v1/rollouts/{id}/retry": ["post"],
        "/api/v1/rollouts/{id}/events": ["get"],
        "/api/v1/windows": ["get", "post"],
        "/api/v1/windows/{name}": ["delete"],
        "/api/v1/certificates/{name}/policy": ["get", "put"],
        "/api/v1/audit": ["get"],
    ]

    func testEveryRouteIsDescribedWithItsMethods() throws {
        let paths = try XCTUnwrap(try document()["paths"])
        XCTAssertEqual(Set(paths.keys), Set(Self.routes.keys))
        for (path, methods) in Self.routes {
            XCTAssertEqual(Set(paths[path]?.keys ?? []), methods, path)
        }
    }

    func testEveryOperationHasAnIDSuccessAndProblemResponses() throws {
        var ids = Set<String>()
        for (path, method, operation) in try operations() {
            let label = "\(method.uppercased()) \(path)"
            let id = try XCTUnwrap(operation["operationId"]?.stringValue, label)
            XCTAssertTrue(ids.insert(id).inserted, "\(label): operationId \(id) is used twice")
            let responses = try XCTUnwrap(operation["responses"], label)
            XCTAssertTrue(responses.keys.contains { $0.hasPrefix("2") }, "\(label): no success response")
            XCTAssertTrue(responses.keys.contains("429"), "\(label): every route is rate limited")
            for status in responses.keys where Int(status)! >= 400 && status != "503" {
                XCTAssertEqual(responses[status]?["$ref"]?.stringValue?.hasPrefix("#/components/responses/"), true, "\(label) \(status) is a problem response")
            }
            // Path parameters are declared for every template segment.
            let declared = Set((operation["parameters"]?.arrayValue ?? []).compactMap { try? resolveParameter($0) }.filter { $0["in"] == .string("path") }.compactMap { $0["name"]?.stringValue })
            let template = Set(path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
            XCTAssertEqual(declared, template, "\(label): path parameters")
        }
    }

    func testExactlyThePublicRoutesNeedNoKey() throws {
        let spec = try document()
        XCTAssertEqual(spec["security"], [["bearerAuth": []]])
        XCTAssertEqual(spec["components"]?["securitySchemes"]?["bearerAuth"]?["scheme"], .string("bearer"))
        let open = try operations().filter { $0.2["security"] == .array([]) }.map { HTTPRoute($0.1.uppercased(), $0.0) }
        XCTAssertEqual(Set(open), Set(PublicRoutes.all))
        for (path, method, operation) in try operations() where !PublicRoutes.contains(method: method.uppercased(), path: path) {
            XCTAssertNil(operation["security"], "\(method) \(path) uses the global bearer requirement")
            XCTAssertNotNil(operation["responses"]?["401"], "\(method) \(path) documents 401")
        }
    }

    func testAdminOperationsDocument403() throws {
        // Admin-only operations, and those with an admin-only option (`ignoreWindows`, abort's `rollback`).
        let admin: Set<String> = ["uploadCertificate", "deleteCertificate", "createTarget", "replaceTarget", "deleteTarget", "createWindow", "deleteWindow",
                                  "setCertificatePolicy", "createRollout", "createDeployments", "abortRollout"]
        for (path, method, operation) in try operations() {
            let id = operation["operationId"]?.stringValue ?? ""
            XCTAssertEqual(operation["responses"]?["403"] != nil, admin.contains(id), "\(method) \(path): 403 exactly on admin operations")
        }
    }

    // MARK: - Connectors come from the registry

    func testConnectorEnumIsTheRegistryIDs() throws {
        XCTAssertEqual(try schemas()["ConnectorID"]?["enum"], .strings(Self.registry.ids))
        let nginxOnly = try ConnectorRegistry([NginxConnector.self])
        XCTAssertEqual(try document(nginxOnly)["components"]?["schemas"]?["ConnectorID"]?["enum"], .strings(["nginx"]))
        let connectorPath = try XCTUnwrap(try document()["components"]?["parameters"]?["ConnectorID"])
        XCTAssertEqual(connectorPath["schema"]?["$ref"], .string("#/components/schemas/ConnectorID"))
    }

    // MARK: - Requests

    func testRequestSchemasRefuseUnknownFields() throws {
        let schemas = try schemas()
        for name in ["CertificateUpload", "TargetInput", "DeploymentRequest", "DeploymentOptions"] {
            XCTAssertEqual(schemas[name]?["additionalProperties"], .bool(false), name)
        }
        for (path, method, operation) in try operations() {
            guard let body = operation["requestBody"] else { continue }
            let ref = try XCTUnwrap(body["content"]?["application/json"]?["schema"]?["$ref"]?.stringValue, "\(method) \(path)")
            let name = String(ref.split(separator: "/").last!)
            XCTAssertEqual(schemas[name]?["additionalProperties"], .bool(false), "\(method) \(path): \(name)")
            for status in ["400", "413", "415", "422"] {
                XCTAssertNotNil(operation["responses"]?[status], "\(method) \(path) documents \(status)")
            }
        }
    }

    func testParametersCarryTheServersConstraints() throws {
        let parameters = try XCTUnwrap(try document()["components"]?["parameters"])
        XCTAssertEqual(parameters["Limit"]?["schema"], ["type": "integer", "minimum": 1, "maximum": 500, "default": 100])
        XCTAssertEqual(try schemas()["Name"]?["pattern"], .string("^[A-Za-z0-9._-]{1,128}$"))
        XCTAssertEqual(parameters["DeploymentID"]?["schema"]?["format"], .string("uuid"))
        let status = try XCTUnwrap(try document()["paths"]?["/api/v1/deployments"]?["get"]?["parameters"]?.arrayValue?.first { $0["name"] == .string("status") })
        let pattern = try XCTUnwrap(status["schema"]?["pattern"]?.stringValue)
        XCTAssertNotNil("queued,rolled_back".range(of: pattern, options: .regularExpression))
        XCTAssertNil("queued,bogus".range(of: pattern, options: .regularExpression))
    }

    func testEveryReferenceResolves() throws {
        let spec = try document()
        var missing: [String] = []
        func walk(_ value: SpecValue) {
            switch value {
            case .object(let members):
                for member in members {
                    if member.key == "$ref", case .string(let ref) = member.value {
                        let parts = ref.split(separator: "/").dropFirst().map(String.init)
                        var target: SpecValue? = spec
                        for part in parts { target = target?[part] }
                        if target == nil { missing.append(ref) }
                    } else {
                        walk(member.value)
                    }
                }
            case .array(let items): items.forEach(walk)
            default: break
            }
        }
        walk(spec)
        XCTAssertEqual(missing, [])
    }

    func testEveryObjectSchemaIsClosed() throws {
        let schemas = try schemas()
        for name in schemas.keys {
            let schema = schemas[name]!
            guard schema["type"] == .string("object"), name != "Labels", name != "RolloutCounts" else { continue }
            XCTAssertEqual(schema["additionalProperties"], .bool(false), name)
        }
    }

    // MARK: - Schemas match what the types encode

    func testResponseSchemasAcceptWhatTheTypesEncode() throws {
        let now = Date(timeIntervalSince1970: 1_750_000_000.123)
        let version = CertificateVersionView(
            name: "example-com", version: 2, sha256: String(repeating: "ab", count: 32), subject: "CN=example.com", issuer: "CN=Test CA",
            notBefore: now, notAfter: now.addingTimeInterval(86_400 * 90), subjectAlternativeNames: ["example.com"], mustStaple: false,
            ocspURL: nil, certificatePEM: "-----BEGIN CERTIFICATE-----\n…", chainPEM: "", createdAt: now)
        var withOCSP = version
        withOCSP.ocspURL = "http://ocsp.example.com"
        withOCSP.notes = ["chain reordered"]
        try check(CertificateView(name: "example-com", createdAt: now, updatedAt: now, latestVersion: nil, latest: nil, versions: nil), "CertificateView")
        try check(CertificateView(name: "example-com", createdAt: now, updatedAt: now, latestVersion: 2, latest: withOCSP, versions: [version, withOCSP]), "CertificateView")
        try check(ListResponse(items: [CertificateView(name: "a", createdAt: now, updatedAt: now, latestVersion: 1, latest: version, versions: nil)], nextCursor: "eyJuYW1lIjoiYSJ9"), "CertificateList")
        try check(version, "CertificateVersionView")

        let summary = DeploymentSummary(id: UUID(), status: "succeeded", certificate: "example-com", certificateVersion: 2, finishedAt: now)
        let target = TargetView(
            id: UUID(), name: "web1", connector: "nginx", labels: ["env": "prod", "example.com/tier": ""], certificate: "example-com",
            ssh: .object(["host": .string("web1"), "user": .string("root"), "privateKey": .string(redactedPlaceholder)]), kubernetes: nil,
            config: .object(["certificatePath": .string("/etc/nginx/c.pem")]), createdAt: now, updatedAt: now, version: 3, lastDeployment: summary)
        try check(target, "TargetView")
        try check(TargetView(id: UUID(), name: "k", connector: "k8s", labels: [:], certificate: nil, ssh: nil, kubernetes: .object([:]),
                             config: .object([:]), createdAt: now, updatedAt: now, version: 1), "TargetView")
        try check(ListResponse(items: [target]), "TargetList")
        try check(TargetTestReport(ok: false, checks: [.init(name: "connect", ok: false, detail: "connection refused")]), "TargetTestReport")
        try check(StaplingConfigView(
            target: UUID(), connector: "haproxy", certificate: "example-com", certificateVersion: 2,
            stapling: StaplingDecision(mode: .stapleFile, reason: "certdeploy writes the staple"),
            snippets: [EmittedSnippet(name: "bind", path: nil, placement: "frontend", contents: "bind :443 ssl crt /etc/haproxy/c.pem")]),
            "StaplingConfigView")

        let steps = [
            StepRecord(name: .preflight, outcome: .ok, startedAt: now, endedAt: now, detail: "bundle ok"),
            StepRecord(name: .reload, outcome: .failed, startedAt: now, endedAt: now, detail: "reload failed", command: "nginx -s reload", exitStatus: 1, outputTail: "emerg"),
            StepRecord(name: .rollback, outcome: .running, startedAt: now),
        ]
        let deployment = DeploymentView(
            id: UUID(), targetID: UUID(), targetName: "web1", certificate: "example-com", certificateVersion: 2, status: "rollback_failed",
            options: .init(dryRun: true, force: false, allowMustStapleWithoutStapling: nil), steps: steps,
            failure: DeployFailure(targetID: "web1", step: .reload, message: "exit 1"), attention: ["/etc/nginx/c.pem"], statusNote: "requeued once",
            attempts: 2, createdAt: now, startedAt: now, finishedAt: now, actor: "ci")
        try check(deployment, "DeploymentView")
        try check(DeploymentView(
            id: UUID(), targetID: UUID(), targetName: nil, certificate: "c", certificateVersion: 1, status: "queued", options: .init(), steps: [],
            failure: nil, attention: nil, statusNote: nil, attempts: 0, createdAt: now, startedAt: nil, finishedAt: nil, actor: "ci"), "DeploymentView")
        try check(ListResponse(items: [deployment]), "DeploymentList")

        for connector in Self.registry.connectors {
            try check(ConnectorView(descriptor: connector.descriptor, configSchema: connector.descriptor.configSchema), "ConnectorView")
        }
        try check(ListResponse(items: Self.registry.connectors.map { ConnectorView(descriptor: $0.descriptor, configSchema: $0.descriptor.configSchema) }), "ConnectorList")
        try check(AuditEventView(id: 7, time: now, actor: "admin", action: "target.create", objectType: "target", objectID: "x", outcome: "success", detail: nil), "AuditEventView")
        try check(ListResponse(items: [AuditEventView(id: 1, time: now, actor: "a", action: "b", objectType: "c", objectID: "d", outcome: "e", detail: "f")]), "AuditEventList")

        try check(Problem(type: "https://certdeploy.dev/problems/validation", title: "Invalid field", status: 422, detail: "/name: is required",
                          instance: "/api/v1/targets", errors: [.init(pointer: "/name", detail: "is required")]), "Problem")
        try check(Problem(type: "https://certdeploy.dev/problems/not-found", title: "Not found", status: 404, detail: "no"), "Problem")
        try check(HealthResponse(status: "ok"), "HealthResponse")
        try check(ReadinessResponse(status: "ready", store: "ok", workers: "running"), "ReadinessResponse")
        try check(VersionResponse(version: "0.2.0", apiVersion: "v1"), "VersionResponse")
        try check(AuthInfoResponse(scheme: "bearer", header: "Authorization", authenticated: false), "AuthInfoResponse")
        try check(AuthInfoResponse(scheme: "bearer", header: "Authorization", authenticated: true, name: "ci", admin: false), "AuthInfoResponse")
    }

    func testRequestSchemasAcceptWhatTheTypesEncode() throws {
        try check(CertificateUpload(name: "example.com_2025-01", certificatePEM: "pem", privateKeyPEM: "key"), "CertificateUpload")
        try check(CertificateUpload(name: "c", certificatePEM: "pem", chainPEM: "chain", privateKeyPEM: "key"), "CertificateUpload")
        let nginx = try XCTUnwrap(Self.registry.connector(id: "nginx")).descriptor
        try check(TargetInput(name: "web1", connector: "nginx", ssh: .object(["host": .string("web1")]), config: nginx.sampleConfig), "TargetInput")
        try check(TargetInput(name: "web1", connector: "haproxy", labels: ["env": "prod"], certificate: "example-com",
                              ssh: .object([:]), config: .object([:]), version: 4), "TargetInput")
        try check(DeploymentRequest(certificate: "example-com", targets: ["web1"]), "DeploymentRequest")
        try check(DeploymentRequest(certificate: "example-com", version: 2, targets: [UUID().uuidString.lowercased()], selector: "env=prod,tier=web",
                                    options: .init(dryRun: true, force: true, allowMustStapleWithoutStapling: false)), "DeploymentRequest")
    }

    func testRequestSchemasRefuseWhatTheServerRefuses() throws {
        let validator = try Validator(schemas: schemas())
        func refused(_ json: String, _ schema: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let value = try JSONValue.parse(Data(json.utf8))
            XCTAssertFalse(validator.errors(value, Schema.ref(schema)).isEmpty, "\(schema) accepts \(json)", file: file, line: line)
        }
        try refused(#"{"name":"c","certificatePEM":"p","privateKeyPEM":"k","extra":1}"#, "CertificateUpload")
        try refused(#"{"name":"bad name","certificatePEM":"p","privateKeyPEM":"k"}"#, "CertificateUpload")
        try refused(#"{"name":"c","certificatePEM":"p"}"#, "CertificateUpload")
        try refused(#"{"name":"w","connector":"no-such-connector","ssh":{},"config":{}}"#, "TargetInput")
        try refused(#"{"name":"w","connector":"nginx","config":{}}"#, "TargetInput")
        try refused(#"{"name":"w","connector":"nginx","ssh":{},"kubernetes":{},"config":{}}"#, "TargetInput")
        try refused(#"{"name":"w","connector":"nginx","ssh":{},"config":{},"labels":{"-bad":"v"}}"#, "TargetInput")
        // `{"certificate":"c"}` (neither targets nor selector) is refused by the server, not the schema: see
        // ServerAPITests.testBadInputIsA4xxProblemNamingTheField.
        try refused(#"{"certificate":"c","targets":["w"],"options":{"dryrun":true}}"#, "DeploymentRequest")
        try refused(#"{"certificate":"c","selector":"env"}"#, "DeploymentRequest")
    }

    // MARK: - write / check

    func testWriteThenCheck() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("nested/openapi.yaml").path
        XCTAssertFalse(OpenAPIDocument.check(path: path, registry: Self.registry, version: "1.0.0"), "a missing file is drift")
        try OpenAPIDocument.write(to: path, registry: Self.registry, version: "1.0.0")
        XCTAssertTrue(OpenAPIDocument.check(path: path, registry: Self.registry, version: "1.0.0"))
        XCTAssertFalse(OpenAPIDocument.check(path: path, registry: Self.registry, version: "1.0.1"), "another version is drift")
        XCTAssertFalse(OpenAPIDocument.check(path: path, registry: try ConnectorRegistry([NginxConnector.self]), version: "1.0.0"),
                       "another connector list is drift")
        try (String(contentsOfFile: path, encoding: .utf8) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertFalse(OpenAPIDocument.check(path: path, registry: Self.registry, version: "1.0.0"), "an extra newline is drift")
    }

    // MARK: - Helpers

    private func operations() throws -> [(String, String, SpecValue)] {
        let paths = try XCTUnwrap(try document()["paths"])
        return paths.keys.flatMap { path in paths[path]!.keys.map { (path, $0, paths[path]![$0]!) } }
    }

    private func resolveParameter(_ parameter: SpecValue) throws -> SpecValue {
        guard let ref = parameter["$ref"]?.stringValue else { return parameter }
        return try XCTUnwrap(try document()["components"]?["parameters"]?[String(ref.split(separator: "/").last!)])
    }

    private func check(_ value: some Encodable, _ schema: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let json = try JSONValue.parse(JSONEncoder.api.encode(value))
        let errors = try Validator(schemas: schemas()).errors(json, Schema.ref(schema))
        XCTAssertEqual(errors, [], "\(schema) does not accept \(json.jsonText(pretty: false))", file: file, line: line)
    }
}

/// Just enough JSON Schema (the keywords the document uses) to check encoded values against it.
private struct Validator {
    let schemas: SpecValue

    func errors(_ value: JSONValue, _ schema: SpecValue, at pointer: String = "") -> [String] {
        if let ref = schema["$ref"]?.stringValue {
            guard let target = schemas[String(ref.split(separator: "/").last!)] else { return ["\(pointer): unresolved \(ref)"] }
            return errors(value, target, at: pointer)
        }
        var found: [String] = []
        func fail(_ message: String) { found.append("\(pointer.isEmpty ? "/" : pointer): \(message)") }
        if let type = schema["type"]?.stringValue, !Self.has(type: type, value) { fail("is \(value.typeName), not \(type)") }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(where: { Self.equal($0, value) }) { fail("not in enum") }
        if case .string(let text) = value {
            if let pattern = schema["pattern"]?.stringValue, text.range(of: pattern, options: .regularExpression) == nil { fail("does not match \(pattern)") }
            switch schema["format"]?.stringValue {
            case "date-time"?:
                if (try? Date(text, strategy: .iso8601)) == nil, (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))) == nil {
                    fail("not a date-time")
                }
            case "uuid"?: if UUID(uuidString: text) == nil { fail("not a uuid") }
            default: break
            }
        }
        if case .number(let number) = value {
            if case .integer(let minimum)? = schema["minimum"], number < Double(minimum) { fail("below \(minimum)") }
            if case .integer(let maximum)? = schema["maximum"], number > Double(maximum) { fail("above \(maximum)") }
        }
        if case .object(let members) = value {
            for case .string(let name) in schema["required"]?.arrayValue ?? [] where members[name] == nil { fail("missing \(name)") }
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                if let pattern = schema["propertyNames"]?["pattern"]?.stringValue, key.range(of: pattern, options: .regularExpression) == nil {
                    fail("key \(key) does not match \(pattern)")
                }
                if let property = schema["properties"]?[key] {
                    found += errors(member, property, at: pointer + "/" + key)
                } else if let additional = schema["additionalProperties"] {
                    if additional == .bool(false) { fail("unexpected member \(key)") } else { found += errors(member, additional, at: pointer + "/" + key) }
                }
            }
        }
        if case .array(let items) = value, let itemSchema = schema["items"] {
            for (index, item) in items.enumerated() { found += errors(item, itemSchema, at: "\(pointer)/\(index)") }
        }
        if let branches = schema["oneOf"]?.arrayValue {
            let matching = branches.filter { errors(value, $0, at: pointer).isEmpty }.count
            if matching != 1 { fail("matches \(matching) oneOf branches") }
        }
        if let branches = schema["anyOf"]?.arrayValue, !branches.contains(where: { errors(value, $0, at: pointer).isEmpty }) {
            fail("matches no anyOf branch")
        }
        return found
    }

    private static func has(type: String, _ value: JSONValue) -> Bool {
        switch (type, value) {
        case ("string", .string), ("boolean", .bool), ("array", .array), ("object", .object), ("number", .number), ("null", .null): true
        case ("integer", .number(let number)): number.rounded() == number
        default: false
        }
    }

    private static func equal(_ spec: SpecValue, _ json: JSONValue) -> Bool {
        switch (spec, json) {
        case (.string(let a), .string(let b)): a == b
        case (.integer(let a), .number(let b)): Double(a) == b
        case (.bool(let a), .bool(let b)): a == b
        default: false
        }
    }
}
