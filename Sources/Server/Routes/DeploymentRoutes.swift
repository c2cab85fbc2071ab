import CertdeployAPI
import Core
import Foundation
import Hummingbird
import NIOCore
import Store

/// Deployments: enqueue (202, one per target), list, show, cancel, and a live event stream (SSE).
enum DeploymentRoutes {
    static let allowedStatuses = DeploymentStatus.allCases.map(\.rawValue)

    static func add(to router: Router<APIRequestContext>, environment env: APIEnvironment) {
        router.post("/api/v1/deployments") { request, context in
            var request = request
            let body = try await request.decodeStrict(DeploymentRequest.self, limit: env.configuration.maxBodyBytes)
            let created = try await enqueue(body, actor: context.actor, isAdmin: context.principal?.isAdmin == true, env: env)
            return try JSONResponse.make(ListResponse(items: created), status: .accepted)
        }
        router.get("/api/v1/deployments") { request, _ in
            let query = QueryReader(request: request)
            try query.allowOnly(["target", "certificate", "status", "rollout", "limit", "cursor"])
            var filter = DeploymentFilter(certificateName: query.string("certificate"))
            if let rollout = query.string("rollout") {
                guard let id = UUID(text: rollout) else { throw APIError.invalid("query:rollout", "must be a rollout id (a UUID)") }
                filter.rolloutID = id
            }
            if let certificate = filter.certificateName, !TargetCodec.isValidName(certificate) {
                throw APIError.invalid("query:certificate", "must be a certificate name (1–128 characters of A–Z, a–z, 0–9, '.', '_' or '-')")
            }
            if let target = query.string("target") {
                do {
                    filter.targetID = try await TargetRoutes.resolve(target, env: env).id
                } catch StoreError.notFound {
                    throw APIError.invalid("query:target", "no target \"\(target)\"")
                }
            }
            if let statuses = query.string("status") {
                for name in statuses.split(separator: ",") {
                    guard let status = DeploymentStatus(rawValue: String(name)) else {
                        throw APIError.invalid("query:status", "unknown status \"\(name)\" (one of: \(allowedStatuses.joined(separator: ", ")))")
                    }
                    filter.statuses.insert(status)
                }
            }
            let page = try await storeCall { try await env.store.listDeployments(filter, limit: try query.limit(), cursor: query.cursor()) }
            var names: [UUID: String] = [:]
            for id in Set(page.items.map(\.targetID)) {
                names[id] = try? await env.store.target(id: id).name  // a deleted target has no name any more
            }
            return try JSONResponse.make(
                ListResponse(items: page.items.map { view($0, targetName: names[$0.targetID]) }, nextCursor: page.nextCursor))
        }
        router.get("/api/v1/deployments/{id}") { _, context in
            let id = try context.parameters.require("id", as: UUID.self)
            return try JSONResponse.make(try await view(id, env: env))
        }
        router.post("/api/v1/deployments/{id}/cancel") { _, context in
            let id = try context.parameters.require("id", as: UUID.self)
            let record = try await env.store.cancel(deploymentID: id, actor: context.actor, now: Date())
            env.events.notify(id)
            return try JSONResponse.make(view(record, targetName: nil))
        }
        router.get("/api/v1/deployments/{id}/events") { _, context in
            let id = try context.parameters.require("id", as: UUID.self)
            _ = try await env.store.deployment(id: id)  // 404 before the stream starts
            return eventStream(id, env: env)
        }
    }

    // MARK: Enqueue

