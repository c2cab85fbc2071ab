@testable import ServerSecurity
import XCTest

final class RateLimiterTests: XCTestCase {
    private func limit(_ rps: Double, _ burst: Int) -> RateLimit {
        try! RateLimit(requestsPerSecond: rps, burst: burst)
    }

    func testBurstThenDenyThenRefill() {
        let clock = ManualClock()
        var buckets = TokenBuckets(limit: limit(2, 5), clock: clock.rateLimitClock)
        for index in 0..<5 {
            XCTAssertEqual(buckets.allow(key: "a"), .allowed, "request \(index) of the burst")
        }
        // Empty at 2 tokens/s: the next token is 0.5 s away, rounded up to 1 s.
        XCTAssertEqual(buckets.allow(key: "a"), .denied(retryAfter: 1))
        clock.advance(0.4)
        XCTAssertEqual(buckets.allow(key: "a"), .denied(retryAfter: 1))
        clock.advance(0.1)
        XCTAssertEqual(buckets.allow(key: "a"), .allowed)
        XCTAssertEqual(buckets.allow(key: "a"), .denied(retryAfter: 1))
        // A long pause refills only up to the burst.
        clock.advance(3600)
        for _ in 0..<5 { XCTAssertEqual(buckets.allow(key: "a"), .allowed) }
        XCTAssertFalse(buckets.allow(key: "a").isAllowed)
    }

    func testRetryAfterIsRoundedUp() {
        let clock = ManualClock()
        var slow = TokenBuckets(limit: limit(0.1, 1), clock: clock.rateLimitClock)
        XCTAssertEqual(slow.allow(key: "k"), .allowed)
        XCTAssertEqual(slow.allow(key: "k"), .denied(retryAfter: 10))
        clock.advance(2.5)
        XCTAssertEqual(slow.allow(key: "k"), .denied(retryAfter: 8)) // 7.5 s left
        clock.advance(7.5)
        XCTAssertEqual(slow.allow(key: "k"), .allowed)

        var fast = TokenBuckets(limit: limit(1000, 1), clock: clock.rateLimitClock)
        XCTAssertEqual(fast.allow(key: "k"), .allowed)
        XCTAssertEqual(fast.allow(key: "k"), .denied(retryAfter: 1)) // never 0
        XCTAssertEqual(TokenBuckets.wholeSeconds(1.0000000001), 1)
        XCTAssertEqual(TokenBuckets.wholeSeconds(1.2), 2)
        XCTAssertEqual(TokenBuckets.wholeSeconds(0), 1)
    }

    func testKeysHaveSeparateBuckets() {
        let clock = ManualClock()
        var buckets = TokenBuckets(limit: limit(1, 2), clock: clock.rateLimitClock)
        XCTAssertEqual(buckets.allow(key: "a"), .allowed)
        XCTAssertEqual(buckets.allow(key: "a"), .allowed)
        XCTAssertFalse(buckets.allow(key: "a").isAllowed)
        XCTAssertEqual(buckets.allow(key: "b"), .allowed)
        XCTAssertEqual(buckets.allow(key: "b"), .allowed)
        XCTAssertFalse(buckets.allow(key: "b").isAllowed)
    }

    func testAClockSteppingBackRefillsNothing() {
        let clock = ManualClock()
        var buckets = TokenBuckets(limit: limit(1, 1), clock: clock.rateLimitClock)
        XCTAssertEqual(buckets.allow(key: "a"), .allowed)
        clock.advance(-100)
        XCTAssertEqual(buckets.allow(key: "a"), .denied(retryAfter: 1))
    }

    func testMemoryIsBoundedAndIdleFullBucketsAreEvicted() {
        let clock = ManualClock()
        var buckets = TokenBuckets(limit: limit(1, 2), capacity: 3, clock: clock.rateLimitClock)
        for key in ["a", "b", "c"] { XCTAssertEqual(buckets.allow(key: key), .allowed) }
        XCTAssertEqual(buckets.trackedKeys, 3)
        // Every tracked bucket is still in use (1 of 2 tokens): a new key waits until one has refilled.
        XCTAssertEqual(buckets.allow(key: "d"), .denied(retryAfter: 1))
        XCTAssertEqual(buckets.trackedKeys, 3)
        // Known keys keep their own budget meanwhile.
        XCTAssertEqual(buckets.allow(key: "a"), .allowed)
        clock.advance(1)
        // b and c are full again and dropped; a is not (it spent its second token).
        XCTAssertEqual(buckets.allow(key: "d"), .allowed)
        XCTAssertEqual(buckets.trackedKeys, 2)
        for index in 0..<1000 { _ = buckets.allow(key: "flood-\(index)") }
        XCTAssertLessThanOrEqual(buckets.trackedKeys, 3)

        // Eviction never resets a live budget: a drained key stays drained.
        var drained = TokenBuckets(limit: limit(1, 2), capacity: 2, clock: clock.rateLimitClock)
        _ = drained.allow(key: "x"); _ = drained.allow(key: "x")
        XCTAssertFalse(drained.allow(key: "x").isAllowed)
        for index in 0..<10 { _ = drained.allow(key: "other-\(index)") }
        XCTAssertFalse(drained.allow(key: "x").isAllowed)

        // An explicit sweep returns memory once buckets are full.
        clock.advance(10)
        XCTAssertEqual(drained.evictIdle(), 2)
        XCTAssertEqual(drained.trackedKeys, 0)
    }

