import Core
import Foundation

// The JSON the HTTP API speaks (`/api/v1`), shared by the server and the CLI client so the two cannot drift.
// Field names are camelCase; times are ISO 8601 (UTC, fractional seconds); ids are UUIDs.
// The OpenAPI document (`docs/reference/openapi.yaml`, served at `/api/v1/openapi.yaml`) describes these types.

/// The placeholder every response shows instead of a secret value.
public let redactedPlaceholder = "<redacted>"

// MARK: - Lists

/// One page of a list. Pass `nextCursor` as `cursor` to get the next page; absent on the last page.
public struct ListResponse<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String? = nil) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

// MARK: - Problems (RFC 9457)

/// An error answer: `application/problem+json`.
public struct Problem: Codable, Sendable, Error, Equatable, CustomStringConvertible {
    /// A URI naming the kind of problem (`https://certdeploy.dev/problems/<slug>`).
    public var type: String
    /// Short, the same for every problem of this type.
    public var title: String
    /// The HTTP status code.
    public var status: Int
    /// What went wrong this time, naming the field.
    public var detail: String
    /// The request path.
    public var instance: String?
    /// The fields at fault, as JSON pointers into the request body (or `query:<name>` / `path:<name>`).
    public var errors: [FieldError]?

    public struct FieldError: Codable, Sendable, Equatable {
        public var pointer: String
        public var detail: String

        public init(pointer: String, detail: String) {
            self.pointer = pointer
            self.detail = detail
        }
    }

    public init(type: String, title: String, status: Int, detail: String, instance: String? = nil, errors: [FieldError]? = nil) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.instance = instance
        self.errors = errors
    }

    public var description: String {
        var text = "\(status) \(title): \(detail)"
        for error in errors ?? [] where !detail.contains(error.pointer) { text += "\n  \(error.pointer): \(error.detail)" }
        return text
    }
}

// MARK: - Service

/// `GET /health`.
public struct HealthResponse: Codable, Sendable {
    public var status: String
    public init(status: String) { self.status = status }
}

/// `GET /ready`: 200 when the store answers and the workers run, 503 otherwise.
public struct ReadinessResponse: Codable, Sendable {
    public var status: String
    public var store: String
    public var workers: String
    public init(status: String, store: String, workers: String) {
        self.status = status
        self.store = store
        self.workers = workers
    }
}

/// `GET /api/v1/version`.
public struct VersionResponse: Codable, Sendable {
    public var version: String
    public var apiVersion: String
    public init(version: String, apiVersion: String) {
        self.version = version
        self.apiVersion = apiVersion
    }
}

/// `GET /api/v1/auth/info`: how to authenticate, and who the presented key (if any) is.
public struct AuthInfoResponse: Codable, Sendable {
    /// "bearer": send `Authorization: Bearer <key>`.
    public var scheme: String
    public var header: String
    public var authenticated: Bool
    public var name: String?
    public var admin: Bool?
    public init(scheme: String, header: String, authenticated: Bool, name: String? = nil, admin: Bool? = nil) {
        self.scheme = scheme
        self.header = header
        self.authenticated = authenticated
        self.name = name
        self.admin = admin
    }
}

// MARK: - Connectors

/// `GET /api/v1/connectors/{id}` and the items of `GET /api/v1/connectors`: the registry's descriptor plus the
/// JSON Schema of the connector's config.
public struct ConnectorView: Codable, Sendable {
    public var descriptor: ConnectorDescriptor
    public var configSchema: JSONValue
    public init(descriptor: ConnectorDescriptor, configSchema: JSONValue) {
        self.descriptor = descriptor
        self.configSchema = configSchema
    }
}

// MARK: - Certificates

/// `POST /api/v1/certificates`: adds a version to the named certificate (creating it on first upload).
public struct CertificateUpload: Codable, Sendable {
    /// `[A-Za-z0-9._-]`, 1–128 characters.
    public var name: String
    /// The leaf, optionally followed by its chain (a fullchain.pem).
    public var certificatePEM: String
    /// Extra intermediates, in any order.
    public var chainPEM: String?
    /// The private key. Write-only: never returned.
    public var privateKeyPEM: String
    /// When the certificate's policy starts a rollout on this upload: its deploy options (a dry run, …) and a strategy
    /// instead of the policy's. Ignored otherwise.
    public var rolloutOptions: DeploymentRequest.Options?
    public var rolloutStrategy: RolloutStrategy?

