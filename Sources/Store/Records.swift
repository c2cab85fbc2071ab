import Core
import Foundation

// The typed records the store reads and writes. Times are kept to whole microseconds.

// MARK: - Certificates

/// A named certificate; its content lives in numbered versions.
public struct CertificateRecord: Codable, Sendable, Equatable {
    /// Unique.
    public var name: String
    public var createdAt: Date
    /// When the last version was added (or the certificate created).
    public var updatedAt: Date
    /// The newest version number, nil before the first version is added.
    public var latestVersion: Int?

    public init(name: String, createdAt: Date, updatedAt: Date, latestVersion: Int?) {
        self.name = name
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.latestVersion = latestVersion
    }
}

/// What a caller supplies for a new certificate version. The store assigns the version number.
public struct NewCertificateVersion: Sendable, Equatable {
    public var certificateName: String
    /// The leaf, PEM.
    public var certificatePEM: String
    /// Intermediates, PEM (may be empty).
    public var chainPEM: String
    /// The private key, already encrypted by the caller: the store keeps these bytes as they are.
    public var encryptedPrivateKey: [UInt8]
    /// Lowercase hex SHA-256 of the leaf's DER.
    public var sha256: String
    public var notAfter: Date
    public var subjectAlternativeNames: [String]
    public var mustStaple: Bool

    public init(
        certificateName: String, certificatePEM: String, chainPEM: String, encryptedPrivateKey: [UInt8], sha256: String,
        notAfter: Date, subjectAlternativeNames: [String], mustStaple: Bool
    ) {
        self.certificateName = certificateName
        self.certificatePEM = certificatePEM
        self.chainPEM = chainPEM
        self.encryptedPrivateKey = encryptedPrivateKey
        self.sha256 = sha256
        self.notAfter = notAfter
        self.subjectAlternativeNames = subjectAlternativeNames
        self.mustStaple = mustStaple
    }

    /// The metadata from a parsed leaf (`CertificateBundle.leafInfo` or similar).
    public init(certificateName: String, certificatePEM: String, chainPEM: String, encryptedPrivateKey: [UInt8], info: CertificateInfo) {
        self.init(
            certificateName: certificateName, certificatePEM: certificatePEM, chainPEM: chainPEM,
            encryptedPrivateKey: encryptedPrivateKey, sha256: info.sha256, notAfter: info.notAfter,
            subjectAlternativeNames: info.subjectAlternativeNames, mustStaple: info.mustStaple)
    }
}

/// One stored version of a certificate.
public struct CertificateVersionRecord: Codable, Sendable, Equatable {
    public var certificateName: String
    /// 1, 2, 3, … per certificate.
    public var version: Int
    public var certificatePEM: String
    public var chainPEM: String
    /// Opaque: encrypted by the caller, never interpreted by the store.
    public var encryptedPrivateKey: [UInt8]
    public var sha256: String
    public var notAfter: Date
    public var subjectAlternativeNames: [String]
    public var mustStaple: Bool
    public var createdAt: Date
}

// MARK: - Targets

/// What a caller supplies for a new target.
public struct NewTarget: Sendable, Equatable {
    /// Chosen by the store when nil.
    public var id: UUID?
    /// Unique.
    public var name: String
    public var labels: [String: String]
    public var connectorID: String
    /// The connector's config as JSON text, secret fields already encrypted by the caller.
    public var configJSON: String
    /// How to reach the target (SSH endpoint, host-key policy, …) as JSON text, secrets already encrypted.
    public var transportJSON: String
    /// The certificate this target serves, by name.
    public var certificateName: String?

    public init(
        id: UUID? = nil, name: String, labels: [String: String] = [:], connectorID: String, configJSON: String = "{}",
        transportJSON: String = "{}", certificateName: String? = nil
    ) {
        self.id = id
        self.name = name
        self.labels = labels
        self.connectorID = connectorID
        self.configJSON = configJSON
        self.transportJSON = transportJSON
        self.certificateName = certificateName
    }
}

/// A stored target. To change one, edit a copy and pass it to `Store.updateTarget`: its `version` says which
/// version the edit was based on.
public struct TargetRecord: Codable, Sendable, Equatable {
    public var id: UUID
    public var name: String
    public var labels: [String: String]
    public var connectorID: String
    public var configJSON: String
    public var transportJSON: String
    public var certificateName: String?
    public var createdAt: Date
    public var updatedAt: Date
    /// 1 at creation, +1 on every update.
    public var version: Int
}

/// Filters for `Store.listTargets`. All given filters must match.
public struct TargetFilter: Sendable, Equatable {
    /// `key=value[,key2=value2]`: every pair must be among the target's labels.
    public var labelSelector: String?
    public var connectorID: String?
    public var namePrefix: String?

    public init(labelSelector: String? = nil, connectorID: String? = nil, namePrefix: String? = nil) {
        self.labelSelector = labelSelector
        self.connectorID = connectorID
        self.namePrefix = namePrefix
    }
}

// MARK: - Deployments

