import CertdeployAPI
import Foundation
import Hummingbird

/// Health, readiness, version, auth info, metrics and the OpenAPI document.
enum ServiceRoutes {
    static func add(to router: Router<APIRequestContext>, environment env: APIEnvironment) {
        router.get("/health") { _, _ in
            try JSONResponse.make(HealthResponse(status: "ok"))
        }
        router.get("/ready") { _, _ in
            var storeState = "ok"
            do {
                _ = try await env.store.schemaVersion()
            } catch {
                storeState = "unreachable"
            }
            let workers = env.worker.isRunning ? "running" : "stopped"
            let ready = storeState == "ok" && workers == "running"
            return try JSONResponse.make(
                ReadinessResponse(status: ready ? "ready" : "not_ready", store: storeState, workers: workers),
                status: ready ? .ok : .serviceUnavailable)
        }
        router.get("/api/v1/version") { _, _ in
            try JSONResponse.make(VersionResponse(version: CertdeployServer.version, apiVersion: "v1"))
        }
        router.get("/api/v1/auth/info") { _, context in
            try JSONResponse.make(
                AuthInfoResponse(
                    scheme: "bearer", header: "Authorization: Bearer <API key>", authenticated: context.principal != nil,
                    name: context.principal?.name, admin: context.principal?.isAdmin))
        }
        router.get("/metrics") { _, _ in
            if let counts = try? await env.store.deploymentCounts() { env.metrics.setQueueDepth(counts[.queued] ?? 0) }
            return JSONResponse.text(env.metrics.exposition(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/api/v1/openapi.yaml") { _, _ in
            JSONResponse.text(env.openAPIDocument(), contentType: "application/yaml")
        }
    }
}
