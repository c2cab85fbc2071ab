import Foundation

// Dates as the API writes them ("2026-11-29T18:30:48.123Z"), without Foundation's calendar machinery: a page of 500
// targets has a thousand of them. Byte-identical to `Date.ISO8601FormatStyle(includingFractionalSeconds: true)`
// (milliseconds truncated, UTC), checked against it in ISO8601TextTests.

extension Date {
    /// ISO 8601 in UTC with milliseconds, as `Date.ISO8601FormatStyle(includingFractionalSeconds: true)` writes it.
    public var iso8601MillisecondsText: String {
        let interval = timeIntervalSince1970
        var seconds = interval.rounded(.down)
        var milliseconds = Int(((interval - seconds) * 1000).rounded(.down))
        if milliseconds >= 1000 {
            milliseconds -= 1000
            seconds += 1
        }
        // From the Gregorian calendar's first day (1582-10-15; Foundation's calendar is Julian before it) to the last
        // four-digit year; Foundation for the rest.
        guard seconds >= -12_219_292_800, seconds < 253_402_300_800 else {
            return formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
        let whole = Int(seconds)
        let days = whole >= 0 ? whole / 86_400 : (whole - 86_399) / 86_400
        let secondOfDay = whole - days * 86_400
        let (year, month, day) = civilDate(daysSince1970: days)
        return String(unsafeUninitializedCapacity: 24) { text in
            func put(_ value: Int, digits: Int, at offset: Int) {
                var value = value
                for position in stride(from: offset + digits - 1, through: offset, by: -1) {
                    text[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            put(year, digits: 4, at: 0)
            text[4] = UInt8(ascii: "-")
            put(month, digits: 2, at: 5)
            text[7] = UInt8(ascii: "-")
            put(day, digits: 2, at: 8)
            text[10] = UInt8(ascii: "T")
            put(secondOfDay / 3600, digits: 2, at: 11)
            text[13] = UInt8(ascii: ":")
            put(secondOfDay / 60 % 60, digits: 2, at: 14)
            text[16] = UInt8(ascii: ":")
            put(secondOfDay % 60, digits: 2, at: 17)
            text[19] = UInt8(ascii: ".")
            put(milliseconds, digits: 3, at: 20)
            text[23] = UInt8(ascii: "Z")
            return 24
        }
    }
}

/// Proleptic Gregorian year, month and day of a count of days since 1970-01-01 (H. Hinnant's `civil_from_days`).
private func civilDate(daysSince1970: Int) -> (year: Int, month: Int, day: Int) {
    let days = daysSince1970 + 719_468
    let era = (days >= 0 ? days : days - 146_096) / 146_097
    let dayOfEra = days - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthFromMarch = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
    let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
}
