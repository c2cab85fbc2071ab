import Foundation

// Per-target watch status (migration 3): the drift and staple observations, and the auto-remediation flag.
extension SQLStore {
    static var statusColumns: String {
        """
        target_id, auto_remediate, sync, sync_detail, served_sha256, checked_at, staple, staple_detail, staple_this_update, \
        staple_next_update, staple_checked_at, updated_at
        """
    }

    static func targetStatus(_ row: SQLRow) throws -> TargetStatusRecord {
        TargetStatusRecord(
            targetID: try row.uuid("target_id"), autoRemediate: try row.bool("auto_remediate"), sync: try row.optionalString("sync"),
            syncDetail: try row.optionalString("sync_detail"), servedSHA256: try row.optionalString("served_sha256"),
            checkedAt: try row.optionalDate("checked_at"), staple: try row.optionalString("staple"),
            stapleDetail: try row.optionalString("staple_detail"), stapleThisUpdate: try row.optionalDate("staple_this_update"),
            stapleNextUpdate: try row.optionalDate("staple_next_update"), stapleCheckedAt: try row.optionalDate("staple_checked_at"),
            updatedAt: try row.date("updated_at"))
    }

    public func targetStatus(targetID: UUID) async throws -> TargetStatusRecord? {
        try await driver.transaction(write: false) { tx in
            try await tx.query("SELECT \(Self.statusColumns) FROM target_status WHERE target_id = $1", [.uuid(targetID)])
                .first.map(Self.targetStatus)
        }
    }

    public func targetStatuses(targetIDs: [UUID]?) async throws -> [UUID: TargetStatusRecord] {
        if let targetIDs, targetIDs.isEmpty { return [:] }
        return try await driver.transaction(write: false) { tx in
            let rows: [SQLRow]
            if let targetIDs {
                let placeholders = (1...targetIDs.count).map { "$\($0)" }.joined(separator: ", ")
                rows = try await tx.query(
                    "SELECT \(Self.statusColumns) FROM target_status WHERE target_id IN (\(placeholders))", targetIDs.map(SQLValue.uuid))
            } else {
                rows = try await tx.query("SELECT \(Self.statusColumns) FROM target_status")
            }
            var result: [UUID: TargetStatusRecord] = [:]
            for row in rows {
                let status = try Self.targetStatus(row)
                result[status.targetID] = status
            }
            return result
        }
    }

    public func recordSyncStatus(targetID: UUID, _ observation: TargetSyncObservation) async throws -> TargetStatusRecord {
        try await upsertStatus(
            targetID: targetID, columns: ["sync", "sync_detail", "served_sha256", "checked_at"],
            values: [.optional(observation.sync), .optional(observation.detail), .optional(observation.servedSHA256),
                     Self.optionalTime(observation.checkedAt)])
    }

    public func recordStapleStatus(targetID: UUID, _ observation: TargetStapleObservation) async throws -> TargetStatusRecord {
        try await upsertStatus(
            targetID: targetID, columns: ["staple", "staple_detail", "staple_this_update", "staple_next_update", "staple_checked_at"],
            values: [.optional(observation.staple), .optional(observation.detail), Self.optionalTime(observation.thisUpdate),
                     Self.optionalTime(observation.nextUpdate), Self.optionalTime(observation.checkedAt)])
    }

    /// Inserts the row or updates only `columns` (and `updated_at`): the drift check and the staple refresher each
    /// write their own columns, so neither overwrites what the other just recorded.
    private func upsertStatus(targetID: UUID, columns: [String], values: [SQLValue]) async throws -> TargetStatusRecord {
        let now = now()
        return try await driver.transaction(write: true) { tx in
            guard try await !tx.query("SELECT id FROM targets WHERE id = $1", [.uuid(targetID)]).isEmpty else {
                throw StoreError.notFound(objectType: "target", id: targetID.lowercasedText)
            }
            let placeholders = (0..<columns.count).map { "$\($0 + 3)" }.joined(separator: ", ")
            let updates = (columns + ["updated_at"]).map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
            let rows = try await tx.query(
                """
                INSERT INTO target_status (target_id, updated_at, \(columns.joined(separator: ", "))) VALUES ($1, $2, \(placeholders))
                ON CONFLICT (target_id) DO UPDATE SET \(updates)
                RETURNING \(Self.statusColumns)
                """,
                [.uuid(targetID), .time(now)] + values)
            guard let row = rows.first else { throw StoreError.database("INSERT … RETURNING returned no row") }
            return try Self.targetStatus(row)
        }
    }

    public func setAutoRemediate(targetID: UUID, enabled: Bool, actor: String) async throws {
        let now = now()
        try await mutate(
            AuditAction.targetRemediationSet, objectType: "target", objectID: targetID.lowercasedText, actor: actor, time: now,
            detail: { _ in enabled ? "on" : "off" }
        ) { tx in
            guard try await !tx.query("SELECT id FROM targets WHERE id = $1", [.uuid(targetID)]).isEmpty else {
                throw StoreError.notFound(objectType: "target", id: targetID.lowercasedText)
            }
            try await tx.query(
                """
                INSERT INTO target_status (target_id, auto_remediate, updated_at) VALUES ($1, $2, $3)
                ON CONFLICT (target_id) DO UPDATE SET auto_remediate = excluded.auto_remediate, updated_at = excluded.updated_at
                """,
                [.uuid(targetID), .bool(enabled), .time(now)])
        }
    }

    static func optionalTime(_ date: Date?) -> SQLValue { date.map(SQLValue.time) ?? .null }
}
