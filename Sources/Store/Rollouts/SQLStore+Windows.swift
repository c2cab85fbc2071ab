import Core
import Foundation

// Maintenance windows and freezes, and certificates' rollout policies.

/// The stored windows, loaded once per advance pass, resolved per target on demand.
struct MaintenanceRuleBook: Sendable {
    struct Rule: Sendable {
        var record: MaintenanceWindowRecord
        var selector: LabelSelector?
        var schedule: MaintenanceSchedule?
    }

    let rules: [Rule]

    static func load(_ tx: any SQLTransaction) async throws -> MaintenanceRuleBook {
        let rows = try await tx.query("SELECT \(SQLStoreWindowColumns.list) FROM maintenance_windows ORDER BY name")
        return MaintenanceRuleBook(rules: try rows.map { row in
            let record = try SQLStoreWindowColumns.record(row)
            // Validated when stored; a row that no longer parses (edited by hand) is skipped rather than blocking rollouts.
            return Rule(record: record, selector: try? record.selector.map { try LabelSelector(parsing: $0) },
                        schedule: try? record.schedule.map { try MaintenanceSchedule(parsing: $0) })
        })
    }

    /// The rules of each of `targetIDs`.
    func forTargets(_ tx: any SQLTransaction, _ targetIDs: Set<UUID>) async throws -> Resolved {
        guard !rules.isEmpty, !targetIDs.isEmpty else { return Resolved(rules: [:]) }
        var labels: [UUID: [String: String]] = [:]
        let parameters = SQLParameters()
        let list = targetIDs.map { parameters.bind(.uuid($0)) }.joined(separator: ", ")
        for row in try await tx.query("SELECT target_id, key, value FROM target_labels WHERE target_id IN (\(list))", parameters.values) {
            labels[try row.uuid("target_id"), default: [:]][try row.string("key")] = try row.string("value")
        }
        var result: [UUID: MaintenanceRules] = [:]
        for id in targetIDs {
            var applicable = MaintenanceRules()
            for rule in rules {
                let applies = rule.record.targetID.map { $0 == id } ?? (rule.selector?.matches(labels[id] ?? [:]) ?? false)
                guard applies else { continue }
                if let schedule = rule.schedule {
                    applicable.windows.append(.init(name: rule.record.name, schedule: schedule))
                } else if let from = rule.record.freezeFrom, let until = rule.record.freezeUntil {
                    applicable.freezes.append(.init(name: rule.record.name, from: from, until: until))
                }
            }
            result[id] = applicable
        }
        return Resolved(rules: result)
    }

    struct Resolved: Sendable {
        let rules: [UUID: MaintenanceRules]
        func verdict(_ targetID: UUID, at date: Date) -> MaintenanceRules.Verdict {
            rules[targetID]?.verdict(at: date) ?? .open
        }
    }
}

enum SQLStoreWindowColumns {
    static let list = "id, name, selector, target_id, schedule, freeze_from, freeze_until, created_at, actor"

    static func record(_ row: SQLRow) throws -> MaintenanceWindowRecord {
        MaintenanceWindowRecord(
            id: try row.uuid("id"), name: try row.string("name"), selector: try row.optionalString("selector"),
            targetID: row.isNull("target_id") ? nil : try row.uuid("target_id"), schedule: try row.optionalString("schedule"),
            freezeFrom: try row.optionalDate("freeze_from"), freezeUntil: try row.optionalDate("freeze_until"),
            createdAt: try row.date("created_at"), actor: try row.string("actor"))
    }
}

extension SQLStore {
    public func createWindow(_ new: NewMaintenanceWindow, actor: String, now: Date) async throws -> MaintenanceWindowRecord {
        let now = now.storePrecision
        try Validate.name(new.name, of: "window")
        guard (new.selector == nil) != (new.targetID == nil) else {
            throw StoreError.invalidArgument("a window applies to a label selector or to one target: give exactly one")
        }
        if let selector = new.selector { _ = try LabelSelector(parsing: selector) }
        if let schedule = new.schedule {
            guard new.freezeFrom == nil, new.freezeUntil == nil else { throw StoreError.invalidArgument("a window has a schedule or a freeze, not both") }
            do { _ = try MaintenanceSchedule(parsing: schedule) } catch { throw StoreError.invalidArgument("schedule: \(error.description)") }
        } else {
            guard let from = new.freezeFrom, let until = new.freezeUntil else {
                throw StoreError.invalidArgument("give a schedule, or a freeze's start and end")
            }
            guard from < until else { throw StoreError.invalidArgument("a freeze must end after it starts") }
        }
        let id = UUID()
        let dialect = dialect
        return try await mutate(AuditAction.windowCreate, objectType: "window", objectID: new.name, actor: actor, time: now,
                                detail: { record in record.schedule ?? "freeze \(record.freezeFrom!.formatted(.iso8601)) – \(record.freezeUntil!.formatted(.iso8601))" }) { tx in
            if let targetID = new.targetID { try await Self.requireTargets(tx, [targetID], lock: dialect.keyShare) }
            let rows = try await tx.query(
                """
                INSERT INTO maintenance_windows (id, name, selector, target_id, schedule, freeze_from, freeze_until, created_at, actor)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING \(SQLStoreWindowColumns.list)
                """,
                [.uuid(id), .text(new.name), .optional(new.selector), new.targetID.map(SQLValue.uuid) ?? .null, .optional(new.schedule),
                 new.freezeFrom.map(SQLValue.time) ?? .null, new.freezeUntil.map(SQLValue.time) ?? .null, .time(now), .text(actor)])
            guard let row = rows.first else { throw StoreError.database("INSERT … RETURNING returned no window") }
            return try SQLStoreWindowColumns.record(row)
        }
    }