    public init(name: String, certificatePEM: String, chainPEM: String? = nil, privateKeyPEM: String,
                rolloutOptions: DeploymentRequest.Options? = nil, rolloutStrategy: RolloutStrategy? = nil) {
        self.name = name
        self.certificatePEM = certificatePEM
        self.chainPEM = chainPEM
        self.privateKeyPEM = privateKeyPEM
        self.rolloutOptions = rolloutOptions
        self.rolloutStrategy = rolloutStrategy
    }
}

/// One version of a certificate. Never carries the private key.
public struct CertificateVersionView: Codable, Sendable, Equatable {
    public var name: String
    public var version: Int
    public var sha256: String
    public var subject: String
    public var issuer: String
    public var notBefore: Date
    public var notAfter: Date
    public var subjectAlternativeNames: [String]
    public var mustStaple: Bool
    public var ocspURL: String?
    /// The leaf and chain PEM (public material).
    public var certificatePEM: String
    public var chainPEM: String
    /// Always `"<redacted>"`: the key is stored encrypted and never returned.
    public var privateKey: String
    public var createdAt: Date
    /// Set on an upload that started a rollout (the certificate's policy has `autoRollout`).
    public var autoRollout: UUID?
    /// Notes from preflight (chain reordered, …), and an auto-rollout that could not start.
    public var notes: [String]

    public init(
        name: String, version: Int, sha256: String, subject: String, issuer: String, notBefore: Date, notAfter: Date,
        subjectAlternativeNames: [String], mustStaple: Bool, ocspURL: String?, certificatePEM: String, chainPEM: String,
        createdAt: Date, notes: [String] = []
    ) {
        self.name = name
        self.version = version
        self.sha256 = sha256
        self.subject = subject
        self.issuer = issuer
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.subjectAlternativeNames = subjectAlternativeNames
        self.mustStaple = mustStaple
        self.ocspURL = ocspURL
        self.certificatePEM = certificatePEM
        self.chainPEM = chainPEM
        self.privateKey = redactedPlaceholder
        self.createdAt = createdAt
        self.notes = notes
    }
}

/// A named certificate: `GET /api/v1/certificates/{name}` (with `versions`) and list items (without).
public struct CertificateView: Codable, Sendable {
    public var name: String
    public var createdAt: Date
    public var updatedAt: Date
    public var latestVersion: Int?
    /// The newest version's leaf, when there is one.
    public var latest: CertificateVersionView?
    /// Every version, oldest first (only on `GET /certificates/{name}`).
    public var versions: [CertificateVersionView]?

    public init(name: String, createdAt: Date, updatedAt: Date, latestVersion: Int?, latest: CertificateVersionView?, versions: [CertificateVersionView]?) {
        self.name = name
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.latestVersion = latestVersion
        self.latest = latest
        self.versions = versions
    }
}

// MARK: - Targets

/// `POST /api/v1/targets` and `PUT /api/v1/targets/{id}`: the same shape as a `certdeploy deploy --config`
/// target file plus labels and the bound certificate.
///
/// Exactly one of `ssh` and `kubernetes` (the one the connector talks over). Secret fields (`ssh.privateKey`,
/// `ssh.passphrase`, `ssh.password` and the connector's secret config fields) are write-only: on `PUT`, leaving
/// one out or sending `"<redacted>"` keeps the stored value.
public struct TargetInput: Codable, Sendable {
    /// `[A-Za-z0-9._-]`, 1–128 characters, unique.
    public var name: String
    /// A connector id from `GET /api/v1/connectors`.
    public var connector: String
    public var labels: [String: String]?
    /// The certificate this target serves, by name.
    public var certificate: String?
    public var ssh: JSONValue?
    public var kubernetes: JSONValue?
    /// The connector's config; its JSON Schema is in `GET /api/v1/connectors/{id}`.
    public var config: JSONValue
    /// On `PUT`: the version the change is based on (optional; a mismatch is 409).
    public var version: Int?
    /// Redeploy the last deployed certificate when the drift check finds the target serving another leaf. Off
    /// unless set; on `PUT`, absent keeps the current setting.
    public var autoRemediate: Bool?

    public init(name: String, connector: String, labels: [String: String]? = nil, certificate: String? = nil, ssh: JSONValue? = nil,
                kubernetes: JSONValue? = nil, config: JSONValue, version: Int? = nil, autoRemediate: Bool? = nil) {
        self.name = name
        self.connector = connector
        self.labels = labels
        self.certificate = certificate
        self.ssh = ssh
        self.kubernetes = kubernetes
        self.config = config
        self.version = version
        self.autoRemediate = autoRemediate
    }
}

