import Foundation

/// One Server-Sent Event (the `text/event-stream` format of the HTML Living Standard, §9.2).
struct ServerSentEvent: Equatable, Sendable {
    /// The `event:` field; `message` when the event named none.
    var event: String
    /// The `data:` lines, joined with `\n`.
    var data: String
    /// The last `id:` seen on the stream, if any.
    var id: String?

    init(event: String, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }
}

/// Turns the bytes of an event stream, in chunks of any size, into events.
///
/// Lines end with CRLF, LF or CR (a CRLF split across two chunks counts once). A line starting with `:` is a
/// comment. `field: value` (one space after the colon is dropped) sets `event`, appends to `data` or sets `id`;
/// other fields are ignored. A blank line dispatches the event, unless it had no `data` line. Bytes are kept until
/// their line is complete, so a UTF-8 character split across chunks decodes whole. At the end of the stream, an
/// event without its closing blank line is dropped, as the standard says.
struct ServerSentEventParser {
    private var line: [UInt8] = []
    private var lastByteWasCR = false
    private var atStreamStart = true
    private var eventType = ""
    private var data = ""
    private var hasData = false
    private var lastEventID: String?

    init() {}

    /// Feeds the next chunk; returns the events it completed, in order.
    mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [ServerSentEvent] where Bytes.Element == UInt8 {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\r"):
                lastByteWasCR = true
                endLine(into: &events)
            case UInt8(ascii: "\n"):
                if lastByteWasCR {
                    lastByteWasCR = false
                } else {
                    endLine(into: &events)
                }
            default:
                lastByteWasCR = false
                line.append(byte)
            }
        }
        return events
    }

    /// The stream ended: drops whatever event was incomplete.
    mutating func finish() -> [ServerSentEvent] {
        line.removeAll()
        resetEvent()
        return []
    }

    private mutating func endLine(into events: inout [ServerSentEvent]) {
        var bytes = line[...]
        line.removeAll(keepingCapacity: true)
        if atStreamStart {
            atStreamStart = false
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        }
        let text = String(decoding: bytes, as: UTF8.self)
        if text.isEmpty {
            if hasData {
                events.append(ServerSentEvent(event: eventType.isEmpty ? "message" : eventType, data: data, id: lastEventID))
            }
            resetEvent()
            return
        }
        if text.hasPrefix(":") { return }
        let field: Substring
        var value: Substring
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            value = text[text.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            field = text[...]
            value = ""
        }
        switch field {
        case "event":
            eventType = String(value)
        case "data":
            if hasData { data += "\n" }
            data += value
            hasData = true
        case "id" where !value.contains("\0"):
            lastEventID = String(value)
        default:
            break
        }
    }

    private mutating func resetEvent() {
        eventType = ""
        data = ""
        hasData = false
    }
}

/// The events of a byte stream given as chunks, parsed as they arrive.
struct ServerSentEvents<Chunks: AsyncSequence>: AsyncSequence where Chunks.Element == [UInt8] {
    typealias Element = ServerSentEvent

    let chunks: Chunks

    init(_ chunks: Chunks) { self.chunks = chunks }

    func makeAsyncIterator() -> Iterator { Iterator(chunks: chunks.makeAsyncIterator()) }

    struct Iterator: AsyncIteratorProtocol {
        var chunks: Chunks.AsyncIterator
        var parser = ServerSentEventParser()
        var pending: [ServerSentEvent] = []
        var ended = false

        mutating func next() async throws -> ServerSentEvent? {
            while pending.isEmpty {
                if ended { return nil }
                if let chunk = try await chunks.next() {
                    pending = parser.feed(chunk)
                } else {
                    ended = true
                    pending = parser.finish()
                }
            }
            return pending.removeFirst()
        }
    }
}
