import Core
import Foundation
import Logging

/// Tags the backend of a ``SQLStore``; see ``SQLiteStore`` and ``PostgresStore``.
public protocol StoreBackend: Sendable {}

/// SQLite: one file (WAL mode), one writer at a time. The default: `certdeploy serve` needs nothing else.
public enum SQLiteBackend: StoreBackend {}

/// PostgreSQL: a connection pool; several server replicas can share one database.
public enum PostgresBackend: StoreBackend {}

/// The store on SQLite. Open with ``SQLStore/open(path:busyTimeout:clock:logger:)`` or
/// ``SQLStore/open(dataDirectory:clock:logger:)``.
public typealias SQLiteStore = SQLStore<SQLiteBackend>

/// The store on PostgreSQL. Open with ``SQLStore/open(url:maximumConnections:clock:logger:)``.
public typealias PostgresStore = SQLStore<PostgresBackend>

/// What tests (`@testable import Store`) use to reach the database under a store.
protocol SQLBackedStore {
    var driver: any SQLDriver { get }
}

extension SQLStore: SQLBackedStore {}

/// The ``Store`` over SQL. The logic is written once; the backend supplies the connection and the few
/// dialect differences (row-lock clauses, migrations, error mapping).
public final class SQLStore<Backend: StoreBackend>: Store {
    let driver: any SQLDriver
    let clock: @Sendable () -> Date
    let logger: Logger
    /// The database file, or the URL with its password hidden.
    public let location: String

    init(driver: any SQLDriver, location: String, clock: @escaping @Sendable () -> Date, logger: Logger) {
        self.driver = driver
        self.location = location
        self.clock = clock
        self.logger = logger
    }

    var dialect: SQLDialect { driver.dialect }

    /// The clock's time at store precision.
    func now() -> Date { clock().storePrecision }

    public func schemaVersion() async throws -> Int {
        try await driver.transaction(write: false) { tx in
            let row = try await tx.query("SELECT MAX(version) AS version FROM schema_migrations").first
            return try row?.optionalInt64("version").map { Int($0) } ?? 0
        }
    }

    public func close() async throws {
        try await driver.close()
    }

    // MARK: - Mutations and their audit events

    /// Runs `body` in a write transaction that also records the audit event for it. When it fails, records
    /// a "failure" event in a transaction of its own (best effort) and rethrows.
    @discardableResult
    func mutate<Result: Sendable>(
        _ action: String, objectType: String, objectID: String, actor: String, time: Date,
        outcome: @escaping @Sendable (Result) -> String = { _ in "success" },
        detail: @escaping @Sendable (Result) -> String? = { _ in nil },
        _ body: @escaping @Sendable (any SQLTransaction) async throws -> Result
    ) async throws -> Result {
        do {
            return try await driver.transaction(write: true) { tx in
                let result = try await body(tx)
                try await Self.insertAudit(
                    tx,
                    NewAuditEvent(
                        time: time, actor: actor, action: action, objectType: objectType, objectID: objectID,
                        outcome: outcome(result), detail: detail(result)))
                return result
            }
        } catch {
            await recordFailure(NewAuditEvent(
                time: time, actor: actor, action: action, objectType: objectType, objectID: objectID, outcome: "failure",
                detail: String(describing: error)))
            throw error
        }
    }

    /// Writes the audit event of a mutation that failed (its own transaction: the mutation's was rolled back).
    func recordFailure(_ event: NewAuditEvent) async {
        do {
            _ = try await driver.transaction(write: true) { tx in try await Self.insertAudit(tx, event) }
        } catch let auditError {
            logger.error("could not record the failed \(event.action) of \(event.objectType) \(event.objectID) in the audit log: \(auditError)")
        }
    }

    /// Inserts audit events with one multi-row statement (returning nothing: a large enqueue writes thousands).
    static func insertAudits(_ tx: any SQLTransaction, _ events: [NewAuditEvent]) async throws {
        guard !events.isEmpty else { return }
        let insert = auditInsert(events)
        _ = try await tx.query(insert.sql, insert.values)
    }

    @discardableResult
    static func insertAudit(_ tx: any SQLTransaction, _ event: NewAuditEvent) async throws -> AuditEvent {
        let insert = auditInsert([event])
        let rows = try await tx.query(insert.sql + " RETURNING id, time, actor, action, object_type, object_id, outcome, detail", insert.values)
        guard let row = rows.first else { throw StoreError.database("INSERT … RETURNING returned no row") }
        return try auditEvent(row)
    }

