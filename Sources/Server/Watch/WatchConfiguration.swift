import Foundation

/// How the server keeps watch over what it deployed: OCSP staple refresh and drift detection.
public struct WatchConfiguration: Sendable {
    /// Run the staple refresher and the drift detector as background services. Off: they only run when asked
    /// (`POST /api/v1/targets/{target}/verify`, or a test calling ``TargetWatch/refreshStaples(now:)`` itself).
    public var enabled = true
    /// When a staple is refreshed, as a fraction of its validity (`thisUpdate` → `nextUpdate`): 0.5 is its half-life.
    public var refreshFraction = 0.5
    /// Up to this much is added to each certificate's refresh time (the same amount for a certificate every cycle,
    /// different between certificates), so a fleet does not ask the responder all at once.
    public var refreshJitter: Duration = .seconds(300)
    /// Never ask the responder about one certificate more often than this, whatever the validity says.
    public var refreshFloor: Duration = .seconds(300)
    /// After a failed fetch, retry after this, doubling per failure up to ``retryBackoffLimit``.
    public var retryBackoff: Duration = .seconds(60)
    public var retryBackoffLimit: Duration = .seconds(1800)
    /// A staple this close to its `nextUpdate` without a fresh one fetched is `staple_expiring` (a warning, an
    /// audit event and a counter); past `nextUpdate` it is `staple_expired`. The drift check calls a served staple
    /// this close to expiry `staple_stale`.
    public var stapleExpiringMargin: Duration = .seconds(24 * 3600)
    /// How often the refresher looks for staples that are due (fetches happen only when one is due).
    public var refreshCheckInterval: Duration = .seconds(60)
    /// How often every target is handshaken with to compare what it serves with what was deployed.
    public var driftInterval: Duration = .seconds(900)
    /// Handshakes at once during a drift sweep.
    public var driftConcurrency = 8
    /// Per-handshake timeout of a drift check.
    public var driftProbeTimeout: Duration = .seconds(10)
    /// The watch's clock (tests move it instead of sleeping).
    public var now: @Sendable () -> Date = { Date() }

    public init() {}

    /// One line for the start-up log: what the server will do on its own.
    public var summary: String {
        guard enabled else { return "watch off: staples are not refreshed and drift is checked only on request" }
        let percent = (refreshFraction * 100).formatted(.number.precision(.fractionLength(0...1)))
        return "watch: staples refreshed at \(percent)% of their validity (flagged staple_expiring within \(Self.text(stapleExpiringMargin)) of nextUpdate), drift checked every \(Self.text(driftInterval))"
    }

    private static func text(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds % 3600 == 0 { return "\(seconds / 3600) h" }
        if seconds % 60 == 0 { return "\(seconds / 60) min" }
        return "\(seconds) s"
    }
}
