import Core
import Foundation

// Rollouts, maintenance windows and certificates' rollout policies, as `/api/v1` speaks them.

/// A rollout: one certificate version staged over many targets, wave by wave.
public struct RolloutView: Codable, Sendable {
    public var id: UUID
    public var certificate: String
    public var certificateVersion: Int
    public var strategy: RolloutStrategy
    /// pending, running, waiting_approval, paused, halted, succeeded, failed, aborted.
    public var state: String
    /// 1-based: the wave being run (or the last one run).
    public var currentWave: Int
    public var waves: [RolloutWaveView]
    /// Children by status, over all waves (retried attempts count once, as their latest).
    public var counts: [String: Int]
    public var targetCount: Int
    /// Failures the budget tolerates.
    public var failureBudget: Int
    /// Why it stopped (halted, aborted, failed), in words.
    public var stopReason: String?
    /// The child whose failure exceeded the budget.
    public var stopDeploymentID: UUID?
    public var ignoreWindows: Bool
    public var reason: String?
    public var options: DeploymentRequest.Options
    public var actor: String
    public var createdAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?
    /// The replica that last moved it on.
    public var drivenBy: String?
    /// When the next wave may start after a pause between waves.
    public var nextWaveAt: Date?

    public init(id: UUID, certificate: String, certificateVersion: Int, strategy: RolloutStrategy, state: String, currentWave: Int,
                waves: [RolloutWaveView], counts: [String: Int], targetCount: Int, failureBudget: Int, stopReason: String?,
                stopDeploymentID: UUID?, ignoreWindows: Bool, reason: String?, options: DeploymentRequest.Options, actor: String,
                createdAt: Date, updatedAt: Date, finishedAt: Date?, drivenBy: String?, nextWaveAt: Date?) {
        self.id = id
        self.certificate = certificate
        self.certificateVersion = certificateVersion
        self.strategy = strategy
        self.state = state
        self.currentWave = currentWave
        self.waves = waves
        self.counts = counts
        self.targetCount = targetCount
        self.failureBudget = failureBudget
        self.stopReason = stopReason
        self.stopDeploymentID = stopDeploymentID
        self.ignoreWindows = ignoreWindows
        self.reason = reason
        self.options = options
        self.actor = actor
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
        self.drivenBy = drivenBy
        self.nextWaveAt = nextWaveAt
    }

    /// Final: succeeded, failed or aborted.
    public var isFinished: Bool { state == "succeeded" || state == "failed" || state == "aborted" }
}

