import CertdeployAPI
import Core
import Foundation
import HTTPTypes
import Store

/// A failed request, as the client will see it: an RFC 9457 problem body with a status, a type and the fields at fault.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    /// The slug of the problem type URI.
    public var slug: String
    public var title: String
    public var detail: String
    public var errors: [Problem.FieldError]
    /// Extra response headers (`Retry-After`, `WWW-Authenticate`).
    public var headers: [(HTTPField.Name, String)] = []

    public init(status: HTTPResponse.Status, slug: String, title: String, detail: String, errors: [Problem.FieldError] = []) {
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors
    }

    public var description: String { "\(status.code) \(title): \(detail)" }

    public func problem(instance: String?) -> Problem {
        Problem(
            type: "https://certdeploy.dev/problems/\(slug)", title: title, status: status.code, detail: detail, instance: instance,
            errors: errors.isEmpty ? nil : errors)
    }

    // MARK: Kinds

    public static func badRequest(_ detail: String, pointer: String? = nil) -> APIError {
        APIError(status: .badRequest, slug: "bad-request", title: "Bad request", detail: detail,
                 errors: pointer.map { [Problem.FieldError(pointer: $0, detail: detail)] } ?? [])
    }

    /// A field failed validation (422), named by a JSON pointer (or `query:<name>`).
    public static func invalid(_ pointer: String, _ detail: String) -> APIError {
        APIError(status: .unprocessableContent, slug: "validation", title: "Invalid field", detail: "\(pointer): \(detail)",
                 errors: [Problem.FieldError(pointer: pointer, detail: detail)])
    }

    public static func invalid(_ issues: [Problem.FieldError]) -> APIError {
        APIError(status: .unprocessableContent, slug: "validation", title: "Invalid field",
                 detail: issues.map { "\($0.pointer): \($0.detail)" }.joined(separator: "; "), errors: issues)
    }

    public static func unauthorized(_ detail: String) -> APIError {
        var error = APIError(status: .unauthorized, slug: "unauthorized", title: "Unauthorized", detail: detail)
        error.headers = [(.wwwAuthenticate, "Bearer realm=\"certdeploy\"")]
        return error
    }

    public static func forbidden(_ detail: String) -> APIError {
        APIError(status: .forbidden, slug: "forbidden", title: "Forbidden", detail: detail)
    }

    public static func notFound(_ detail: String) -> APIError {
        APIError(status: .notFound, slug: "not-found", title: "Not found", detail: detail)
    }

    public static func conflict(_ detail: String, pointer: String? = nil) -> APIError {
        APIError(status: .conflict, slug: "conflict", title: "Conflict", detail: detail,
                 errors: pointer.map { [Problem.FieldError(pointer: $0, detail: detail)] } ?? [])
    }

    public static func unavailable(_ detail: String) -> APIError {
        APIError(status: .serviceUnavailable, slug: "unavailable", title: "Service unavailable", detail: detail)
    }

    public static func tooManyRequests(retryAfterSeconds: Int) -> APIError {
        var error = APIError(status: .tooManyRequests, slug: "rate-limited", title: "Too many requests",
                             detail: "rate limit exceeded; retry after \(retryAfterSeconds) s")
        error.headers = [(.retryAfter, String(retryAfterSeconds))]
        return error
    }

    public static func internalError(requestID: String) -> APIError {
        APIError(status: .internalServerError, slug: "internal", title: "Internal error",
                 detail: "the server failed to handle this request (request id \(requestID)); the log has the details")
    }

    /// Maps a store error onto the API. `pointers` names the request field for a conflict on a store field.
    public static func from(_ error: StoreError, pointers: [String: String] = [:]) -> APIError {
        switch error {
        case .conflict(let field):
            let pointer = pointers[field] ?? "/\(field)"
            switch field {
            case "name": return .conflict("the name is already in use", pointer: pointer)
            case "targets": return .conflict("targets still use this certificate; rebind or delete them first")
            case "deployments": return .conflict("a deployment is queued or running; wait for it or cancel it first")
            case "targetID": return .conflict("the target already has a running deployment")
            default: return .conflict("\(field) is already in use", pointer: pointer)
            }
        case .notFound(let type, let id): return .notFound("\(type) \(id) not found")
        case .staleVersion(let expected, let current):
            return .conflict("the change was based on version \(expected) but the target is at version \(current); fetch it again",
                             pointer: "/version")
        case .invalidState(let message): return .conflict(message)
        case .invalidArgument(let message): return .invalid(pointers["argument"] ?? "/", message)
        case .unavailable(let message): return .unavailable("the database is unavailable: \(message)")
        case .leaseLost, .migration, .corrupt, .database:
            return APIError(status: .internalServerError, slug: "store", title: "Store error", detail: "the store failed: \(error)")
        }
    }
}
