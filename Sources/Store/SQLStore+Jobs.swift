import Core
import Foundation

// Deployments as jobs.
//
// States: queued → running (claimNext) → succeeded | unchanged | failed | rolled_back | rollback_failed
// (complete); running → queued (release, for a retry; or requeueExpiredLeases, the first time a lease
// expires) → … ; running → interrupted (requeueExpiredLeases, a later time); queued → cancelled (cancel,
// deleteTarget).
//
// One running deployment per target is enforced three times over: claimNext only picks targets with
// nothing running (and only each target's oldest queued deployment); on PostgreSQL a claimer locks the
// target row (`FOR NO KEY UPDATE SKIP LOCKED`) before its UPDATE re-checks that in a fresh snapshot; and the
// partial unique index `deployments_one_running_per_target` refuses a second running row whatever happens.
// On SQLite the whole claim is one `BEGIN IMMEDIATE` transaction: one writer at a time.

extension SQLStore {
    static var deploymentColumns: String { deploymentColumnNames.joined(separator: ", ") }

    static var deploymentColumnNames: [String] {
        [
            "id", "seq", "target_id", "certificate_name", "certificate_version", "status", "options_json", "steps_json",
            "failure_json", "result_json", "status_note", "attempts", "interruptions", "lease_owner", "lease_expires_at",
            "not_before", "created_at", "started_at", "finished_at", "actor", "rollout_id", "wave", "superseded",
        ]
    }

    static func deployment(_ row: SQLRow) throws -> DeploymentRecord {
        let statusText = try row.string("status")
        guard let status = DeploymentStatus(rawValue: statusText) else {
            throw StoreError.corrupt("deployments.status \(statusText.debugDescription)")
        }
        return DeploymentRecord(
            id: try row.uuid("id"), targetID: try row.uuid("target_id"), certificateName: try row.string("certificate_name"),
            certificateVersion: try row.int("certificate_version"), status: status, optionsJSON: try row.string("options_json"),
            stepsJSON: try row.string("steps_json"), failureJSON: try row.optionalString("failure_json"),
            resultJSON: try row.optionalString("result_json"), statusNote: try row.optionalString("status_note"),
            attempts: try row.int("attempts"), interruptions: try row.int("interruptions"),
            leaseOwner: try row.optionalString("lease_owner"), leaseExpiresAt: try row.optionalDate("lease_expires_at"),
            notBefore: try row.date("not_before"), createdAt: try row.date("created_at"), startedAt: try row.optionalDate("started_at"),
            finishedAt: try row.optionalDate("finished_at"), actor: try row.string("actor"),
            rolloutID: row.isNull("rollout_id") ? nil : try row.uuid("rollout_id"), wave: try row.optionalInt64("wave").map { Int($0) },
            superseded: try row.bool("superseded"))
    }

    /// After an UPDATE of a running deployment leased to `owner` matched nothing: why.
    static func leaseFailure(_ tx: any SQLTransaction, _ id: UUID) async throws -> StoreError {
        guard try await !tx.query("SELECT id FROM deployments WHERE id = $1", [.uuid(id)]).isEmpty else {
            return .notFound(objectType: "deployment", id: id.lowercasedText)
        }
        return .leaseLost(deploymentID: id)
    }

    // MARK: Queue

    /// Rows per multi-row statement: 500 rows of 7 parameters stay far below both databases' limits.
    static var enqueueChunk: Int { 500 }

