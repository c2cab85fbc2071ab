import Hummingbird
import NIOCore
import ServerSecurity

/// The per-request context: Hummingbird's core storage, the caller's address and, once the auth middleware ran,
/// who the caller is.
public struct APIRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Set by `AuthMiddleware` for every route outside `PublicRoutes`.
    public var principal: APIPrincipal?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// The authenticated caller; only nil on public routes.
    public var actor: String { principal?.name ?? "anonymous" }

    /// The principal, or 401 (routes outside `PublicRoutes` always have one).
    public func requirePrincipal() throws -> APIPrincipal {
        guard let principal else { throw APIError.unauthorized("this route needs an API key") }
        return principal
    }

    /// Throws 403 unless the caller holds an admin key.
    public func requireAdmin(_ action: String) throws {
        let principal = try requirePrincipal()
        guard principal.isAdmin else {
            throw APIError.forbidden("\(action) needs an admin API key; \"\(principal.name)\" is not admin")
        }
    }
}
