import Core
import Foundation

/// Where a rollout is in its life. `pending`, `running`, `waiting_approval`, `paused` and `halted` are open (an
/// action can move them on); `succeeded`, `failed` and `aborted` are final.
public enum RolloutState: String, Codable, Sendable, CaseIterable {
    case pending
    case running
    /// A wave finished and the strategy's approval gate holds the next one.
    case waitingApproval = "waiting_approval"
    case paused
    /// More targets failed than the failure budget allows: running children finish, nothing new starts.
    case halted
    case succeeded
    /// Every wave ran, and some targets' deployments did not succeed (within the budget).
    case failed
    case aborted

    public var isFinal: Bool { self == .succeeded || self == .failed || self == .aborted }
    /// Driven by the store's advance: its children are released wave by wave.
    public var isDriven: Bool { self == .pending || self == .running }
}

/// What a caller supplies to start a rollout. The waves are planned by the caller (``RolloutWavePlanner``).
public struct NewRollout: Sendable {
    public var id: UUID?
    public var certificateName: String
    public var certificateVersion: Int
    public var strategy: RolloutStrategy
    /// The planned waves, each a list of target ids; the first is the canary when the strategy has one.
    public var waves: [[UUID]]
    /// Deploy options (force, dry run, …) as JSON text, for every child.
    public var optionsJSON: String
    /// Start children outside their targets' maintenance windows (an emergency; audited).
    public var ignoreWindows: Bool
    /// Why it was started ("auto-rollout of version 4", an operator's note, …).
    public var reason: String?

    public init(id: UUID? = nil, certificateName: String, certificateVersion: Int, strategy: RolloutStrategy, waves: [[UUID]],
                optionsJSON: String = "{}", ignoreWindows: Bool = false, reason: String? = nil) {
        self.id = id
        self.certificateName = certificateName
        self.certificateVersion = certificateVersion
        self.strategy = strategy
        self.waves = waves
        self.optionsJSON = optionsJSON
        self.ignoreWindows = ignoreWindows
        self.reason = reason
    }
}

/// A stored rollout. Its children are deployments carrying its id and their wave.
public struct RolloutRecord: Sendable, Equatable {
    public var id: UUID
    public var certificateName: String
    public var certificateVersion: Int
    public var strategy: RolloutStrategy
    public var state: RolloutState
    public var waveCount: Int
    public var targetCount: Int
    /// The wave being run (or the last one run).
    public var currentWave: Int
    /// Waves up to this index may start (the approval gate moves it).
    public var approvedWave: Int
    /// Failures that no longer count against the budget (a resume after a halt accepts the failures so far).
    public var acknowledgedFailures: Int
    /// When the current wave's last child finished (the pause between waves counts from here).
    public var waveFinishedAt: Date?
    public var optionsJSON: String
    public var ignoreWindows: Bool
    public var reason: String?
    /// Why it stopped (halted, aborted, failed), in words.
    public var stopReason: String?
    /// The child whose failure exceeded the budget.
    public var stopDeploymentID: UUID?
    public var actor: String
    public var createdAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?
    /// The replica that last advanced it, and when.
    public var drivenBy: String?
    public var drivenAt: Date?
}

/// Filters for `Store.listRollouts`.
public struct RolloutFilter: Sendable, Equatable {
    public var certificateName: String?
    public var states: Set<RolloutState>

    public init(certificateName: String? = nil, states: Set<RolloutState> = []) {
        self.certificateName = certificateName
        self.states = states
    }
}

/// An operator's action on a rollout (`Store.actOnRollout`).
public enum RolloutAction: Sendable, Equatable {
    /// Nothing new starts until `resume`; running children finish.
    case pause
    /// A paused or halted rollout runs again (a halted one accepts the failures so far).
    case resume
    /// Lets the wave the approval gate holds start.
    case approve
    /// Cancels every child not yet started; the rollout ends `aborted`.
    case abort
    /// Queues a new attempt for every child whose latest attempt failed, rolled back or was interrupted, in its
    /// wave; a halted or failed rollout runs again.
    case retry

    public var name: String {
        switch self {
        case .pause: return "pause"
        case .resume: return "resume"
        case .approve: return "approve"
        case .abort: return "abort"
        case .retry: return "retry"
        }
    }
}

/// One child deployment as a rollout's progress sees it.
public struct RolloutChild: Sendable, Equatable {
    public var id: UUID
    public var targetID: UUID
    public var targetName: String?
    public var wave: Int
    public var status: DeploymentStatus
    public var statusNote: String?
    public var notBefore: Date
    public var attempts: Int
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The failure, as one line.
    public var failure: String?
    /// The step running now (from the last heartbeat), for a live view.
    public var currentStep: String?
    /// A retry replaced it (its history stays; it no longer counts).
    public var superseded: Bool
}

/// The windows and freezes stored for a selector or a target.
public struct MaintenanceWindowRecord: Sendable, Equatable {
    public var id: UUID
    public var name: String
    /// `key=value[,…]`: the targets it applies to; nil when it names one target.
    public var selector: String?
    public var targetID: UUID?
    /// A recurring window (`Mon-Fri 01:00-04:00 Europe/Berlin`), or nil for a freeze.
    public var schedule: String?
    public var freezeFrom: Date?
    public var freezeUntil: Date?
    public var createdAt: Date
    public var actor: String
}

/// What a caller supplies to add a window or a freeze.
public struct NewMaintenanceWindow: Sendable, Equatable {
    public var name: String
    public var selector: String?
    public var targetID: UUID?
    public var schedule: String?
    public var freezeFrom: Date?
    public var freezeUntil: Date?

    public init(name: String, selector: String? = nil, targetID: UUID? = nil, schedule: String? = nil, freezeFrom: Date? = nil, freezeUntil: Date? = nil) {
        self.name = name
        self.selector = selector
        self.targetID = targetID
        self.schedule = schedule
        self.freezeFrom = freezeFrom
        self.freezeUntil = freezeUntil
    }
}

extension DeploymentStatus {
    /// Ended badly: counts against a rollout's failure budget.
    public var isFailure: Bool { self == .failed || self == .rolledBack || self == .rollbackFailed || self == .interrupted }
    /// Released by its rollout and not finished.
    public var isLive: Bool { self == .queued || self == .running || self == .waitingWindow }
}
