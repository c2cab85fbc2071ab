/// An HTTP method and path as the router registers it.
public struct HTTPRoute: Sendable, Hashable, CustomStringConvertible {
    public let method: String
    public let path: String

    public init(_ method: String, _ path: String) {
        self.method = method
        self.path = path
    }

    public var description: String { "\(method) \(path)" }
}

/// The only routes that answer without an API key. The router test walks every registered route and fails when one
/// answers without a key and is not listed here, or when this list names a route that does not exist.
public enum PublicRoutes {
    public static let all: [HTTPRoute] = [
        HTTPRoute("GET", "/health"),
        HTTPRoute("GET", "/ready"),
        HTTPRoute("GET", "/api/v1/auth/info"),
        HTTPRoute("GET", "/api/v1/version"),
    ]

    private static let set = Set(all)

    /// Exact match on method and path (a query string is ignored). Anything else, including `HEAD`, a trailing slash
    /// or a percent-encoded spelling, is not public and needs a key.
    public static func contains(method: String, path: String) -> Bool {
        let bare = path.firstIndex(of: "?").map { String(path[..<$0]) } ?? path
        return set.contains(HTTPRoute(method, bare))
    }
}
