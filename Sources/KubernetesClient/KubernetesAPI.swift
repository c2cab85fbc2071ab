import AsyncHTTPClient
import Core
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Retries for answers that say "try again": 429 (API Priority and Fairness; `Retry-After` honoured, capped)
/// and 500/502/503/504, and for connections that failed before an answer. Bounded in attempts and delay.
public struct KubernetesRetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration

    public init(maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(5)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    func backoff(attempt: Int) -> Duration {
        min(baseDelay * (1 << min(attempt - 1, 10)), maxDelay)
    }
}

/// What a request is for, so a refusal can name the verb and resource RBAC would need.
struct APIOperation: Sendable {
    var verb: String
    var resource: String
    var group: String = ""
    var namespace: String?
    var name: String?

    /// "secrets web/site-tls", "deployments.apps web/api".
    var objectDescription: String {
        let kind = group.isEmpty ? resource : "\(resource).\(group)"
        switch (namespace, name) {
        case let (namespace?, name?): return "\(kind) \(namespace)/\(name)"
        case let (namespace?, nil): return "\(kind) in namespace \(namespace)"
        default: return kind
        }
    }
}

/// An answer from the API server.
struct APIResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    var json: JSONValue? { try? JSONValue.parse(Data(body)) }
}

/// HTTPS to one API server: authentication on every request (a token file is read each time), the
/// User-Agent, bounded retries, and API Status bodies turned into ``ClusterError``s that say what is wrong.
final class KubernetesAPI: Sendable {
    let access: KubernetesAccess
    let userAgent: String
    let retry: KubernetesRetryPolicy
    let timeout: Duration
    private let client: HTTPClient

