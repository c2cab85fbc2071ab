import Foundation
import Logging
import Hummingbird
import Store

/// Counts every answered request by route pattern and status, and logs each server error (5xx) once, with the error
/// as it was thrown (the client only sees a request id).
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.recordRequest(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: response.status.code)
            return response
        } catch {
            let mapped = ProblemMiddleware.apiError(for: error, request: request, context: context)
            if mapped.status.code >= 500 {
                context.logger.error("\(request.method) \(request.uri.path) failed (request id \(context.id)): \(String(reflecting: error))")
            }
            metrics.recordRequest(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: mapped.status.code)
            throw mapped
        }
    }
}

/// Writes an audit event for a mutation the API refused before it reached the store (no key, not admin, invalid
/// input, rate-limited), with the caller as actor; the store audits what reaches it.
struct RefusalAudit {
    let store: any Store

    func record(_ request: Request, context: APIRequestContext, error: any Error) async {
        let mapped = ProblemMiddleware.apiError(for: error, request: request, context: context)
        let status = mapped.status.code
        let detail: String? = mapped.detail
        let route = context.endpointPath ?? request.uri.path
        guard request.method != .get, request.method != .head, [401, 403, 413, 415, 422, 429].contains(status) else { return }
        let event = NewAuditEvent(
            time: Date(), actor: context.principal?.name ?? "anonymous", action: "request.refused", objectType: "route",
            objectID: "\(request.method.rawValue) \(route)", outcome: "failure", detail: detail.map { "\(status): \($0)" } ?? "\(status)")
        do {
            try await store.recordAuditEvent(event)
        } catch {
            context.logger.warning("cannot record the refused request in the audit log: \(error)")
        }
    }
}
