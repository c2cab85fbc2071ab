import Core
import Foundation

/// Everything the server keeps: certificates and their versions, targets, deployments (which are also the
/// job queue) and audit events.
///
/// Two implementations behave the same and pass the same test suite: ``SQLiteStore`` (a file under the
/// data directory; the default) and ``PostgresStore`` (shared by several server replicas).
///
/// Every mutation records an ``AuditEvent`` in the same transaction (and, when it fails, a "failure" event
/// afterwards). Mutations that stamp times use the store's clock; the job calls take `now` so the lease
/// logic can be driven by the caller (and by tests, without sleeping).
///
/// Jobs: a worker calls ``claimNext(owner:leaseDuration:limit:now:)`` to take queued deployments under a
/// lease, ``heartbeat(deploymentID:owner:leaseDuration:stepsJSON:now:)`` while it works, and
/// ``complete(deploymentID:owner:completion:now:)`` (or ``release(deploymentID:owner:retryAt:note:now:)`` to
/// retry later) at the end. A target never has two running deployments: the database refuses it. Someone
/// (every replica, periodically) calls ``requeueExpiredLeases(now:)``: a running deployment whose lease
/// expired goes back to the queue once, and ends `interrupted` the next time.
public protocol Store: Sendable {
    // MARK: Certificates

    /// Creates an empty certificate. Throws `.conflict(field: "name")` when the name is taken.
    func createCertificate(name: String, actor: String) async throws -> CertificateRecord
    /// Adds the next version (1, 2, …). Throws `.notFound` for an unknown certificate.
    func addCertificateVersion(_ version: NewCertificateVersion, actor: String) async throws -> CertificateVersionRecord
    func certificate(named name: String) async throws -> CertificateRecord
    /// The given version, or the newest when `version` is nil. Throws `.notFound` when there is none.
    func certificateVersion(name: String, version: Int?) async throws -> CertificateVersionRecord
    /// All versions, oldest first.
    func certificateVersions(name: String) async throws -> [CertificateVersionRecord]
    /// Ordered by name. `limit` 1…500.
    func listCertificates(namePrefix: String?, limit: Int, cursor: String?) async throws -> Page<CertificateRecord>
    /// Deletes the certificate and its versions. Throws `.conflict(field: "targets")` while a target is bound
    /// to it and `.conflict(field: "deployments")` while a deployment of it is queued or running.
    func deleteCertificate(name: String, actor: String) async throws

    // MARK: Targets

    /// Throws `.conflict(field: "name")` for a taken name (or `"id"` for a taken id), `.notFound` for an
    /// unknown bound certificate, `.invalidArgument` for bad labels or JSON.
    func createTarget(_ target: NewTarget, actor: String) async throws -> TargetRecord
    func target(id: UUID) async throws -> TargetRecord
    func target(named name: String) async throws -> TargetRecord
    /// Replaces the target's fields with `target`'s. `target.version` must be the stored version
    /// (else `.staleVersion`); the result has the next version.
    func updateTarget(_ target: TargetRecord, actor: String) async throws -> TargetRecord
    /// Deletes the target and cancels its queued deployments (their history stays).
    /// Throws `.conflict(field: "deployments")` while one of its deployments runs.
    func deleteTarget(id: UUID, actor: String) async throws
    /// Ordered by name, then id. `limit` 1…500. The cursor is opaque and stays valid across changes: a walk
    /// returns every target that exists throughout it exactly once.
    func listTargets(_ filter: TargetFilter, limit: Int, cursor: String?) async throws -> Page<TargetRecord>

    // MARK: Deployments and jobs

