import Core
import Foundation
import XCTest

/// Wave planning, strategy parsing and maintenance schedules: pure functions, checked on fixed inputs and dates.
final class RolloutPlanningTests: XCTestCase {
    func candidates(_ count: Int, zones: [String]? = nil) -> [RolloutCandidate] {
        (0..<count).map { index in
            RolloutCandidate(id: UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", index))!, name: String(format: "web-%02d", index),
                             labels: zones.map { ["zone": $0[index % $0.count]] } ?? [:])
        }
    }

    func names(_ waves: [[UUID]], _ candidates: [RolloutCandidate]) -> [[String]] {
        let byID = Dictionary(uniqueKeysWithValues: candidates.map { ($0.id, $0.name) })
        return waves.map { $0.map { byID[$0]! } }
    }

    func testTheDefaultIsOneCanaryThenWavesOfAQuarterOfTheRest() throws {
        let fleet = candidates(9)
        let waves = try RolloutWavePlanner.plan(fleet.reversed(), strategy: .default)
        XCTAssertEqual(waves.map(\.count), [1, 2, 2, 2, 2])
        XCTAssertEqual(names(waves, fleet)[0], ["web-00"], "targets are taken by name, whatever order they came in")
        XCTAssertEqual(try RolloutWavePlanner.plan(candidates(1), strategy: .default).map(\.count), [1])
        XCTAssertEqual(try RolloutWavePlanner.plan([], strategy: .default), [])
    }

    func testCountsPercentagesAndANamedCanary() throws {
        let fleet = candidates(10)
        XCTAssertEqual(try RolloutWavePlanner.plan(fleet, strategy: RolloutStrategy(canary: .count(0), waves: .count(4))).map(\.count), [4, 4, 2])
        XCTAssertEqual(try RolloutWavePlanner.plan(fleet, strategy: RolloutStrategy(canary: .count(2), waves: .percent(50))).map(\.count), [2, 4, 4])
        XCTAssertEqual(try RolloutWavePlanner.plan(fleet, strategy: RolloutStrategy(canary: .count(20))).map(\.count), [10])
        let named = try RolloutWavePlanner.plan(fleet, strategy: RolloutStrategy(canary: .targets(["web-07", "web-03"]), waves: .percent(100)))
        XCTAssertEqual(names(named, fleet)[0], ["web-03", "web-07"])
        XCTAssertEqual(named[1].count, 8)
        XCTAssertThrowsError(try RolloutWavePlanner.plan(fleet, strategy: RolloutStrategy(canary: .targets(["db-1"])))) { error in
            XCTAssertEqual((error as? RolloutPlanError)?.field, "canary")
        }
        XCTAssertThrowsError(try RolloutWavePlanner.plan(fleet, strategy: RolloutStrategy(waves: .percent(0))))
        XCTAssertThrowsError(try RolloutWavePlanner.plan(fleet, strategy: RolloutStrategy(maxParallel: 0)))
    }

    func testSpreadingByZoneNeverPutsAWholeZoneInOneWave() throws {
        // Zone a has 4 targets, b 2, c 1 (which cannot be spread).
        let zones = ["a", "a", "a", "a", "b", "b", "c"]
        let fleet = candidates(7).enumerated().map { index, candidate in
            var candidate = candidate
            candidate.labels = ["zone": zones[index]]
            return candidate
        }
        let waves = try RolloutWavePlanner.plan(fleet, strategy: RolloutStrategy(canary: .count(0), waves: .percent(100), order: .label("zone")))
        XCTAssertGreaterThan(waves.count, 1)
        XCTAssertEqual(Set(waves.flatMap { $0 }), Set(fleet.map(\.id)), "every target once")
        let zoneOf = Dictionary(uniqueKeysWithValues: fleet.map { ($0.id, $0.labels["zone"]!) })
        for wave in waves {
            var count: [String: Int] = [:]
            for id in wave { count[zoneOf[id]!, default: 0] += 1 }
            XCTAssertLessThan(count["a", default: 0], 4)
            XCTAssertLessThan(count["b", default: 0], 2)
        }
        // Round-robin: the first wave of three has one of each zone.
        let spread = try RolloutWavePlanner.plan(fleet, strategy: RolloutStrategy(canary: .count(3), waves: .count(2), order: .label("zone")))
        XCTAssertEqual(Set(spread[0].map { zoneOf[$0]! }), ["a", "b", "c"])
    }

