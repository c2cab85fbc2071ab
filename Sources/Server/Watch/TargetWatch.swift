import CertdeployAPI
import Core
import Foundation
import Logging
import NIOConcurrencyHelpers
import Store

/// The server's watch over what it deployed: it keeps OCSP staples fresh on the targets certdeploy staples
/// (``refreshStaples(now:)``, `StapleRefresher.swift`) and checks that every target still serves what was deployed
/// (``verify(_:now:)``, `DriftDetector.swift`).
///
/// "What was deployed" is a target's current deployment: its newest `succeeded` or `unchanged` deployment that was
/// not a dry run. Its stored result names the leaf (SHA-256), the stapling decision and the staple deployed.
///
/// Everything the watch does to a target goes through the deployment queue (a staple refresh is a deployment of the
/// same certificate version with a fresh staple; a remediation is a forced deployment), so it has the engine's
/// locks, compare, rollback and verify, and shows in history, SSE and the audit log like any other deployment.
public final class TargetWatch: Sendable {
    /// The actor of staple refresh deployments and of the refresher's audit events.
    public static let refreshActor = "staple-refresh"
    /// The actor of remediation deployments and of the drift check's audit events.
    public static let remediationActor = "drift-remediation"

    let store: any Store
    let codec: TargetCodec
    let worker: DeploymentWorker
    let metrics: ServerMetrics
    let configuration: WatchConfiguration
    let logger: Logger
    let prober: any TLSProber
    let fetcher: OCSPFetcher
    let state = NIOLockedValueBox(State())

    struct State {
        /// Per leaf SHA-256: the refresher's memory of the responder.
        var certificates: [String: CertificateRefresh] = [:]
        /// Per target: the staple refresh deployment last queued, and its failures.
        var pushes: [UUID: Push] = [:]
        /// Targets that have per-target gauges.
        var gaugedTargets: Set<UUID> = []
        /// Work that waits for a target's maintenance window (said once per wait), by kind of work and target.
        var waitingForWindow: Set<WindowWait> = []
    }

    struct CertificateRefresh {
        var lastFetch: Date?
        /// The newest good response fetched.
        var fetched: OCSPStaple?
        var failures = 0
        var retryAt: Date?
        var lastError: String?
        /// Set when the responder said revoked.
        var revoked: OCSPStaple?
    }

    struct Push {
        var deploymentID: UUID?
        var failures = 0
        var retryAt: Date?
    }

    init(store: any Store, codec: TargetCodec, worker: DeploymentWorker, metrics: ServerMetrics, configuration: WatchConfiguration,
         logger: Logger, prober: any TLSProber = OpenSSLTLSProber(), fetcher: OCSPFetcher = OCSPFetcher()) {
        self.store = store
        self.codec = codec
        self.worker = worker
        self.metrics = metrics
        self.configuration = configuration
        self.logger = logger
        self.prober = prober
        self.fetcher = fetcher
    }

    var now: Date { configuration.now() }

    // MARK: What was deployed

    /// A target's current deployment and what its result says.
    struct CurrentDeployment: Sendable {
        var record: DeploymentRecord
        var result: DeploymentResult

        /// The staple certdeploy put on the target (staple-file stapling only).
        var staple: OCSPStaple? { stapleFile ? result.staple : nil }
        /// certdeploy writes this target's staple (HAProxy `.ocsp`, Envoy SDS, K8s `tls.ocsp-staple`, nginx `ssl_stapling_file`).
        var stapleFile: Bool { result.stapling?.mode == .stapleFile }
    }

    /// The newest succeeded or unchanged deployment of `targetID` that was not a dry run, with its result.
    static func currentDeployment(of targetID: UUID, store: any Store) async throws -> CurrentDeployment? {
        var cursor: String?
        repeat {
            let page = try await store.listDeployments(DeploymentFilter(targetID: targetID, statuses: [.succeeded, .unchanged]), limit: 20, cursor: cursor)
            for record in page.items {
                guard let json = record.resultJSON, let result = try? JSONDecoder.api.decode(DeploymentResult.self, from: Data(json.utf8)),
                      !result.dryRun else { continue }
                return CurrentDeployment(record: record, result: result)
            }
            cursor = page.nextCursor
        } while cursor != nil
        return nil
    }

    func currentDeployment(of targetID: UUID) async throws -> CurrentDeployment? {
        try await Self.currentDeployment(of: targetID, store: store)
    }

    /// Whether the target has a queued or running deployment (the watch then leaves it alone).
    func hasLiveDeployment(_ targetID: UUID) async throws -> Bool {
        try await !store.listDeployments(DeploymentFilter(targetID: targetID, statuses: [.queued, .running]), limit: 1, cursor: nil).items.isEmpty
    }

