import Core
import Foundation

// Rollouts: a row per rollout and its children as deployments (`rollout_id`, `wave`), all created at once as
// `pending`. `advanceRollouts` is the only thing that releases children: in one transaction it locks each open
// rollout's row (`FOR UPDATE SKIP LOCKED` on PostgreSQL: two replicas never advance the same rollout at once, and
// neither waits for the other), reads its children, asks `RolloutProgress` what to do, and does it. Releasing is an
// UPDATE of `pending` rows, so a wave is never started twice, and a child is never run twice: once released it is an
// ordinary queued deployment, claimed exactly once by the job queue.

extension SQLStore {
    static var rolloutColumns: String {
        [
            "id", "seq", "certificate_name", "certificate_version", "strategy_json", "state", "wave_count", "target_count", "current_wave",
            "approved_wave", "acknowledged_failures", "wave_finished_at", "options_json", "ignore_windows", "reason", "stop_reason",
            "stop_deployment_id", "actor", "created_at", "updated_at", "finished_at", "driven_by", "driven_at",
        ].joined(separator: ", ")
    }

    static func rollout(_ row: SQLRow) throws -> RolloutRecord {
        let stateText = try row.string("state")
        guard let state = RolloutState(rawValue: stateText) else { throw StoreError.corrupt("rollouts.state \(stateText.debugDescription)") }
        let strategy: RolloutStrategy
        do {
            strategy = try JSONDecoder.store.decode(RolloutStrategy.self, from: Data(try row.string("strategy_json").utf8))
        } catch {
            throw StoreError.corrupt("rollouts.strategy_json: \(error)")
        }
        return RolloutRecord(
            id: try row.uuid("id"), certificateName: try row.string("certificate_name"), certificateVersion: try row.int("certificate_version"),
            strategy: strategy, state: state, waveCount: try row.int("wave_count"), targetCount: try row.int("target_count"),
            currentWave: try row.int("current_wave"), approvedWave: try row.int("approved_wave"),
            acknowledgedFailures: try row.int("acknowledged_failures"), waveFinishedAt: try row.optionalDate("wave_finished_at"),
            optionsJSON: try row.string("options_json"), ignoreWindows: try row.bool("ignore_windows"), reason: try row.optionalString("reason"),
            stopReason: try row.optionalString("stop_reason"),
            stopDeploymentID: row.isNull("stop_deployment_id") ? nil : try row.uuid("stop_deployment_id"), actor: try row.string("actor"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"), finishedAt: try row.optionalDate("finished_at"),
            drivenBy: try row.optionalString("driven_by"), drivenAt: try row.optionalDate("driven_at"))
    }

    // MARK: Create and read

    public func createRollout(_ new: NewRollout, actor: String, now: Date) async throws -> RolloutRecord {
        let now = now.storePrecision
        let id = new.id ?? UUID()
        let targetIDs = new.waves.flatMap { $0 }
        guard !targetIDs.isEmpty else { throw StoreError.invalidArgument("a rollout needs at least one target") }
        guard Set(targetIDs).count == targetIDs.count else { throw StoreError.invalidArgument("a target appears in two waves") }
        try Validate.jsonObject(new.optionsJSON, field: "optionsJSON")
        let strategyJSON = try JSONEncoder.store.encodeText(new.strategy)
        let dialect = dialect
        let waveCount = new.waves.count
        return try await mutate(
            AuditAction.rolloutCreate, objectType: "rollout", objectID: id.lowercasedText, actor: actor, time: now,
            detail: { record in
                "certificate \(record.certificateName) version \(record.certificateVersion) to \(record.targetCount) target(s) in \(record.waveCount) wave(s)"
                    + (record.ignoreWindows ? "; ignoring maintenance windows" : "") + (record.reason.map { "; \($0)" } ?? "")
            }
        ) { tx in
            try await Self.requireCertificate(tx, new.certificateName, lock: dialect.keyShare)
            guard try await !tx.query(
                "SELECT version FROM certificate_versions WHERE certificate_name = $1 AND version = $2",
                [.text(new.certificateName), .int(new.certificateVersion)]
            ).isEmpty else { throw StoreError.notFound(objectType: "certificateVersion", id: "\(new.certificateName)@\(new.certificateVersion)") }
            for chunk in stride(from: 0, to: targetIDs.count, by: Self.enqueueChunk).map({ targetIDs[$0..<min($0 + Self.enqueueChunk, targetIDs.count)] }) {
                try await Self.requireTargets(tx, Set(chunk), lock: dialect.keyShare)
            }
            let rows = try await tx.query(
                """
                INSERT INTO rollouts (id, certificate_name, certificate_version, strategy_json, state, wave_count, target_count, current_wave,
                    approved_wave, acknowledged_failures, options_json, ignore_windows, reason, actor, created_at, updated_at)
                VALUES ($1, $2, $3, $4, 'pending', $5, $6, 0, 0, 0, $7, $8, $9, $10, $11, $11)
                RETURNING \(Self.rolloutColumns)
                """,
                [.uuid(id), .text(new.certificateName), .int(new.certificateVersion), .text(strategyJSON), .int(waveCount), .int(targetIDs.count),
                 .text(new.optionsJSON), .bool(new.ignoreWindows), .optional(new.reason), .text(actor), .time(now)])
            guard let row = rows.first else { throw StoreError.database("INSERT … RETURNING returned no rollout") }
            let entries = new.waves.enumerated().flatMap { wave, ids in ids.map { (wave, $0) } }
            for start in stride(from: 0, to: entries.count, by: Self.enqueueChunk) {
                let chunk = entries[start..<min(start + Self.enqueueChunk, entries.count)]
                let parameters = SQLParameters()
                let shared = [parameters.bind(.text(new.certificateName)), parameters.bind(.int(new.certificateVersion)),
                              parameters.bind(.text(new.optionsJSON)), parameters.bind(.time(now)), parameters.bind(.text(actor)),
                              parameters.bind(.uuid(id))]
                let values = chunk.map { wave, targetID in
                    "(\(parameters.bind(.uuid(UUID()))), \(parameters.bind(.uuid(targetID))), \(shared[0]), \(shared[1]), \(shared[2]), 'pending', '[]', 0, 0, "
                        + "\(shared[3]), \(shared[3]), \(shared[4]), \(shared[5]), \(parameters.bind(.int(wave))))"
                }
                try await tx.query(
                    """
                    INSERT INTO deployments (id, target_id, certificate_name, certificate_version, options_json, status, steps_json,
                        attempts, interruptions, not_before, created_at, actor, rollout_id, wave)
                    VALUES \(values.joined(separator: ", "))
                    """, parameters.values)
            }
            return try Self.rollout(row)
        }
    }

    public func rollout(id: UUID) async throws -> RolloutRecord {
        try await driver.transaction(write: false) { tx in
            guard let row = try await tx.query("SELECT \(Self.rolloutColumns) FROM rollouts WHERE id = $1", [.uuid(id)]).first else {
                throw StoreError.notFound(objectType: "rollout", id: id.lowercasedText)
            }
            return try Self.rollout(row)
        }
    }

    public func listRollouts(_ filter: RolloutFilter, limit: Int, cursor: String?) async throws -> Page<RolloutRecord> {
        try Validate.limit(limit)
        let before = try cursor.map { try Cursor.decode(Cursor.BySequence.self, $0) }
        return try await driver.transaction(write: false) { tx in
            var conditions: [String] = []
            let parameters = SQLParameters()
            if let name = filter.certificateName { conditions.append("certificate_name = \(parameters.bind(.text(name)))") }
            if !filter.states.isEmpty {
                conditions.append("state IN (\(filter.states.map(\.rawValue).sorted().map { parameters.bind(.text($0)) }.joined(separator: ", ")))")
            }
            if let before { conditions.append("seq < \(parameters.bind(.int(before.seq)))") }
            let rows = try await tx.query(
                """
                SELECT \(Self.rolloutColumns) FROM rollouts \(SQLParameters.whereClause(conditions))
                ORDER BY seq DESC LIMIT \(parameters.bind(.int(limit + 1)))
                """, parameters.values)
            let page = Array(rows.prefix(limit))
            let next = try rows.count > limit ? page.last.map { Cursor.encode(Cursor.BySequence(seq: try $0.int64("seq"))) } : nil
            return Page(items: try page.map(Self.rollout), nextCursor: next)
        }
    }

    public func rolloutChildren(rolloutID: UUID) async throws -> [RolloutChild] {
        try await driver.transaction(write: false) { tx in
            guard try await !tx.query("SELECT id FROM rollouts WHERE id = $1", [.uuid(rolloutID)]).isEmpty else {
                throw StoreError.notFound(objectType: "rollout", id: rolloutID.lowercasedText)
            }
            return try await Self.children(tx, rolloutID, withSteps: true)
        }
    }

    /// The rollout's children in plan order (wave, then creation), with their targets' names.
    static func children(_ tx: any SQLTransaction, _ rolloutID: UUID, withSteps: Bool) async throws -> [RolloutChild] {
        let rows = try await tx.query(
            """
            SELECT d.id, d.target_id, t.name AS target_name, d.wave, d.status, d.status_note, d.not_before, d.attempts, d.started_at,
                d.finished_at, d.failure_json, d.superseded\(withSteps ? ", d.steps_json" : "")
            FROM deployments d LEFT JOIN targets t ON t.id = d.target_id
            WHERE d.rollout_id = $1
            ORDER BY d.wave, d.seq
            """, [.uuid(rolloutID)])
        return try rows.map { row in
            let statusText = try row.string("status")
            guard let status = DeploymentStatus(rawValue: statusText) else { throw StoreError.corrupt("deployments.status \(statusText.debugDescription)") }
            let failure = try row.optionalString("failure_json").flatMap { try? JSONDecoder.store.decode(DeployFailure.self, from: Data($0.utf8)) }
            var step: String?
            if withSteps, status == .running, let steps = try? JSONDecoder.store.decode([StepRecord].self, from: Data(try row.string("steps_json").utf8)) {
                step = steps.last?.name.rawValue
            }
            return RolloutChild(
                id: try row.uuid("id"), targetID: try row.uuid("target_id"), targetName: try row.optionalString("target_name"),
                wave: try row.int("wave"), status: status, statusNote: try row.optionalString("status_note"), notBefore: try row.date("not_before"),
                attempts: try row.int("attempts"), startedAt: try row.optionalDate("started_at"), finishedAt: try row.optionalDate("finished_at"),
                failure: failure.map { "\($0.step.rawValue): \($0.message)" }, currentStep: step, superseded: try row.bool("superseded"))
        }
    }

    // MARK: Advance

    public func advanceRollouts(driver owner: String, only: UUID?, now: Date) async throws -> [RolloutAdvance] {
        let now = now.storePrecision
        let dialect = dialect
        return try await driver.transaction(write: true) { tx in
            let parameters = SQLParameters()
            var condition = "state IN ('pending', 'running')"
            if let only { condition += " AND id = \(parameters.bind(.uuid(only)))" }
            let rollouts = try await tx.query(
                "SELECT \(Self.rolloutColumns) FROM rollouts WHERE \(condition) ORDER BY seq \(dialect.forUpdateSkipLocked)", parameters.values
            ).map(Self.rollout)
            guard !rollouts.isEmpty else { return [] }
            let rules = try await MaintenanceRuleBook.load(tx)
            var advances: [RolloutAdvance] = []
            for rollout in rollouts {
                var children = try await Self.children(tx, rollout.id, withSteps: false)
                var changed: [UUID] = []
                // Waiting children whose window opened (or whose window was removed) are queued.
                let waiting = children.filter { $0.status == .waitingWindow && !$0.superseded }
                if !waiting.isEmpty {
                    let book = try await rules.forTargets(tx, Set(waiting.map(\.targetID)))
                    for child in waiting {
                        let verdict = rollout.ignoreWindows ? .open : book.verdict(child.targetID, at: now)
                        if try await Self.place(tx, child, verdict: verdict, from: .waitingWindow, now: now) { changed.append(child.id) }
                    }
                    children = try await Self.children(tx, rollout.id, withSteps: false)
                }
                let decision = RolloutProgress.decide(rollout, children: children, now: now)
                if decision.hold {
                    let held = try await tx.query(
                        """
                        UPDATE deployments SET status = 'pending', status_note = $2
                        WHERE rollout_id = $1 AND status IN ('queued', 'waiting_window') RETURNING id
                        """, [.uuid(rollout.id), .text("held: the rollout \(decision.state.rawValue)")])
                    changed += try held.map { try $0.uuid("id") }
                }
                if !decision.release.isEmpty {
                    let released = Set(decision.release)
                    let toRelease = children.filter { released.contains($0.id) }
                    let book = try await rules.forTargets(tx, Set(toRelease.map(\.targetID)))
                    for child in toRelease {
                        let verdict = rollout.ignoreWindows ? .open : book.verdict(child.targetID, at: now)
                        if try await Self.place(tx, child, verdict: verdict, from: .pending, now: now) { changed.append(child.id) }
                    }
                }
                let moved = decision.state != rollout.state || decision.currentWave != rollout.currentWave
                    || decision.waveFinishedAt != rollout.waveFinishedAt || decision.stopReason != rollout.stopReason
                let updated: RolloutRecord
                if moved || !changed.isEmpty || rollout.drivenBy != owner {
                    let rows = try await tx.query(
                        """
                        UPDATE rollouts SET state = $2, current_wave = $3, wave_finished_at = $4, stop_reason = $5, stop_deployment_id = $6,
                            finished_at = $7, updated_at = $8, driven_by = $9, driven_at = $8
                        WHERE id = $1 RETURNING \(Self.rolloutColumns)
                        """,
                        [.uuid(rollout.id), .text(decision.state.rawValue), .int(decision.currentWave),
                         decision.waveFinishedAt.map(SQLValue.time) ?? .null, .optional(decision.stopReason),
                         decision.stopDeploymentID.map(SQLValue.uuid) ?? .null, decision.finished ? .time(now) : .null, .time(now), .text(owner)])
                    updated = try rows.first.map(Self.rollout) ?? rollout
                } else {
                    updated = rollout
                }
                try await Self.insertAudits(tx, decision.events.map {
                    NewAuditEvent(time: now, actor: "system", action: AuditAction.rolloutProgress, objectType: "rollout",
                                  objectID: rollout.id.lowercasedText, outcome: $0.outcome, detail: $0.detail)
                })
                if moved || !changed.isEmpty || !decision.events.isEmpty || decision.wakeAt != nil {
                    advances.append(RolloutAdvance(rollout: updated, changedChildren: changed, wakeAt: decision.wakeAt,
                                                   events: decision.events.map { RolloutAdvance.Event(outcome: $0.outcome, detail: $0.detail) }))
                }
            }
            return advances
        }
    }

    /// Queues `child` (from `from`) if its window is open, else makes it wait for the window. Returns whether it changed.
    static func place(_ tx: any SQLTransaction, _ child: RolloutChild, verdict: MaintenanceRules.Verdict, from: DeploymentStatus, now: Date) async throws
        -> Bool
    {
        switch verdict {
        case .open:
            let note: String? = from == .waitingWindow ? "its maintenance window opened at \(now.formatted(.iso8601))" : nil
            return try await !tx.query(
                "UPDATE deployments SET status = 'queued', not_before = $3, status_note = $4 WHERE id = $1 AND status = $2 RETURNING id",
                [.uuid(child.id), .text(from.rawValue), .time(now), .optional(note)]
            ).isEmpty
        case .closed(let until, let reason):
            // Never opening in the coming weeks: look again in a day (a window may be added or removed meanwhile).
            let opens = until ?? now.addingTimeInterval(86_400)
            let note = "waiting: \(reason); " + (until.map { "starts at \($0.formatted(.iso8601))" } ?? "no window opens in the coming weeks")
            if from == .waitingWindow, child.statusNote == note, until == nil ? child.notBefore > now : child.notBefore == opens.storePrecision {
                return false
            }
            return try await !tx.query(
                "UPDATE deployments SET status = 'waiting_window', not_before = $3, status_note = $4 WHERE id = $1 AND status = $2 RETURNING id",
                [.uuid(child.id), .text(from.rawValue), .time(opens), .text(note)]
            ).isEmpty
        }
    }

    // MARK: Actions

    public func actOnRollout(id: UUID, action: RolloutAction, actor: String, now: Date) async throws -> RolloutRecord {
        let now = now.storePrecision
        let dialect = dialect
        return try await mutate(
            AuditAction.rollout(action), objectType: "rollout", objectID: id.lowercasedText, actor: actor, time: now,
            outcome: { _ in "success" }, detail: { "now \($0.state.rawValue)" }
        ) { tx in
            guard let row = try await tx.query("SELECT \(Self.rolloutColumns) FROM rollouts WHERE id = $1 \(dialect.forUpdate)", [.uuid(id)]).first else {
                throw StoreError.notFound(objectType: "rollout", id: id.lowercasedText)
            }
            let rollout = try Self.rollout(row)
            func refuse(_ allowed: String) -> StoreError {
                .invalidState("rollout \(id.lowercasedText) is \(rollout.state.rawValue); \(action.name) needs a rollout that is \(allowed)")
            }
            var state = rollout.state
            var approved = rollout.approvedWave
            var acknowledged = rollout.acknowledgedFailures
            var stopReason = rollout.stopReason
            var finishedAt: Date? = rollout.finishedAt
            var waveFinishedAt = rollout.waveFinishedAt
            switch action {
            case .pause:
                guard [.pending, .running, .waitingApproval].contains(rollout.state) else { throw refuse("pending, running or waiting for approval") }
                state = .paused
                try await tx.query(
                    "UPDATE deployments SET status = 'pending', status_note = $2 WHERE rollout_id = $1 AND status IN ('queued', 'waiting_window')",
                    [.uuid(id), .text("held: the rollout was paused by \(actor)")])
            case .resume:
                guard rollout.state == .paused || rollout.state == .halted else { throw refuse("paused or halted") }
                if rollout.state == .halted {
                    let children = try await Self.children(tx, id, withSteps: false).filter { !$0.superseded }
                    acknowledged = children.filter(\.status.isFailure).count
                }
                state = .running
                stopReason = nil
            case .approve:
                guard rollout.state == .waitingApproval else { throw refuse("waiting for approval") }
                approved = rollout.currentWave + 1
                state = .running
            case .abort:
                guard !rollout.state.isFinal else { throw refuse("not finished") }
                try await tx.query(
                    """
                    UPDATE deployments SET status = 'cancelled', finished_at = $2, status_note = $3
                    WHERE rollout_id = $1 AND status IN ('pending', 'queued', 'waiting_window')
                    """, [.uuid(id), .time(now), .text("cancelled: the rollout was aborted by \(actor)")])
                state = .aborted
                stopReason = "aborted by \(actor)"
                finishedAt = now
            case .retry:
                guard [.running, .halted, .failed, .paused, .waitingApproval].contains(rollout.state) else {
                    throw refuse("running, paused, waiting for approval, halted or failed")
                }
                let failed = try await Self.children(tx, id, withSteps: false).filter { !$0.superseded && $0.status.isFailure }
                guard !failed.isEmpty else { throw StoreError.invalidState("rollout \(id.lowercasedText) has no failed deployment to retry") }
                for child in failed {
                    try await tx.query("UPDATE deployments SET superseded = $2 WHERE id = $1", [.uuid(child.id), .bool(true)])
                    try await tx.query(
                        """
                        INSERT INTO deployments (id, target_id, certificate_name, certificate_version, options_json, status, steps_json,
                            attempts, interruptions, not_before, created_at, actor, rollout_id, wave, status_note)
                        SELECT $2, target_id, certificate_name, certificate_version, options_json, 'pending', '[]', 0, 0, $3, $3, $4, rollout_id, wave, $5
                        FROM deployments WHERE id = $1
                        """, [.uuid(child.id), .uuid(UUID()), .time(now), .text(actor), .text("retry of \(child.id.lowercasedText)")])
                }
                acknowledged = max(0, acknowledged - failed.count)
                // The retried children stay in their waves (up to the current one, all open): they run before the
                // rollout moves on.
                if rollout.state == .halted || rollout.state == .failed { state = .running }
                stopReason = nil
                finishedAt = nil
                waveFinishedAt = nil
            }
            let rows = try await tx.query(
                """
                UPDATE rollouts SET state = $2, approved_wave = $3, acknowledged_failures = $4, stop_reason = $5, finished_at = $6,
                    wave_finished_at = $7, updated_at = $8, stop_deployment_id = CASE WHEN $9 THEN NULL ELSE stop_deployment_id END
                WHERE id = $1 RETURNING \(Self.rolloutColumns)
                """,
                [.uuid(id), .text(state.rawValue), .int(approved), .int(acknowledged), .optional(stopReason),
                 finishedAt.map(SQLValue.time) ?? .null, waveFinishedAt.map(SQLValue.time) ?? .null, .time(now), .bool(stopReason == nil)])
            guard let updated = rows.first else { throw StoreError.database("UPDATE … RETURNING returned no rollout") }
            return try Self.rollout(updated)
        }
    }

    /// Each target's newest succeeded (or unchanged) deployment of `certificateName` that was not a dry run, from
    /// before the rollout's children: what a rollback goes back to. (Options are stored as the API's compact,
    /// key-sorted JSON, so a dry run's text always holds `"dryRun":true`.)
    public func previousVersions(certificateName: String, targetIDs: [UUID], excludingRollout rolloutID: UUID) async throws -> [UUID: Int] {
        guard !targetIDs.isEmpty else { return [:] }
        return try await driver.transaction(write: false) { tx in
            let parameters = SQLParameters()
            let name = parameters.bind(.text(certificateName))
            let rollout = parameters.bind(.uuid(rolloutID))
            let list = targetIDs.map { parameters.bind(.uuid($0)) }.joined(separator: ", ")
            let rows = try await tx.query(
                """
                SELECT d.target_id, d.certificate_version FROM deployments d
                WHERE d.certificate_name = \(name) AND d.target_id IN (\(list)) AND d.status IN ('succeeded', 'unchanged')
                  AND d.options_json NOT LIKE '%"dryRun":true%'
                  AND (d.rollout_id IS NULL OR d.rollout_id <> \(rollout))
                  AND d.seq < (SELECT MIN(c.seq) FROM deployments c WHERE c.rollout_id = \(rollout))
                  AND NOT EXISTS (SELECT 1 FROM deployments e WHERE e.target_id = d.target_id AND e.certificate_name = d.certificate_name
                      AND e.status IN ('succeeded', 'unchanged') AND e.options_json NOT LIKE '%"dryRun":true%'
                      AND (e.rollout_id IS NULL OR e.rollout_id <> \(rollout))
                      AND e.seq > d.seq AND e.seq < (SELECT MIN(c.seq) FROM deployments c WHERE c.rollout_id = \(rollout)))
                """, parameters.values)
            var result: [UUID: Int] = [:]
            for row in rows { result[try row.uuid("target_id")] = try row.int("certificate_version") }
            return result
        }
    }
}

/// What one pass of `advanceRollouts` did to one rollout.
public struct RolloutAdvance: Sendable {
    public var rollout: RolloutRecord
    /// Children whose status the pass changed (released, held, waiting for a window, queued as it opened).
    public var changedChildren: [UUID]
    /// When the next pass has work even if nothing else changes (a pause between waves ends).
    public var wakeAt: Date?
    public var events: [Event]

    public struct Event: Sendable, Equatable {
        public var outcome: String
        public var detail: String
    }
}
