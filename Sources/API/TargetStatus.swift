import Foundation

/// What the server last observed about a target: whether it serves what certdeploy deployed, and the state of the
/// OCSP staple certdeploy keeps fresh on it. `POST /api/v1/targets/{target}/verify` checks now and returns this.
public struct TargetStatusView: Codable, Sendable, Equatable {
    /// `in_sync`, `drifted` (serves another leaf), `unreachable`, `staple_missing`, `staple_stale`, `not_deployed`
    /// (no successful deployment to compare with), `not_verifiable` (no verify endpoint) or `behind` (the bound
    /// certificate was renewed a while ago and the new version is not live); absent before the first check.
    public var sync: String?
    /// Why, in a sentence.
    public var detail: String?
    public var checkedAt: Date?
    /// SHA-256 of the leaf the last check saw served.
    public var servedSHA256: String?
    /// SHA-256 of the leaf certdeploy last deployed (what `servedSHA256` should be).
    public var expectedSHA256: String?
    /// For targets certdeploy writes staples to: `good`, `staple_expiring`, `staple_expired` or `revoked`.
    public var staple: String?
    public var stapleDetail: String?
    public var stapleThisUpdate: Date?
    public var stapleNextUpdate: Date?
    /// When the staple refresher last looked at this target.
    public var stapleCheckedAt: Date?

    public init(sync: String? = nil, detail: String? = nil, checkedAt: Date? = nil, servedSHA256: String? = nil, expectedSHA256: String? = nil,
                staple: String? = nil, stapleDetail: String? = nil, stapleThisUpdate: Date? = nil, stapleNextUpdate: Date? = nil,
                stapleCheckedAt: Date? = nil) {
        self.sync = sync
        self.detail = detail
        self.checkedAt = checkedAt
        self.servedSHA256 = servedSHA256
        self.expectedSHA256 = expectedSHA256
        self.staple = staple
        self.stapleDetail = stapleDetail
        self.stapleThisUpdate = stapleThisUpdate
        self.stapleNextUpdate = stapleNextUpdate
        self.stapleCheckedAt = stapleCheckedAt
    }
}

/// The states of ``TargetStatusView``.
public enum TargetSyncState: String, Codable, Sendable, CaseIterable {
    case inSync = "in_sync", drifted, unreachable, stapleMissing = "staple_missing", stapleStale = "staple_stale"
    case notDeployed = "not_deployed", notVerifiable = "not_verifiable"
    /// Serves what was deployed, but the bound certificate was renewed a while ago and the new version is not live.
    case behind

    /// A state the drift check audits as `target.drift` (and its end as `target.drift.resolved`).
    public var isProblem: Bool {
        switch self {
        case .drifted, .unreachable, .stapleMissing, .stapleStale, .behind: true
        case .inSync, .notDeployed, .notVerifiable: false
        }
    }
}

public enum TargetStapleState: String, Codable, Sendable, CaseIterable {
    case good, expiring = "staple_expiring", expired = "staple_expired", revoked
}
