import Foundation

/// One stage of a deploy, as recorded for the operator. Never holds secrets.
public struct StepRecord: Sendable, Codable, Equatable {
    public enum Name: String, Sendable, Codable, CaseIterable {
        case preflight, staple, plan, lock, connect, compare, backup, write, activate, validate, reload, verify, rollback, cleanup
    }

    public enum Outcome: String, Sendable, Codable {
        case running, ok, skipped, warning, failed
    }

    public var name: Name
    public var outcome: Outcome
    public var startedAt: Date
    public var endedAt: Date?
    /// What happened, in a sentence.
    public var detail: String?
    /// The command line, when the step ran one.
    public var command: String?
    public var exitStatus: Int32?
    /// The end of the command's stderr (or stdout), redacted.
    public var outputTail: String?

    public init(name: Name, outcome: Outcome = .running, startedAt: Date = Date(), endedAt: Date? = nil, detail: String? = nil,
                command: String? = nil, exitStatus: Int32? = nil, outputTail: String? = nil) {
        self.name = name
        self.outcome = outcome
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.detail = detail
        self.command = command
        self.exitStatus = exitStatus
        self.outputTail = outputTail
    }

    public var duration: TimeInterval? { endedAt.map { $0.timeIntervalSince(startedAt) } }
}

/// How a deploy ended.
public enum DeploymentOutcome: String, Sendable, Codable, CaseIterable {
    /// The new certificate is in place and verified.
    case succeeded
    /// Every file already matched; nothing was written or reloaded.
    case unchanged
    /// Stopped before anything live changed.
    case failed
    /// Something failed after files changed; the target was restored to exactly what it had.
    case rolledBack = "rolled_back"
    /// Restoring failed too: an operator must look at the files and backups the result lists.
    case rollbackFailed = "rollback_failed"

    /// `succeeded` and `unchanged` are the good endings.
    public var isSuccess: Bool { self == .succeeded || self == .unchanged }
}

/// The failure that ended a deploy: which target, which step, and why.
public struct DeployFailure: Sendable, Codable, Equatable, CustomStringConvertible {
    public var targetID: String
    public var step: StepRecord.Name
    public var message: String

    public init(targetID: String, step: StepRecord.Name, message: String) {
        self.targetID = targetID
        self.step = step
        self.message = message
    }

    public var description: String { "target \(targetID): \(step.rawValue): \(message)" }
}

/// Everything a deploy did.
public struct DeploymentResult: Sendable, Codable {
    public var targetID: String
    public var outcome: DeploymentOutcome
    public var steps: [StepRecord]
    public var failure: DeployFailure?
    /// For `rollback_failed`: the files and backups an operator must look at.
    public var attention: [String]
    public var certificateSHA256: String
    /// Backup files left on the target by this deploy.
    public var backups: [String]
    public var stapling: StaplingDecision?
    /// Config the connector emitted; those without a path were not written and are for the operator to place.
    public var snippets: [EmittedSnippet]
    /// The OCSP response checked at preflight (and deployed, for staple-file connectors).
    public var staple: OCSPStaple?
    /// SSH (or API) connections this deploy opened.
    public var connectionsOpened: Int
    /// The deploy ran with `dryRun`: nothing was written.
    public var dryRun: Bool
}

/// Knobs for one deploy.
public struct DeployOptions: Sendable {
    /// Write and reload even when every file already matches.
    public var force: Bool
    /// Run preflight, plan and compare only; write nothing.
    public var dryRun: Bool
    /// Deploy a Must-Staple leaf to a target that will not staple (the operator takes the risk).
    public var allowMustStapleWithoutStapling: Bool
    /// Backups kept per file (older ones are pruned).
    public var backupRetention: Int
    /// Ask the leaf's OCSP responder before deploying: a revoked leaf is refused, and the response is the
    /// staple for connectors that serve staples from a file.
    public var checkOCSP: Bool
    public var now: @Sendable () -> Date
    /// An OCSP response the caller already fetched for this leaf (the server's staple refresher asks once per
    /// certificate for every target serving it). With `checkOCSP`, the engine checks it as it checks its own
    /// answer (signature and CertID for this leaf and issuer, status, freshness) instead of asking the responder,
    /// and a staple already on the target is kept only when it is at least as new as this one.
    public var staple: OCSPStaple?
    /// This deploy repeats one that was cut off (the server re-queued it after its worker's lease expired): files
    /// that already match are not trusted to be live, so it validates, reloads and verifies whatever it finds.
    public var resumingInterruptedAttempt: Bool

    public init(force: Bool = false, dryRun: Bool = false, allowMustStapleWithoutStapling: Bool = false, backupRetention: Int = 3,
                checkOCSP: Bool = true, now: @escaping @Sendable () -> Date = { Date() }, staple: OCSPStaple? = nil,
                resumingInterruptedAttempt: Bool = false) {
        self.force = force
        self.dryRun = dryRun
        self.allowMustStapleWithoutStapling = allowMustStapleWithoutStapling
        self.backupRetention = backupRetention
        self.checkOCSP = checkOCSP
        self.now = now
        self.staple = staple
        self.resumingInterruptedAttempt = resumingInterruptedAttempt
    }
}
