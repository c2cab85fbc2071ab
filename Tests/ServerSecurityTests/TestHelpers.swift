import Foundation
import Logging
import ServerSecurity

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    // @unchecked Sendable: the only stored state, `seconds`, is read and written exclusively while holding `lock`.
    private let lock = NSLock()
    private var seconds: Double

    init(_ start: Double = 1_000) { seconds = start }

    var now: Double { lock.withLock { seconds } }
    func advance(_ delta: Double) { lock.withLock { seconds += delta } }

    var rateLimitClock: RateLimitClock { RateLimitClock { [self] in now } }
}

/// Collects log lines so tests can assert on them.
final class LogCapture: @unchecked Sendable {
    // @unchecked Sendable: the only mutable state, `lines`, is read and written exclusively while holding `lock`.
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let lock = NSLock()
    private var lines: [Line] = []

    var all: [Line] { lock.withLock { lines } }
    func append(_ line: Line) { lock.withLock { lines.append(line) } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(capture: self) }
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append(Line(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" }))
        }
    }
}

/// Everything a value holds, as text, found by walking its mirror: strings, and byte arrays as hex.
func reflectedContents(_ value: Any, depth: Int = 0) -> [String] {
    guard depth < 12 else { return [] }
    var found: [String] = []
    if let text = value as? String { found.append(text) }
    if let text = value as? Substring { found.append(String(text)) }
    if let bytes = value as? [UInt8] { found.append(bytes.map { String(format: "%02x", $0) }.joined()) }
    if let data = value as? Data { found.append(data.map { String(format: "%02x", $0) }.joined()) }
    for child in Mirror(reflecting: value).children {
        found += reflectedContents(child.value, depth: depth + 1)
    }
    return found
}

func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