    public func enqueue(_ news: [NewDeployment], actor: String, now: Date) async throws -> [DeploymentRecord] {
        guard !news.isEmpty else { return [] }
        let now = now.storePrecision
        let ids = news.map { $0.id ?? UUID() }
        let entries = Array(zip(ids, news))
        let chunks = stride(from: 0, to: entries.count, by: Self.enqueueChunk).map { entries[$0..<min($0 + Self.enqueueChunk, entries.count)] }
        let dialect = dialect
        do {
            return try await driver.transaction(write: true) { tx in
                for optionsJSON in Set(news.map(\.optionsJSON)) { try Validate.jsonObject(optionsJSON, field: "optionsJSON") }
                for chunk in chunks { try await Self.requireTargets(tx, Set(chunk.map(\.1.targetID)), lock: dialect.keyShare) }
                for certificate in Set(news.map { CertificateVersionKey(name: $0.certificateName, version: $0.certificateVersion) }) {
                    try await Self.requireCertificate(tx, certificate.name, lock: dialect.keyShare)
                    guard try await !tx.query(
                        "SELECT version FROM certificate_versions WHERE certificate_name = $1 AND version = $2",
                        [.text(certificate.name), .int(certificate.version)]
                    ).isEmpty else { throw StoreError.notFound(objectType: "certificateVersion", id: "\(certificate.name)@\(certificate.version)") }
                }
                var records: [UUID: DeploymentRecord] = [:]
                for chunk in chunks {
                    let parameters = SQLParameters()
                    let rows = chunk.map { id, new in
                        let values: [SQLValue] = [.uuid(id), .uuid(new.targetID), .text(new.certificateName), .int(new.certificateVersion),
                                                  .text(new.optionsJSON), .time(now), .text(actor)]
                        let placeholders = values.map { parameters.bind($0) }
                        // not_before and created_at share the time.
                        return "(\(placeholders[0...4].joined(separator: ", ")), 'queued', '[]', 0, 0, \(placeholders[5]), \(placeholders[5]), \(placeholders[6]))"
                    }
                    let inserted = try await tx.query(
                        """
                        INSERT INTO deployments (id, target_id, certificate_name, certificate_version, options_json, status, steps_json,
                            attempts, interruptions, not_before, created_at, actor)
                        VALUES \(rows.joined(separator: ", "))
                        RETURNING \(Self.deploymentColumns)
                        """, parameters.values)
                    for row in inserted {
                        let record = try Self.deployment(row)
                        records[record.id] = record
                    }
                    try await Self.insertAudits(tx, chunk.map { id, new in
                        NewAuditEvent(
                            time: now, actor: actor, action: AuditAction.deploymentEnqueue, objectType: "deployment", objectID: id.lowercasedText,
                            outcome: "success",
                            detail: "certificate \(new.certificateName) version \(new.certificateVersion) to target \(new.targetID.lowercasedText)")
                    })
                }
                return try ids.map { id in
                    guard let record = records[id] else { throw StoreError.database("INSERT … RETURNING did not return deployment \(id.lowercasedText)") }
                    return record
                }
            }
        } catch {
            // One failure event for the request: nothing of it was enqueued.
            let detail = news.count == 1 ? String(describing: error) : "\(error) (none of the \(news.count) deployments was enqueued)"
            await recordFailure(
                NewAuditEvent(time: now, actor: actor, action: AuditAction.deploymentEnqueue, objectType: "deployment",
                              objectID: ids[0].lowercasedText, outcome: "failure", detail: detail))
            throw error
        }
    }

    private struct CertificateVersionKey: Hashable {
        let name: String
        let version: Int
    }

    /// Throws `.notFound` naming the first of `ids` (in id order) that is not a target; locks the rest against deletion.
    static func requireTargets(_ tx: any SQLTransaction, _ ids: Set<UUID>, lock: String) async throws {
        let parameters = SQLParameters()
        let list = ids.map { parameters.bind(.uuid($0)) }.joined(separator: ", ")
        // KEY SHARE: a concurrent deleteTarget waits for this, or this for it.
        let found = try await tx.query("SELECT id FROM targets WHERE id IN (\(list)) \(lock)", parameters.values)
        let existing = Set(try found.map { try $0.uuid("id") })
        if let missing = ids.subtracting(existing).min(by: { $0.lowercasedText < $1.lowercasedText }) {
            throw StoreError.notFound(objectType: "target", id: missing.lowercasedText)
        }
    }

    public func deployment(id: UUID) async throws -> DeploymentRecord {
        try await driver.transaction(write: false) { tx in
            guard let row = try await tx.query("SELECT \(Self.deploymentColumns) FROM deployments WHERE id = $1", [.uuid(id)]).first else {
                throw StoreError.notFound(objectType: "deployment", id: id.lowercasedText)
            }
            return try Self.deployment(row)
        }
    }

