import CertdeployAPI
import Core
import Foundation
import NIOHTTP1
import Server
import ServerSecurity
import ServerTestSupport
import Store
import TestSupport
import XCTest

/// The HTTP API on SQLite (this class) and on PostgreSQL (`PostgresServerAPITests` runs every test again):
/// authentication, bad input, certificates, targets and secrets, audit, metrics.
class ServerAPITests: XCTestCase {
    /// nil: SQLite under the server's temp dir.
    func databaseURL() throws -> String? { nil }

    func startServer(environment: [String: String] = [:], passphrase: String? = "test passphrase for secrets at rest",
                     configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        let server = try await TestServer.start(
            registry: try testRegistry(), databaseURL: try databaseURL(), passphrase: passphrase, environment: environment, configure: configure)
        addTeardownBlock { await server.stop() }
        return server
    }

    // MARK: Routes and authentication

    /// Walks every route the router registers: without a key, only `PublicRoutes` answer; every public route exists.
    func testOnlyThePublicRoutesAnswerWithoutAKey() async throws {
        let server = try await startServer()
        let routes = server.server.routes
        XCTAssertGreaterThan(routes.count, 15)
        for route in routes {
            let path = route.path
                .replacingOccurrences(of: "{id}", with: UUID().uuidString.lowercased())
                .replacingOccurrences(of: "{name}", with: "some-name")
                .replacingOccurrences(of: "{target}", with: "some-target")
            let answer = try await server.request(.init(rawValue: route.method), path, body: route.method == "GET" ? nil : Data("{}".utf8), as: .anonymous)
            if PublicRoutes.contains(method: route.method, path: route.path) {
                XCTAssertEqual(answer.status, 200, "\(route.method) \(route.path) is public: \(answer.text)")
            } else {
                XCTAssertEqual(answer.status, 401, "\(route.method) \(route.path) answered without a key: \(answer.text)")
                XCTAssertEqual(try answer.problem().status, 401)
                XCTAssertEqual(answer.headers.first(name: "Content-Type"), "application/problem+json")
            }
        }
        let registered = Set(routes.map { "\($0.method) \($0.path)" })
        for route in PublicRoutes.all {
            XCTAssertTrue(registered.contains("\(route.method) \(route.path)"), "PublicRoutes names \(route), which the router does not have")
        }
    }

    func testKeysAdminAndAuthInfo() async throws {
        let server = try await startServer()
        let info = try await server.request(.GET, "/api/v1/auth/info", as: .anonymous).decode(AuthInfoResponse.self)
        XCTAssertFalse(info.authenticated)
        let me = try await server.request(.GET, "/api/v1/auth/info", as: .deployer).decode(AuthInfoResponse.self)
        XCTAssertEqual(me.name, TestServer.deployerName)
        XCTAssertEqual(me.admin, false)

        let wrong = try await server.request(.GET, "/api/v1/targets", as: .key(TestServer.randomKey()))
        XCTAssertEqual(wrong.status, 401)
        XCTAssertEqual(try wrong.problem().detail, "the API key is not valid")
        XCTAssertEqual(wrong.headers.first(name: "WWW-Authenticate"), "Bearer realm=\"certdeploy\"")

        // Non-admin keys read and deploy; creating and deleting needs admin.
        await assertEqual(try await server.request(.GET, "/api/v1/targets", as: .deployer).status, 200)
        let site = try NginxSiteInput()
        let refused = try await server.send(.POST, "/api/v1/targets", json: site.target(name: "web-1"), as: .deployer)
        XCTAssertEqual(refused.status, 403, refused.text)
        XCTAssertTrue(try refused.problem().detail.contains("admin"))
        let audit = try await server.request(.GET, "/api/v1/audit?action=request.refused").decode(ListResponse<AuditEventView>.self)
        XCTAssertEqual(audit.items.first?.actor, TestServer.deployerName)
        XCTAssertEqual(audit.items.first?.objectID, "POST /api/v1/targets")

        let version = try await server.request(.GET, "/api/v1/version", as: .anonymous).decode(VersionResponse.self)
        XCTAssertEqual(version.version, CertdeployServer.version)
        await assertEqual(try await server.request(.GET, "/health", as: .anonymous).decode(HealthResponse.self).status, "ok")
        let ready = try await server.request(.GET, "/ready", as: .anonymous).decode(ReadinessResponse.self)
        XCTAssertEqual(ready.status, "ready")
        XCTAssertEqual(ready.workers, "running")
    }

