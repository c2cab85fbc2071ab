import CertdeployAPI
import Core
import Foundation
import Hummingbird
import Store

/// Certificates: upload a bundle as a new version (preflight on upload), list, show, delete. Key material never
/// leaves the server.
enum CertificateRoutes {
    static func add(to router: Router<APIRequestContext>, environment env: APIEnvironment) {
        router.post("/api/v1/certificates") { request, context in
            try context.requireAdmin("uploading a certificate")
            var request = request
            let body = try await request.decodeStrict(CertificateUpload.self, limit: env.configuration.maxBodyBytes)
            let version = try await upload(body, actor: context.actor, env: env)
            return try JSONResponse.make(version, status: .created)
        }
        router.get("/api/v1/certificates") { request, _ in
            let query = QueryReader(request: request)
            try query.allowOnly(["namePrefix", "limit", "cursor"])
            let page = try await storeCall { try await env.store.listCertificates(namePrefix: query.string("namePrefix"), limit: try query.limit(), cursor: query.cursor()) }
            var items: [CertificateView] = []
            for record in page.items {
                let latest = try await record.latestVersion.asyncMap { try await env.store.certificateVersion(name: record.name, version: $0) }
                items.append(view(record, latest: latest.flatMap { try? versionView($0) }, versions: nil))
            }
            return try JSONResponse.make(ListResponse(items: items, nextCursor: page.nextCursor))
        }
        router.get("/api/v1/certificates/{name}") { _, context in
            let name = try context.parameters.require("name")
            let record = try await env.store.certificate(named: name)
            let versions = try await env.store.certificateVersions(name: name).map(versionView)
            return try JSONResponse.make(view(record, latest: versions.last, versions: versions))
        }
        router.delete("/api/v1/certificates/{name}") { _, context in
            try context.requireAdmin("deleting a certificate")
            let name = try context.parameters.require("name")
            try await env.store.deleteCertificate(name: name, actor: context.actor)
            return JSONResponse.noContent()
        }
    }

    /// Preflight (parse, key match, chain order and signatures, validity), seal the key, store the next version.
    static func upload(_ upload: CertificateUpload, actor: String, env: APIEnvironment) async throws -> CertificateVersionView {
        guard TargetCodec.isValidName(upload.name) else {
            throw APIError.invalid("/name", "must be 1–128 characters of A–Z, a–z, 0–9, '.', '_' or '-'")
        }
        if let problem = upload.rolloutStrategy?.problem() { throw APIError.invalid("/rolloutStrategy/\(problem.field)", problem.reason) }
        let bundle: CertificateBundle
        do {
            bundle = try CertificateBundle.parse(certificatePEM: upload.certificatePEM, chainPEM: upload.chainPEM, privateKeyPEM: upload.privateKeyPEM)
        } catch {
            throw APIError.invalid(pointer(for: error.code), "\(error.code.rawValue): \(error.message)")
        }
        let sealedKey = try env.vault.sealBytes(
            bundle.privateKeyPEM, objectID: CertificateSecret.objectID(name: upload.name, leafSHA256: bundle.info.sha256),
            field: CertificateSecret.field, pointer: "/privateKeyPEM")
        do {
            _ = try await env.store.createCertificate(name: upload.name, actor: actor)
        } catch StoreError.conflict(field: "name") {
            // Exists: this upload is its next version.
        }
        let record = try await env.store.addCertificateVersion(
            NewCertificateVersion(certificateName: upload.name, certificatePEM: bundle.leafPEM, chainPEM: bundle.chainPEM,
                                  encryptedPrivateKey: sealedKey, info: bundle.info),
            actor: actor)
        var view = try versionView(record)
        view.notes = bundle.notes
        // The version is stored whatever happens next: a policy that cannot start its rollout is a note, not an error.
        do {
            view.autoRollout = try await autoRollout(record, options: upload.rolloutOptions, strategy: upload.rolloutStrategy, actor: actor, env: env)
        } catch {
            let reason = (error as? APIError).map { problem in problem.problem(instance: nil).errors?.first.map { "\($0.pointer): \($0.detail)" } ?? problem.problem(instance: nil).detail } ?? "\(error)"
            view.notes.append("auto-rollout not started: \(reason)")
            env.logger.warning("auto-rollout of \(record.certificateName) v\(record.version) not started: \(reason)")
        }
        return view
    }

    /// With `autoRollout` in the certificate's policy: a rollout of the new version to every target bound to the
    /// certificate, with the policy's strategy. Nil when there is no such policy or no bound target.
    static func autoRollout(_ version: CertificateVersionRecord, options: DeploymentRequest.Options?, strategy: RolloutStrategy?, actor: String,
                            env: APIEnvironment) async throws -> UUID? {
        guard let policy = try await env.store.certificatePolicy(name: version.certificateName), policy.autoRollout else { return nil }
        let bound = try await env.store.allTargets().filter { $0.certificateName == version.certificateName }
        guard !bound.isEmpty else { return nil }
        let request = DeploymentRequest(certificate: version.certificateName, version: version.version, options: options,
                                        strategy: strategy ?? policy.strategy ?? .default)
        let rollout = try await RolloutRoutes.start(request, version: version, targets: bound, actor: actor, isAdmin: false,
                                                    reason: "auto-rollout of version \(version.version)", env: env)
        return rollout.id
    }

    static func pointer(for code: BundleError.Code) -> String {
        switch code {
        case .noPrivateKey, .unsupportedKey, .encryptedKey: "/privateKeyPEM"
        case .keyMismatch: "/privateKeyPEM"
        case .brokenChain: "/chainPEM"
        case .malformedPEM, .noCertificate, .notYetValid, .expired: "/certificatePEM"
        }
    }

    static func versionView(_ record: CertificateVersionRecord) throws -> CertificateVersionView {
        let info = try CertificateInfo(leafPEM: record.certificatePEM)
        return CertificateVersionView(
            name: record.certificateName, version: record.version, sha256: record.sha256, subject: info.subject, issuer: info.issuer,
            notBefore: info.notBefore, notAfter: record.notAfter, subjectAlternativeNames: record.subjectAlternativeNames,
            mustStaple: record.mustStaple, ocspURL: info.ocspURL, certificatePEM: record.certificatePEM, chainPEM: record.chainPEM,
            createdAt: record.createdAt)
    }

    static func view(_ record: CertificateRecord, latest: CertificateVersionView?, versions: [CertificateVersionView]?) -> CertificateView {
        CertificateView(name: record.name, createdAt: record.createdAt, updatedAt: record.updatedAt, latestVersion: record.latestVersion,
                        latest: latest, versions: versions)
    }
}

/// Runs a store call whose `invalidArgument` is about the query (cursor, prefix), naming it as such.
func storeCall<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch StoreError.invalidArgument(let message) {
        throw APIError.invalid(message.contains("cursor") ? "query:cursor" : "query", message)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