    /// Queues a deployment on behalf of the watch and wakes the workers. The store audits it (`deployment.enqueue`).
    func enqueue(_ target: TargetRecord, certificate: String, version: Int, optionsJSON: String, actor: String) async throws -> DeploymentRecord {
        let record = try await store.enqueue(
            NewDeployment(targetID: target.id, certificateName: certificate, certificateVersion: version, optionsJSON: optionsJSON),
            actor: actor, now: now)
        worker.wake()
        return record
    }

    /// Records an audit event for something the watch did or saw (best effort: a failure is logged).
    /// Whether the target's maintenance windows let a deploy start at `now`; if not, when they do, and why.
    func windowVerdict(_ target: TargetRecord, at now: Date) async -> MaintenanceRules.Verdict {
        do {
            return try await store.maintenanceRules(targetID: target.id).verdict(at: now)
        } catch {
            logger.error("target \(target.name): cannot read its maintenance windows (\(error)); treating it as open")
            return .open
        }
    }

    /// Which work waits for a window.
    struct WindowWait: Hashable {
        enum Work { case remediation, stapleRefresh }
        var work: Work
        var target: UUID
    }

    /// Records that `work` on the target waits for its window (true the first time of a wait: say it then), or
    /// may go ahead (`waiting` false).
    func noteWaitingForWindow(_ work: WindowWait.Work, _ target: TargetRecord, waiting: Bool) -> Bool {
        let key = WindowWait(work: work, target: target.id)
        return state.withLockedValue { state in
            waiting ? state.waitingForWindow.insert(key).inserted : state.waitingForWindow.remove(key) != nil
        }
    }

    func audit(_ action: String, target: TargetRecord, outcome: String, detail: String, actor: String) async {
        do {
            try await store.recordAuditEvent(NewAuditEvent(
                time: now, actor: actor, action: action, objectType: "target", objectID: target.id.lowercasedText, outcome: outcome,
                detail: detail))
        } catch {
            logger.error("cannot record the audit event \(action) for target \(target.name): \(error)")
        }
    }

    // MARK: Views

    /// The status part of a target's view.
    static func view(_ status: TargetStatusRecord?, expectedSHA256: String? = nil) -> TargetStatusView? {
        guard let status else { return nil }
        if status.sync == nil, status.staple == nil, status.checkedAt == nil, status.stapleCheckedAt == nil, expectedSHA256 == nil { return nil }
        return TargetStatusView(
            sync: status.sync, detail: status.syncDetail, checkedAt: status.checkedAt, servedSHA256: status.servedSHA256,
            expectedSHA256: expectedSHA256, staple: status.staple, stapleDetail: status.stapleDetail, stapleThisUpdate: status.stapleThisUpdate,
            stapleNextUpdate: status.stapleNextUpdate, stapleCheckedAt: status.stapleCheckedAt)
    }

    /// Adds the watch's fields (auto-remediation flag, status) to a target's view.
    static func decorate(_ view: TargetView, status: TargetStatusRecord?) -> TargetView {
        var view = view
        view.autoRemediate = status?.autoRemediate ?? false
        view.status = Self.view(status)
        return view
    }

    // MARK: Gauges

    /// Sets (or, with nil, removes) the per-target gauges.
    func updateGauges(target: UUID, stapleNextUpdate: Date?, certificateNotAfter: Date?, at now: Date) {
        metrics.setStapleSecondsRemaining(target: target, seconds: stapleNextUpdate.map { $0.timeIntervalSince(now) })
        metrics.setCertificateSecondsRemaining(target: target, seconds: certificateNotAfter.map { $0.timeIntervalSince(now) })
        state.withLockedValue { _ = $0.gaugedTargets.insert(target) }
    }

    /// Drops the gauges of targets that no longer exist.
    func dropGauges(except present: Set<UUID>) {
        let gone = state.withLockedValue { state -> Set<UUID> in
            let gone = state.gaugedTargets.subtracting(present)
            state.gaugedTargets.subtract(gone)
            return gone
        }
        for target in gone {
            metrics.setStapleSecondsRemaining(target: target, seconds: nil)
            metrics.setCertificateSecondsRemaining(target: target, seconds: nil)
        }
    }
}

extension TargetCodec {
    /// The stored certificate version as a bundle (the private key opened from the vault), as a deployment uses it.
    func bundle(_ version: CertificateVersionRecord) throws -> CertificateBundle {
        let privateKey = try vault.openBytes(
            version.encryptedPrivateKey, objectID: CertificateSecret.objectID(name: version.certificateName, leafSHA256: version.sha256),
            field: CertificateSecret.field)
        return try CertificateBundle.parse(
            certificatePEM: version.certificatePEM, chainPEM: version.chainPEM.isEmpty ? nil : version.chainPEM, privateKeyPEM: privateKey)
    }
}
