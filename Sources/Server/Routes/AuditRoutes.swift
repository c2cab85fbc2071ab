import CertdeployAPI
import Hummingbird
import Store

/// The audit log, newest first.
enum AuditRoutes {
    static func add(to router: Router<APIRequestContext>, environment env: APIEnvironment) {
        router.get("/api/v1/audit") { request, _ in
            let query = QueryReader(request: request)
            try query.allowOnly(["actor", "action", "objectType", "objectID", "limit", "cursor"])
            let filter = AuditFilter(
                actor: query.string("actor"), action: query.string("action"), objectType: query.string("objectType"),
                objectID: query.string("objectID"))
            let page = try await storeCall { try await env.store.auditEvents(filter, limit: try query.limit(), cursor: query.cursor()) }
            let items = page.items.map {
                AuditEventView(id: $0.id, time: $0.time, actor: $0.actor, action: $0.action, objectType: $0.objectType, objectID: $0.objectID,
                               outcome: $0.outcome, detail: $0.detail)
            }
            return try JSONResponse.make(ListResponse(items: items, nextCursor: page.nextCursor))
        }
    }
}
