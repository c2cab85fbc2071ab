import Foundation

/// How the server commands print times, durations and hashes.
enum ClientFormat {
    /// `2026-11-29T10:41:26Z`.
    static func date(_ date: Date?) -> String {
        date.map { $0.formatted(Date.ISO8601FormatStyle()) } ?? "-"
    }

    /// `0.4s`, `12.0s`, `3m05s`, `2h07m`.
    static func duration(_ seconds: TimeInterval?) -> String {
        guard let seconds, seconds >= 0 else { return "-" }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 3600 { return String(format: "%dm%02ds", whole / 60, whole % 60) }
        return String(format: "%dh%02dm", whole / 3600, (whole % 3600) / 60)
    }

    static func duration(from start: Date?, to end: Date?) -> String {
        guard let start, let end else { return "-" }
        return duration(end.timeIntervalSince(start))
    }

    /// The first 16 hex digits of a SHA-256, as messages show it.
    static func shortHash(_ sha256: String) -> String { String(sha256.prefix(16)) }
}
