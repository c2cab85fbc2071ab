import CertdeployAPI
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Store

/// The outermost middleware: turns every error into an RFC 9457 problem body, so no request ends in Hummingbird's
/// default error page, and a bug becomes a 500 that leaks nothing (`MetricsMiddleware`, just inside, logs it with the
/// original error).
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let apiError = Self.apiError(for: error, request: request, context: context)
            return Self.response(apiError, path: request.uri.path)
        }
    }

    /// What the client is told for `error`. Pure: logging a server error is the caller's (once per request).
    static func apiError(for error: any Error, request: Request, context: Context) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as StoreError:
            return APIError.from(error)
        case let error as HTTPError:
            switch error.status {
            case .notFound:
                return .notFound("no route \(request.method) \(request.uri.path)")
            case .methodNotAllowed:
                return APIError(status: .methodNotAllowed, slug: "method-not-allowed", title: "Method not allowed",
                                detail: "\(request.method) is not allowed on \(request.uri.path)")
            case .contentTooLarge:
                return APIError(status: .contentTooLarge, slug: "too-large", title: "Request body too large",
                                detail: "the request body exceeds the limit")
            default:
                if error.status.code >= 500 { return .internalError(requestID: context.id) }
                return APIError(status: error.status, slug: "http", title: error.status.reasonPhrase,
                                detail: error.body ?? error.status.reasonPhrase)
            }
        default:
            return .internalError(requestID: context.id)
        }
    }

    static func response(_ error: APIError, path: String) -> Response {
        let body = (try? JSONEncoder.api.encode(error.problem(instance: path))) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        for (name, value) in error.headers { headers[name] = value }
        return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
