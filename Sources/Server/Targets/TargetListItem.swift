import CertdeployAPI
import Core
import Foundation
import Store

/// One target as the list writes it: the view without its JSON members, and those members as stored JSON text with
/// the sealed values redacted in the text. A page of 500 targets then costs no JSON parse and no re-encoding of
/// configs (they were most of the list's time).
struct TargetListItem: Sendable {
    /// `config`, `ssh` and `kubernetes` are left empty here: ``config``, ``ssh`` and ``kubernetes`` hold them.
    var view: TargetView
    var config: [UInt8]
    var ssh: [UInt8]?
    var kubernetes: [UInt8]?
}

extension TargetCodec {
    /// The list's form of `record`: the same JSON as ``view(_:lastDeployment:)``, from the stored text.
    func listItem(_ record: TargetRecord) -> TargetListItem {
        var view = TargetView(
            id: record.id, name: record.name, connector: record.connectorID, labels: record.labels, certificate: record.certificateName,
            ssh: nil, kubernetes: nil, config: .null, createdAt: record.createdAt, updatedAt: record.updatedAt, version: record.version)
        if let config = Self.redactedText(record.configJSON), let transport = Self.redactedText(record.transportJSON),
           let (member, inner) = Self.singleMember(transport, of: ["ssh", "kubernetes"]) {
            return TargetListItem(view: view, config: config, ssh: member == "ssh" ? inner : nil, kubernetes: member == "kubernetes" ? inner : nil)
        }
        // Not in this codec's stored layout (cannot happen for rows it wrote): the parsed path.
        let parsed = self.view(record)
        view.config = .null
        func text(_ value: JSONValue?) -> [UInt8]? {
            guard let value else { return nil }
            var writer = JSONTextWriter()
            do { try writer.value(value) } catch { return Array("null".utf8) }
            return writer.bytes
        }
        return TargetListItem(view: view, config: text(parsed.config) ?? Array("{}".utf8), ssh: text(parsed.ssh), kubernetes: text(parsed.kubernetes))
    }

    /// `stored` with every sealed value `{"$sealed":"<base64>"}` replaced by `"<redacted>"`, without parsing: in JSON
    /// text a quote inside a string is always escaped, so `{"$sealed":"` can only open a sealed value, and its base64
    /// holds no quote. nil when a sealed value is not in that exact form.
    static func redactedText(_ stored: String) -> [UInt8]? {
        let opening = Array(#"{"$sealed":""#.utf8)
        let replacement = Array(#""\#(redactedPlaceholder)""#.utf8)
        let text = Array(stored.utf8)
        guard text.first == UInt8(ascii: "{"), text.last == UInt8(ascii: "}") else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(text.count)
        var index = 0
        while let start = firstIndex(of: opening, in: text, from: index) {
            output.append(contentsOf: text[index..<start])
            let body = start + opening.count
            guard let close = text[body...].firstIndex(of: UInt8(ascii: "\"")), close + 1 < text.count,
                  text[close + 1] == UInt8(ascii: "}") else { return nil }
            output.append(contentsOf: replacement)
            index = close + 2
        }
        if index == 0 { return text }
        output.append(contentsOf: text[index...])
        return output
    }

    /// The value of the only member of `{"<name>":<value>}` when `name` is one of `names`.
    static func singleMember(_ object: [UInt8], of names: [String]) -> (String, [UInt8])? {
        for name in names {
            let prefix = Array(#"{"\#(name)":"#.utf8)
            if object.count > prefix.count + 1, object.starts(with: prefix) {
                return (name, Array(object[prefix.count..<(object.count - 1)]))
            }
        }
        return nil
    }

    private static func firstIndex(of pattern: [UInt8], in text: [UInt8], from start: Int) -> Int? {
        guard let first = pattern.first, text.count >= pattern.count else { return nil }
        var index = start
        let last = text.count - pattern.count
        while index <= last {
            guard let candidate = text[index...last].firstIndex(of: first) else { return nil }
            if text[candidate..<(candidate + pattern.count)].elementsEqual(pattern) { return candidate }
            index = candidate + 1
        }
        return nil
    }
}
