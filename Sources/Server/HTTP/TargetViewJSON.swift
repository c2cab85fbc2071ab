import CertdeployAPI
import Core
import Foundation
import Hummingbird
import NIOCore

/// Target views written straight to JSON text, without `JSONEncoder`: the target list answers up to 500 of them and
/// `JSONEncoder` was most of its time. The bytes are what `JSONEncoder.api` writes for the same value (sorted keys,
/// absent optionals left out, dates as ISO 8601 with fractional seconds, UUIDs upper case); TargetViewJSONTests
/// compares the two.
enum TargetViewJSON {
    static func data(_ view: TargetView) throws -> [UInt8] {
        var writer = JSONTextWriter(capacity: 1024)
        try write(view, to: &writer)
        return writer.bytes
    }

    static func data(_ list: ListResponse<TargetView>) throws -> [UInt8] {
        var writer = JSONTextWriter(capacity: 64 + list.items.count * 900)
        var object = ObjectWriter()
        writer.raw("{")
        object.key("items", &writer)
        writer.raw("[")
        for (index, item) in list.items.enumerated() {
            if index > 0 { writer.raw(",") }
            try write(item, to: &writer)
        }
        writer.raw("]")
        if let cursor = list.nextCursor {
            object.key("nextCursor", &writer)
            writer.string(cursor)
        }
        writer.raw("}")
        return writer.bytes
    }

    /// A page of list items: the same bytes as the page of their views, with the JSON members copied from text.
    static func data(_ items: [TargetListItem], nextCursor: String?) throws -> [UInt8] {
        var writer = JSONTextWriter(capacity: 64 + items.count * 900)
        var object = ObjectWriter()
        writer.raw("{")
        object.key("items", &writer)
        writer.raw("[")
        for (index, item) in items.enumerated() {
            if index > 0 { writer.raw(",") }
            try write(item.view, to: &writer, text: item)
        }
        writer.raw("]")
        if let nextCursor {
            object.key("nextCursor", &writer)
            writer.string(nextCursor)
        }
        writer.raw("}")
        return writer.bytes
    }

    /// The members in `.sortedKeys` order (by UTF-8 bytes). With `text`, `config`, `ssh` and `kubernetes` are copied
    /// from it instead of written from the view.
    static func write(_ view: TargetView, to writer: inout JSONTextWriter, text: TargetListItem? = nil) throws {
        var object = ObjectWriter()
        writer.raw("{")
        if let autoRemediate = view.autoRemediate {
            object.key("autoRemediate", &writer)
            autoRemediate ? writer.raw("true") : writer.raw("false")
        }
        if let certificate = view.certificate {
            object.key("certificate", &writer)
            writer.string(certificate)
        }
        object.key("config", &writer)
        if let text { writer.bytes.append(contentsOf: text.config) } else { try writer.value(view.config) }
        object.key("connector", &writer)
        writer.string(view.connector)
        object.key("createdAt", &writer)
        date(view.createdAt, &writer)
        object.key("id", &writer)
        writer.string(view.id.uppercasedText)
        if let kubernetes = text?.kubernetes {
            object.key("kubernetes", &writer)
            writer.bytes.append(contentsOf: kubernetes)
        } else if let kubernetes = view.kubernetes {
            object.key("kubernetes", &writer)
            try writer.value(kubernetes)
        }
        object.key("labels", &writer)
        writer.raw("{")
        for (index, label) in JSONTextWriter.sortedMembers(view.labels).enumerated() {
            if index > 0 { writer.raw(",") }
            writer.string(label.key)
            writer.raw(":")
            writer.string(label.value)
        }
        writer.raw("}")
        if let last = view.lastDeployment {
            object.key("lastDeployment", &writer)
            write(last, to: &writer)
        }
        object.key("name", &writer)
        writer.string(view.name)
        if let ssh = text?.ssh {
            object.key("ssh", &writer)
            writer.bytes.append(contentsOf: ssh)
        } else if let ssh = view.ssh {
            object.key("ssh", &writer)
            try writer.value(ssh)
        }
        if let status = view.status {
            object.key("status", &writer)
            write(status, to: &writer)
        }
        object.key("updatedAt", &writer)
        date(view.updatedAt, &writer)
        object.key("version", &writer)
        writer.integer(view.version)
        writer.raw("}")
    }

    private static func write(_ summary: DeploymentSummary, to writer: inout JSONTextWriter) {
        var object = ObjectWriter()
        writer.raw("{")
        object.key("certificate", &writer)
        writer.string(summary.certificate)
        object.key("certificateVersion", &writer)
        writer.integer(summary.certificateVersion)
        if let finishedAt = summary.finishedAt {
            object.key("finishedAt", &writer)
            date(finishedAt, &writer)
        }
        object.key("id", &writer)
        writer.string(summary.id.uppercasedText)
        object.key("status", &writer)
        writer.string(summary.status)
        writer.raw("}")
    }

    private static func write(_ status: TargetStatusView, to writer: inout JSONTextWriter) {
        var object = ObjectWriter()
        writer.raw("{")
        func member(_ key: StaticString, _ value: String?) {
            guard let value else { return }
            object.key(key, &writer)
            writer.string(value)
        }
        func member(_ key: StaticString, _ value: Date?) {
            guard let value else { return }
            object.key(key, &writer)
            date(value, &writer)
        }
        member("checkedAt", status.checkedAt)
        member("detail", status.detail)
        member("expectedSHA256", status.expectedSHA256)
        member("servedSHA256", status.servedSHA256)
        member("staple", status.staple)
        member("stapleCheckedAt", status.stapleCheckedAt)
        member("stapleDetail", status.stapleDetail)
        member("stapleNextUpdate", status.stapleNextUpdate)
        member("stapleThisUpdate", status.stapleThisUpdate)
        member("sync", status.sync)
        writer.raw("}")
    }

    /// As `JSONEncoder.api`'s date strategy writes it.
    private static func date(_ date: Date, _ writer: inout JSONTextWriter) {
        writer.string(date.iso8601MillisecondsText)
    }

    /// Commas between members.
    private struct ObjectWriter {
        var first = true
        mutating func key(_ key: StaticString, _ writer: inout JSONTextWriter) {
            if first { first = false } else { writer.raw(",") }
            writer.raw("\"")
            writer.raw(key)
            writer.raw("\":")
        }
    }
}

extension JSONResponse {
    /// A target view, written by `TargetViewJSON` (the same JSON as the generic `make`).
    static func make(_ view: TargetView, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try TargetViewJSON.data(view))))
    }

    /// A page of the target list, written by `TargetViewJSON` from the stored text.
    static func make(_ items: [TargetListItem], nextCursor: String?) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try TargetViewJSON.data(items, nextCursor: nextCursor))))
    }

    /// A page of target views, written by `TargetViewJSON` (the same JSON as the generic `make`).
    static func make(_ list: ListResponse<TargetView>, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try TargetViewJSON.data(list))))
    }
}