    static func enqueue(_ body: DeploymentRequest, actor: String, isAdmin: Bool, env: APIEnvironment) async throws -> [DeploymentView] {
        let (version, targets) = try await resolve(body, env: env)
        let optionsJSON = String(decoding: try JSONEncoder.api.encode(body.options ?? DeploymentRequest.Options()), as: UTF8.self)
        // More than one target (or a strategy): a rollout, staged by its strategy. Its children are returned.
        if targets.count > 1 || body.strategy != nil {
            let rollout = try await RolloutRoutes.start(body, version: version, targets: targets, actor: actor, isAdmin: isAdmin, reason: nil, env: env)
            let children = try await env.store.allDeployments(DeploymentFilter(rolloutID: rollout.id))
            let names = Dictionary(targets.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
            return children.reversed().map { view($0, targetName: names[$0.targetID]) }
        }
        // One target outside its maintenance window: refused (a rollout would wait for the window), unless an admin
        // says to ignore it, which the audit log records.
        var ignored: [(TargetRecord, String)] = []
        for target in targets {
            if body.ignoreWindows == true {
                try requireAdminForWindows(isAdmin, actor: actor)
                if case .closed(_, let reason) = try await env.store.maintenanceRules(targetID: target.id).verdict(at: Date()) {
                    ignored.append((target, reason))
                }
            } else if case .closed(let until, let reason) = try await env.store.maintenanceRules(targetID: target.id).verdict(at: Date()) {
                throw APIError.conflict(
                    "target \(target.name) is \(reason)" + (until.map { "; it opens at \($0.formatted(.iso8601))" } ?? "")
                        + ": start a rollout to wait for the window (POST /api/v1/rollouts), or pass ignoreWindows (admin) to deploy now",
                    pointer: "/targets")
            }
        }
        let records = try await env.store.enqueue(
            targets.map { NewDeployment(targetID: $0.id, certificateName: version.certificateName, certificateVersion: version.version, optionsJSON: optionsJSON) },
            actor: actor, now: Date())
        // Audited once queued (a refused enqueue ignored nothing).
        for (target, reason) in ignored {
            try await env.store.recordAuditEvent(NewAuditEvent(
                time: Date(), actor: actor, action: AuditAction.deploymentIgnoreWindows, objectType: "target", objectID: target.id.lowercasedText,
                outcome: "success", detail: "deploying \(version.certificateName) v\(version.version) now although \(reason)"))
        }
        env.worker.wake()
        let names = Dictionary(targets.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        return records.map { view($0, targetName: names[$0.targetID]) }
    }

    static func requireAdminForWindows(_ isAdmin: Bool, actor: String) throws {
        guard isAdmin else { throw APIError.forbidden("ignoring maintenance windows needs an admin API key; \"\(actor)\" is not admin") }
    }

    /// The certificate version and the targets (in the order named, then the selector's) a request names.
    static func resolve(_ body: DeploymentRequest, env: APIEnvironment) async throws -> (CertificateVersionRecord, [TargetRecord]) {
        if let version = body.version, version < 1 { throw APIError.invalid("/version", "must be 1 or more") }
        let version: CertificateVersionRecord
        do {
            version = try await env.store.certificateVersion(name: body.certificate, version: body.version)
        } catch StoreError.notFound {
            throw APIError.invalid(
                body.version == nil ? "/certificate" : "/version",
                body.version.map { "certificate \"\(body.certificate)\" has no version \($0)" }
                    ?? "no certificate \"\(body.certificate)\" with an uploaded version")
        }
        let references = body.targets ?? []
        guard !references.isEmpty || body.selector != nil else {
            throw APIError.invalid("/targets", "name the targets (ids or names) or give a label selector")
        }
        var seen = Set<UUID>()
        var targets: [TargetRecord] = []
        for (index, reference) in references.enumerated() {
            do {
                let target = try await TargetRoutes.resolve(reference, env: env)
                if seen.insert(target.id).inserted { targets.append(target) }
            } catch StoreError.notFound {
                throw APIError.invalid("/targets/\(index)", "no target \"\(reference)\"")
            }
        }
        if let selector = body.selector {
            let selected: [TargetRecord]
            do {
                selected = try await env.store.allTargets(TargetFilter(labelSelector: selector))
            } catch StoreError.invalidArgument(let message) {
                throw APIError.invalid("/selector", message)
            }
            if selected.isEmpty { throw APIError.invalid("/selector", "no target carries the labels \(selector)") }
            for target in selected where seen.insert(target.id).inserted { targets.append(target) }
        }
        return (version, targets)
    }

    // MARK: Views

    static func view(_ id: UUID, env: APIEnvironment) async throws -> DeploymentView {
        let record = try await env.store.deployment(id: id)
        let name = try? await env.store.target(id: record.targetID).name
        return view(record, targetName: name)
    }

    static func view(_ record: DeploymentRecord, targetName: String?) -> DeploymentView {
        let options = (try? JSONDecoder.api.decode(DeploymentRequest.Options.self, from: Data(record.optionsJSON.utf8))) ?? .init()
        let result = record.resultJSON.flatMap { try? JSONDecoder.api.decode(DeploymentResult.self, from: Data($0.utf8)) }
        return DeploymentView(
            id: record.id, targetID: record.targetID, targetName: targetName, certificate: record.certificateName,
            certificateVersion: record.certificateVersion, status: record.status.rawValue, options: options,
            steps: (try? record.steps()) ?? [], failure: try? record.failure(), attention: result.flatMap { $0.attention.isEmpty ? nil : $0.attention },
            statusNote: record.statusNote, attempts: record.attempts, createdAt: record.createdAt, startedAt: record.startedAt,
            finishedAt: record.finishedAt, actor: record.actor, rolloutID: record.rolloutID, wave: record.wave.map { $0 + 1 },
            superseded: record.superseded ? true : nil)
    }

    // MARK: Server-Sent Events

    /// Streams the deployment: `step` events as steps start and end, `status` on each status change, and `end` with
    /// the final view. Woken by this replica's worker; polls the store every second for work done elsewhere.
    static func eventStream(_ id: UUID, env: APIEnvironment) -> Response {
        let body = ResponseBody { writer in
            var sentSteps: [StepRecord] = []
            var sentStatus: String?
            while true {
                let generation = env.events.generation(of: id)
                let current: DeploymentView
                do {
                    current = try await view(id, env: env)
                } catch {
                    try await writer.write(event("error", data: #"{"detail":"the deployment could not be read"}"#))
                    break
                }
                for (index, step) in current.steps.enumerated() where index >= sentSteps.count || sentSteps[index] != step {
                    try await writer.write(event(DeploymentEventName.step, json: step))
                }
                sentSteps = current.steps
                if current.status != sentStatus {
                    sentStatus = current.status
                    if current.isLive {
                        try await writer.write(event(DeploymentEventName.status, json: current))
                    }
                }
                if !current.isLive {
                    try await writer.write(event(DeploymentEventName.end, json: current))
                    break
                }
                await env.events.wait(for: id, after: generation, timeout: .seconds(1))
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: body)
    }

    static func event(_ name: String, json value: some Encodable) -> ByteBuffer {
        let data = (try? JSONEncoder.api.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return event(name, data: data)
    }

    static func event(_ name: String, data: String) -> ByteBuffer {
        ByteBuffer(string: "event: \(name)\ndata: \(data)\n\n")
    }
}
