import AsyncHTTPClient
import CertdeployAPI
import Core
import Foundation

/// A typed client for the certdeploy server's HTTP API (`/api/v1`).
///
/// Every method throws ``APIError``: `.problem` when the server answers with a problem body, `.unreachable` when
/// it cannot be reached. The API key is sent as `Authorization: Bearer …` and appears in no message.
/// Call ``shutdown()`` when done (``withClient(server:environment:_:)`` does).
final class APIClient: Sendable {
    /// The server's base URL, without a trailing slash (e.g. `http://127.0.0.1:8080`).
    let baseURL: String
    private let apiKey: String?
    private let http: HTTPClient

    static let defaultURL = "http://127.0.0.1:8080"
    static let urlVariable = "CERTDEPLOY_URL"
    static let keyVariable = "CERTDEPLOY_API_KEY"
    /// Longest answer read into memory (a certificate list page with PEMs stays far below).
    static let maximumBodySize = 32 * 1024 * 1024

    /// - Parameters:
    ///   - baseURL: `http://host:port` or `https://host:port`, optionally with a path prefix.
    ///   - apiKey: sent as a bearer token; nil or empty sends no `Authorization` header.
    init(baseURL: String, apiKey: String?) throws(InputError) {
        var base = baseURL.trimmingCharacters(in: .whitespaces)
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil,
              url.query == nil, url.fragment == nil
        else {
            throw InputError("server URL \"\(baseURL)\" must look like http://host:port or https://host:port")
        }
        self.baseURL = base
        self.apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(10)))
        // A refused connection fails the request now instead of being retried until its deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The client for `--server` (or `CERTDEPLOY_URL`, or http://127.0.0.1:8080) with the key in `CERTDEPLOY_API_KEY`.
    convenience init(server: String?, environment: [String: String]) throws(InputError) {
        let url = server ?? environment[Self.urlVariable].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultURL
        try self.init(baseURL: url, apiKey: environment[Self.keyVariable])
    }

    func shutdown() async {
        try? await http.shutdown()
    }

    /// Runs `body` with a client and shuts the client down afterwards, whatever happens.
    static func withClient<Result: Sendable>(
        server: String?, environment: [String: String], _ body: (APIClient) async throws -> Result
    ) async throws -> Result {
        let client = try APIClient(server: server, environment: environment)
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    // MARK: Service

    func version() async throws -> VersionResponse { try await get("/api/v1/version") }

    func authInfo() async throws -> AuthInfoResponse { try await get("/api/v1/auth/info") }

    // MARK: Connectors

    func connectors() async throws -> ListResponse<ConnectorView> { try await get("/api/v1/connectors") }

    func connector(_ id: String) async throws -> ConnectorView { try await get("/api/v1/connectors/\(Self.segment(id))") }

    // MARK: Certificates

    func uploadCertificate(_ upload: CertificateUpload) async throws -> CertificateVersionView {
        try await send(.post, "/api/v1/certificates", body: upload)
    }

    func certificates(namePrefix: String? = nil, limit: Int? = nil, cursor: String? = nil) async throws -> ListResponse<CertificateView> {
        try await get("/api/v1/certificates", query: [("namePrefix", namePrefix), ("limit", limit.map(String.init)), ("cursor", cursor)])
    }

    func certificate(_ name: String) async throws -> CertificateView { try await get("/api/v1/certificates/\(Self.segment(name))") }

    func deleteCertificate(_ name: String) async throws {
        _ = try await perform(.delete, "/api/v1/certificates/\(Self.segment(name))")
    }

    // MARK: Targets

    func createTarget(_ input: TargetInput) async throws -> TargetView { try await send(.post, "/api/v1/targets", body: input) }

    /// - Parameter labels: `key=value[,key=value…]`: targets carrying all of them.
    func targets(labels: String? = nil, connector: String? = nil, namePrefix: String? = nil, limit: Int? = nil,
                 cursor: String? = nil) async throws -> ListResponse<TargetView> {
        try await get("/api/v1/targets", query: [("label", labels), ("connector", connector), ("namePrefix", namePrefix),
                                                  ("limit", limit.map(String.init)), ("cursor", cursor)])
    }

    func target(_ idOrName: String) async throws -> TargetView { try await get("/api/v1/targets/\(Self.segment(idOrName))") }

    /// Secret fields left out (or sent as `"<redacted>"`) keep their stored values; `input.version` guards against
    /// a concurrent change (409).
    func updateTarget(_ idOrName: String, _ input: TargetInput) async throws -> TargetView {
        try await send(.put, "/api/v1/targets/\(Self.segment(idOrName))", body: input)
    }

    func deleteTarget(_ idOrName: String) async throws {
        _ = try await perform(.delete, "/api/v1/targets/\(Self.segment(idOrName))")
    }

    func testTarget(_ idOrName: String) async throws -> TargetTestReport {
        try await decode(perform(.post, "/api/v1/targets/\(Self.segment(idOrName))/test"), path: "/api/v1/targets/…/test")
    }

    /// A drift check now: the target's status after it.
    func verifyTarget(_ idOrName: String) async throws -> TargetStatusView {
        try await decode(perform(.post, "/api/v1/targets/\(Self.segment(idOrName))/verify"), path: "/api/v1/targets/…/verify")
    }

    func staplingConfig(_ idOrName: String) async throws -> StaplingConfigView {
        try await get("/api/v1/targets/\(Self.segment(idOrName))/stapling-config")
    }

    // MARK: Deployments

    /// Queues one deployment per selected target.
    func createDeployments(_ request: DeploymentRequest) async throws -> ListResponse<DeploymentView> {
        try await send(.post, "/api/v1/deployments", body: request)
    }

    /// - Parameter status: comma-separated statuses, e.g. `queued,running`.
    func deployments(target: String? = nil, certificate: String? = nil, status: String? = nil, limit: Int? = nil,
                     cursor: String? = nil) async throws -> ListResponse<DeploymentView> {
        try await get("/api/v1/deployments", query: [("target", target), ("certificate", certificate), ("status", status),
                                                      ("limit", limit.map(String.init)), ("cursor", cursor)])
    }

    func deployment(_ id: UUID) async throws -> DeploymentView { try await get("/api/v1/deployments/\(id.lowercasedText)") }

    func cancelDeployment(_ id: UUID) async throws -> DeploymentView {
        try await decode(perform(.post, "/api/v1/deployments/\(id.lowercasedText)/cancel"), path: "/api/v1/deployments/…/cancel")
    }

    /// The deployment's event stream (`step`, `status`, and a last `end`), read as it arrives. It ends when the
    /// server closes the stream.
    func deploymentEvents(_ id: UUID) async throws -> ServerSentEvents<AsyncMapSequence<HTTPClientResponse.Body, [UInt8]>> {
        let path = "/api/v1/deployments/\(id.lowercasedText)/events"
        var request = makeRequest(.get, path, query: [])
        request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
        let response = try await execute(request, streaming: true)
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            throw failure(status: status, contentType: response.headers.first(name: "Content-Type"), body: try await collect(response.body))
        }
        return ServerSentEvents(response.body.map { Array($0.readableBytesView) })
    }

    // MARK: Rollouts

    func createRollout(_ request: DeploymentRequest) async throws -> RolloutView { try await send(.post, "/api/v1/rollouts", body: request) }

    /// - Parameter state: comma-separated states, e.g. `running,halted`.
    func rollouts(certificate: String? = nil, state: String? = nil, limit: Int? = nil, cursor: String? = nil) async throws -> ListResponse<RolloutView> {
        try await get("/api/v1/rollouts", query: [("certificate", certificate), ("state", state), ("limit", limit.map(String.init)), ("cursor", cursor)])
    }

    func rollout(_ id: UUID) async throws -> RolloutView { try await get("/api/v1/rollouts/\(id.lowercasedText)") }

    /// `pause`, `resume`, `approve`, `abort` (optionally with rollback) or `retry`.
    func rolloutAction(_ id: UUID, _ action: String, rollback: Bool? = nil) async throws -> RolloutActionResponse {
        try await send(.post, "/api/v1/rollouts/\(id.lowercasedText)/\(Self.segment(action))", body: RolloutActionRequest(rollback: rollback))
    }

    // MARK: Maintenance windows and policies

    func createWindow(_ request: WindowRequest) async throws -> WindowView { try await send(.post, "/api/v1/windows", body: request) }

    func windows() async throws -> ListResponse<WindowView> { try await get("/api/v1/windows") }

    func deleteWindow(_ name: String) async throws {
        _ = try await perform(.delete, "/api/v1/windows/\(Self.segment(name))")
    }

    func certificatePolicy(_ name: String) async throws -> CertificatePolicyView {
        try await get("/api/v1/certificates/\(Self.segment(name))/policy")
    }

    func setCertificatePolicy(_ name: String, _ request: CertificatePolicyRequest) async throws -> CertificatePolicyView {
        try await send(.put, "/api/v1/certificates/\(Self.segment(name))/policy", body: request)
    }

    // MARK: Audit

    func audit(actor: String? = nil, action: String? = nil, objectType: String? = nil, objectID: String? = nil, limit: Int? = nil,
               cursor: String? = nil) async throws -> ListResponse<AuditEventView> {
        try await get("/api/v1/audit", query: [("actor", actor), ("action", action), ("objectType", objectType), ("objectID", objectID),
                                                ("limit", limit.map(String.init)), ("cursor", cursor)])
    }

    // MARK: Pages

    /// Every item of a list, following `nextCursor`; at most `limit` items when given.
    static func allPages<Item>(limit: Int?, _ page: (_ cursor: String?, _ limit: Int?) async throws -> ListResponse<Item>) async throws -> ListResponse<Item> {
        var items: [Item] = []
        var cursor: String?
        repeat {
            let remaining = limit.map { $0 - items.count }
            let response = try await page(cursor, remaining)
            items += response.items
            cursor = response.nextCursor
            if let limit, items.count >= limit {
                return ListResponse(items: Array(items.prefix(limit)), nextCursor: items.count > limit ? nil : cursor)
            }
            if response.items.isEmpty { break }
        } while cursor != nil
        return ListResponse(items: items, nextCursor: nil)
    }

    // MARK: Transport

    enum Method {
        case get, post, put, delete
    }

    private func get<Response: Decodable>(_ path: String, query: [(String, String?)] = []) async throws -> Response {
        try await decode(perform(.get, path, query: query), path: path)
    }

    private func send<Body: Encodable, Response: Decodable>(_ method: Method, _ path: String, body: Body) async throws -> Response {
        let data: Data
        do {
            data = try JSONEncoder.api.encode(body)
        } catch {
            throw InputError("cannot encode the request body: \(error)")
        }
        return try await decode(perform(method, path, body: data), path: path)
    }

    private func decode<Response: Decodable>(_ data: Data, path: String) throws -> Response {
        do {
            return try JSONDecoder.api.decode(Response.self, from: data)
        } catch {
            throw APIError.invalidResponse(path: path, reason: "\(error)")
        }
    }

    /// Sends one request and returns the body of a 2xx answer.
    private func perform(_ method: Method, _ path: String, query: [(String, String?)] = [], body: Data? = nil) async throws -> Data {
        var request = makeRequest(method, path, query: query)
        if let body {
            request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        let response = try await execute(request, streaming: false)
        let data = try await collect(response.body)
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            throw failure(status: status, contentType: response.headers.first(name: "Content-Type"), body: data)
        }
        return data
    }

    private func makeRequest(_ method: Method, _ path: String, query: [(String, String?)]) -> HTTPClientRequest {
        let parameters = query.compactMap { name, value in value.map { "\(name)=\(Self.queryValue($0))" } }
        var request = HTTPClientRequest(url: baseURL + path + (parameters.isEmpty ? "" : "?" + parameters.joined(separator: "&")))
        switch method {
        case .get: request.method = .GET
        case .post: request.method = .POST
        case .put: request.method = .PUT
        case .delete: request.method = .DELETE
        }
        request.headers.replaceOrAdd(name: "Accept", value: "application/json, application/problem+json")
        request.headers.replaceOrAdd(name: "User-Agent", value: "certdeploy/\(certdeployVersion)")
        if let apiKey { request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(apiKey)") }
        return request
    }

    /// Sends a request; a streaming one (server-sent events) has no deadline, any other must finish in 5 minutes.
    private func execute(_ request: HTTPClientRequest, streaming: Bool) async throws -> HTTPClientResponse {
        do {
            if streaming { return try await http.execute(request, deadline: .distantFuture) }
            return try await http.execute(request, timeout: .seconds(300))
        } catch let error as CancellationError {
            throw error
        } catch {
            throw APIError.unreachable(url: baseURL, reason: redact(Self.transportReason(error)), refused: Self.isRefused(error))
        }
    }

    private func collect(_ body: HTTPClientResponse.Body) async throws -> Data {
        var data = Data()
        for try await chunk in body {
            data.append(contentsOf: chunk.readableBytesView)
            if data.count > Self.maximumBodySize {
                throw APIError.invalidResponse(path: "", reason: "the answer is larger than \(Self.maximumBodySize) bytes")
            }
        }
        return data
    }

    /// The error for a non-2xx answer: its problem (detail redacted), else the status and the end of the body.
    func failure(status: Int, contentType: String?, body: Data) -> APIError {
        if let problem = try? JSONDecoder.api.decode(Problem.self, from: body) {
            var redacted = problem
            redacted.detail = redact(problem.detail)
            return .problem(redacted)
        }
        let text = String(decoding: body.suffix(400), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return .unexpectedStatus(status: status, bodyTail: redact(text))
    }

    /// Removes the API key from text that came from elsewhere, in case something echoed it.
    func redact(_ text: String) -> String {
        guard let apiKey, apiKey.count >= 4 else { return text }
        return text.replacingOccurrences(of: apiKey, with: redactedPlaceholder)
    }

    static func isRefused(_ error: any Error) -> Bool {
        let text = String(reflecting: error)
        return text.contains("Connection refused") || text.contains("connectionRefused") || text.contains("ECONNREFUSED")
    }

    static func transportReason(_ error: any Error) -> String {
        if isRefused(error) { return "connection refused" }
        if let error = error as? HTTPClientError {
            if error == .connectTimeout { return "connect timed out" }
            if error == .deadlineExceeded { return "no answer in time" }
            return "\(error)"
        }
        let text = String(describing: error)
        return text.count > 300 ? String(text.prefix(300)) + "…" : text
    }

    /// A path segment, percent-encoded (names are `[A-Za-z0-9._-]`, so this changes nothing for valid ones).
    static func segment(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    /// A query value, percent-encoded except for commas (kept readable in `label=a=b,c=d`).
    static func queryValue(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved.union(CharacterSet(charactersIn: ","))) ?? value
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
