import Foundation

/// A recurring maintenance window: days of the week and a time range in an IANA time zone, written as
/// `Mon-Fri 01:00-04:00 Europe/Berlin` (days: `Mon`, `Mon,Wed,Fri`, `Sat-Sun`, `daily`; a range whose end is before
/// its start runs past midnight: `22:00-02:00`). The zone defaults to UTC.
public struct MaintenanceSchedule: Sendable, Equatable, CustomStringConvertible {
    /// 1 = Sunday … 7 = Saturday (`Calendar`'s numbering).
    public var weekdays: Set<Int>
    /// Minutes after midnight.
    public var start: Int
    public var end: Int
    public var timeZone: TimeZone
    /// The zone as written (Foundation calls UTC "GMT").
    public var timeZoneName: String

    private static let dayNames = ["sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7]

    public init(parsing text: String) throws(ScheduleError) {
        let words = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard words.count == 2 || words.count == 3 else {
            throw ScheduleError("\(text.debugDescription): write days, a time range and optionally a time zone, e.g. \"Mon-Fri 01:00-04:00 Europe/Berlin\"")
        }
        weekdays = try Self.parseDays(words[0])
        let times = words[1].split(separator: "-", omittingEmptySubsequences: false)
        guard times.count == 2, let start = Self.minutes(String(times[0])), let end = Self.minutes(String(times[1])) else {
            throw ScheduleError("\(words[1].debugDescription) is not a time range HH:MM-HH:MM")
        }
        guard start != end else { throw ScheduleError("\(words[1].debugDescription) is empty: the start and the end are the same") }
        self.start = start
        self.end = end
        if words.count == 3 {
            guard let zone = TimeZone(identifier: words[2]) else {
                throw ScheduleError("\(words[2].debugDescription) is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)")
            }
            timeZone = zone
            timeZoneName = words[2]
        } else {
            timeZone = TimeZone(identifier: "UTC")!
            timeZoneName = "UTC"
        }
    }

    private static func parseDays(_ text: String) throws(ScheduleError) -> Set<Int> {
        let lower = text.lowercased()
        if lower == "daily" || lower == "every" || lower == "mon-sun" { return Set(1...7) }
        var days = Set<Int>()
        for part in lower.split(separator: ",") {
            let bounds = part.split(separator: "-")
            guard (1...2).contains(bounds.count), let first = dayNames[String(bounds[0])], let last = dayNames[String(bounds.last!)] else {
                throw ScheduleError("\(text.debugDescription) is not a list of days (Mon, Mon-Fri, Sat,Sun or daily)")
            }
            // Monday-first order, so Fri-Mon wraps over the weekend.
            var day = first
            while true {
                days.insert(day)
                if day == last { break }
                day = day % 7 + 1
            }
        }
        return days
    }

    private static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0].count <= 2, parts[1].count == 2, let hours = Int(parts[0]), let minutes = Int(parts[1]),
              (0...24).contains(hours), (0...59).contains(minutes), hours * 60 + minutes <= 24 * 60 else { return nil }
        return hours * 60 + minutes
    }

    public var description: String {
        let names = ["", "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let days = weekdays.count == 7 ? "daily" : [2, 3, 4, 5, 6, 7, 1].filter(weekdays.contains).map { names[$0] }.joined(separator: ",")
        func time(_ minutes: Int) -> String { String(format: "%02d:%02d", minutes / 60, minutes % 60) }
        return "\(days) \(time(start))-\(time(end)) \(timeZoneName)"
    }

    /// The occurrences that overlap the week around `date`: each window as [opens, closes).
    func occurrences(around date: Date) -> [(opens: Date, closes: Date)] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let today = calendar.startOfDay(for: date)
        var result: [(Date, Date)] = []
        for offset in -1...8 {
            guard let day = calendar.date(byAdding: .day, value: offset, to: today), weekdays.contains(calendar.component(.weekday, from: day)) else { continue }
            guard let opens = calendar.date(byAdding: .minute, value: start, to: day) else { continue }
            let length = end > start ? end - start : 24 * 60 - start + end
            result.append((opens, opens.addingTimeInterval(TimeInterval(length * 60))))
        }
        return result
    }

    /// Whether `date` is inside an occurrence; if so, when it closes.
    public func closes(containing date: Date) -> Date? {
        occurrences(around: date).filter { $0.opens <= date && date < $0.closes }.map(\.closes).max()
    }

    /// The next time a window opens after `date` (within the coming week).
    public func nextOpening(after date: Date) -> Date? {
        occurrences(around: date).map(\.opens).filter { $0 > date }.min()
    }
}

/// A schedule that does not parse, with the reason.
public struct ScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The maintenance rules that apply to one target: its recurring windows (none: any time is fine) and its freezes
/// (date ranges when nothing deploys, whatever the windows say).
public struct MaintenanceRules: Sendable {
    public struct Window: Sendable {
        public var name: String
        public var schedule: MaintenanceSchedule
        public init(name: String, schedule: MaintenanceSchedule) {
            self.name = name
            self.schedule = schedule
        }
    }

    public struct Freeze: Sendable {
        public var name: String
        public var from: Date
        public var until: Date
        public init(name: String, from: Date, until: Date) {
            self.name = name
            self.from = from
            self.until = until
        }
    }

    public var windows: [Window]
    public var freezes: [Freeze]

    public init(windows: [Window] = [], freezes: [Freeze] = []) {
        self.windows = windows
        self.freezes = freezes
    }

    public enum Verdict: Sendable, Equatable {
        case open
        /// Closed now; opens at the date (nil: never within the coming weeks), with why.
        case closed(until: Date?, reason: String)
    }

    /// Whether a deploy may start at `date`, and if not, when it may.
    public func verdict(at date: Date) -> Verdict {
        var candidate = date
        var reason: String?
        // Alternate between "skip the freeze" and "wait for a window" until both agree (bounded: 32 steps).
        for _ in 0..<32 {
            if let freeze = freezes.filter({ $0.from <= candidate && candidate < $0.until }).max(by: { $0.until < $1.until }) {
                reason = reason ?? "frozen by \(freeze.name) until \(freeze.until.formatted(.iso8601))"
                candidate = freeze.until
                continue
            }
            if windows.isEmpty || windows.contains(where: { $0.schedule.closes(containing: candidate) != nil }) {
                return reason == nil ? .open : .closed(until: candidate, reason: reason!)
            }
            let next = windows.compactMap { window in window.schedule.nextOpening(after: candidate).map { (window, $0) } }.min { $0.1 < $1.1 }
            guard let (window, opens) = next else {
                return .closed(until: nil, reason: reason ?? "outside every maintenance window")
            }
            reason = reason ?? "outside its maintenance window \(window.name) (\(window.schedule))"
            candidate = opens
        }
        return .closed(until: nil, reason: reason ?? "no maintenance window opens outside the freezes")
    }
}