    /// The `INSERT INTO audit_events … VALUES (…), …` statement for `events`, and its parameters.
    private static func auditInsert(_ events: [NewAuditEvent]) -> (sql: String, values: [SQLValue]) {
        let parameters = SQLParameters()
        let rows = events.map { event in
            let values: [SQLValue] = [.time(event.time), .text(event.actor), .text(event.action), .text(event.objectType), .text(event.objectID),
                                      .text(event.outcome), .optional(event.detail)]
            return "(" + values.map { parameters.bind($0) }.joined(separator: ", ") + ")"
        }
        let sql = "INSERT INTO audit_events (time, actor, action, object_type, object_id, outcome, detail) VALUES \(rows.joined(separator: ", "))"
        return (sql, parameters.values)
    }

    static func auditEvent(_ row: SQLRow) throws -> AuditEvent {
        AuditEvent(
            id: try row.int64("id"), time: try row.date("time"), actor: try row.string("actor"), action: try row.string("action"),
            objectType: try row.string("object_type"), objectID: try row.string("object_id"), outcome: try row.string("outcome"),
            detail: try row.optionalString("detail"))
    }

    // MARK: - Certificates

    static var certificateColumns: String {
        "c.name, c.created_at, c.updated_at, "
            + "(SELECT MAX(v.version) FROM certificate_versions v WHERE v.certificate_name = c.name) AS latest_version"
    }

    static var versionColumns: String {
        """
        certificate_name, version, certificate_pem, chain_pem, encrypted_private_key, sha256, not_after, \
        subject_alt_names, must_staple, created_at
        """
    }

    static func certificate(_ row: SQLRow) throws -> CertificateRecord {
        CertificateRecord(
            name: try row.string("name"), createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"),
            latestVersion: try row.optionalInt64("latest_version").map { Int($0) })
    }

    static func certificateVersion(_ row: SQLRow) throws -> CertificateVersionRecord {
        let sansText = try row.string("subject_alt_names")
        guard let sans = try? JSONDecoder().decode([String].self, from: Data(sansText.utf8)) else {
            throw StoreError.corrupt("certificate_versions.subject_alt_names is not a JSON array of strings")
        }
        return CertificateVersionRecord(
            certificateName: try row.string("certificate_name"), version: try row.int("version"),
            certificatePEM: try row.string("certificate_pem"), chainPEM: try row.string("chain_pem"),
            encryptedPrivateKey: try row.bytes("encrypted_private_key"), sha256: try row.string("sha256"),
            notAfter: try row.date("not_after"), subjectAlternativeNames: sans, mustStaple: try row.bool("must_staple"),
            createdAt: try row.date("created_at"))
    }

    public func createCertificate(name: String, actor: String) async throws -> CertificateRecord {
        let now = now()
        return try await mutate(AuditAction.certificateCreate, objectType: "certificate", objectID: name, actor: actor, time: now) { tx in
            try Validate.name(name, of: "certificate")
            let rows = try await tx.query(
                "INSERT INTO certificates (name, created_at, updated_at) VALUES ($1, $2, $2) RETURNING name, created_at, updated_at",
                [.text(name), .time(now)])
            guard let row = rows.first else { throw StoreError.database("INSERT … RETURNING returned no row") }
            return CertificateRecord(
                name: try row.string("name"), createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"),
                latestVersion: nil)
        }
    }

