import Foundation

// The schema, one list of versioned migrations per backend. Applied at open, in order, each in the same
// transaction as its row in `schema_migrations`. A released migration never changes: add a new version.
//
// Both schemas have the same tables, columns and constraint meanings:
// - times are BIGINT microseconds since 1970 (identical round trips on both backends);
// - names sort bytewise (PostgreSQL `COLLATE "C"`, SQLite's default BINARY), so pages come in the same
//   order on both;
// - `deployments_one_running_per_target` is the partial unique index that makes "one running deployment
//   per target" a database fact, whatever the workers do;
// - deployments keep no foreign key to targets or certificates: their history outlives both.

enum Migrations {
    static let postgres: [Migration] = [
        Migration(version: 1, name: "initial schema", statements: [
            """
            CREATE TABLE certificates (
                name TEXT COLLATE "C" PRIMARY KEY,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE certificate_versions (
                certificate_name TEXT COLLATE "C" NOT NULL REFERENCES certificates (name) ON DELETE CASCADE,
                version BIGINT NOT NULL,
                certificate_pem TEXT NOT NULL,
                chain_pem TEXT NOT NULL,
                encrypted_private_key BYTEA NOT NULL,
                sha256 TEXT NOT NULL,
                not_after BIGINT NOT NULL,
                subject_alt_names TEXT NOT NULL,
                must_staple BOOLEAN NOT NULL,
                created_at BIGINT NOT NULL,
                CONSTRAINT certificate_versions_pkey PRIMARY KEY (certificate_name, version)
            )
            """,
            """
            CREATE TABLE targets (
                id UUID PRIMARY KEY,
                name TEXT COLLATE "C" NOT NULL CONSTRAINT targets_name_unique UNIQUE,
                connector_id TEXT NOT NULL,
                config_json TEXT NOT NULL,
                transport_json TEXT NOT NULL,
                certificate_name TEXT COLLATE "C" REFERENCES certificates (name),
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                version BIGINT NOT NULL
            )
            """,
            "CREATE INDEX targets_connector ON targets (connector_id, name, id)",
            "CREATE INDEX targets_certificate ON targets (certificate_name)",
            """
            CREATE TABLE target_labels (
                target_id UUID NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
                key TEXT COLLATE "C" NOT NULL,
                value TEXT COLLATE "C" NOT NULL,
                PRIMARY KEY (target_id, key)
            )
            """,
            "CREATE INDEX target_labels_key_value ON target_labels (key, value)",
            """
            CREATE TABLE deployments (
                id UUID PRIMARY KEY,
                seq BIGINT GENERATED ALWAYS AS IDENTITY CONSTRAINT deployments_seq_unique UNIQUE,
                target_id UUID NOT NULL,
                certificate_name TEXT COLLATE "C" NOT NULL,
                certificate_version BIGINT NOT NULL,
                status TEXT NOT NULL CONSTRAINT deployments_status_check CHECK (status IN
                    ('queued', 'running', 'succeeded', 'unchanged', 'failed', 'rolled_back', 'rollback_failed',
                     'interrupted', 'cancelled')),
                options_json TEXT NOT NULL,
                steps_json TEXT NOT NULL,
                failure_json TEXT,
                result_json TEXT,
                status_note TEXT,
                attempts BIGINT NOT NULL DEFAULT 0,
                interruptions BIGINT NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_expires_at BIGINT,
                not_before BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                started_at BIGINT,
                finished_at BIGINT,
                actor TEXT NOT NULL,
                CONSTRAINT deployments_lease_check CHECK (status <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
            )
            """,
            "CREATE UNIQUE INDEX deployments_one_running_per_target ON deployments (target_id) WHERE status = 'running'",
            "CREATE INDEX deployments_queued ON deployments (seq) WHERE status = 'queued'",
            "CREATE INDEX deployments_target ON deployments (target_id, status, seq)",
            "CREATE INDEX deployments_certificate ON deployments (certificate_name, status)",
            "CREATE INDEX deployments_lease ON deployments (lease_expires_at) WHERE status = 'running'",
            """
            CREATE TABLE audit_events (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                time BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                object_type TEXT NOT NULL,
                object_id TEXT NOT NULL,
                outcome TEXT NOT NULL,
                detail TEXT
            )
            """,
            "CREATE INDEX audit_events_object ON audit_events (object_type, object_id, id)",
            "CREATE INDEX audit_events_actor ON audit_events (actor, id)",
        ]),
        Migration(version: 2, name: "settings", statements: [
            """
            CREATE TABLE settings (
                name TEXT COLLATE "C" PRIMARY KEY,
                value TEXT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """
        ]),
        Migration(version: 3, name: "target status", statements: [
            """
            CREATE TABLE target_status (
                target_id UUID PRIMARY KEY REFERENCES targets (id) ON DELETE CASCADE,
                auto_remediate BOOLEAN NOT NULL DEFAULT FALSE,
                sync TEXT,
                sync_detail TEXT,
                served_sha256 TEXT,
                checked_at BIGINT,
                staple TEXT,
                staple_detail TEXT,
                staple_this_update BIGINT,
                staple_next_update BIGINT,
                staple_checked_at BIGINT,
                updated_at BIGINT NOT NULL
            )
            """
        ]),
        Migration(version: 4, name: "rollouts and maintenance windows", statements: [
            "ALTER TABLE deployments DROP CONSTRAINT deployments_status_check",
            """
            ALTER TABLE deployments ADD CONSTRAINT deployments_status_check CHECK (status IN
                ('pending', 'waiting_window', 'queued', 'running', 'succeeded', 'unchanged', 'failed', 'rolled_back', 'rollback_failed', 'interrupted', 'cancelled'))
            """,
            "ALTER TABLE deployments ADD COLUMN rollout_id UUID, ADD COLUMN wave BIGINT, ADD COLUMN superseded BOOLEAN NOT NULL DEFAULT FALSE",
            "CREATE INDEX deployments_rollout ON deployments (rollout_id, wave, seq) WHERE rollout_id IS NOT NULL",
            "CREATE INDEX deployments_waiting_window ON deployments (not_before) WHERE status = 'waiting_window'",
            """
            CREATE TABLE rollouts (
                id UUID PRIMARY KEY,
                seq BIGINT GENERATED ALWAYS AS IDENTITY CONSTRAINT rollouts_seq_unique UNIQUE,
                certificate_name TEXT COLLATE "C" NOT NULL,
                certificate_version BIGINT NOT NULL,
                strategy_json TEXT NOT NULL,
                state TEXT NOT NULL CONSTRAINT rollouts_state_check CHECK (state IN ('pending', 'running', 'waiting_approval', 'paused', 'halted', 'succeeded', 'failed', 'aborted')),
                wave_count BIGINT NOT NULL,
                target_count BIGINT NOT NULL,
                current_wave BIGINT NOT NULL,
                approved_wave BIGINT NOT NULL,
                acknowledged_failures BIGINT NOT NULL,
                wave_finished_at BIGINT,
                options_json TEXT NOT NULL,
                ignore_windows BOOLEAN NOT NULL,
                reason TEXT,
                stop_reason TEXT,
                stop_deployment_id UUID,
                actor TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                finished_at BIGINT,
                driven_by TEXT,
                driven_at BIGINT
            )
            """,
            "CREATE INDEX rollouts_open ON rollouts (seq) WHERE state IN ('pending', 'running')",
            "CREATE INDEX rollouts_certificate ON rollouts (certificate_name, seq)",
            """
            CREATE TABLE maintenance_windows (
                id UUID PRIMARY KEY,
                name TEXT COLLATE "C" NOT NULL CONSTRAINT maintenance_windows_name_unique UNIQUE,
                selector TEXT,
                target_id UUID REFERENCES targets (id) ON DELETE CASCADE,
                schedule TEXT,
                freeze_from BIGINT,
                freeze_until BIGINT,
                created_at BIGINT NOT NULL,
                actor TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE certificate_policies (
                certificate_name TEXT COLLATE "C" PRIMARY KEY REFERENCES certificates (name) ON DELETE CASCADE,
                auto_rollout BOOLEAN NOT NULL,
                strategy_json TEXT,
                behind_after_seconds BIGINT,
                updated_at BIGINT NOT NULL
            )
            """,
        ]),
    ]