    func testRateLimitAnswers429WithRetryAfterPerKeyName() async throws {
        let server = try await startServer { configuration in
            configuration.authenticatedRateLimit = try! RateLimit(requestsPerSecond: 1, burst: 3)  // valid constant
            configuration.unauthenticatedRateLimit = try! RateLimit(requestsPerSecond: 1, burst: 2)  // valid constant
        }
        var statuses: [Int] = []
        for _ in 0..<4 { statuses.append(try await server.request(.GET, "/api/v1/connectors", as: .deployer).status) }
        XCTAssertEqual(statuses, [200, 200, 200, 429])
        let limited = try await server.request(.GET, "/api/v1/connectors", as: .deployer)
        XCTAssertEqual(limited.status, 429)
        XCTAssertNotNil(limited.headers.first(name: "Retry-After").flatMap(Int.init))
        // Another key name has its own budget.
        await assertEqual(try await server.request(.GET, "/api/v1/connectors", as: .admin).status, 200)
        // Unauthenticated callers are limited by address.
        var anonymous: [Int] = []
        for _ in 0..<3 { anonymous.append(try await server.request(.GET, "/health", as: .anonymous).status) }
        XCTAssertEqual(anonymous, [200, 200, 429])
    }

    // MARK: Connectors

    func testConnectorsComeFromTheRegistry() async throws {
        let server = try await startServer()
        let list = try await server.request(.GET, "/api/v1/connectors").decode(ListResponse<ConnectorView>.self)
        XCTAssertEqual(list.items.map(\.descriptor.id), try testRegistry().ids)
        let nginx = try await server.request(.GET, "/api/v1/connectors/nginx").decode(ConnectorView.self)
        XCTAssertEqual(nginx.descriptor.id, "nginx")
        XCTAssertEqual(nginx.configSchema["type"], .string("object"))
        let missing = try await server.request(.GET, "/api/v1/connectors/iis")
        XCTAssertEqual(missing.status, 404)
        XCTAssertTrue(try missing.problem().detail.contains("nginx"))
    }

    // MARK: Certificates