/// Where a deployment is in its life. `pending`, `waiting_window`, `queued` and `running` are live; the rest are final.
public enum DeploymentStatus: String, Codable, Sendable, CaseIterable {
    /// A rollout's child whose wave has not started (or whose rollout is paused or halted): no worker claims it.
    case pending
    /// A rollout's child whose wave started while its target is outside its maintenance window: queued when the
    /// window opens (`notBefore`).
    case waitingWindow = "waiting_window"
    case queued
    case running
    case succeeded
    case unchanged
    case failed
    case rolledBack = "rolled_back"
    case rollbackFailed = "rollback_failed"
    /// Its lease expired (the worker died) a second time, after it had been re-queued once: not retried again.
    case interrupted
    case cancelled

    public var isFinal: Bool { self != .queued && self != .running && self != .pending && self != .waitingWindow }

    public init(_ outcome: DeploymentOutcome) {
        switch outcome {
        case .succeeded: self = .succeeded
        case .unchanged: self = .unchanged
        case .failed: self = .failed
        case .rolledBack: self = .rolledBack
        case .rollbackFailed: self = .rollbackFailed
        }
    }
}

/// What a caller supplies to queue a deployment of one certificate version to one target.
public struct NewDeployment: Sendable, Equatable {
    /// Chosen by the store when nil.
    public var id: UUID?
    public var targetID: UUID
    public var certificateName: String
    public var certificateVersion: Int
    /// Deploy options as JSON text (force, dry run, …).
    public var optionsJSON: String

    public init(id: UUID? = nil, targetID: UUID, certificateName: String, certificateVersion: Int, optionsJSON: String = "{}") {
        self.id = id
        self.targetID = targetID
        self.certificateName = certificateName
        self.certificateVersion = certificateVersion
        self.optionsJSON = optionsJSON
    }
}

/// A stored deployment: a job while queued or running, history afterwards.
public struct DeploymentRecord: Codable, Sendable, Equatable {
    public var id: UUID
    public var targetID: UUID
    public var certificateName: String
    public var certificateVersion: Int
    public var status: DeploymentStatus
    public var optionsJSON: String
    /// `[StepRecord]` as JSON text: progress while running (from heartbeats), the full record when finished.
    public var stepsJSON: String
    /// `DeployFailure` as JSON text, for the failed endings.
    public var failureJSON: String?
    /// The whole `DeploymentResult` as JSON text, when the worker supplied one.
    public var resultJSON: String?
    /// Why the status is what it is, when the store changed it (re-queued after an interruption, a retry, …).
    public var statusNote: String?
    /// How many times a worker has claimed it.
    public var attempts: Int
    /// How many times its lease expired while running.
    public var interruptions: Int
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    /// Not claimed before this time (a retry's backoff).
    public var notBefore: Date
    public var createdAt: Date
    /// When the current (or last) attempt started.
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Who asked for it.
    public var actor: String
    /// The rollout it belongs to, and its wave there (0 is the first); nil for a deployment of its own.
    public var rolloutID: UUID? = nil
    public var wave: Int? = nil
    /// A rollout's retry replaced it: its history stays, its outcome no longer counts.
    public var superseded: Bool = false

    /// The steps, decoded.
    public func steps() throws -> [StepRecord] {
        try JSONDecoder.store.decode([StepRecord].self, from: Data(stepsJSON.utf8))
    }

    /// The failure, decoded.
    public func failure() throws -> DeployFailure? {
        guard let failureJSON else { return nil }
        return try JSONDecoder.store.decode(DeployFailure.self, from: Data(failureJSON.utf8))
    }
}

/// How a deployment ended, as `Store.complete` records it.
public struct DeploymentCompletion: Sendable, Equatable {
    public var outcome: DeploymentOutcome
    public var stepsJSON: String
    public var failureJSON: String?
    public var resultJSON: String?

    public init(outcome: DeploymentOutcome, stepsJSON: String, failureJSON: String? = nil, resultJSON: String? = nil) {
        self.outcome = outcome
        self.stepsJSON = stepsJSON
        self.failureJSON = failureJSON
        self.resultJSON = resultJSON
    }

    public init(outcome: DeploymentOutcome, steps: [StepRecord], failure: DeployFailure? = nil) throws {
        self.init(
            outcome: outcome, stepsJSON: try JSONEncoder.store.encodeText(steps),
            failureJSON: try failure.map { try JSONEncoder.store.encodeText($0) })
    }

    /// Everything the engine reported.
    public init(result: DeploymentResult) throws {
        self.init(
            outcome: result.outcome, stepsJSON: try JSONEncoder.store.encodeText(result.steps),
            failureJSON: try result.failure.map { try JSONEncoder.store.encodeText($0) },
            resultJSON: try JSONEncoder.store.encodeText(result))
    }
}

/// Filters for `Store.listDeployments`.
public struct DeploymentFilter: Sendable, Equatable {
    public var targetID: UUID?
    public var rolloutID: UUID?
    public var certificateName: String?
    /// Any of these (all when empty).
    public var statuses: Set<DeploymentStatus>

