import CertdeployAPI
import Core
import Foundation
import Hummingbird
import Store

/// Maintenance windows and freezes (`/api/v1/windows`), and certificates' rollout policies
/// (`/api/v1/certificates/{name}/policy`).
enum WindowRoutes {
    static func add(to router: Router<APIRequestContext>, environment env: APIEnvironment) {
        router.post("/api/v1/windows") { request, context in
            try context.requireAdmin("adding a maintenance window")
            var request = request
            let body = try await request.decodeStrict(WindowRequest.self, limit: env.configuration.maxBodyBytes)
            let new = try await newWindow(body, env: env)
            let record = try await env.store.createWindow(new, actor: context.actor, now: Date())
            env.rollouts.wake()  // waiting children are placed again
            return try JSONResponse.make(try await view(record, env: env), status: .created)
        }
        router.get("/api/v1/windows") { request, _ in
            let query = QueryReader(request: request)
            try query.allowOnly([])
            var items: [WindowView] = []
            for record in try await env.store.windows() { items.append(try await view(record, env: env)) }
            return try JSONResponse.make(ListResponse(items: items))
        }
        router.delete("/api/v1/windows/{name}") { _, context in
            try context.requireAdmin("removing a maintenance window")
            let name = try context.parameters.require("name")
            try await env.store.deleteWindow(named: name, actor: context.actor, now: Date())
            env.rollouts.wake()
            return JSONResponse.noContent()
        }
        router.get("/api/v1/certificates/{name}/policy") { _, context in
            let name = try context.parameters.require("name")
            return try JSONResponse.make(policyView(name, try await env.store.certificatePolicy(name: name)))
        }
        router.put("/api/v1/certificates/{name}/policy") { request, context in
            try context.requireAdmin("setting a certificate's rollout policy")
            let name = try context.parameters.require("name")
            var request = request
            let body = try await request.decodeStrict(CertificatePolicyRequest.self, limit: env.configuration.maxBodyBytes)
            if let problem = body.strategy?.problem() { throw APIError.invalid("/strategy/\(problem.field)", problem.reason) }
            if let behind = body.behindAfter, behind.seconds < 60 { throw APIError.invalid("/behindAfter", "must be at least 1m") }
            let stored = try await env.store.setCertificatePolicy(
                name: name, CertificatePolicy(autoRollout: body.autoRollout, strategy: body.strategy, behindAfterSeconds: body.behindAfter?.seconds),
                actor: context.actor)
            return try JSONResponse.make(policyView(name, stored))
        }
    }

    static func policyView(_ name: String, _ policy: CertificatePolicy?) -> CertificatePolicyView {
        CertificatePolicyView(certificate: name, autoRollout: policy?.autoRollout ?? false, strategy: policy?.strategy ?? .default,
                              behindAfter: RolloutDuration(seconds: policy?.behindAfterSeconds ?? CertificatePolicyDefaults.behindAfterSeconds))
    }

    static func newWindow(_ body: WindowRequest, env: APIEnvironment) async throws -> NewMaintenanceWindow {
        guard TargetCodec.isValidName(body.name) else {
            throw APIError.invalid("/name", "must be 1–128 characters of A–Z, a–z, 0–9, '.', '_' or '-'")
        }
        guard (body.selector == nil) != (body.target == nil) else {
            throw APIError.invalid(body.selector == nil ? "/selector" : "/target", "give a label selector or one target, exactly one of the two")
        }
        guard (body.schedule == nil) != (body.freeze == nil) else {
            throw APIError.invalid(body.schedule == nil ? "/schedule" : "/freeze", "give a schedule (a recurring window) or a freeze, exactly one of the two")
        }
        var new = NewMaintenanceWindow(name: body.name, selector: body.selector)
        if let target = body.target {
            do {
                new.targetID = try await TargetRoutes.resolve(target, env: env).id
            } catch StoreError.notFound {
                throw APIError.invalid("/target", "no target \"\(target)\"")
            }
        }
        if let selector = body.selector {
            do { _ = try await env.store.listTargets(TargetFilter(labelSelector: selector), limit: 1, cursor: nil) } catch StoreError.invalidArgument(let message) {
                throw APIError.invalid("/selector", message)
            }
        }
        if let schedule = body.schedule {
            do { _ = try MaintenanceSchedule(parsing: schedule) } catch { throw APIError.invalid("/schedule", error.description) }
            new.schedule = schedule
        }
        if let freeze = body.freeze {
            guard let from = FreezeDate.parse(freeze.from, endOfDay: false) else {
                throw APIError.invalid("/freeze/from", "must be a date (2026-12-20) or an RFC 3339 time (2026-12-20T00:00:00Z)")
            }
            guard let until = FreezeDate.parse(freeze.until, endOfDay: true) else {
                throw APIError.invalid("/freeze/until", "must be a date (2027-01-02) or an RFC 3339 time (2027-01-02T00:00:00Z)")
            }
            guard from < until else { throw APIError.invalid("/freeze/until", "must be after /freeze/from") }
            new.freezeFrom = from
            new.freezeUntil = until
        }
        return new
    }

    static func view(_ record: MaintenanceWindowRecord, env: APIEnvironment) async throws -> WindowView {
        let now = Date()
        var active = false
        var next: Date?
        if let text = record.schedule, let schedule = try? MaintenanceSchedule(parsing: text) {
            active = schedule.closes(containing: now) != nil
            if !active { next = schedule.nextOpening(after: now) }
        } else if let from = record.freezeFrom, let until = record.freezeUntil {
            active = from <= now && now < until
        }
        let targetName = try await record.targetID.asyncMap { try? await env.store.target(id: $0).name } ?? nil
        return WindowView(id: record.id, name: record.name, selector: record.selector, targetID: record.targetID, targetName: targetName,
                          schedule: record.schedule, freezeFrom: record.freezeFrom, freezeUntil: record.freezeUntil, activeNow: active,
                          nextOpening: next, createdAt: record.createdAt, actor: record.actor)
    }
}

/// The defaults of a certificate's rollout policy.
enum CertificatePolicyDefaults {
    /// A bound target not serving the newest version a day after its upload is `behind`.
    static let behindAfterSeconds = 86_400
}

/// A freeze's bound: a plain date (UTC; `until` covers the whole day) or an RFC 3339 time.
enum FreezeDate {
    static func parse(_ text: String, endOfDay: Bool) -> Date? {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let start = calendar.date(from: DateComponents(year: year, month: month, day: day)),
              calendar.component(.day, from: start) == day else { return nil }
        return endOfDay ? start.addingTimeInterval(86_400) : start
    }
}
