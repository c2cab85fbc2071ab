import CertdeployAPI
import Core
import Foundation
import Hummingbird
import Store

/// Targets: create, list (label / connector / name-prefix filters, cursor pages), show, update, delete, test, and
/// the stapling config the connector would emit.
enum TargetRoutes {
    static func add(to router: Router<APIRequestContext>, environment env: APIEnvironment) {
        router.post("/api/v1/targets") { request, context in
            try context.requireAdmin("creating a target")
            var request = request
            let input = try await request.decodeStrict(TargetInput.self, limit: env.configuration.maxBodyBytes)
            if input.version != nil { throw APIError.invalid("/version", "is only allowed on update (PUT)") }
            let stored = try env.codec.stored(input, id: UUID(), existing: nil)
            let record = try await storeWrite { try await env.store.createTarget(stored, actor: context.actor) }
            // A new target has no status yet: only the auto-remediation flag, when asked for (no extra read).
            var status: TargetStatusRecord?
            if input.autoRemediate == true {
                try await env.store.setAutoRemediate(targetID: record.id, enabled: true, actor: context.actor)
                status = try await env.store.targetStatus(targetID: record.id)
            }
            return try JSONResponse.make(TargetWatch.decorate(env.codec.view(record), status: status), status: .created)
        }
        router.get("/api/v1/targets") { request, _ in
            let query = QueryReader(request: request)
            try query.allowOnly(["label", "connector", "namePrefix", "limit", "cursor"])
            let filter = TargetFilter(labelSelector: query.string("label"), connectorID: query.string("connector"), namePrefix: query.string("namePrefix"))
            if let connector = filter.connectorID, env.registry.connector(id: connector) == nil {
                throw APIError.invalid("query:connector", "unknown connector \"\(connector)\" (known: \(env.registry.ids.joined(separator: ", ")))")
            }
            let limit = try query.limit()
            let page: Page<TargetRecord>
            do {
                page = try await env.store.listTargets(filter, limit: limit, cursor: query.cursor())
            } catch StoreError.invalidArgument(let message) {
                throw APIError.invalid(message.contains("cursor") ? "query:cursor" : "query:label", message)
            }
            let statuses = try await env.store.targetStatuses(targetIDs: page.items.map(\.id))
            let lastDeployments = try await env.store.lastFinishedDeployments(targetIDs: page.items.map(\.id))
            return try JSONResponse.make(page.items.map { record in
                var item = env.codec.listItem(record)
                item.view = TargetWatch.decorate(item.view, status: statuses[record.id])
                item.view.lastDeployment = lastDeployments[record.id].map(summary)
                return item
            }, nextCursor: page.nextCursor)
        }
        router.get("/api/v1/targets/{target}") { _, context in
            let record = try await resolve(try context.parameters.require("target"), env: env)
            let last = try await env.store.lastFinishedDeployments(targetIDs: [record.id])[record.id]
            return try JSONResponse.make(TargetWatch.decorate(
                env.codec.view(record, lastDeployment: last.map(summary)), status: try await env.store.targetStatus(targetID: record.id)))
        }
        router.put("/api/v1/targets/{target}") { request, context in
            try context.requireAdmin("updating a target")
            let existing = try await resolve(try context.parameters.require("target"), env: env)
            var request = request
            let input = try await request.decodeStrict(TargetInput.self, limit: env.configuration.maxBodyBytes)
            if let version = input.version, version != existing.version {
                throw APIError.from(.staleVersion(expected: version, current: existing.version))
            }
            let stored = try env.codec.stored(input, id: existing.id, existing: existing)
            var updated = existing
            updated.name = stored.name
            updated.labels = stored.labels
            updated.connectorID = stored.connectorID
            updated.configJSON = stored.configJSON
            updated.transportJSON = stored.transportJSON
            updated.certificateName = stored.certificateName
            let record = try await storeWrite { try await env.store.updateTarget(updated, actor: context.actor) }
            if let autoRemediate = input.autoRemediate {
                try await env.store.setAutoRemediate(targetID: record.id, enabled: autoRemediate, actor: context.actor)
            }
            return try JSONResponse.make(TargetWatch.decorate(env.codec.view(record), status: try await env.store.targetStatus(targetID: record.id)))
        }
        router.delete("/api/v1/targets/{target}") { _, context in
            try context.requireAdmin("deleting a target")
            let record = try await resolve(try context.parameters.require("target"), env: env)
            try await env.store.deleteTarget(id: record.id, actor: context.actor)
            return JSONResponse.noContent()
        }
        router.post("/api/v1/targets/{target}/test") { _, context in
            let record = try await resolve(try context.parameters.require("target"), env: env)
            let report = await TargetTester(environment: env).test(record)
            _ = try? await env.store.recordAuditEvent(
                NewAuditEvent(time: Date(), actor: context.actor, action: "target.test", objectType: "target",
                              objectID: record.id.lowercasedText, outcome: report.ok ? "success" : "failure"))
            return try JSONResponse.make(report)
        }
        router.get("/api/v1/targets/{target}/stapling-config") { _, context in
            let record = try await resolve(try context.parameters.require("target"), env: env)
            return try JSONResponse.make(try await staplingConfig(record, env: env))
        }
    }