/// A stored target; secret values show as `"<redacted>"`.
public struct TargetView: Codable, Sendable {
    public var id: UUID
    public var name: String
    public var connector: String
    public var labels: [String: String]
    public var certificate: String?
    public var ssh: JSONValue?
    public var kubernetes: JSONValue?
    public var config: JSONValue
    public var createdAt: Date
    public var updatedAt: Date
    public var version: Int
    /// The newest finished deployment's status, if any.
    public var lastDeployment: DeploymentSummary?
    /// Whether a drifted target is redeployed automatically.
    public var autoRemediate: Bool?
    /// Drift and staple state from the server's watch (absent before anything was observed).
    public var status: TargetStatusView?

    public init(id: UUID, name: String, connector: String, labels: [String: String], certificate: String?, ssh: JSONValue?, kubernetes: JSONValue?,
                config: JSONValue, createdAt: Date, updatedAt: Date, version: Int, lastDeployment: DeploymentSummary? = nil) {
        self.id = id
        self.name = name
        self.connector = connector
        self.labels = labels
        self.certificate = certificate
        self.ssh = ssh
        self.kubernetes = kubernetes
        self.config = config
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.version = version
        self.lastDeployment = lastDeployment
    }
}

/// A short view of a deployment, for target lists.
public struct DeploymentSummary: Codable, Sendable {
    public var id: UUID
    public var status: String
    public var certificate: String
    public var certificateVersion: Int
    public var finishedAt: Date?
    public init(id: UUID, status: String, certificate: String, certificateVersion: Int, finishedAt: Date?) {
        self.id = id
        self.status = status
        self.certificate = certificate
        self.certificateVersion = certificateVersion
        self.finishedAt = finishedAt
    }
}

/// `POST /api/v1/targets/{id}/test`: a dry run that writes nothing live.
public struct TargetTestReport: Codable, Sendable {
    /// True when every check passed.
    public var ok: Bool
    public var checks: [Check]

    public struct Check: Codable, Sendable {
        /// "config", "connect", "host_key", "auth", "paths", "validate", "api", …
        public var name: String
        public var ok: Bool
        public var detail: String
        public init(name: String, ok: Bool, detail: String) {
            self.name = name
            self.ok = ok
            self.detail = detail
        }
    }

    public init(ok: Bool, checks: [Check]) {
        self.ok = ok
        self.checks = checks
    }
}

/// `GET /api/v1/targets/{id}/stapling-config`: what the connector would emit for the bound certificate.
public struct StaplingConfigView: Codable, Sendable {
    public var target: UUID
    public var connector: String
    public var certificate: String
    public var certificateVersion: Int
    /// The connector's stapling decision (mode and reason).
    public var stapling: StaplingDecision
    /// Config snippets the connector emits (stapling directives among them), with where they go.
    public var snippets: [EmittedSnippet]
    public init(target: UUID, connector: String, certificate: String, certificateVersion: Int, stapling: StaplingDecision, snippets: [EmittedSnippet]) {
        self.target = target
        self.connector = connector
        self.certificate = certificate
        self.certificateVersion = certificateVersion
        self.stapling = stapling
        self.snippets = snippets
    }
}

// MARK: - Deployments

/// `POST /api/v1/deployments`: deploy a certificate version to targets named by id/name, by label selector, or both.
public struct DeploymentRequest: Codable, Sendable {
    /// Certificate name.
    public var certificate: String
    /// Version number; the newest when absent.
    public var version: Int?
    /// Target ids or names.
    public var targets: [String]?
    /// `key=value[,key=value…]`: every target carrying all these labels.
    public var selector: String?
    public var options: Options?
    /// With more than one target: how the rollout stages them (default: the certificate's policy, else the
    /// default strategy).
    public var strategy: RolloutStrategy?
    /// Start even outside the targets' maintenance windows (admin only; audited).
    public var ignoreWindows: Bool?

    public struct Options: Codable, Sendable {
        /// No option set.
        public var isEmpty: Bool { dryRun == nil && force == nil && allowMustStapleWithoutStapling == nil }
        public var dryRun: Bool?
        public var force: Bool?
        public var allowMustStapleWithoutStapling: Bool?
        public init(dryRun: Bool? = nil, force: Bool? = nil, allowMustStapleWithoutStapling: Bool? = nil) {
            self.dryRun = dryRun
            self.force = force
            self.allowMustStapleWithoutStapling = allowMustStapleWithoutStapling
        }
    }