    public func listDeployments(_ filter: DeploymentFilter, limit: Int, cursor: String?) async throws -> Page<DeploymentRecord> {
        try Validate.limit(limit)
        let before = try cursor.map { try Cursor.decode(Cursor.BySequence.self, $0) }
        return try await driver.transaction(write: false) { tx in
            var conditions: [String] = []
            let parameters = SQLParameters()
            if let targetID = filter.targetID { conditions.append("target_id = \(parameters.bind(.uuid(targetID)))") }
            if let rolloutID = filter.rolloutID { conditions.append("rollout_id = \(parameters.bind(.uuid(rolloutID)))") }
            if let name = filter.certificateName { conditions.append("certificate_name = \(parameters.bind(.text(name)))") }
            if !filter.statuses.isEmpty {
                let list = filter.statuses.map(\.rawValue).sorted().map { parameters.bind(.text($0)) }.joined(separator: ", ")
                conditions.append("status IN (\(list))")
            }
            if let before { conditions.append("seq < \(parameters.bind(.int(before.seq)))") }
            let limitParameter = parameters.bind(.int(limit + 1))
            let rows = try await tx.query(
                """
                SELECT \(Self.deploymentColumns) FROM deployments
                \(SQLParameters.whereClause(conditions))
                ORDER BY seq DESC
                LIMIT \(limitParameter)
                """,
                parameters.values)
            let page = Array(rows.prefix(limit))
            let items = try page.map(Self.deployment)
            let next = try rows.count > limit ? page.last.map { Cursor.encode(Cursor.BySequence(seq: try $0.int64("seq"))) } : nil
            return Page(items: items, nextCursor: next)
        }
    }

    // MARK: Claims and leases

    public func claimNext(owner: String, leaseDuration: Duration, limit: Int, now: Date) async throws -> [DeploymentRecord] {
        guard !owner.isEmpty else { throw StoreError.invalidArgument("owner is empty") }
        guard limit > 0 else { return [] }  // no free slot
        try Validate.limit(limit)
        let leaseMicros = try Validate.leaseDuration(leaseDuration)
        let now = now.storePrecision
        let expiry = now.unixMicroseconds + leaseMicros
        let dialect = dialect
        return try await driver.transaction(write: true) { tx in
            // Each target's oldest queued deployment, for targets with nothing running, oldest first. On
            // PostgreSQL rows another claimer is looking at are skipped (and then so is their target: its
            // oldest queued row is the locked one).
            let candidates = try await tx.query(
                """
                SELECT d.id, d.target_id FROM deployments d
                WHERE d.status = 'queued' AND d.not_before <= $1
                  AND NOT EXISTS (SELECT 1 FROM deployments r WHERE r.target_id = d.target_id AND r.status = 'running')
                  AND NOT EXISTS (SELECT 1 FROM deployments e WHERE e.target_id = d.target_id AND e.status = 'queued' AND e.seq < d.seq)
                ORDER BY d.seq
                LIMIT $2
                \(dialect.skipLockedDeployments)
                """,
                [.time(now), .int(limit)])
            var claimed: [DeploymentRecord] = []
            for candidate in candidates {
                let id = try candidate.uuid("id")
                let targetID = try candidate.uuid("target_id")
                if !dialect.claimTarget.isEmpty {
                    // Held until commit: whoever made a deployment of this target running before has committed.
                    let locked = try await tx.query("SELECT id FROM targets WHERE id = $1 \(dialect.claimTarget)", [.uuid(targetID)])
                    if locked.isEmpty { continue }  // another claimer (or a delete) holds the target
                }
                let rows = try await tx.query(
                    """
                    UPDATE deployments SET status = 'running', lease_owner = $2, lease_expires_at = $3, started_at = $4,
                        finished_at = NULL, attempts = attempts + 1
                    WHERE id = $1 AND status = 'queued'
                      AND NOT EXISTS (SELECT 1 FROM deployments r WHERE r.target_id = $5 AND r.status = 'running')
                    RETURNING \(Self.deploymentColumns)
                    """,
                    [.uuid(id), .text(owner), .int(expiry), .time(now), .uuid(targetID)])
                if let row = rows.first { claimed.append(try Self.deployment(row)) }
            }
            return claimed
        }
    }

    public func heartbeat(deploymentID id: UUID, owner: String, leaseDuration: Duration, stepsJSON: String?, now: Date) async throws
        -> DeploymentRecord
    {
        let leaseMicros = try Validate.leaseDuration(leaseDuration)
        if let stepsJSON { try Validate.jsonArray(stepsJSON, field: "stepsJSON") }
        let expiry = now.storePrecision.unixMicroseconds + leaseMicros
        return try await driver.transaction(write: true) { tx in
            var binds: [SQLValue] = [.uuid(id), .text(owner), .int(expiry)]
            var steps = ""
            if let stepsJSON {
                binds.append(.text(stepsJSON))
                steps = ", steps_json = $4"
            }
            let rows = try await tx.query(
                """
                UPDATE deployments SET lease_expires_at = $3\(steps)
                WHERE id = $1 AND status = 'running' AND lease_owner = $2
                RETURNING \(Self.deploymentColumns)
                """,
                binds)
            guard let row = rows.first else { throw try await Self.leaseFailure(tx, id) }
            return try Self.deployment(row)
        }
    }