    func testStrategyJSONDefaultsAndErrors() throws {
        let decoded = try JSONDecoder().decode(RolloutStrategy.self, from: Data(#"{"waves":"20%","failureBudget":2,"pauseBetweenWaves":"10m","order":"label:zone"}"#.utf8))
        XCTAssertEqual(decoded.canary, .count(1))
        XCTAssertEqual(decoded.waves, .percent(20))
        XCTAssertEqual(decoded.failureBudget, .count(2))
        XCTAssertEqual(decoded.pauseBetweenWaves, RolloutDuration(seconds: 600))
        XCTAssertEqual(decoded.order, .label("zone"))
        XCTAssertEqual(decoded.approval, RolloutStrategy.Approval.none)
        let encoded = String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self)
        XCTAssertTrue(encoded.contains(#""waves":"20%""#), encoded)
        XCTAssertEqual(try JSONDecoder().decode(RolloutStrategy.self, from: Data(encoded.utf8)), decoded)
        XCTAssertEqual(try JSONDecoder().decode(RolloutStrategy.self, from: Data("{}".utf8)), .default)
        for bad in [#"{"waves":"lots"}"#, #"{"canary":true}"#, #"{"order":"zone"}"#, #"{"pauseBetweenWaves":"soon"}"#, #"{"pauseBetweenWaves":"999999999999999999d"}"#, #"{"pauseBetweenWaves":-5}"#, #"{"approval":"later"}"#] {
            XCTAssertThrowsError(try JSONDecoder().decode(RolloutStrategy.self, from: Data(bad.utf8)), bad)
        }
        XCTAssertEqual(RolloutStrategy(failureBudget: .percent(10)).allowedFailures(targetCount: 25), 2)
        XCTAssertEqual(RolloutStrategy(failureBudget: .percent(10)).allowedFailures(targetCount: 9), 0)
    }

    // MARK: Schedules

    func date(_ text: String) throws -> Date { try Date(text, strategy: .iso8601) }

    func testSchedulesParseAndSayWhenTheyOpen() throws {
        let berlin = try MaintenanceSchedule(parsing: "Mon-Fri 01:00-04:00 Europe/Berlin")
        XCTAssertEqual(berlin.description, "Mon,Tue,Wed,Thu,Fri 01:00-04:00 Europe/Berlin")
        // Monday 2027-01-04 00:30 UTC is 01:30 in Berlin (CET): open until 03:00 UTC.
        XCTAssertEqual(berlin.closes(containing: try date("2027-01-04T00:30:00Z")), try date("2027-01-04T03:00:00Z"))
        // Friday 2027-01-08 03:30 UTC (04:30 Berlin): closed; next opening Monday 00:00 UTC.
        XCTAssertNil(berlin.closes(containing: try date("2027-01-08T03:30:00Z")))
        XCTAssertEqual(berlin.nextOpening(after: try date("2027-01-08T03:30:00Z")), try date("2027-01-11T00:00:00Z"))
        // Summer time: 01:00 CEST is 23:00 UTC the day before.
        XCTAssertEqual(berlin.nextOpening(after: try date("2027-07-05T12:00:00Z")), try date("2027-07-05T23:00:00Z"))

        // Past midnight, every day, UTC by default.
        let overnight = try MaintenanceSchedule(parsing: "daily 22:00-02:00")
        XCTAssertEqual(overnight.closes(containing: try date("2027-01-05T01:00:00Z")), try date("2027-01-05T02:00:00Z"))
        XCTAssertEqual(overnight.nextOpening(after: try date("2027-01-05T03:00:00Z")), try date("2027-01-05T22:00:00Z"))
        // A weekend range written across Sunday.
        let weekend = try MaintenanceSchedule(parsing: "Sat-Sun 10:00-12:00 UTC")
        XCTAssertEqual(weekend.weekdays, [7, 1])

        for (bad, words) in [("Someday 01:00-02:00", "not a list of days"), ("Mon 1-2", "not a time range"), ("Mon 01:00-01:00", "is empty"),
                             ("Mon 01:00-02:00 Mars/Olympus", "not an IANA time zone"), ("01:00-02:00", "write days")] {
            XCTAssertThrowsError(try MaintenanceSchedule(parsing: bad), bad) { error in
                XCTAssertTrue("\(error)".contains(words), "\(bad): \(error)")
            }
        }
    }

    func testRulesCombineWindowsAndFreezes() throws {
        let nights = MaintenanceRules.Window(name: "nights", schedule: try MaintenanceSchedule(parsing: "daily 01:00-02:00 UTC"))
        let freeze = MaintenanceRules.Freeze(name: "xmas", from: try date("2026-12-24T00:00:00Z"), until: try date("2026-12-27T00:00:00Z"))
        XCTAssertEqual(MaintenanceRules().verdict(at: try date("2026-12-25T12:00:00Z")), .open)
        XCTAssertEqual(MaintenanceRules(windows: [nights]).verdict(at: try date("2026-12-01T01:30:00Z")), .open)
        guard case .closed(let until, let reason) = MaintenanceRules(windows: [nights]).verdict(at: try date("2026-12-01T03:00:00Z")) else {
            return XCTFail("closed outside the window")
        }
        XCTAssertEqual(until, try date("2026-12-02T01:00:00Z"))
        XCTAssertTrue(reason.contains("nights"))
        // In a freeze with windows: the first window after the freeze.
        guard case .closed(let after, let why) = MaintenanceRules(windows: [nights], freezes: [freeze]).verdict(at: try date("2026-12-24T01:30:00Z")) else {
            return XCTFail("frozen")
        }
        XCTAssertEqual(after, try date("2026-12-27T01:00:00Z"))
        XCTAssertTrue(why.contains("frozen by xmas"), why)
        // A freeze alone: the freeze's end.
        XCTAssertEqual(MaintenanceRules(freezes: [freeze]).verdict(at: try date("2026-12-25T00:00:00Z")),
                       .closed(until: try date("2026-12-27T00:00:00Z"), reason: "frozen by xmas until 2026-12-27T00:00:00Z"))
    }
}