/// One wave of a rollout.
public struct RolloutWaveView: Codable, Sendable {
    /// 1-based.
    public var index: Int
    /// Whether this is the canary wave.
    public var canary: Bool
    /// pending (not started), running, finished.
    public var state: String
    public var counts: [String: Int]
    public var targets: [RolloutChildView]
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(index: Int, canary: Bool, state: String, counts: [String: Int], targets: [RolloutChildView], startedAt: Date?, finishedAt: Date?) {
        self.index = index
        self.canary = canary
        self.state = state
        self.counts = counts
        self.targets = targets
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// One target of a wave: its latest deployment.
public struct RolloutChildView: Codable, Sendable, Equatable {
    public var deploymentID: UUID
    public var targetID: UUID
    public var targetName: String?
    public var status: String
    /// The step running now.
    public var step: String?
    public var statusNote: String?
    public var failure: String?
    /// Runs of this target in the rollout (retries add one).
    public var attempts: Int
    /// For waiting_window: when its window opens.
    public var startsAt: Date?
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(deploymentID: UUID, targetID: UUID, targetName: String?, status: String, step: String?, statusNote: String?, failure: String?,
                attempts: Int, startsAt: Date?, startedAt: Date?, finishedAt: Date?) {
        self.deploymentID = deploymentID
        self.targetID = targetID
        self.targetName = targetName
        self.status = status
        self.step = step
        self.statusNote = statusNote
        self.failure = failure
        self.attempts = attempts
        self.startsAt = startsAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// `POST /api/v1/rollouts/{id}/abort` (and the other actions, which take no members).
public struct RolloutActionRequest: Codable, Sendable {
    /// abort only: redeploy each finished target's previous version, as a rollout of its own (admin).
    public var rollback: Bool?
    public init(rollback: Bool? = nil) { self.rollback = rollback }
}

/// What an action returns: the rollout, and for an abort with rollback, the rollouts that put the previous
/// versions back.
public struct RolloutActionResponse: Codable, Sendable {
    public var rollout: RolloutView
    public var rollbackRollouts: [UUID]?
    /// Targets an abort with rollback could not roll back (no earlier version deployed), with why.
    public var notRolledBack: [String]?
    public init(rollout: RolloutView, rollbackRollouts: [UUID]? = nil, notRolledBack: [String]? = nil) {
        self.rollout = rollout
        self.rollbackRollouts = rollbackRollouts
        self.notRolledBack = notRolledBack
    }
}

/// Server-Sent Events of `GET /api/v1/rollouts/{id}/events`: `progress` (data: `RolloutProgressEvent`: wave_started,
/// wave_finished, halted, waiting_approval, paused, resumed, …), `child` (data: `RolloutChildView`, on each child's
/// status change), `rollout` (data: the `RolloutView`, on each state change), and a last `end` (the final
/// `RolloutView`) when it finishes.
public enum RolloutEventName {
    public static let progress = "progress"
    public static let child = "child"
    public static let rollout = "rollout"
    public static let end = "end"
}

/// A `progress` event.
public struct RolloutProgressEvent: Codable, Sendable, Equatable {
    /// wave_started, wave_finished, halted, waiting_approval, succeeded, failed, or an action: pause, resume, approve,
    /// abort, retry.
    public var kind: String
    public var detail: String?
    public var actor: String
    public var time: Date
    public init(kind: String, detail: String?, actor: String, time: Date) {
        self.kind = kind
        self.detail = detail
        self.actor = actor
        self.time = time
    }
}

// MARK: - Maintenance windows

/// `POST /api/v1/windows`: a recurring window or a freeze, for a label selector or one target.
public struct WindowRequest: Codable, Sendable {
    public var name: String
    public var selector: String?
    /// A target id or name.
    public var target: String?
    /// `Mon-Fri 01:00-04:00 Europe/Berlin`.
    public var schedule: String?
    public var freeze: Freeze?

    /// Dates (`2026-12-20`, from the start of the day / until the end of the day, UTC) or RFC 3339 times.
    public struct Freeze: Codable, Sendable {
        public var from: String
        public var until: String
        public init(from: String, until: String) {
            self.from = from
            self.until = until
        }
    }

    public init(name: String, selector: String? = nil, target: String? = nil, schedule: String? = nil, freeze: Freeze? = nil) {
        self.name = name
        self.selector = selector
        self.target = target
        self.schedule = schedule
        self.freeze = freeze
    }
}

public struct WindowView: Codable, Sendable {
    public var id: UUID
    public var name: String
    public var selector: String?
    public var targetID: UUID?
    public var targetName: String?
    public var schedule: String?
    public var freezeFrom: Date?
    public var freezeUntil: Date?
    /// Open now (a schedule) or in force now (a freeze).
    public var activeNow: Bool
    /// A schedule's next opening, when it is closed now.
    public var nextOpening: Date?
    public var createdAt: Date
    public var actor: String

    public init(id: UUID, name: String, selector: String?, targetID: UUID?, targetName: String?, schedule: String?, freezeFrom: Date?,
                freezeUntil: Date?, activeNow: Bool, nextOpening: Date?, createdAt: Date, actor: String) {
        self.id = id
        self.name = name
        self.selector = selector
        self.targetID = targetID
        self.targetName = targetName
        self.schedule = schedule
        self.freezeFrom = freezeFrom
        self.freezeUntil = freezeUntil
        self.activeNow = activeNow
        self.nextOpening = nextOpening
        self.createdAt = createdAt
        self.actor = actor
    }
}

// MARK: - Certificate rollout policy

/// `PUT /api/v1/certificates/{name}/policy`.
public struct CertificatePolicyRequest: Codable, Sendable {
    /// Uploading a new version starts a rollout to every target bound to the certificate.
    public var autoRollout: Bool
    public var strategy: RolloutStrategy?
    /// A bound target not serving the newest version this long after its upload is `behind` (default "1d").
    public var behindAfter: RolloutDuration?
    public init(autoRollout: Bool, strategy: RolloutStrategy? = nil, behindAfter: RolloutDuration? = nil) {
        self.autoRollout = autoRollout
        self.strategy = strategy
        self.behindAfter = behindAfter
    }
}

public struct CertificatePolicyView: Codable, Sendable, Equatable {
    public var certificate: String
    public var autoRollout: Bool
    /// The strategy its rollouts use (the default when none was set).
    public var strategy: RolloutStrategy
    public var behindAfter: RolloutDuration
    public init(certificate: String, autoRollout: Bool, strategy: RolloutStrategy, behindAfter: RolloutDuration) {
        self.certificate = certificate
        self.autoRollout = autoRollout
        self.strategy = strategy
        self.behindAfter = behindAfter
    }
}