    public func complete(deploymentID id: UUID, owner: String, completion: DeploymentCompletion, now: Date) async throws
        -> DeploymentRecord
    {
        let now = now.storePrecision
        let status = DeploymentStatus(completion.outcome)
        return try await mutate(
            AuditAction.deploymentComplete, objectType: "deployment", objectID: id.lowercasedText, actor: owner, time: now,
            outcome: { $0.status.rawValue },
            detail: { record in (try? record.failure())?.description ?? "attempt \(record.attempts)" }
        ) { tx in
            try Validate.jsonArray(completion.stepsJSON, field: "stepsJSON")
            if let failureJSON = completion.failureJSON { try Validate.jsonObject(failureJSON, field: "failureJSON") }
            if let resultJSON = completion.resultJSON { try Validate.jsonObject(resultJSON, field: "resultJSON") }
            let rows = try await tx.query(
                """
                UPDATE deployments SET status = $3, steps_json = $4, failure_json = $5, result_json = $6, finished_at = $7,
                    lease_expires_at = NULL
                WHERE id = $1 AND status = 'running' AND lease_owner = $2
                RETURNING \(Self.deploymentColumns)
                """,
                [.uuid(id), .text(owner), .text(status.rawValue), .text(completion.stepsJSON), .optional(completion.failureJSON),
                 .optional(completion.resultJSON), .time(now)])
            guard let row = rows.first else { throw try await Self.leaseFailure(tx, id) }
            return try Self.deployment(row)
        }
    }

    public func release(deploymentID id: UUID, owner: String, retryAt: Date, note: String, now: Date) async throws -> DeploymentRecord {
        let now = now.storePrecision
        return try await mutate(
            AuditAction.deploymentRelease, objectType: "deployment", objectID: id.lowercasedText, actor: owner, time: now,
            detail: { "retry at or after \($0.notBefore.formatted(.iso8601)): \(note)" }
        ) { tx in
            let rows = try await tx.query(
                """
                UPDATE deployments SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, not_before = $3,
                    status_note = $4
                WHERE id = $1 AND status = 'running' AND lease_owner = $2
                RETURNING \(Self.deploymentColumns)
                """,
                [.uuid(id), .text(owner), .time(max(retryAt, now)), .text(note)])
            guard let row = rows.first else { throw try await Self.leaseFailure(tx, id) }
            return try Self.deployment(row)
        }
    }

    public func lastFinishedDeployments(targetIDs: [UUID]) async throws -> [UUID: FinishedDeploymentSummary] {
        guard !targetIDs.isEmpty else { return [:] }
        try Validate.limit(targetIDs.count)
        return try await driver.transaction(write: false) { tx in
            let placeholders = (1...targetIDs.count).map { "$\($0)" }.joined(separator: ", ")
            // Newest by seq among finished rows (finished_at set); the (target_id, status, seq) index serves both parts.
            let rows = try await tx.query(
                """
                SELECT d.id, d.target_id, d.status, d.certificate_name, d.certificate_version, d.finished_at FROM deployments d
                WHERE d.target_id IN (\(placeholders)) AND d.finished_at IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM deployments e WHERE e.target_id = d.target_id AND e.finished_at IS NOT NULL AND e.seq > d.seq)
                """,
                targetIDs.map(SQLValue.uuid))
            var result: [UUID: FinishedDeploymentSummary] = [:]
            for row in rows {
                let statusText = try row.string("status")
                guard let status = DeploymentStatus(rawValue: statusText) else { throw StoreError.corrupt("deployments.status \(statusText.debugDescription)") }
                let summary = FinishedDeploymentSummary(
                    id: try row.uuid("id"), targetID: try row.uuid("target_id"), status: status, certificateName: try row.string("certificate_name"),
                    certificateVersion: try row.int("certificate_version"), finishedAt: try row.optionalDate("finished_at"))
                result[summary.targetID] = summary
            }
            return result
        }
    }