    init(access: KubernetesAccess, userAgent: String, retry: KubernetesRetryPolicy, timeout: Duration, connectTimeout: Duration) throws {
        self.access = access
        self.userAgent = userAgent
        self.retry = retry
        self.timeout = timeout
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        do {
            switch access.trust {
            case .system:
                break
            case .certificateAuthority(let pem):
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(pem))
            case .insecure:
                tls.certificateVerification = .none
            }
            if case .clientCertificate(let certificatePEM, let keyPEM) = access.credential {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificatePEM).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: keyPEM, format: .pem))
            }
        } catch {
            throw ClusterError(.configuration, "\(access.origin): the certificate authority or client certificate is not usable PEM: \(error)")
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                     timeout: .init(connect: Self.timeAmount(connectTimeout), read: Self.timeAmount(timeout)))
        configuration.httpVersion = .automatic
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    func shutdown() async {
        try? await client.shutdown()
    }

    /// Sends one request, retrying what may be retried, and returns a 2xx answer — or, when `accept` lists
    /// it, another status the caller handles itself (404 on a read). Everything else throws ``ClusterError``.
    func send(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, contentType: String = "application/json",
              operation: APIOperation, accept: Set<Int> = []) async throws -> APIResponse {
        var attempt = 0
        while true {
            attempt += 1
            var request = HTTPClientRequest(url: access.server + path)
            request.method = method
            request.headers.add(name: "User-Agent", value: userAgent)
            request.headers.add(name: "Accept", value: "application/json")
            if let token = try access.currentToken() {
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
            }
            if let body {
                let bytes = Array(body.jsonText(pretty: false).utf8)
                request.headers.add(name: "Content-Type", value: contentType)
                request.body = .bytes(bytes)
            }
            let response: APIResponse
            do {
                let answer = try await client.execute(request, timeout: Self.timeAmount(timeout))
                let collected = try await answer.body.collect(upTo: 16 * 1024 * 1024)
                response = APIResponse(status: Int(answer.status.code), headers: answer.headers, body: Array(buffer: collected))
            } catch {
                let retryable = !(error is NIOSSLError) && !(error is BoringSSLError)
                if retryable, attempt < retry.maxAttempts, !Task.isCancelled {
                    try await Task.sleep(for: retry.backoff(attempt: attempt))
                    continue
                }
                throw ClusterError(.transport, "\(method.rawValue) \(access.server)\(path) (\(operation.objectDescription)) failed: \(Self.describe(error))"
                    + (attempt > 1 ? " after \(attempt) attempts" : ""))
            }
            if (200..<300).contains(response.status) || accept.contains(response.status) {
                return response
            }
            let transient = response.status == 429 || [500, 502, 503, 504].contains(response.status)
            if transient, attempt < retry.maxAttempts, !Task.isCancelled {
                var delay = retry.backoff(attempt: attempt)
                if let header = response.headers.first(name: "Retry-After"), let seconds = Int(header.trimmingCharacters(in: .whitespaces)) {
                    delay = min(.seconds(max(seconds, 0)), retry.maxDelay)
                }
                try await Task.sleep(for: delay)
                continue
            }
            throw error(for: response, operation: operation, attempts: attempt)
        }
    }

    /// The API's Status body (`{"kind":"Status","status":"Failure","message","reason","details","code"}`) as a
    /// ``ClusterError`` that names the object, and for 403 the verb and resource that RBAC lacks.
    ///
    /// Reference: API Concepts, "Responses" / "Status"; Authorization "Determine the Request Verb".
    func error(for response: APIResponse, operation: APIOperation, attempts: Int) -> ClusterError {
        let status = KubernetesStatus(response.json)
        let message = status.message ?? String(decoding: response.body.prefix(300), as: UTF8.self)
        let namespace = operation.namespace.map { " in namespace \($0)" } ?? ""
        let kind = operation.group.isEmpty ? operation.resource : "\(operation.resource).\(operation.group)"
        switch response.status {
        case 401:
            return ClusterError(.unauthorized, status: 401, "the API server \(access.server) rejected the credentials (\(access.credentialDescription) from \(access.origin)): 401 \(status.reason ?? "Unauthorized"): \(message). The token may be expired or revoked, or the client certificate not issued by the cluster's CA")
        case 403:
            let who = status.user.map(Self.describeUser) ?? "the credentials (\(access.credentialDescription))"
            return ClusterError(.forbidden, status: 403, "\(who) lacks `\(operation.verb)` on \(kind)\(namespace): the API server said \"\(message)\". Grant it with a Role (see docs/connectors/k8s.md, RBAC)")
        case 404:
            if status.detailsKind == "namespaces", let name = status.detailsName ?? operation.namespace {
                return ClusterError(.notFound, status: 404, "namespace \(name) does not exist (\(message))")
            }
            return ClusterError(.notFound, status: 404, "\(operation.objectDescription) not found: \(message)")
        case 409:
            if status.reason == "AlreadyExists" {
                return ClusterError(.alreadyExists, status: 409, "\(operation.objectDescription) already exists: \(message)")
            }
            return ClusterError(.conflict, status: 409, "\(operation.objectDescription): 409 \(status.reason ?? "Conflict"): \(message)")
        case 400, 422:
            var text = "the API server refused \(operation.objectDescription) as \(status.reason ?? "invalid") (\(response.status)): \(message)"
            // The message usually spells the causes out already; add those it does not.
            let causes = status.causes.map { [$0.field, $0.message].compactMap { $0 }.joined(separator: ": ") }.filter { !message.contains($0) }
            if !causes.isEmpty { text += "; causes: " + causes.joined(separator: "; ") }
            return ClusterError(.invalid, status: response.status, text)
        case 429:
            return ClusterError(.tooManyRequests, status: 429, "\(operation.objectDescription): the API server is still throttling (429) after \(attempts) attempts: \(message)")
        case 500...599:
            return ClusterError(.server, status: response.status, "\(operation.objectDescription): the API server failed (\(response.status) \(status.reason ?? "")) after \(attempts) attempts: \(message)")
        default:
            return ClusterError(.protocolError, status: response.status, "\(operation.objectDescription): unexpected HTTP \(response.status): \(message)")
        }
    }

    /// "service account web/deployer" for `system:serviceaccount:web:deployer`, else "user \"alice\"".
    static func describeUser(_ user: String) -> String {
        let parts = user.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 4, parts[0] == "system", parts[1] == "serviceaccount" {
            return "service account \(parts[2])/\(parts[3])"
        }
        return "user \"\(user)\""
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? NIOSSLError {
            return "TLS: \(error) (does the certificate authority match the API server's certificate?)"
        }
        if let error = error as? HTTPClientError { return "\(error)" }
        return "\(error)"
    }
}

/// The fields of a `Status` object certdeploy reads.
struct KubernetesStatus {
    struct Cause {
        var reason: String?
        var message: String?
        var field: String?
    }

    var message: String?
    var reason: String?
    var detailsName: String?
    var detailsKind: String?
    var causes: [Cause] = []

    init(_ json: JSONValue?) {
        guard let json, json["kind"] == .string("Status") else { return }
        if case .string(let text)? = json["message"] { message = text }
        if case .string(let text)? = json["reason"] { reason = text }
        if let details = json["details"] {
            if case .string(let text)? = details["name"] { detailsName = text }
            if case .string(let text)? = details["kind"] { detailsKind = text }
            if case .array(let items)? = details["causes"] {
                causes = items.map { item in
                    func string(_ key: String) -> String? { if case .string(let text)? = item[key] { text } else { nil } }
                    return Cause(reason: string("reason"), message: string("message"), field: string("field"))
                }
            }
        }
    }

    /// The user an RBAC refusal names: `… User "system:serviceaccount:ns:sa" cannot update resource …`.
    var user: String? {
        guard let message, let start = message.range(of: "User \"") else { return nil }
        guard let end = message[start.upperBound...].firstIndex(of: "\"") else { return nil }
        return String(message[start.upperBound..<end])
    }
}
