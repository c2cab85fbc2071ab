import Foundation

/// What the server last observed about a target (drift check, staple refresh), and whether it may redeploy a
/// drifted target on its own. One row per target, deleted with the target. Observations are not audited (they
/// change every check); the automatic actions they lead to are, by the server.
///
/// The state strings are the server's (`in_sync`, `drifted`, … and `good`, `expiring`, …); the store keeps them as
/// they are.
public struct TargetStatusRecord: Codable, Sendable, Equatable {
    public var targetID: UUID
    /// Redeploy the expected certificate when drift is found. Set with `Store.setAutoRemediate` only.
    public var autoRemediate: Bool
    /// The drift state from the last check, nil before the first.
    public var sync: String?
    public var syncDetail: String?
    /// SHA-256 of the leaf the last check saw served.
    public var servedSHA256: String?
    /// When the last drift check ran.
    public var checkedAt: Date?
    /// The staple state (for targets certdeploy staples), nil when the target carries no staple.
    public var staple: String?
    public var stapleDetail: String?
    /// The validity of the staple deployed on the target.
    public var stapleThisUpdate: Date?
    public var stapleNextUpdate: Date?
    /// When the staple refresher last looked at this target.
    public var stapleCheckedAt: Date?
    public var updatedAt: Date

    public init(
        targetID: UUID, autoRemediate: Bool = false, sync: String? = nil, syncDetail: String? = nil, servedSHA256: String? = nil,
        checkedAt: Date? = nil, staple: String? = nil, stapleDetail: String? = nil, stapleThisUpdate: Date? = nil,
        stapleNextUpdate: Date? = nil, stapleCheckedAt: Date? = nil, updatedAt: Date = Date(timeIntervalSince1970: 0)
    ) {
        self.targetID = targetID
        self.autoRemediate = autoRemediate
        self.sync = sync
        self.syncDetail = syncDetail
        self.servedSHA256 = servedSHA256
        self.checkedAt = checkedAt
        self.staple = staple
        self.stapleDetail = stapleDetail
        self.stapleThisUpdate = stapleThisUpdate
        self.stapleNextUpdate = stapleNextUpdate
        self.stapleCheckedAt = stapleCheckedAt
        self.updatedAt = updatedAt
    }
}

/// What a drift check saw; see ``TargetStatusRecord``.
public struct TargetSyncObservation: Sendable, Equatable {
    public var sync: String?
    public var detail: String?
    public var servedSHA256: String?
    public var checkedAt: Date?

    public init(sync: String?, detail: String?, servedSHA256: String?, checkedAt: Date?) {
        self.sync = sync
        self.detail = detail
        self.servedSHA256 = servedSHA256
        self.checkedAt = checkedAt
    }
}

/// The staple state the refresher recorded; see ``TargetStatusRecord``.
public struct TargetStapleObservation: Sendable, Equatable {
    public var staple: String?
    public var detail: String?
    public var thisUpdate: Date?
    public var nextUpdate: Date?
    public var checkedAt: Date?

    public init(staple: String?, detail: String?, thisUpdate: Date?, nextUpdate: Date?, checkedAt: Date?) {
        self.staple = staple
        self.detail = detail
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
        self.checkedAt = checkedAt
    }
}

extension AuditAction {
    /// A target's auto-remediation flag was set (outcome "success"; detail "on" or "off").
    public static let targetRemediationSet = "target.remediation.set"
}
