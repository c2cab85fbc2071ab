import CertdeployAPI
import Foundation
import Hummingbird
import Store

/// `POST /api/v1/targets/{target}/verify`: a drift check now (a TLS handshake with the target's verify endpoint),
/// recorded as the target's status and returned. A non-admin key may run it.
enum WatchRoutes {
    static func add(to router: Router<APIRequestContext>, environment env: APIEnvironment) {
        router.post("/api/v1/targets/{target}/verify") { _, context in
            let record = try await TargetRoutes.resolve(try context.parameters.require("target"), env: env)
            let status = await env.watch.verify(record, now: env.watch.now)
            _ = try? await env.store.recordAuditEvent(
                NewAuditEvent(time: Date(), actor: context.actor, action: "target.verify", objectType: "target",
                              objectID: record.id.lowercasedText, outcome: status.sync ?? "unknown", detail: status.detail))
            return try JSONResponse.make(status)
        }
    }
}