    /// Queues all of `deployments` in one transaction, or none: throws `.notFound` for the first unknown target or
    /// certificate version. Returns the records in the order given.
    func enqueue(_ deployments: [NewDeployment], actor: String, now: Date) async throws -> [DeploymentRecord]
    func deployment(id: UUID) async throws -> DeploymentRecord
    /// Newest first. `limit` 1…500.
    func listDeployments(_ filter: DeploymentFilter, limit: Int, cursor: String?) async throws -> Page<DeploymentRecord>
    /// Claims up to `limit` (0…500: the worker's free slots) queued deployments whose `notBefore` has
    /// passed, oldest first, at most one per target, only for targets with nothing running and only each
    /// target's oldest queued one. They become `running`, leased to `owner` until `now + leaseDuration`, with
    /// `attempts` incremented. May return fewer than are eligible while other claimers hold rows.
    func claimNext(owner: String, leaseDuration: Duration, limit: Int, now: Date) async throws -> [DeploymentRecord]
    /// Extends the lease to `now + leaseDuration` and optionally records progress (`[StepRecord]` as JSON).
    /// Throws `.leaseLost` when the deployment is not running under `owner` any more. (A lease that expired
    /// but was not yet dealt with by `requeueExpiredLeases` is still extended: nobody else has it.)
    func heartbeat(deploymentID: UUID, owner: String, leaseDuration: Duration, stepsJSON: String?, now: Date) async throws
        -> DeploymentRecord
    /// Records how a running deployment ended. Final: it is never retried. Throws `.leaseLost` as above.
    func complete(deploymentID: UUID, owner: String, completion: DeploymentCompletion, now: Date) async throws -> DeploymentRecord
    /// Gives a running deployment back to the queue, not to be claimed before `retryAt` (a retry after a
    /// connection error). Throws `.leaseLost` as above.
    func release(deploymentID: UUID, owner: String, retryAt: Date, note: String, now: Date) async throws -> DeploymentRecord
    /// Deals with running deployments whose lease expired at or before `now` (their worker died): the first
    /// time, back to `queued` with a status note; after that, final `interrupted`. Returns them as updated.
    func requeueExpiredLeases(now: Date) async throws -> [DeploymentRecord]
    /// Ends, as of `now`, the leases of running deployments held by an earlier boot of this worker: owners that
    /// start with `ownerPrefix` (the worker id and "/") other than `currentOwner`. A restarted replica calls it at
    /// start, so ``requeueExpiredLeases(now:)`` takes its dead deployments back at once instead of after the lease.
    /// Returns how many leases it ended.
    func expireLeases(ownerPrefix: String, except currentOwner: String, now: Date) async throws -> Int
    /// Each target's newest finished deployment (by queue order), for `targetIDs` (1…500); targets with none are
    /// absent. Only the summary columns are read (no steps or results), so a page of 500 stays cheap.
    func lastFinishedDeployments(targetIDs: [UUID]) async throws -> [UUID: FinishedDeploymentSummary]
    /// How many deployments are in each status (statuses with none are absent).
    func deploymentCounts() async throws -> [DeploymentStatus: Int]
    /// Cancels a queued deployment. Throws `.invalidState` for a running or finished one.
    func cancel(deploymentID: UUID, actor: String, now: Date) async throws -> DeploymentRecord

    // MARK: Rollouts

    /// Creates a rollout and its children (every target's deployment, `pending`, in its planned wave) in one
    /// transaction. Throws `.notFound` for an unknown target or certificate version, `.invalidArgument` for no
    /// targets or a target in two waves. Nothing runs until ``advanceRollouts(driver:only:now:)`` releases a wave.
    func createRollout(_ rollout: NewRollout, actor: String, now: Date) async throws -> RolloutRecord
    func rollout(id: UUID) async throws -> RolloutRecord
    /// Newest first. `limit` 1…500.
    func listRollouts(_ filter: RolloutFilter, limit: Int, cursor: String?) async throws -> Page<RolloutRecord>
    /// The rollout's children in plan order (wave, then creation), superseded attempts included.
    func rolloutChildren(rolloutID: UUID) async throws -> [RolloutChild]
    /// Moves every open rollout (or only `only`) on as far as its children allow: releases waves, queues children
    /// whose maintenance window opened, halts on an exceeded failure budget, finishes. Each rollout is advanced by
    /// one caller at a time (PostgreSQL: its row is locked and skipped by other replicas). `driver` is recorded as
    /// the replica driving it. Returns the rollouts the pass changed.
    func advanceRollouts(driver: String, only: UUID?, now: Date) async throws -> [RolloutAdvance]
    /// An operator's action. Throws `.invalidState` when the rollout's state does not allow it, `.notFound`.
    func actOnRollout(id: UUID, action: RolloutAction, actor: String, now: Date) async throws -> RolloutRecord
    /// For each of `targetIDs`: the version of `certificateName` its newest successful deployment before the
    /// rollout had (what an abort with rollback goes back to). Targets with none are absent.
    func previousVersions(certificateName: String, targetIDs: [UUID], excludingRollout: UUID) async throws -> [UUID: Int]

    // MARK: Maintenance windows

    /// Throws `.conflict(field: "name")` for a taken name, `.invalidArgument` for a bad schedule or selector,
    /// `.notFound` for an unknown target.
    func createWindow(_ window: NewMaintenanceWindow, actor: String, now: Date) async throws -> MaintenanceWindowRecord
    /// By name.
    func windows() async throws -> [MaintenanceWindowRecord]
    func deleteWindow(named name: String, actor: String, now: Date) async throws
    /// The windows and freezes that apply to the target (by id or by its labels).
    func maintenanceRules(targetID: UUID) async throws -> MaintenanceRules

    // MARK: Certificate rollout policy