    static let sqlite: [Migration] = [
        Migration(version: 1, name: "initial schema", statements: [
            """
            CREATE TABLE certificates (
                name TEXT PRIMARY KEY,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT
            """,
            """
            CREATE TABLE certificate_versions (
                certificate_name TEXT NOT NULL REFERENCES certificates (name) ON DELETE CASCADE,
                version INTEGER NOT NULL,
                certificate_pem TEXT NOT NULL,
                chain_pem TEXT NOT NULL,
                encrypted_private_key BLOB NOT NULL,
                sha256 TEXT NOT NULL,
                not_after INTEGER NOT NULL,
                subject_alt_names TEXT NOT NULL,
                must_staple INTEGER NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (certificate_name, version)
            ) STRICT
            """,
            """
            CREATE TABLE targets (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                connector_id TEXT NOT NULL,
                config_json TEXT NOT NULL,
                transport_json TEXT NOT NULL,
                certificate_name TEXT REFERENCES certificates (name),
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                version INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX targets_connector ON targets (connector_id, name, id)",
            "CREATE INDEX targets_certificate ON targets (certificate_name)",
            """
            CREATE TABLE target_labels (
                target_id TEXT NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (target_id, key)
            ) STRICT
            """,
            "CREATE INDEX target_labels_key_value ON target_labels (key, value)",
            """
            CREATE TABLE deployments (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                target_id TEXT NOT NULL,
                certificate_name TEXT NOT NULL,
                certificate_version INTEGER NOT NULL,
                status TEXT NOT NULL CHECK (status IN
                    ('queued', 'running', 'succeeded', 'unchanged', 'failed', 'rolled_back', 'rollback_failed',
                     'interrupted', 'cancelled')),
                options_json TEXT NOT NULL,
                steps_json TEXT NOT NULL,
                failure_json TEXT,
                result_json TEXT,
                status_note TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                interruptions INTEGER NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_expires_at INTEGER,
                not_before INTEGER NOT NULL,
                created_at INTEGER NOT NULL,
                started_at INTEGER,
                finished_at INTEGER,
                actor TEXT NOT NULL,
                CHECK (status <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
            ) STRICT
            """,
            "CREATE UNIQUE INDEX deployments_one_running_per_target ON deployments (target_id) WHERE status = 'running'",
            "CREATE INDEX deployments_queued ON deployments (seq) WHERE status = 'queued'",
            "CREATE INDEX deployments_target ON deployments (target_id, status, seq)",
            "CREATE INDEX deployments_certificate ON deployments (certificate_name, status)",
            "CREATE INDEX deployments_lease ON deployments (lease_expires_at) WHERE status = 'running'",
            """
            CREATE TABLE audit_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                time INTEGER NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                object_type TEXT NOT NULL,
                object_id TEXT NOT NULL,
                outcome TEXT NOT NULL,
                detail TEXT
            ) STRICT
            """,
            "CREATE INDEX audit_events_object ON audit_events (object_type, object_id, id)",
            "CREATE INDEX audit_events_actor ON audit_events (actor, id)",
        ]),
        Migration(version: 2, name: "settings", statements: [
            """
            CREATE TABLE settings (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT
            """
        ]),
        Migration(version: 3, name: "target status", statements: [
            """
            CREATE TABLE target_status (
                target_id TEXT PRIMARY KEY REFERENCES targets (id) ON DELETE CASCADE,
                auto_remediate INTEGER NOT NULL DEFAULT 0,
                sync TEXT,
                sync_detail TEXT,
                served_sha256 TEXT,
                checked_at INTEGER,
                staple TEXT,
                staple_detail TEXT,
                staple_this_update INTEGER,
                staple_next_update INTEGER,
                staple_checked_at INTEGER,
                updated_at INTEGER NOT NULL
            ) STRICT
            """
        ]),
        Migration(version: 4, name: "rollouts and maintenance windows", statements: [
            // SQLite cannot change a CHECK constraint: the deployments table is rebuilt with the new statuses and
            // columns (same rows, same seq values, so cursors stay valid), and its indexes made again.
            """
            CREATE TABLE deployments_v4 (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                target_id TEXT NOT NULL,
                certificate_name TEXT NOT NULL,
                certificate_version INTEGER NOT NULL,
                status TEXT NOT NULL CHECK (status IN
                    ('pending', 'waiting_window', 'queued', 'running', 'succeeded', 'unchanged', 'failed', 'rolled_back', 'rollback_failed', 'interrupted', 'cancelled')),
                options_json TEXT NOT NULL,
                steps_json TEXT NOT NULL,
                failure_json TEXT,
                result_json TEXT,
                status_note TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                interruptions INTEGER NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_expires_at INTEGER,
                not_before INTEGER NOT NULL,
                created_at INTEGER NOT NULL,
                started_at INTEGER,
                finished_at INTEGER,
                actor TEXT NOT NULL,
                rollout_id TEXT,
                wave INTEGER,
                superseded INTEGER NOT NULL DEFAULT 0,
                CHECK (status <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
            ) STRICT
            """,
            """
            INSERT INTO deployments_v4 (seq, id, target_id, certificate_name, certificate_version, status, options_json, steps_json,
                failure_json, result_json, status_note, attempts, interruptions, lease_owner, lease_expires_at, not_before, created_at,
                started_at, finished_at, actor)
            SELECT seq, id, target_id, certificate_name, certificate_version, status, options_json, steps_json,
                failure_json, result_json, status_note, attempts, interruptions, lease_owner, lease_expires_at, not_before, created_at,
                started_at, finished_at, actor FROM deployments
            """,
            "DROP TABLE deployments",
            "ALTER TABLE deployments_v4 RENAME TO deployments",
            "CREATE UNIQUE INDEX deployments_one_running_per_target ON deployments (target_id) WHERE status = 'running'",
            "CREATE INDEX deployments_queued ON deployments (seq) WHERE status = 'queued'",
            "CREATE INDEX deployments_target ON deployments (target_id, status, seq)",
            "CREATE INDEX deployments_certificate ON deployments (certificate_name, status)",
            "CREATE INDEX deployments_lease ON deployments (lease_expires_at) WHERE status = 'running'",
            "CREATE INDEX deployments_rollout ON deployments (rollout_id, wave, seq) WHERE rollout_id IS NOT NULL",
            "CREATE INDEX deployments_waiting_window ON deployments (not_before) WHERE status = 'waiting_window'",
            """
            CREATE TABLE rollouts (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                certificate_name TEXT NOT NULL,
                certificate_version INTEGER NOT NULL,
                strategy_json TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'waiting_approval', 'paused', 'halted', 'succeeded', 'failed', 'aborted')),
                wave_count INTEGER NOT NULL,
                target_count INTEGER NOT NULL,
                current_wave INTEGER NOT NULL,
                approved_wave INTEGER NOT NULL,
                acknowledged_failures INTEGER NOT NULL,
                wave_finished_at INTEGER,
                options_json TEXT NOT NULL,
                ignore_windows INTEGER NOT NULL,
                reason TEXT,
                stop_reason TEXT,
                stop_deployment_id TEXT,
                actor TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                finished_at INTEGER,
                driven_by TEXT,
                driven_at INTEGER
            ) STRICT
            """,
            "CREATE INDEX rollouts_open ON rollouts (seq) WHERE state IN ('pending', 'running')",
            "CREATE INDEX rollouts_certificate ON rollouts (certificate_name, seq)",
            """
            CREATE TABLE maintenance_windows (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                selector TEXT,
                target_id TEXT REFERENCES targets (id) ON DELETE CASCADE,
                schedule TEXT,
                freeze_from INTEGER,
                freeze_until INTEGER,
                created_at INTEGER NOT NULL,
                actor TEXT NOT NULL
            ) STRICT
            """,
            """
            CREATE TABLE certificate_policies (
                certificate_name TEXT PRIMARY KEY REFERENCES certificates (name) ON DELETE CASCADE,
                auto_rollout INTEGER NOT NULL,
                strategy_json TEXT,
                behind_after_seconds INTEGER,
                updated_at INTEGER NOT NULL
            ) STRICT
            """,
        ]),
    ]

    /// Creates `schema_migrations` if needed and applies the migrations not yet recorded there. Refuses a
    /// database whose schema is newer than `migrations` knows. Returns the resulting version.
    /// `lockStatement` (PostgreSQL: an advisory lock) keeps two replicas starting together from racing.
    static func apply(_ migrations: [Migration], with driver: any SQLDriver, lockStatement: String?, now: Date) async throws -> Int {
        try await driver.transaction(write: true) { tx in
            if let lockStatement { try await tx.query(lockStatement) }
            try await tx.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
            let applied = Set(try await tx.query("SELECT version FROM schema_migrations").map { try $0.int("version") })
            let known = migrations.map(\.version)
            if let newest = applied.max(), newest > (known.max() ?? 0) {
                throw StoreError.migration(
                    "the \(driver.dialect.name) database has schema version \(newest), newer than this build knows (\(known.max() ?? 0)): upgrade certdeploy")
            }
            for migration in migrations.sorted(by: { $0.version < $1.version }) where !applied.contains(migration.version) {
                do {
                    for statement in migration.statements { try await tx.query(statement) }
                } catch {
                    throw StoreError.migration("\(driver.dialect.name) migration \(migration.version) (\(migration.name)) failed: \(error)")
                }
                try await tx.query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    [.int(migration.version), .text(migration.name), .time(now)])
            }
            return max(applied.max() ?? 0, known.max() ?? 0)
        }
    }
}
