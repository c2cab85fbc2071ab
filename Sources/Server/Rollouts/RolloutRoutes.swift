import CertdeployAPI
import Core
import Foundation
import Hummingbird
import NIOCore
import Store

/// Rollouts: start (202), list, show, act on (pause, resume, approve, abort, retry) and a live event stream (SSE).
enum RolloutRoutes {
    static let actions: [String: RolloutAction] = ["pause": .pause, "resume": .resume, "approve": .approve, "abort": .abort, "retry": .retry]

    static func add(to router: Router<APIRequestContext>, environment env: APIEnvironment) {
        router.post("/api/v1/rollouts") { request, context in
            var request = request
            let body = try await request.decodeStrict(DeploymentRequest.self, limit: env.configuration.maxBodyBytes)
            let (version, targets) = try await DeploymentRoutes.resolve(body, env: env)
            let rollout = try await start(body, version: version, targets: targets, actor: context.actor,
                                          isAdmin: context.principal?.isAdmin == true, reason: nil, env: env)
            return try JSONResponse.make(try await view(rollout.id, env: env), status: .accepted)
        }
        router.get("/api/v1/rollouts") { request, _ in
            let query = QueryReader(request: request)
            try query.allowOnly(["certificate", "state", "limit", "cursor"])
            var filter = RolloutFilter(certificateName: query.string("certificate"))
            if let states = query.string("state") {
                for name in states.split(separator: ",") {
                    guard let state = RolloutState(rawValue: String(name)) else {
                        throw APIError.invalid("query:state", "unknown state \"\(name)\" (one of: \(RolloutState.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    filter.states.insert(state)
                }
            }
            let page = try await storeCall { try await env.store.listRollouts(filter, limit: try query.limit(), cursor: query.cursor()) }
            var items: [RolloutView] = []
            for record in page.items { items.append(view(record, children: try await env.store.rolloutChildren(rolloutID: record.id), withTargets: false)) }
            return try JSONResponse.make(ListResponse(items: items, nextCursor: page.nextCursor))
        }
        router.get("/api/v1/rollouts/{id}") { _, context in
            let id = try context.parameters.require("id", as: UUID.self)
            return try JSONResponse.make(try await view(id, env: env))
        }
        router.post("/api/v1/rollouts/{id}/{action}") { request, context in
            let id = try context.parameters.require("id", as: UUID.self)
            let name = try context.parameters.require("action")
            guard let action = actions[name] else {
                throw APIError.notFound("no rollout action \"\(name)\" (one of: \(actions.keys.sorted().joined(separator: ", ")))")
            }
            var request = request
            let body: RolloutActionRequest
            if request.headers[.contentLength].flatMap(Int.init) ?? 0 > 0 || request.headers[.contentType] != nil {
                body = try await request.decodeStrict(RolloutActionRequest.self, limit: env.configuration.maxBodyBytes)
            } else {
                body = RolloutActionRequest()
            }
            if body.rollback != nil && action != .abort { throw APIError.invalid("/rollback", "only abort takes rollback") }
            if body.rollback == true { try context.requireAdmin("aborting a rollout with rollback") }
            let record = try await env.store.actOnRollout(id: id, action: action, actor: context.actor, now: Date())
            env.rollouts.wake()
            _ = await env.rollouts.advance(only: id)
            var response = RolloutActionResponse(rollout: try await view(record.id, env: env))
            if action == .abort, body.rollback == true {
                let (rollouts, skipped) = try await rollBack(record, actor: context.actor, env: env)
                response.rollbackRollouts = rollouts
                response.notRolledBack = skipped
            }
            return try JSONResponse.make(response)
        }
        router.get("/api/v1/rollouts/{id}/events") { _, context in
            let id = try context.parameters.require("id", as: UUID.self)
            _ = try await env.store.rollout(id: id)  // 404 before the stream starts
            return eventStream(id, env: env)
        }
    }

    // MARK: Start

    /// Plans the waves and stores the rollout with its children, then lets the driver release the first wave.
    static func start(_ body: DeploymentRequest, version: CertificateVersionRecord, targets: [TargetRecord], actor: String, isAdmin: Bool,
                      reason: String?, env: APIEnvironment) async throws -> RolloutRecord {
        if body.ignoreWindows == true { try DeploymentRoutes.requireAdminForWindows(isAdmin, actor: actor) }
        var strategy = body.strategy
        if strategy == nil { strategy = try await env.store.certificatePolicy(name: version.certificateName)?.strategy }
        let chosen = strategy ?? .default
        let waves: [[UUID]]
        do {
            waves = try RolloutWavePlanner.plan(targets.map { RolloutCandidate(id: $0.id, name: $0.name, labels: $0.labels) }, strategy: chosen)
        } catch {
            throw APIError.invalid("/strategy/\(error.field)", error.reason)
        }
        let optionsJSON = String(decoding: try JSONEncoder.api.encode(body.options ?? DeploymentRequest.Options()), as: UTF8.self)
        let rollout = try await env.store.createRollout(
            NewRollout(certificateName: version.certificateName, certificateVersion: version.version, strategy: chosen, waves: waves,
                       optionsJSON: optionsJSON, ignoreWindows: body.ignoreWindows == true, reason: reason),
            actor: actor, now: Date())
        _ = await env.rollouts.advance(only: rollout.id)
        return rollout
    }

    /// Abort with rollback: each target the rollout finished gets its previous version back, one rollout per
    /// version (all at once: a rollback should not wait for waves).
    static func rollBack(_ rollout: RolloutRecord, actor: String, env: APIEnvironment) async throws -> ([UUID], [String]) {
        let children = try await env.store.rolloutChildren(rolloutID: rollout.id).filter { !$0.superseded }
        // Those it finished, and those still running (they end on the new version; their rollback runs after them).
        let finished = children.filter { $0.status == .succeeded || $0.status == .unchanged || $0.status.isFailure || $0.status == .running }
        let previous = try await env.store.previousVersions(
            certificateName: rollout.certificateName, targetIDs: finished.map(\.targetID), excludingRollout: rollout.id)
        var skipped: [String] = []
        var byVersion: [Int: [RolloutChild]] = [:]
        for child in finished {
            guard let version = previous[child.targetID], version != rollout.certificateVersion else {
                skipped.append("\(child.targetName ?? child.targetID.lowercasedText): no earlier version of \(rollout.certificateName) was deployed to it")
                continue
            }
            byVersion[version, default: []].append(child)
        }
        var created: [UUID] = []
        let strategy = RolloutStrategy(canary: .count(0), waves: .percent(100), failureBudget: .percent(100))
        for (version, group) in byVersion.sorted(by: { $0.key < $1.key }) {
            let record = try await env.store.createRollout(
                NewRollout(certificateName: rollout.certificateName, certificateVersion: version, strategy: strategy,
                           waves: [group.map(\.targetID)], optionsJSON: rollout.optionsJSON, ignoreWindows: true,
                           reason: "rollback of rollout \(rollout.id.lowercasedText)"),
                actor: actor, now: Date())
            _ = await env.rollouts.advance(only: record.id)
            created.append(record.id)
        }
        return (created, skipped)
    }

    // MARK: Views

    static func view(_ id: UUID, env: APIEnvironment) async throws -> RolloutView {
        let record = try await env.store.rollout(id: id)
        return view(record, children: try await env.store.rolloutChildren(rolloutID: id), withTargets: true)
    }

    static func view(_ record: RolloutRecord, children all: [RolloutChild], withTargets: Bool) -> RolloutView {
        let current = all.filter { !$0.superseded }
        var attempts: [UUID: Int] = [:]
        for child in all { attempts[child.targetID, default: 0] += child.attempts }
        func counts(_ children: [RolloutChild]) -> [String: Int] {
            var result: [String: Int] = [:]
            for child in children { result[child.status.rawValue, default: 0] += 1 }
            return result
        }
        var waves: [RolloutWaveView] = []
        for index in 0..<record.waveCount {
            let members = current.filter { $0.wave == index }
            let state: String
            if members.allSatisfy(\.status.isFinal) {
                state = "finished"
            } else if members.allSatisfy({ $0.status == .pending }) {
                state = "pending"
            } else {
                state = "running"
            }
            let targets = withTargets ? members.map { child in
                RolloutChildView(
                    deploymentID: child.id, targetID: child.targetID, targetName: child.targetName, status: child.status.rawValue, step: child.currentStep,
                    statusNote: child.statusNote, failure: child.failure, attempts: attempts[child.targetID] ?? 0,
                    startsAt: child.status == .waitingWindow ? child.notBefore : nil, startedAt: child.startedAt, finishedAt: child.finishedAt)
            } : []
            let isCanary: Bool
            if index == 0, case .count(let count) = record.strategy.canary { isCanary = count > 0 } else { isCanary = index == 0 }
            waves.append(RolloutWaveView(
                index: index + 1, canary: isCanary && record.waveCount > 0, state: state, counts: counts(members), targets: targets,
                startedAt: members.compactMap(\.startedAt).min(), finishedAt: state == "finished" ? members.compactMap(\.finishedAt).max() : nil))
        }
        let options = (try? JSONDecoder.api.decode(DeploymentRequest.Options.self, from: Data(record.optionsJSON.utf8))) ?? .init()
        var nextWaveAt: Date?
        if record.state == .running, let finished = record.waveFinishedAt, let pause = record.strategy.pauseBetweenWaves, pause.seconds > 0,
           record.currentWave + 1 < record.waveCount {
            nextWaveAt = finished.addingTimeInterval(TimeInterval(pause.seconds))
        }
        return RolloutView(
            id: record.id, certificate: record.certificateName, certificateVersion: record.certificateVersion, strategy: record.strategy,
            state: record.state.rawValue, currentWave: record.currentWave + 1, waves: waves, counts: counts(current), targetCount: record.targetCount,
            failureBudget: record.strategy.allowedFailures(targetCount: record.targetCount), stopReason: record.stopReason,
            stopDeploymentID: record.stopDeploymentID, ignoreWindows: record.ignoreWindows, reason: record.reason, options: options,
            actor: record.actor, createdAt: record.createdAt, updatedAt: record.updatedAt, finishedAt: record.finishedAt, drivenBy: record.drivenBy,
            nextWaveAt: nextWaveAt)
    }

    // MARK: Server-Sent Events

    /// Streams the rollout: its progress events (from the audit log, so every replica's are seen), each child's status
    /// changes, and state changes; `end` when it finishes. Woken by this replica's driver; polls every second.
    static func eventStream(_ id: UUID, env: APIEnvironment) -> Response {
        let body = ResponseBody { writer in
            var lastAudit: Int64 = 0
            var sentChildren: [UUID: String] = [:]
            var sentState: String?
            while true {
                let generation = env.events.generation(of: id)
                let current: RolloutView
                let audits: [AuditEvent]
                do {
                    current = try await view(id, env: env)
                    audits = try await env.store.auditEvents(AuditFilter(objectType: "rollout", objectID: id.lowercasedText), limit: 500, cursor: nil).items
                } catch {
                    try await writer.write(DeploymentRoutes.event("error", data: #"{"detail":"the rollout could not be read"}"#))
                    break
                }
                for audit in audits.reversed() where audit.id > lastAudit {
                    lastAudit = audit.id
                    let kind = audit.action == AuditAction.rolloutProgress ? audit.outcome : String(audit.action.dropFirst("rollout.".count))
                    guard audit.outcome != "failure" else { continue }
                    try await writer.write(DeploymentRoutes.event(
                        RolloutEventName.progress, json: RolloutProgressEvent(kind: kind, detail: audit.detail, actor: audit.actor, time: audit.time)))
                }
                for wave in current.waves {
                    for child in wave.targets where sentChildren[child.deploymentID] != child.status + (child.step ?? "") {
                        sentChildren[child.deploymentID] = child.status + (child.step ?? "")
                        try await writer.write(DeploymentRoutes.event(RolloutEventName.child, json: child))
                    }
                }
                if current.state != sentState {
                    sentState = current.state
                    if !current.isFinished { try await writer.write(DeploymentRoutes.event(RolloutEventName.rollout, json: current)) }
                }
                if current.isFinished {
                    try await writer.write(DeploymentRoutes.event(RolloutEventName.end, json: current))
                    break
                }
                await env.events.wait(for: id, after: generation, timeout: .seconds(1))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}