    public init(targetID: UUID? = nil, certificateName: String? = nil, statuses: Set<DeploymentStatus> = [], rolloutID: UUID? = nil) {
        self.targetID = targetID
        self.rolloutID = rolloutID
        self.certificateName = certificateName
        self.statuses = statuses
    }
}

// MARK: - Audit

/// Who did what to which object, when, and how it went.
public struct AuditEvent: Codable, Sendable, Equatable {
    /// Increasing in insertion order.
    public var id: Int64
    public var time: Date
    /// An API key name, a worker id, or "system".
    public var actor: String
    /// "target.create", "deployment.cancel", … (see `AuditAction`).
    public var action: String
    /// "certificate", "target", "deployment", …
    public var objectType: String
    public var objectID: String
    /// "success" or "failure" for requests; for deployments that end, the deployment's status.
    public var outcome: String
    public var detail: String?
}

/// An event the server records itself (a refused request, a login, …). Store mutations record their own.
public struct NewAuditEvent: Sendable, Equatable {
    public var time: Date
    public var actor: String
    public var action: String
    public var objectType: String
    public var objectID: String
    public var outcome: String
    public var detail: String?

    public init(time: Date, actor: String, action: String, objectType: String, objectID: String, outcome: String, detail: String? = nil) {
        self.time = time
        self.actor = actor
        self.action = action
        self.objectType = objectType
        self.objectID = objectID
        self.outcome = outcome
        self.detail = detail
    }
}

/// The actions store mutations record.
public enum AuditAction {
    public static let certificateCreate = "certificate.create"
    public static let certificateVersionAdd = "certificate.version.add"
    public static let certificateDelete = "certificate.delete"
    public static let targetCreate = "target.create"
    public static let targetUpdate = "target.update"
    public static let targetDelete = "target.delete"
    public static let deploymentEnqueue = "deployment.enqueue"
    public static let deploymentCancel = "deployment.cancel"
    /// An admin deployed to a target outside its maintenance window (`ignoreWindows`).
    public static let deploymentIgnoreWindows = "deployment.ignore_windows"
    public static let deploymentComplete = "deployment.complete"
    /// A worker gave a running deployment back to the queue to retry later (connection error).
    public static let deploymentRelease = "deployment.release"
    /// A lease expired: outcome "requeued" or "interrupted".
    public static let deploymentInterrupt = "deployment.interrupt"
    public static let settingSet = "setting.set"
    /// Every secret re-encrypted under a new passphrase.
    public static let secretsRotate = "secrets.rotate"
    public static let rolloutCreate = "rollout.create"
    /// An operator's action: `rollout.pause`, `rollout.resume`, `rollout.approve`, `rollout.abort`, `rollout.retry`.
    public static func rollout(_ action: RolloutAction) -> String { "rollout.\(action.name)" }
    /// The rollout moved on by itself; the outcome says how (`wave_started`, `wave_finished`, `halted`,
    /// `waiting_approval`, `succeeded`, `failed`).
    public static let rolloutProgress = "rollout.progress"
    public static let windowCreate = "window.create"
    public static let windowDelete = "window.delete"
    public static let certificatePolicySet = "certificate.policy.set"
}

/// Filters for `Store.auditEvents`.
public struct AuditFilter: Sendable, Equatable {
    public var actor: String?
    public var action: String?
    public var objectType: String?
    public var objectID: String?

    public init(actor: String? = nil, action: String? = nil, objectType: String? = nil, objectID: String? = nil) {
        self.actor = actor
        self.action = action
        self.objectType = objectType
        self.objectID = objectID
    }
}

// MARK: - Pages

/// One page of a listing. Pass `nextCursor` back to get the following page; nil means this was the last.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    /// Opaque.
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

extension Page: Equatable where Item: Equatable {}

// MARK: - JSON

extension JSONEncoder {
    /// Sorted keys, ISO 8601 dates with fractional seconds: stable, readable text for stored JSON.
    static var store: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.iso8601MillisecondsText)
        }
        return encoder
    }

    func encodeText<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encode(value), as: UTF8.self)
    }
}

private let storeDateStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

extension JSONDecoder {
    /// Reads what `JSONEncoder.store` writes (and ISO 8601 without fractional seconds).
    static var store: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = try? Date(text, strategy: storeDateStyle) { return date }
            if let date = try? Date(text, strategy: .iso8601) { return date }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
        }
        return decoder
    }
}

/// The few columns of a finished deployment that a target list shows.
public struct FinishedDeploymentSummary: Sendable, Equatable {
    public var id: UUID
    public var targetID: UUID
    public var status: DeploymentStatus
    public var certificateName: String
    public var certificateVersion: Int
    public var finishedAt: Date?

    public init(id: UUID, targetID: UUID, status: DeploymentStatus, certificateName: String, certificateVersion: Int, finishedAt: Date?) {
        self.id = id
        self.targetID = targetID
        self.status = status
        self.certificateName = certificateName
        self.certificateVersion = certificateVersion
        self.finishedAt = finishedAt
    }
}
