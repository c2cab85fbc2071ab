import Foundation

// Settings (the secret-key record), the one-transaction re-encryption of every stored secret, and queue counts.
extension SQLStore {
    public func setting(named name: String) async throws -> String? {
        try await driver.transaction(write: false) { tx in
            try await tx.query("SELECT value FROM settings WHERE name = $1", [.text(name)]).first?.string("value")
        }
    }

    public func setSetting(named name: String, value: String, actor: String) async throws {
        let now = now()
        try await mutate(AuditAction.settingSet, objectType: "setting", objectID: name, actor: actor, time: now) { tx in
            try await Self.upsertSetting(tx, name: name, value: value, now: now)
        }
    }

    public func deploymentCounts() async throws -> [DeploymentStatus: Int] {
        try await driver.transaction(write: false) { tx in
            var counts: [DeploymentStatus: Int] = [:]
            for row in try await tx.query("SELECT status, COUNT(*) AS count FROM deployments GROUP BY status") {
                guard let status = DeploymentStatus(rawValue: try row.string("status")) else { continue }
                counts[status] = try row.int("count")
            }
            return counts
        }
    }

    static func upsertSetting(_ tx: any SQLTransaction, name: String, value: String, now: Date) async throws {
        try await tx.query(
            """
            INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3)
            ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
            """,
            [.text(name), .text(value), .time(now)])
    }

    public func hasEncryptedData(targetHasSecret: @escaping @Sendable (TargetRecord) -> Bool) async throws -> Bool {
        try await driver.transaction(write: false) { tx in
            if try await !tx.query("SELECT 1 AS one FROM certificate_versions LIMIT 1").isEmpty { return true }
            for row in try await tx.query("SELECT \(Self.targetColumns) FROM targets") {
                if targetHasSecret(try Self.target(row, labels: [:])) { return true }
            }
            return false
        }
    }

    public func rotateSecrets(
        settingName: String, settingValue: String, actor: String,
        privateKey: @escaping @Sendable (CertificateVersionRecord) throws -> [UInt8],
        target: @escaping @Sendable (TargetRecord) throws -> (configJSON: String, transportJSON: String)
    ) async throws -> Int {
        let now = now()
        return try await mutate(
            AuditAction.secretsRotate, objectType: "setting", objectID: settingName, actor: actor, time: now,
            detail: { "\($0) value(s) re-encrypted" }
        ) { tx in
            var rewritten = 0
            for row in try await tx.query("SELECT \(Self.versionColumns) FROM certificate_versions") {
                let version = try Self.certificateVersion(row)
                try await tx.query(
                    "UPDATE certificate_versions SET encrypted_private_key = $3 WHERE certificate_name = $1 AND version = $2",
                    [.text(version.certificateName), .int(version.version), .blob(try privateKey(version))])
                rewritten += 1
            }
            for row in try await tx.query("SELECT \(Self.targetColumns) FROM targets") {
                let record = try Self.target(row, labels: [:])
                let (configJSON, transportJSON) = try target(record)
                guard configJSON != record.configJSON || transportJSON != record.transportJSON else { continue }
                try await tx.query(
                    "UPDATE targets SET config_json = $2, transport_json = $3 WHERE id = $1",
                    [.uuid(record.id), .text(configJSON), .text(transportJSON)])
                rewritten += 1
            }
            try await Self.upsertSetting(tx, name: settingName, value: settingValue, now: now)
            return rewritten
        }
    }
}