    /// A target by UUID or by name.
    static func resolve(_ reference: String, env: APIEnvironment) async throws -> TargetRecord {
        if let id = UUID(text: reference) { return try await env.store.target(id: id) }
        return try await env.store.target(named: reference)
    }

    static func summary(_ deployment: FinishedDeploymentSummary) -> DeploymentSummary {
        DeploymentSummary(id: deployment.id, status: deployment.status.rawValue, certificate: deployment.certificateName,
                          certificateVersion: deployment.certificateVersion, finishedAt: deployment.finishedAt)
    }

    static func summary(_ deployment: DeploymentRecord) -> DeploymentSummary {
        DeploymentSummary(id: deployment.id, status: deployment.status.rawValue, certificate: deployment.certificateName,
                          certificateVersion: deployment.certificateVersion, finishedAt: deployment.finishedAt)
    }

    /// Store writes whose `invalidArgument` is about labels and whose `notFound` certificate is the bound one.
    static func storeWrite<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch StoreError.invalidArgument(let message) {
            throw APIError.invalid(message.lowercased().contains("label") ? "/labels" : "/", message)
        } catch StoreError.notFound(let type, let id) where type == "certificate" {
            throw APIError.invalid("/certificate", "no certificate named \"\(id)\"; upload it first")
        }
    }

    /// The plan's stapling decision and snippets for the bound certificate's newest version (no I/O on the target;
    /// no OCSP lookup either: this shows the config, not a staple).
    static func staplingConfig(_ record: TargetRecord, env: APIEnvironment) async throws -> StaplingConfigView {
        guard let certificateName = record.certificateName else {
            throw APIError.conflict("target \(record.name) has no certificate bound; set \"certificate\" on the target first", pointer: "/certificate")
        }
        let version = try await env.store.certificateVersion(name: certificateName, version: nil)
        let (plan, _) = try plan(record, version: version, env: env)
        return StaplingConfigView(
            target: record.id, connector: record.connectorID, certificate: certificateName, certificateVersion: version.version,
            stapling: plan.stapling, snippets: plan.snippets)
    }

    /// Plans `version` for the target (pure: the connector does no I/O).
    static func plan(_ record: TargetRecord, version: CertificateVersionRecord, env: APIEnvironment) throws -> (DeploymentPlan, TargetCodec.Runtime) {
        let runtime: TargetCodec.Runtime
        let bundle: CertificateBundle
        do {
            runtime = try env.codec.runtime(record)
            let key = try env.vault.openBytes(
                version.encryptedPrivateKey, objectID: CertificateSecret.objectID(name: version.certificateName, leafSHA256: version.sha256),
                field: CertificateSecret.field)
            bundle = try CertificateBundle.parse(
                certificatePEM: version.certificatePEM, chainPEM: version.chainPEM.isEmpty ? nil : version.chainPEM, privateKeyPEM: key)
        } catch {
            throw APIError.conflict("cannot plan for target \(record.name): \(error)")
        }
        do {
            let plan = try runtime.connector.plan(
                for: bundle, context: PlanContext(targetID: record.name, transportHost: runtime.ssh?.host))
            return (plan, runtime)
        } catch {
            throw APIError.conflict("the \(record.connectorID) connector cannot plan \(version.certificateName) v\(version.version) for \(record.name): \(error)")
        }
    }
}
