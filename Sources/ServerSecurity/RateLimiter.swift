#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A budget: `requestsPerSecond` sustained, up to `burst` at once.
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    public let requestsPerSecond: Double
    public let burst: Int

    public init(requestsPerSecond: Double, burst: Int) throws(RateLimitError) {
        guard requestsPerSecond.isFinite, requestsPerSecond > 0 else { throw RateLimitError(message: "requests per second must be a positive number, got \(requestsPerSecond)") }
        guard burst >= 1 else { throw RateLimitError(message: "burst must be at least 1, got \(burst)") }
        self.requestsPerSecond = requestsPerSecond
        self.burst = burst
    }

    public var description: String { "\(requestsPerSecond) requests/s, burst \(burst)" }
}

public struct RateLimitError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { "rate limit: \(message)" }
}

/// What to do with one request.
public enum RateLimitDecision: Sendable, Equatable {
    case allowed
    /// Over budget: answer 429 with `Retry-After: retryAfter` (whole seconds, rounded up, at least 1).
    case denied(retryAfter: Int)

    public var isAllowed: Bool { self == .allowed }
}

/// Seconds on a monotonic clock. Injectable so tests control time.
public struct RateLimitClock: Sendable {
    public let now: @Sendable () -> Double

    public init(now: @escaping @Sendable () -> Double) {
        self.now = now
    }

    /// Seconds since the clock was made, from `ContinuousClock` (never goes backwards).
    public static var monotonic: RateLimitClock {
        let origin = ContinuousClock.now
        return RateLimitClock {
            let elapsed = origin.duration(to: .now).components
            return Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        }
    }
}

/// One token bucket per key (an API-key name or a source address). Memory is bounded by `capacity`: buckets that
/// have refilled completely are dropped (a fresh bucket starts full, so nothing is lost); when every tracked bucket is
/// still in use a new key is denied until one refills, rather than evicting a live budget an attacker could reset by
/// rotating keys.
public struct TokenBuckets: Sendable {
    struct Bucket: Sendable {
        var tokens: Double
        var updated: Double
    }

    public let limit: RateLimit
    public let capacity: Int
    private let clock: RateLimitClock
    private var buckets: [String: Bucket] = [:]
    /// No bucket can be full before this time, so a sweep before it would free nothing.
    private var nextUsefulSweep = -Double.infinity

    /// Tolerance for floating-point drift when a bucket has refilled to exactly one token.
    private static let epsilon = 1e-9

    public init(limit: RateLimit, capacity: Int = 100_000, clock: RateLimitClock = .monotonic) {
        self.limit = limit
        self.capacity = max(1, capacity)
        self.clock = clock
    }

    /// Number of keys currently holding a bucket.
    public var trackedKeys: Int { buckets.count }

    /// Takes one token from `key`'s bucket.
    public mutating func allow(key: String) -> RateLimitDecision {
        let now = clock.now()
        if var bucket = buckets[key] {
            refill(&bucket, now: now)
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 - Self.epsilon {
                bucket.tokens = max(0, bucket.tokens - 1)
                return .allowed
            }
            return .denied(retryAfter: Self.wholeSeconds((1 - bucket.tokens) / limit.requestsPerSecond))
        }
        if buckets.count >= capacity {
            if now >= nextUsefulSweep { evictIdle(now: now) }
            if buckets.count >= capacity {
                return .denied(retryAfter: Self.wholeSeconds(nextUsefulSweep - now))
            }
        }
        buckets[key] = Bucket(tokens: Double(limit.burst) - 1, updated: now)
        return .allowed
    }

    /// Drops every bucket that has refilled completely; returns how many were dropped.
    @discardableResult
    public mutating func evictIdle() -> Int {
        evictIdle(now: clock.now())
    }

    @discardableResult
    private mutating func evictIdle(now: Double) -> Int {
        let burst = Double(limit.burst)
        var earliestFull = Double.infinity
        let before = buckets.count
        buckets = buckets.filter { _, bucket in
            var bucket = bucket
            refill(&bucket, now: now)
            if bucket.tokens >= burst - Self.epsilon { return false }
            earliestFull = min(earliestFull, now + (burst - bucket.tokens) / limit.requestsPerSecond)
            return true
        }
        nextUsefulSweep = buckets.isEmpty ? -Double.infinity : earliestFull
        return before - buckets.count
    }

    private func refill(_ bucket: inout Bucket, now: Double) {
        // A clock that steps back (it should not) refills nothing rather than going negative.
        let elapsed = max(0, now - bucket.updated)
        bucket.tokens = min(Double(limit.burst), bucket.tokens + elapsed * limit.requestsPerSecond)
        bucket.updated = max(bucket.updated, now)
    }

    static func wholeSeconds(_ seconds: Double) -> Int {
        guard seconds.isFinite else { return Int(Int32.max) }
        return Int(min(Double(Int32.max), max(1, (seconds - epsilon).rounded(.up))))
    }
}

/// The server's limiter: one bucket set for authenticated callers (keyed by API-key name, so both keys of a
/// rotation share a budget) and one for unauthenticated callers (keyed by source address; IPv6 by /64, since one
/// client usually holds a whole /64).
public actor RateLimiter {
    public enum Caller: Sendable, Hashable {
        case authenticated(name: String)
        case unauthenticated(address: String)
    }

    private var authenticated: TokenBuckets
    private var unauthenticated: TokenBuckets

    /// `authenticatedLimit` defaults to `unauthenticatedLimit` (separate buckets, same numbers).
    public init(
        unauthenticatedLimit: RateLimit,
        authenticatedLimit: RateLimit? = nil,
        maxTrackedAddresses: Int = 100_000,
        maxTrackedNames: Int = 10_000,
        clock: RateLimitClock = .monotonic
    ) {
        self.unauthenticated = TokenBuckets(limit: unauthenticatedLimit, capacity: maxTrackedAddresses, clock: clock)
        self.authenticated = TokenBuckets(limit: authenticatedLimit ?? unauthenticatedLimit, capacity: maxTrackedNames, clock: clock)
    }

    public func allow(_ caller: Caller) -> RateLimitDecision {
        switch caller {
        case .authenticated(let name): authenticated.allow(key: name)
        case .unauthenticated(let address): unauthenticated.allow(key: Self.addressKey(address))
        }
    }

    /// Drops full buckets in both sets (call it periodically to return memory early); returns how many were dropped.
    @discardableResult
    public func evictIdle() -> Int {
        authenticated.evictIdle() + unauthenticated.evictIdle()
    }

    public var trackedNames: Int { authenticated.trackedKeys }
    public var trackedAddresses: Int { unauthenticated.trackedKeys }

    /// The bucket key for a source address: IPv4 as is, IPv4-mapped IPv6 as the IPv4 address, other IPv6 addresses
    /// as their /64 prefix. Anything that does not parse is used verbatim.
    public static func addressKey(_ address: String) -> String {
        var text = address
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let percent = text.firstIndex(of: "%") { text = String(text[..<percent]) }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return text }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return address }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return bytes[12..<16].map(String.init).joined(separator: ".")
        }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }
}