    /// Nil when none was set. Throws `.notFound` for an unknown certificate.
    func certificatePolicy(name: String) async throws -> CertificatePolicy?
    func setCertificatePolicy(name: String, _ policy: CertificatePolicy, actor: String) async throws -> CertificatePolicy

    // MARK: Audit

    /// Records an event the server observed itself (a refused request, …).
    @discardableResult
    func recordAuditEvent(_ event: NewAuditEvent) async throws -> AuditEvent
    /// Newest first. `limit` 1…500.
    func auditEvents(_ filter: AuditFilter, limit: Int, cursor: String?) async throws -> Page<AuditEvent>

    // MARK: Settings and secrets

    /// A server setting (the secret-key record, …), nil when unset.
    func setting(named name: String) async throws -> String?
    /// Sets a setting (audited as `setting.set`).
    func setSetting(named name: String, value: String, actor: String) async throws
    /// Whether anything encrypted is stored: a certificate version (private keys are always encrypted) or a target
    /// whose config or transport `hasSecret` says holds one.
    func hasEncryptedData(targetHasSecret: @escaping @Sendable (TargetRecord) -> Bool) async throws -> Bool
    /// Re-encrypts every stored secret in one transaction: each certificate version's private key through
    /// `privateKey`, each target's config and transport JSON through `target` (returning the new
    /// `(configJSON, transportJSON)`), and sets `settingName` to `settingValue` (the new key record). Nothing
    /// changes when a closure throws. Returns how many values were rewritten.
    func rotateSecrets(
        settingName: String, settingValue: String, actor: String,
        privateKey: @escaping @Sendable (CertificateVersionRecord) throws -> [UInt8],
        target: @escaping @Sendable (TargetRecord) throws -> (configJSON: String, transportJSON: String)
    ) async throws -> Int

    // MARK: Target status (drift and staple watch)

    /// The target's status row, nil when nothing was recorded yet.
    func targetStatus(targetID: UUID) async throws -> TargetStatusRecord?
    /// The status rows of `targetIDs` (all rows when nil); targets without one are absent.
    func targetStatuses(targetIDs: [UUID]?) async throws -> [UUID: TargetStatusRecord]
    /// Records what a drift check saw (the sync fields only; the rest of the row stays). Not audited: the server
    /// audits what it does about it. Throws `.notFound` for an unknown target.
    @discardableResult
    func recordSyncStatus(targetID: UUID, _ observation: TargetSyncObservation) async throws -> TargetStatusRecord
    /// Records the staple state (the staple fields only). Not audited. Throws `.notFound` for an unknown target.
    @discardableResult
    func recordStapleStatus(targetID: UUID, _ observation: TargetStapleObservation) async throws -> TargetStatusRecord
    /// Turns the target's auto-remediation on or off (audited as `target.remediation.set`). Throws `.notFound`
    /// for an unknown target.
    func setAutoRemediate(targetID: UUID, enabled: Bool, actor: String) async throws

    // MARK: Lifecycle

    /// The applied schema version.
    func schemaVersion() async throws -> Int
    /// Closes the connection(s). The store is unusable afterwards.
    func close() async throws
}

extension Store {
    /// Records the engine's result for a running deployment.
    public func complete(deploymentID: UUID, owner: String, result: DeploymentResult, now: Date) async throws -> DeploymentRecord {
        try await complete(deploymentID: deploymentID, owner: owner, completion: DeploymentCompletion(result: result), now: now)
    }

    /// Every deployment matching `filter` (newest first), walking all pages.
    public func allDeployments(_ filter: DeploymentFilter, pageSize: Int = 500) async throws -> [DeploymentRecord] {
        try await Self.walk { try await listDeployments(filter, limit: pageSize, cursor: $0) }
    }

    /// Every target matching `filter`, walking all pages.
    public func allTargets(_ filter: TargetFilter = TargetFilter(), pageSize: Int = 500) async throws -> [TargetRecord] {
        try await Self.walk { try await listTargets(filter, limit: pageSize, cursor: $0) }
    }

    /// The items of every page, from the first to the one without a next cursor.
    private static func walk<Item>(_ page: (_ cursor: String?) async throws -> Page<Item>) async throws -> [Item] {
        var result: [Item] = []
        var cursor: String?
        repeat {
            let next = try await page(cursor)
            result += next.items
            cursor = next.nextCursor
        } while cursor != nil
        return result
    }
}

extension Store {
    /// Queues a deployment. Throws `.notFound` for an unknown target or certificate version.
    public func enqueue(_ deployment: NewDeployment, actor: String, now: Date) async throws -> DeploymentRecord {
        guard let record = try await enqueue([deployment], actor: actor, now: now).first else {
            throw StoreError.database("enqueueing one deployment returned none")
        }
        return record
    }
}