    public func windows() async throws -> [MaintenanceWindowRecord] {
        try await driver.transaction(write: false) { tx in
            try await tx.query("SELECT \(SQLStoreWindowColumns.list) FROM maintenance_windows ORDER BY name").map(SQLStoreWindowColumns.record)
        }
    }

    public func deleteWindow(named name: String, actor: String, now: Date) async throws {
        try await mutate(AuditAction.windowDelete, objectType: "window", objectID: name, actor: actor, time: now.storePrecision) { tx in
            guard try await !tx.query("DELETE FROM maintenance_windows WHERE name = $1 RETURNING id", [.text(name)]).isEmpty else {
                throw StoreError.notFound(objectType: "window", id: name)
            }
        }
    }

    public func maintenanceRules(targetID: UUID) async throws -> MaintenanceRules {
        try await driver.transaction(write: false) { tx in
            try await MaintenanceRuleBook.load(tx).forTargets(tx, [targetID]).rules[targetID] ?? MaintenanceRules()
        }
    }

    // MARK: Certificate rollout policy

    public func certificatePolicy(name: String) async throws -> CertificatePolicy? {
        try await driver.transaction(write: false) { tx in
            try await Self.requireCertificate(tx, name, lock: "")
            guard let row = try await tx.query(
                "SELECT auto_rollout, strategy_json, behind_after_seconds FROM certificate_policies WHERE certificate_name = $1", [.text(name)]
            ).first else { return nil }
            return try Self.policy(row)
        }
    }

    static func policy(_ row: SQLRow) throws -> CertificatePolicy {
        let strategy = try row.optionalString("strategy_json").map { text in
            do { return try JSONDecoder.store.decode(RolloutStrategy.self, from: Data(text.utf8)) } catch {
                throw StoreError.corrupt("certificate_policies.strategy_json: \(error)")
            }
        }
        return CertificatePolicy(autoRollout: try row.bool("auto_rollout"), strategy: strategy,
                                 behindAfterSeconds: try row.optionalInt64("behind_after_seconds").map { Int($0) })
    }

    public func setCertificatePolicy(name: String, _ policy: CertificatePolicy, actor: String) async throws -> CertificatePolicy {
        let now = now()
        let strategyJSON = try policy.strategy.map { try JSONEncoder.store.encodeText($0) }
        let dialect = dialect
        return try await mutate(AuditAction.certificatePolicySet, objectType: "certificate", objectID: name, actor: actor, time: now,
                                detail: { "autoRollout \($0.autoRollout)" }) { tx in
            try await Self.requireCertificate(tx, name, lock: dialect.keyShare)
            try await tx.query("DELETE FROM certificate_policies WHERE certificate_name = $1", [.text(name)])
            let rows = try await tx.query(
                """
                INSERT INTO certificate_policies (certificate_name, auto_rollout, strategy_json, behind_after_seconds, updated_at)
                VALUES ($1, $2, $3, $4, $5) RETURNING auto_rollout, strategy_json, behind_after_seconds
                """,
                [.text(name), .bool(policy.autoRollout), .optional(strategyJSON), policy.behindAfterSeconds.map(SQLValue.int) ?? .null, .time(now)])
            guard let row = rows.first else { throw StoreError.database("INSERT … RETURNING returned no policy") }
            return try Self.policy(row)
        }
    }
}

/// How new versions of a certificate roll out.
public struct CertificatePolicy: Sendable, Equatable, Codable {
    /// A new version starts a rollout to every target bound to the certificate.
    public var autoRollout: Bool
    /// The strategy of those rollouts (and of `push` to several targets); nil: the default.
    public var strategy: RolloutStrategy?
    /// A bound target not serving the newest version this long after its upload is `behind`; nil: a day.
    public var behindAfterSeconds: Int?

    public init(autoRollout: Bool, strategy: RolloutStrategy? = nil, behindAfterSeconds: Int? = nil) {
        self.autoRollout = autoRollout
        self.strategy = strategy
        self.behindAfterSeconds = behindAfterSeconds
    }
}