    func testInvalidLimitsAreRefused() {
        XCTAssertThrowsError(try RateLimit(requestsPerSecond: 0, burst: 1))
        XCTAssertThrowsError(try RateLimit(requestsPerSecond: -1, burst: 1))
        XCTAssertThrowsError(try RateLimit(requestsPerSecond: .nan, burst: 1))
        XCTAssertThrowsError(try RateLimit(requestsPerSecond: .infinity, burst: 1))
        XCTAssertThrowsError(try RateLimit(requestsPerSecond: 1, burst: 0)) { error in
            XCTAssertEqual("\(error)", "rate limit: burst must be at least 1, got 0")
        }
    }

    func testAuthenticatedAndUnauthenticatedBudgetsAreSeparate() async {
        let clock = ManualClock()
        let limiter = RateLimiter(unauthenticatedLimit: limit(1, 2), authenticatedLimit: limit(10, 5), clock: clock.rateLimitClock)
        // An address exhausts its small budget...
        var anonymous: [RateLimitDecision] = []
        for _ in 0..<3 { anonymous.append(await limiter.allow(.unauthenticated(address: "203.0.113.7"))) }
        XCTAssertEqual(anonymous, [.allowed, .allowed, .denied(retryAfter: 1)])
        // ...while an authenticated name has its own, larger one.
        var named: [RateLimitDecision] = []
        for _ in 0..<6 { named.append(await limiter.allow(.authenticated(name: "deploy"))) }
        XCTAssertEqual(named, Array(repeating: .allowed, count: 5) + [.denied(retryAfter: 1)])
        // A name that looks like the address does not share the address's bucket.
        let collision = await limiter.allow(.authenticated(name: "203.0.113.7"))
        XCTAssertEqual(collision, .allowed)
        let names = await limiter.trackedNames
        let addresses = await limiter.trackedAddresses
        XCTAssertEqual(names, 2)
        XCTAssertEqual(addresses, 1)
    }

    func testWithoutAnAuthenticatedLimitBothUseTheSameNumbers() async {
        let clock = ManualClock()
        let limiter = RateLimiter(unauthenticatedLimit: limit(1, 1), clock: clock.rateLimitClock)
        let first = await limiter.allow(.authenticated(name: "deploy"))
        let second = await limiter.allow(.authenticated(name: "deploy"))
        let anonymous = await limiter.allow(.unauthenticated(address: "192.0.2.1"))
        XCTAssertEqual([first, second, anonymous], [.allowed, .denied(retryAfter: 1), .allowed])
    }

    func testIPv6AddressesShareABucketPerSlash64() async {
        XCTAssertEqual(RateLimiter.addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64")
        XCTAssertEqual(RateLimiter.addressKey("[2001:db8:1:2:ffff:ffff:ffff:ffff]"), "2001:db8:1:2::/64")
        XCTAssertEqual(RateLimiter.addressKey("fe80::1%eth0"), "fe80:0:0:0::/64")
        XCTAssertEqual(RateLimiter.addressKey("::ffff:192.0.2.9"), "192.0.2.9")
        XCTAssertEqual(RateLimiter.addressKey("192.0.2.9"), "192.0.2.9")
        XCTAssertEqual(RateLimiter.addressKey("unix:/run/sock"), "unix:/run/sock")

        let clock = ManualClock()
        let limiter = RateLimiter(unauthenticatedLimit: limit(1, 1), clock: clock.rateLimitClock)
        let first = await limiter.allow(.unauthenticated(address: "2001:db8:1:2::1"))
        let sameNetwork = await limiter.allow(.unauthenticated(address: "2001:db8:1:2::9999"))
        let otherNetwork = await limiter.allow(.unauthenticated(address: "2001:db8:1:3::1"))
        XCTAssertEqual([first, sameNetwork, otherNetwork], [.allowed, .denied(retryAfter: 1), .allowed])
    }

    func testMonotonicClockAdvances() async throws {
        let clock = RateLimitClock.monotonic
        let start = clock.now()
        try await Task.sleep(for: .milliseconds(20))
        XCTAssertGreaterThan(clock.now(), start + 0.01)
    }
}