    public func addCertificateVersion(_ new: NewCertificateVersion, actor: String) async throws -> CertificateVersionRecord {
        let now = now()
        let dialect = dialect
        return try await mutate(
            AuditAction.certificateVersionAdd, objectType: "certificate", objectID: new.certificateName, actor: actor, time: now,
            detail: { "version \($0.version), SHA-256 \($0.sha256)" }
        ) { tx in
            guard new.certificatePEM.contains("-----BEGIN CERTIFICATE-----") else {
                throw StoreError.invalidArgument("certificatePEM holds no PEM certificate")
            }
            guard new.sha256.count == 64, new.sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw StoreError.invalidArgument("sha256 must be 64 lowercase hex digits")
            }
            guard !new.encryptedPrivateKey.isEmpty else { throw StoreError.invalidArgument("encryptedPrivateKey is empty") }
            // Locks the certificate: concurrent additions get consecutive numbers.
            guard try await !tx.query("SELECT name FROM certificates WHERE name = $1 \(dialect.noKeyUpdate)", [.text(new.certificateName)]).isEmpty
            else { throw StoreError.notFound(objectType: "certificate", id: new.certificateName) }
            let next = try await tx.query(
                "SELECT COALESCE(MAX(version), 0) + 1 AS next FROM certificate_versions WHERE certificate_name = $1",
                [.text(new.certificateName)]
            ).first?.int64("next") ?? 1
            let sans = try JSONEncoder().encodeText(new.subjectAlternativeNames)
            let rows = try await tx.query(
                """
                INSERT INTO certificate_versions (\(Self.versionColumns))
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                RETURNING \(Self.versionColumns)
                """,
                [.text(new.certificateName), .int(next), .text(new.certificatePEM), .text(new.chainPEM), .blob(new.encryptedPrivateKey),
                 .text(new.sha256), .time(new.notAfter), .text(sans), .bool(new.mustStaple), .time(now)])
            try await tx.query("UPDATE certificates SET updated_at = $2 WHERE name = $1", [.text(new.certificateName), .time(now)])
            guard let row = rows.first else { throw StoreError.database("INSERT … RETURNING returned no row") }
            return try Self.certificateVersion(row)
        }
    }

    public func certificate(named name: String) async throws -> CertificateRecord {
        try await driver.transaction(write: false) { tx in
            guard let row = try await tx.query("SELECT \(Self.certificateColumns) FROM certificates c WHERE c.name = $1", [.text(name)]).first
            else { throw StoreError.notFound(objectType: "certificate", id: name) }
            return try Self.certificate(row)
        }
    }

    public func certificateVersion(name: String, version: Int?) async throws -> CertificateVersionRecord {
        try await driver.transaction(write: false) { tx in
            let rows: [SQLRow]
            if let version {
                rows = try await tx.query(
                    "SELECT \(Self.versionColumns) FROM certificate_versions WHERE certificate_name = $1 AND version = $2",
                    [.text(name), .int(version)])
            } else {
                rows = try await tx.query(
                    "SELECT \(Self.versionColumns) FROM certificate_versions WHERE certificate_name = $1 ORDER BY version DESC LIMIT 1",
                    [.text(name)])
            }
            if let row = rows.first { return try Self.certificateVersion(row) }
            guard try await !tx.query("SELECT name FROM certificates WHERE name = $1", [.text(name)]).isEmpty else {
                throw StoreError.notFound(objectType: "certificate", id: name)
            }
            throw StoreError.notFound(objectType: "certificateVersion", id: "\(name)@\(version.map(String.init) ?? "latest")")
        }
    }

    public func certificateVersions(name: String) async throws -> [CertificateVersionRecord] {
        try await driver.transaction(write: false) { tx in
            guard try await !tx.query("SELECT name FROM certificates WHERE name = $1", [.text(name)]).isEmpty else {
                throw StoreError.notFound(objectType: "certificate", id: name)
            }
            return try await tx.query(
                "SELECT \(Self.versionColumns) FROM certificate_versions WHERE certificate_name = $1 ORDER BY version",
                [.text(name)]
            ).map(Self.certificateVersion)
        }
    }

    public func listCertificates(namePrefix: String?, limit: Int, cursor: String?) async throws -> Page<CertificateRecord> {
        try Validate.limit(limit)
        let after = try cursor.map { try Cursor.decode(Cursor.ByName.self, $0) }
        return try await driver.transaction(write: false) { tx in
            var conditions: [String] = []
            let parameters = SQLParameters()
            if let namePrefix, !namePrefix.isEmpty {
                let prefix = parameters.bind(.text(namePrefix))
                conditions.append("substr(c.name, 1, length(\(prefix))) = \(prefix)")
            }
            if let after {
                conditions.append("c.name > \(parameters.bind(.text(after.name)))")
            }
            let limitParameter = parameters.bind(.int(limit + 1))
            let rows = try await tx.query(
                """
                SELECT \(Self.certificateColumns) FROM certificates c
                \(SQLParameters.whereClause(conditions))
                ORDER BY c.name LIMIT \(limitParameter)
                """,
                parameters.values)
            let items = try rows.prefix(limit).map(Self.certificate)
            let next = rows.count > limit ? items.last.map { Cursor.encode(Cursor.ByName(name: $0.name, id: nil)) } : nil
            return Page(items: items, nextCursor: next)
        }
    }

    public func deleteCertificate(name: String, actor: String) async throws {
        let dialect = dialect
        try await mutate(AuditAction.certificateDelete, objectType: "certificate", objectID: name, actor: actor, time: now()) { tx in
            guard try await !tx.query("SELECT name FROM certificates WHERE name = $1 \(dialect.forUpdate)", [.text(name)]).isEmpty else {
                throw StoreError.notFound(objectType: "certificate", id: name)
            }
            guard try await tx.query("SELECT id FROM targets WHERE certificate_name = $1 LIMIT 1", [.text(name)]).isEmpty else {
                throw StoreError.conflict(field: "targets")
            }
            guard
                try await tx.query(
                    "SELECT id FROM deployments WHERE certificate_name = $1 AND status IN ('queued', 'running', 'pending', 'waiting_window') LIMIT 1", [.text(name)]
                ).isEmpty
            else { throw StoreError.conflict(field: "deployments") }
            try await tx.query("DELETE FROM certificates WHERE name = $1", [.text(name)])
        }
    }

    // MARK: - Targets

    static var targetColumns: String {
        "id, name, connector_id, config_json, transport_json, certificate_name, created_at, updated_at, version"
    }

    static func target(_ row: SQLRow, labels: [String: String]) throws -> TargetRecord {
        TargetRecord(
            id: try row.uuid("id"), name: try row.string("name"), labels: labels, connectorID: try row.string("connector_id"),
            configJSON: try row.string("config_json"), transportJSON: try row.string("transport_json"),
            certificateName: try row.optionalString("certificate_name"), createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"), version: try row.int("version"))
    }

    /// The labels of `ids`, by target.
    static func labels(_ tx: any SQLTransaction, of ids: [UUID]) async throws -> [UUID: [String: String]] {
        guard !ids.isEmpty else { return [:] }
        let placeholders = (1...ids.count).map { "$\($0)" }.joined(separator: ", ")
        let rows = try await tx.query(
            "SELECT target_id, key, value FROM target_labels WHERE target_id IN (\(placeholders))", ids.map(SQLValue.uuid))
        var result: [UUID: [String: String]] = [:]
        for row in rows {
            result[try row.uuid("target_id"), default: [:]][try row.string("key")] = try row.string("value")
        }
        return result
    }

    static func insertLabels(_ tx: any SQLTransaction, _ labels: [String: String], for id: UUID) async throws {
        guard !labels.isEmpty else { return }
        var binds: [SQLValue] = [.uuid(id)]
        var values: [String] = []
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            binds += [.text(key), .text(value)]
            values.append("($1, $\(binds.count - 1), $\(binds.count))")
        }
        try await tx.query("INSERT INTO target_labels (target_id, key, value) VALUES \(values.joined(separator: ", "))", binds)
    }

    static func validate(name: String, labels: [String: String], connectorID: String, configJSON: String, transportJSON: String) throws {
        try Validate.name(name, of: "target")
        try Labels.validate(labels)
        guard !connectorID.isEmpty else { throw StoreError.invalidArgument("connectorID is empty") }
        try Validate.jsonObject(configJSON, field: "configJSON")
        try Validate.jsonObject(transportJSON, field: "transportJSON")
    }

    static func requireCertificate(_ tx: any SQLTransaction, _ name: String?, lock: String) async throws {
        guard let name else { return }
        guard try await !tx.query("SELECT name FROM certificates WHERE name = $1 \(lock)", [.text(name)]).isEmpty else {
            throw StoreError.notFound(objectType: "certificate", id: name)
        }
    }

    public func createTarget(_ new: NewTarget, actor: String) async throws -> TargetRecord {
        let now = now()
        let id = new.id ?? UUID()
        let dialect = dialect
        return try await mutate(
            AuditAction.targetCreate, objectType: "target", objectID: id.lowercasedText, actor: actor, time: now,
            detail: { "name \($0.name)" }
        ) { tx in
            try Self.validate(
                name: new.name, labels: new.labels, connectorID: new.connectorID, configJSON: new.configJSON,
                transportJSON: new.transportJSON)
            try await Self.requireCertificate(tx, new.certificateName, lock: dialect.keyShare)
            let rows = try await tx.query(
                """
                INSERT INTO targets (\(Self.targetColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)
                RETURNING \(Self.targetColumns)
                """,
                [.uuid(id), .text(new.name), .text(new.connectorID), .text(new.configJSON), .text(new.transportJSON),
                 .optional(new.certificateName), .time(now)])
            try await Self.insertLabels(tx, new.labels, for: id)
            guard let row = rows.first else { throw StoreError.database("INSERT … RETURNING returned no row") }
            return try Self.target(row, labels: new.labels)
        }
    }

    public func target(id: UUID) async throws -> TargetRecord {
        try await driver.transaction(write: false) { tx in
            guard let row = try await tx.query("SELECT \(Self.targetColumns) FROM targets WHERE id = $1", [.uuid(id)]).first else {
                throw StoreError.notFound(objectType: "target", id: id.lowercasedText)
            }
            return try Self.target(row, labels: try await Self.labels(tx, of: [id])[id] ?? [:])
        }
    }

    public func target(named name: String) async throws -> TargetRecord {
        try await driver.transaction(write: false) { tx in
            guard let row = try await tx.query("SELECT \(Self.targetColumns) FROM targets WHERE name = $1", [.text(name)]).first else {
                throw StoreError.notFound(objectType: "target", id: name)
            }
            let id = try row.uuid("id")
            return try Self.target(row, labels: try await Self.labels(tx, of: [id])[id] ?? [:])
        }
    }

    public func updateTarget(_ target: TargetRecord, actor: String) async throws -> TargetRecord {
        let now = now()
        let dialect = dialect
        return try await mutate(
            AuditAction.targetUpdate, objectType: "target", objectID: target.id.lowercasedText, actor: actor, time: now,
            detail: { "version \($0.version)" }
        ) { tx in
            try Self.validate(
                name: target.name, labels: target.labels, connectorID: target.connectorID, configJSON: target.configJSON,
                transportJSON: target.transportJSON)
            guard let current = try await tx.query("SELECT version FROM targets WHERE id = $1 \(dialect.noKeyUpdate)", [.uuid(target.id)]).first
            else { throw StoreError.notFound(objectType: "target", id: target.id.lowercasedText) }
            let currentVersion = try current.int("version")
            guard currentVersion == target.version else {
                throw StoreError.staleVersion(expected: target.version, current: currentVersion)
            }
            try await Self.requireCertificate(tx, target.certificateName, lock: dialect.keyShare)
            let rows = try await tx.query(
                """
                UPDATE targets SET name = $2, connector_id = $3, config_json = $4, transport_json = $5, certificate_name = $6,
                    updated_at = $7, version = version + 1
                WHERE id = $1
                RETURNING \(Self.targetColumns)
                """,
                [.uuid(target.id), .text(target.name), .text(target.connectorID), .text(target.configJSON), .text(target.transportJSON),
                 .optional(target.certificateName), .time(now)])
            try await tx.query("DELETE FROM target_labels WHERE target_id = $1", [.uuid(target.id)])
            try await Self.insertLabels(tx, target.labels, for: target.id)
            guard let row = rows.first else { throw StoreError.database("UPDATE … RETURNING returned no row") }
            return try Self.target(row, labels: target.labels)
        }
    }

    public func deleteTarget(id: UUID, actor: String) async throws {
        let now = now()
        let dialect = dialect
        let idText = id.lowercasedText
        try await mutate(
            AuditAction.targetDelete, objectType: "target", objectID: idText, actor: actor, time: now,
            detail: { $0 == 0 ? nil : "cancelled \($0) queued deployment(s)" }
        ) { tx in
            // FOR UPDATE on the target waits for enqueues (KEY SHARE) and claims (NO KEY UPDATE) in flight,
            // and keeps new ones out until this commits.
            guard try await !tx.query("SELECT id FROM targets WHERE id = $1 \(dialect.forUpdate)", [.uuid(id)]).isEmpty else {
                throw StoreError.notFound(objectType: "target", id: idText)
            }
            guard try await tx.query("SELECT id FROM deployments WHERE target_id = $1 AND status = 'running'", [.uuid(id)]).isEmpty else {
                throw StoreError.conflict(field: "deployments")
            }
            let cancelled = try await tx.query(
                """
                UPDATE deployments SET status = 'cancelled', finished_at = $2, status_note = 'cancelled: the target was deleted'
                WHERE target_id = $1 AND status IN ('queued', 'pending', 'waiting_window')
                RETURNING id
                """,
                [.uuid(id), .time(now)])
            for row in cancelled {
                try await Self.insertAudit(
                    tx,
                    NewAuditEvent(
                        time: now, actor: actor, action: AuditAction.deploymentCancel, objectType: "deployment",
                        objectID: try row.uuid("id").lowercasedText, outcome: "success", detail: "the target was deleted"))
            }
            try await tx.query("DELETE FROM targets WHERE id = $1", [.uuid(id)])
            return cancelled.count
        }
    }

    public func listTargets(_ filter: TargetFilter, limit: Int, cursor: String?) async throws -> Page<TargetRecord> {
        try Validate.limit(limit)
        let selector = try filter.labelSelector.map { try LabelSelector(parsing: $0) }
        let after = try cursor.map { try Cursor.decode(Cursor.ByName.self, $0) }
        let afterID = try after.map { key -> UUID in
            guard let text = key.id, let id = UUID(text: text) else {
                throw StoreError.invalidArgument("cursor is not one this listing returned")
            }
            return id
        }
        return try await driver.transaction(write: false) { tx in
            var conditions: [String] = []
            let parameters = SQLParameters()
            if let connectorID = filter.connectorID {
                conditions.append("t.connector_id = \(parameters.bind(.text(connectorID)))")
            }
            if let prefix = filter.namePrefix, !prefix.isEmpty {
                let p = parameters.bind(.text(prefix))
                conditions.append("substr(t.name, 1, length(\(p))) = \(p)")
            }
            for requirement in selector?.requirements ?? [] {
                conditions.append(
                    "EXISTS (SELECT 1 FROM target_labels l WHERE l.target_id = t.id AND l.key = \(parameters.bind(.text(requirement.key))) "
                        + "AND l.value = \(parameters.bind(.text(requirement.value))))")
            }
            if let after, let afterID {
                let name = parameters.bind(.text(after.name))
                conditions.append("(t.name > \(name) OR (t.name = \(name) AND t.id > \(parameters.bind(.uuid(afterID)))))")
            }
            let limitParameter = parameters.bind(.int(limit + 1))
            let rows = try await tx.query(
                """
                SELECT \(Self.targetColumns.split(separator: ",").map { "t." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", "))
                FROM targets t
                \(SQLParameters.whereClause(conditions))
                ORDER BY t.name, t.id
                LIMIT \(limitParameter)
                """,
                parameters.values)
            let page = Array(rows.prefix(limit))
            let ids = try page.map { try $0.uuid("id") }
            let labels = try await Self.labels(tx, of: ids)
            let items = try zip(page, ids).map { row, id in try Self.target(row, labels: labels[id] ?? [:]) }
            let next = rows.count > limit
                ? items.last.map { Cursor.encode(Cursor.ByName(name: $0.name, id: $0.id.lowercasedText)) } : nil
            return Page(items: items, nextCursor: next)
        }
    }

    // MARK: - Audit

    public func recordAuditEvent(_ event: NewAuditEvent) async throws -> AuditEvent {
        var event = event
        event.time = event.time.storePrecision
        let stored = event
        return try await driver.transaction(write: true) { tx in try await Self.insertAudit(tx, stored) }
    }

    public func auditEvents(_ filter: AuditFilter, limit: Int, cursor: String?) async throws -> Page<AuditEvent> {
        try Validate.limit(limit)
        let before = try cursor.map { try Cursor.decode(Cursor.BySequence.self, $0) }
        return try await driver.transaction(write: false) { tx in
            var conditions: [String] = []
            let parameters = SQLParameters()
            if let actor = filter.actor { conditions.append("actor = \(parameters.bind(.text(actor)))") }
            if let action = filter.action { conditions.append("action = \(parameters.bind(.text(action)))") }
            if let objectType = filter.objectType { conditions.append("object_type = \(parameters.bind(.text(objectType)))") }
            if let objectID = filter.objectID { conditions.append("object_id = \(parameters.bind(.text(objectID)))") }
            if let before { conditions.append("id < \(parameters.bind(.int(before.seq)))") }
            let limitParameter = parameters.bind(.int(limit + 1))
            let rows = try await tx.query(
                """
                SELECT id, time, actor, action, object_type, object_id, outcome, detail FROM audit_events
                \(SQLParameters.whereClause(conditions))
                ORDER BY id DESC
                LIMIT \(limitParameter)
                """,
                parameters.values)
            let items = try rows.prefix(limit).map(Self.auditEvent)
            let next = rows.count > limit ? items.last.map { Cursor.encode(Cursor.BySequence(seq: $0.id)) } : nil
            return Page(items: items, nextCursor: next)
        }
    }
}