    public init(certificate: String, version: Int? = nil, targets: [String]? = nil, selector: String? = nil, options: Options? = nil,
                strategy: RolloutStrategy? = nil, ignoreWindows: Bool? = nil) {
        self.certificate = certificate
        self.version = version
        self.targets = targets
        self.selector = selector
        self.options = options
        self.strategy = strategy
        self.ignoreWindows = ignoreWindows
    }
}

/// One deployment (one certificate version to one target).
public struct DeploymentView: Codable, Sendable {
    public var id: UUID
    public var targetID: UUID
    /// The target's name when the deployment was listed (absent when the target is gone).
    public var targetName: String?
    public var certificate: String
    public var certificateVersion: Int
    /// pending, waiting_window, queued, running, succeeded, unchanged, failed, rolled_back, rollback_failed,
    /// interrupted, cancelled.
    public var status: String
    public var options: DeploymentRequest.Options
    /// The steps so far (live while running).
    public var steps: [StepRecord]
    public var failure: DeployFailure?
    /// For rollback_failed: what an operator must look at.
    public var attention: [String]?
    public var statusNote: String?
    public var attempts: Int
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var actor: String
    /// The rollout it belongs to, and its wave there (1 is the first).
    public var rolloutID: UUID?
    public var wave: Int?
    /// A rollout's retry replaced it (true; absent otherwise): its history stays, its outcome no longer counts.
    public var superseded: Bool?

    public init(id: UUID, targetID: UUID, targetName: String?, certificate: String, certificateVersion: Int, status: String,
                options: DeploymentRequest.Options, steps: [StepRecord], failure: DeployFailure?, attention: [String]?, statusNote: String?,
                attempts: Int, createdAt: Date, startedAt: Date?, finishedAt: Date?, actor: String, rolloutID: UUID? = nil, wave: Int? = nil,
                superseded: Bool? = nil) {
        self.rolloutID = rolloutID
        self.wave = wave
        self.superseded = superseded
        self.id = id
        self.targetID = targetID
        self.targetName = targetName
        self.certificate = certificate
        self.certificateVersion = certificateVersion
        self.status = status
        self.options = options
        self.steps = steps
        self.failure = failure
        self.attention = attention
        self.statusNote = statusNote
        self.attempts = attempts
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.actor = actor
    }

    /// Not finished: pending (its rollout's wave has not started), waiting_window, queued or running.
    public var isLive: Bool { status == "queued" || status == "running" || status == "pending" || status == "waiting_window" }
}

/// Server-Sent Events of `GET /api/v1/deployments/{id}/events`: `event: step` (data: a `StepRecord`, sent as each
/// step starts and ends), `event: status` (data: the `DeploymentView`, on every status change), and a last
/// `event: end` (data: the final `DeploymentView`) after which the server closes the stream.
public enum DeploymentEventName {
    public static let step = "step"
    public static let status = "status"
    public static let end = "end"
}

// MARK: - Audit

/// `GET /api/v1/audit` items.
public struct AuditEventView: Codable, Sendable {
    public var id: Int64
    public var time: Date
    public var actor: String
    public var action: String
    public var objectType: String
    public var objectID: String
    public var outcome: String
    public var detail: String?
    public init(id: Int64, time: Date, actor: String, action: String, objectType: String, objectID: String, outcome: String, detail: String?) {
        self.id = id
        self.time = time
        self.actor = actor
        self.action = action
        self.objectType = objectType
        self.objectID = objectID
        self.outcome = outcome
        self.detail = detail
    }
}

// MARK: - JSON coding

extension JSONEncoder {
    /// How the API writes JSON: sorted keys, ISO 8601 dates with fractional seconds.
    public static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.iso8601MillisecondsText)
        }
        return encoder
    }
}

extension JSONDecoder {
    /// Reads the API's JSON (ISO 8601 dates with or without fractional seconds).
    public static var api: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = try? Date(text, strategy: apiDateStyle) { return date }
            if let date = try? Date(text, strategy: .iso8601) { return date }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
        }
        return decoder
    }
}

private let apiDateStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

/// The certdeploy release: the CLI's `--version`, the server's `GET /api/v1/version` and its User-Agent.
public let certdeployVersion = "0.2.0"