    public func expireLeases(ownerPrefix: String, except currentOwner: String, now: Date) async throws -> Int {
        guard !ownerPrefix.isEmpty else { throw StoreError.invalidArgument("ownerPrefix is empty") }
        let now = now.storePrecision
        // LIKE with the prefix's own wildcards escaped: the same text on SQLite and PostgreSQL.
        let pattern = ownerPrefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
        return try await driver.transaction(write: true) { tx in
            try await tx.query(
                """
                UPDATE deployments SET lease_expires_at = $1
                WHERE status = 'running' AND lease_owner LIKE $2 ESCAPE '\\' AND lease_owner <> $3 AND lease_expires_at > $1
                RETURNING id
                """,
                [.time(now), .text(pattern), .text(currentOwner)]
            ).count
        }
    }

    public func requeueExpiredLeases(now: Date) async throws -> [DeploymentRecord] {
        let now = now.storePrecision
        let stamp = now.formatted(.iso8601)
        let dialect = dialect
        let prefixed = Self.deploymentColumnNames.map { "d." + $0 }.joined(separator: ", ")
        return try await driver.transaction(write: true) { tx in
            let expired = try await tx.query(
                """
                SELECT \(prefixed) FROM deployments d
                WHERE d.status = 'running' AND d.lease_expires_at <= $1
                ORDER BY d.seq
                \(dialect.skipLockedDeployments)
                """,
                [.time(now)]
            ).map(Self.deployment)
            var updated: [DeploymentRecord] = []
            for deployment in expired {
                let owner = deployment.leaseOwner ?? "unknown"
                let expiredAt = deployment.leaseExpiresAt?.formatted(.iso8601) ?? "?"
                let requeue = deployment.interruptions == 0
                let note = requeue
                    ? "interrupted: the lease of \(owner) expired at \(expiredAt) (attempt \(deployment.attempts)); re-queued at \(stamp)"
                    : "interrupted: the lease of \(owner) expired at \(expiredAt) (attempt \(deployment.attempts)); "
                        + "already re-queued once after an interruption, not retried"
                let rows = try await tx.query(
                    """
                    UPDATE deployments SET status = $3, interruptions = interruptions + 1, lease_expires_at = NULL,
                        lease_owner = CASE WHEN $3 = 'queued' THEN NULL ELSE lease_owner END,
                        not_before = CASE WHEN $3 = 'queued' THEN $2 ELSE not_before END,
                        finished_at = CASE WHEN $3 = 'queued' THEN NULL ELSE $2 END,
                        status_note = $4
                    WHERE id = $1 AND status = 'running' AND lease_expires_at <= $2
                    RETURNING \(Self.deploymentColumns)
                    """,
                    [.uuid(deployment.id), .time(now), .text(requeue ? "queued" : "interrupted"), .text(note)])
                guard let row = rows.first else { continue }
                let record = try Self.deployment(row)
                try await Self.insertAudit(
                    tx,
                    NewAuditEvent(
                        time: now, actor: "system", action: AuditAction.deploymentInterrupt, objectType: "deployment",
                        objectID: record.id.lowercasedText, outcome: requeue ? "requeued" : "interrupted", detail: note))
                updated.append(record)
            }
            return updated
        }
    }

    public func cancel(deploymentID id: UUID, actor: String, now: Date) async throws -> DeploymentRecord {
        let now = now.storePrecision
        return try await mutate(AuditAction.deploymentCancel, objectType: "deployment", objectID: id.lowercasedText, actor: actor, time: now) {
            tx in
            let rows = try await tx.query(
                """
                UPDATE deployments SET status = 'cancelled', finished_at = $2, status_note = $3
                WHERE id = $1 AND status = 'queued'
                RETURNING \(Self.deploymentColumns)
                """,
                [.uuid(id), .time(now), .text("cancelled by \(actor)")])
            if let row = rows.first { return try Self.deployment(row) }
            guard let current = try await tx.query("SELECT status FROM deployments WHERE id = $1", [.uuid(id)]).first else {
                throw StoreError.notFound(objectType: "deployment", id: id.lowercasedText)
            }
            throw StoreError.invalidState("deployment \(id.lowercasedText) is \(try current.string("status")); only a queued deployment can be cancelled")
        }
    }
}
