import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServerSecurity

/// Where the live API keys come from: a fixed set (environment) or a file re-read on SIGHUP.
public enum KeySource: Sendable {
    case fixed(APIKeyring)
    case file(KeyringReloader)

    func authenticate(_ key: String?) async -> APIPrincipal? {
        switch self {
        case .fixed(let keyring): keyring.authenticate(key)
        case .file(let reloader): await reloader.authenticate(key)
        }
    }
}

/// Authenticates every route outside `PublicRoutes` (401 without a valid key), then applies the rate limit: per key
/// name for authenticated callers (after authentication, so each key has its own budget), per source address for the
/// rest (public routes and failed authentications).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    let keys: KeySource
    let limiter: RateLimiter
    let audit: RefusalAudit
    /// Accepted as a bearer token on `GET /metrics` only.
    let metricsToken: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        do {
            return try await authenticateAndRun(request, context: &context, next: next)
        } catch {
            await audit.record(request, context: context, error: error)
            throw error
        }
    }

    private func authenticateAndRun(
        _ request: Request, context: inout Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let presented = Self.bearerToken(request)
        let path = request.uri.path
        if PublicRoutes.contains(method: request.method.rawValue, path: path) {
            // A valid key on a public route still identifies the caller (auth/info reports who it is).
            if presented != nil, let principal = await keys.authenticate(presented) {
                context.principal = principal
                try await limit(.authenticated(name: principal.name))
            } else {
                try await limit(.unauthenticated(address: Self.address(context)))
            }
            return try await next(request, context)
        }
        if request.method == .get, path == "/metrics", let metricsToken, let presented,
            ConstantTime.equals(Array(presented.utf8), Array(metricsToken.utf8))
        {
            context.principal = APIPrincipal(name: "metrics-scraper", isAdmin: false)
            return try await next(request, context)
        }
        guard let principal = await keys.authenticate(presented) else {
            try await limit(.unauthenticated(address: Self.address(context)))
            throw APIError.unauthorized(
                presented == nil ? "send an API key as \"Authorization: Bearer <key>\"" : "the API key is not valid")
        }
        context.principal = principal
        context.logger[metadataKey: "actor"] = .string(principal.name)
        try await limit(.authenticated(name: principal.name))
        return try await next(request, context)
    }

    private func limit(_ caller: RateLimiter.Caller) async throws {
        if case .denied(let retryAfter) = await limiter.allow(caller) {
            throw APIError.tooManyRequests(retryAfterSeconds: retryAfter)
        }
    }

    static func bearerToken(_ request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    static func address(_ context: Context) -> String {
        context.remoteAddress?.ipAddress ?? "unknown"
    }
}