    func testCertificateUploadVersionsAndNoKeyMaterialEver() async throws {
        let server = try await startServer()
        let (ca, leaf) = try standaloneLeaf()
        let upload = CertificateUpload(name: "example", certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        let first = try await server.upload(upload)
        XCTAssertEqual(first.version, 1)
        XCTAssertEqual(first.sha256, leaf.sha256Hex)
        XCTAssertEqual(first.privateKey, redactedPlaceholder)
        let second = try await server.upload(
            CertificateUpload(name: "example", certificatePEM: try ca.issueLeaf().certificatePEM + ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
                .replacingKey(with: try ca.issueLeaf()))
        XCTAssertEqual(second.version, 2)

        let shown = try await server.request(.GET, "/api/v1/certificates/example")
        XCTAssertEqual(try shown.decode(CertificateView.self).versions?.map(\.version), [1, 2])
        let list = try await server.request(.GET, "/api/v1/certificates")
        XCTAssertEqual(try list.decode(ListResponse<CertificateView>.self).items.map(\.latestVersion), [2])
        for answer in [shown, list] { XCTAssertFalse(answer.text.contains("PRIVATE KEY"), answer.text) }

        // The key is stored encrypted: not in the database file in clear.
        if try databaseURL() == nil {
            let database = try Data(contentsOf: URL(fileURLWithPath: server.directory.file("data/certdeploy.sqlite")))
            XCTAssertNil(database.range(of: Data("PRIVATE KEY".utf8)))
        }

        // Preflight: a key that does not match the leaf is a 422 naming the field.
        let other = try ca.issueLeaf()
        let mismatch = try await server.send(
            .POST, "/api/v1/certificates",
            json: CertificateUpload(name: "example", certificatePEM: leaf.certificatePEM, privateKeyPEM: other.privateKeyPKCS8PEM))
        XCTAssertEqual(mismatch.status, 422, mismatch.text)
        XCTAssertEqual(try mismatch.problem().errors?.first?.pointer, "/privateKeyPEM")
        let garbage = try await server.send(.POST, "/api/v1/certificates", json: CertificateUpload(name: "x", certificatePEM: "nope", privateKeyPEM: "nope"))
        XCTAssertEqual(garbage.status, 422, garbage.text)

        await assertEqual(try await server.request(.DELETE, "/api/v1/certificates/example", as: .deployer).status, 403)
        await assertEqual(try await server.request(.DELETE, "/api/v1/certificates/example").status, 204)
        await assertEqual(try await server.request(.GET, "/api/v1/certificates/example").status, 404)
    }

    func testWithoutAPassphraseSecretsAreRefusedWithTheReason() async throws {
        let server = try await startServer(passphrase: nil)
        let (ca, leaf) = try standaloneLeaf()
        let answer = try await server.send(
            .POST, "/api/v1/certificates",
            json: CertificateUpload(name: "example", certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM))
        XCTAssertEqual(answer.status, 422)
        let problem = try answer.problem()
        XCTAssertEqual(problem.errors?.first?.pointer, "/privateKeyPEM")
        XCTAssertTrue(problem.detail.contains("CERTDEPLOY_SECRET_KEY"), problem.detail)
    }

    // MARK: Targets

    func testTargetLifecycleSecretsAreWriteOnlyAndEncrypted() async throws {
        let server = try await startServer()
        let site = try NginxSiteInput()
        let created = try await server.createTarget(site.target(name: "web-1", labels: ["env": "prod", "role": "web"]))
        XCTAssertEqual(created.ssh?["privateKey"], .string(redactedPlaceholder))
        XCTAssertEqual(created.version, 1)

        // Stored sealed, bound to this target: the raw row has no key, and moving it to another target fails to open.
        let stored = try await server.server.store.target(id: created.id)
        XCTAssertFalse(stored.transportJSON.contains("PRIVATE KEY"))
        XCTAssertTrue(stored.transportJSON.contains("$sealed"))

        // Update without the secret keeps it; "<redacted>" keeps it too.
        var input = site.target(name: "web-1", labels: ["env": "staging"])
        input.ssh = site.sshWithoutKey(keep: false)
        input.version = 1
        let updated = try await server.send(.PUT, "/api/v1/targets/web-1", json: input)
        XCTAssertEqual(updated.status, 200, updated.text)
        XCTAssertEqual(try updated.decode(TargetView.self).labels, ["env": "staging"])
        await assertEqual(try await server.server.store.target(id: created.id).transportJSON.contains("$sealed"), true)
        // A stale version is a 409 naming /version.
        let stale = try await server.send(.PUT, "/api/v1/targets/\(created.id.uuidString)", json: input)
        XCTAssertEqual(stale.status, 409)
        XCTAssertEqual(try stale.problem().errors?.first?.pointer, "/version")

        // Filters and cursor pages.
        for index in 2...5 { try await server.createTarget(site.target(name: "web-\(index)", labels: ["env": index.isMultiple(of: 2) ? "prod" : "dev"])) }
        let prod = try await server.request(.GET, "/api/v1/targets?label=env=prod").decode(ListResponse<TargetView>.self)
        XCTAssertEqual(prod.items.map(\.name), ["web-2", "web-4"])
        var names: [String] = []
        var cursor: String?
        repeat {
            let path = "/api/v1/targets?limit=2" + (cursor.map { "&cursor=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" } ?? "")
            let page = try await server.request(.GET, path).decode(ListResponse<TargetView>.self)
            names += page.items.map(\.name)
            cursor = page.nextCursor
        } while cursor != nil
        XCTAssertEqual(names, ["web-1", "web-2", "web-3", "web-4", "web-5"])
        await assertEqual(try await server.request(.GET, "/api/v1/targets?namePrefix=web-3").decode(ListResponse<TargetView>.self).items.count, 1)

        await assertEqual(try await server.request(.DELETE, "/api/v1/targets/web-5").status, 204)
        await assertEqual(try await server.request(.GET, "/api/v1/targets/web-5").status, 404)
        let events = try await server.request(.GET, "/api/v1/audit?objectType=target").decode(ListResponse<AuditEventView>.self)
        XCTAssertEqual(events.items.first?.action, AuditAction.targetDelete)
        XCTAssertEqual(events.items.first?.actor, TestServer.adminName)
        for event in events.items { XCTAssertFalse(event.detail?.contains("PRIVATE KEY") ?? false) }
    }

    /// Every kind of bad input answers 4xx with a problem body naming the field; nothing is half-written.
    func testBadInputIsA4xxProblemNamingTheField() async throws {
        let server = try await startServer()
        let site = try NginxSiteInput()
        func expect(_ answer: TestServer.HTTPAnswer, _ status: Int, pointer: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
            XCTAssertEqual(answer.status, status, answer.text, file: file, line: line)
            XCTAssertEqual(answer.headers.first(name: "Content-Type"), "application/problem+json", file: file, line: line)
            let problem = try answer.problem()
            XCTAssertEqual(problem.status, status, file: file, line: line)
            if let pointer { XCTAssertEqual(problem.errors?.first?.pointer, pointer, problem.detail, file: file, line: line) }
        }
        try expect(try await server.request(.POST, "/api/v1/targets", body: Data("{not json".utf8)), 400)
        try expect(try await server.request(.POST, "/api/v1/targets", body: Data("[1]".utf8)), 422, pointer: "/")
        try expect(try await server.request(.POST, "/api/v1/targets", body: Data(#"{"name":"a","connector":"nginx","config":{},"ssh":{},"colour":1}"#.utf8)), 422, pointer: "/colour")
        try expect(try await server.request(.POST, "/api/v1/targets", body: Data(#"{"name":5,"connector":"nginx","config":{}}"#.utf8)), 422, pointer: "/name")
        try expect(try await server.request(.POST, "/api/v1/targets", body: Data(#"{"connector":"nginx","config":{}}"#.utf8)), 422, pointer: "/name")
        try expect(try await server.request(.POST, "/api/v1/targets", body: Data("{}".utf8), contentType: "text/plain"), 415)
        try expect(try await server.request(.POST, "/api/v1/targets", body: Data(repeating: 0x20, count: (1 << 20) + 10)), 413)

        var unknownConnector = site.target(name: "x")
        unknownConnector.connector = "iis"
        try expect(try await server.send(.POST, "/api/v1/targets", json: unknownConnector), 422, pointer: "/connector")
        try expect(try await server.send(.POST, "/api/v1/targets", json: site.target(name: "bad name!")), 422, pointer: "/name")
        try expect(try await server.send(.POST, "/api/v1/targets", json: site.target(name: "x", config: site.config(["keyPath": .string("relative/key")]))), 422, pointer: "/config/keyPath")
        try expect(try await server.send(.POST, "/api/v1/targets", json: site.target(name: "x", config: site.config(["surprise": .bool(true)]))), 422, pointer: "/config/surprise")
        try expect(try await server.send(.POST, "/api/v1/targets", json: site.target(name: "x", config: site.config(["reloadCommand": .string("nginx -s reload; rm -rf /")]))), 422, pointer: "/config/reloadCommand")
        try expect(try await server.send(.POST, "/api/v1/targets", json: site.target(name: "x", ssh: .object(["host": .string("h")]))), 422, pointer: "/ssh/user")
        try expect(try await server.send(.POST, "/api/v1/targets", json: site.target(name: "x", labels: ["bad key!": "v"])), 422, pointer: "/labels")
        try expect(try await server.send(.POST, "/api/v1/targets", json: site.target(name: "x", certificate: "missing")), 422, pointer: "/certificate")
        try await server.createTarget(site.target(name: "dup"))
        try expect(try await server.send(.POST, "/api/v1/targets", json: site.target(name: "dup")), 409, pointer: "/name")
        // Nothing half-written: only "dup" exists.
        await assertEqual(try await server.request(.GET, "/api/v1/targets").decode(ListResponse<TargetView>.self).items.map(\.name), ["dup"])

        try expect(try await server.request(.GET, "/api/v1/targets/\(UUID().uuidString)"), 404)
        try expect(try await server.request(.GET, "/api/v1/deployments/not-a-uuid"), 400)
        try expect(try await server.request(.GET, "/api/v1/targets?label=%3D%3D"), 422, pointer: "query:label")
        try expect(try await server.request(.GET, "/api/v1/targets?limit=0"), 422, pointer: "query:limit")
        try expect(try await server.request(.GET, "/api/v1/targets?limit=abc"), 422, pointer: "query:limit")
        try expect(try await server.request(.GET, "/api/v1/targets?cursor=garbage"), 422, pointer: "query:cursor")
        try expect(try await server.request(.GET, "/api/v1/targets?colour=red"), 422, pointer: "query:colour")
        try expect(try await server.request(.GET, "/api/v1/deployments?status=done"), 422, pointer: "query:status")
        try expect(try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "none", targets: ["dup"])), 422, pointer: "/certificate")
        let (ca, leaf) = try standaloneLeaf()
        try await server.upload(CertificateUpload(name: "known", certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM))
        try expect(try await server.send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: "known")), 422, pointer: "/targets")
        try expect(try await server.request(.POST, "/api/v1/deployments", body: Data(#"{"certificate":"c","targets":["dup"],"options":{"dryrun":true}}"#.utf8)), 422, pointer: "/options/dryrun")
        try expect(try await server.request(.POST, "/api/v1/deployments/\(UUID().uuidString)/cancel"), 404)
        let patch = try await server.request(.PATCH, "/api/v1/targets/dup")
        XCTAssertTrue([404, 405].contains(patch.status), patch.text)
        XCTAssertEqual(try patch.problem().status, patch.status)
        try expect(try await server.request(.GET, "/api/v1/nothing-here"), 404)
    }

    // MARK: Metrics

    func testMetricsNeedAKeyOrTheScraperToken() async throws {
        let token = TestServer.randomKey()
        let server = try await startServer { $0.metricsToken = token }
        await assertEqual(try await server.request(.GET, "/metrics", as: .anonymous).status, 401)
        let scraped = try await server.request(.GET, "/metrics", as: .key(token))
        XCTAssertEqual(scraped.status, 200)
        XCTAssertTrue(scraped.text.contains("certdeploy_deployments_queued"), scraped.text)
        XCTAssertTrue(scraped.text.contains("certdeploy_http_requests_total"), scraped.text)
        // The scraper token is not an API key.
        await assertEqual(try await server.request(.GET, "/api/v1/targets", as: .key(token)).status, 401)
    }
}

/// The same API tests on PostgreSQL.
final class PostgresServerAPITests: ServerAPITests {
    override func databaseURL() throws -> String? { try SharedPostgres.freshDatabaseURL() }
}

/// Target bodies for tests that never connect (no daemons).
struct NginxSiteInput {
    let userKeyPEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"

    init() throws {}

    func sshWithoutKey(keep: Bool) -> JSONValue {
        var members: [String: JSONValue] = ["host": .string("127.0.0.1"), "port": .number(2222), "user": .string("root"),
                                            "hostKeyFingerprint": .string("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
        if keep { members["privateKey"] = .string(redactedPlaceholder) }
        return .object(members)
    }

    func config(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
        var object: [String: JSONValue] = [
            "certificatePath": .string("/etc/nginx/tls/example.pem"), "keyPath": .string("/etc/nginx/tls/example.key"),
            "verify": .object(["host": .string("127.0.0.1"), "port": .number(443), "serverName": .string("example.test")]),
        ]
        object.merge(overrides) { $1 }
        return .object(object)
    }

    func target(name: String, labels: [String: String] = [:], certificate: String? = nil, ssh: JSONValue? = nil, config: JSONValue? = nil) -> TargetInput {
        var sshValue = sshWithoutKey(keep: false)
        if case .object(var members) = sshValue {
            members["privateKey"] = .string(userKeyPEM)
            sshValue = .object(members)
        }
        return TargetInput(name: name, connector: "nginx", labels: labels, certificate: certificate, ssh: ssh ?? sshValue, config: config ?? self.config())
    }
}

extension CertificateUpload {
    /// The same upload with `leaf` as certificate and key.
    func replacingKey(with leaf: TestIssuedCertificate) -> CertificateUpload {
        CertificateUpload(name: name, certificatePEM: leaf.certificatePEM, chainPEM: chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
    }
}
