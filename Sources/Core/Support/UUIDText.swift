import Foundation

// UUIDs in and out of text without Foundation's C path: on Linux `UUID(uuidString:)` parses with `sscanf` and
// `uuidString` prints with `snprintf`, which made up a fifth of the server's time listing a page of 500 targets
// (ids of targets and of their labels' rows). Tested against Foundation in UUIDTextTests.

extension UUID {
    /// The lowercase 8-4-4-4-12 form: what `lowercasedText` gives, the form certdeploy stores and serves.
    public var lowercasedText: String { text(digits: lowercaseHexDigits) }

    /// The uppercase 8-4-4-4-12 form: what `uuidString` (and so `JSONEncoder`) gives.
    public var uppercasedText: String { text(digits: uppercaseHexDigits) }

    private func text(digits hexDigits: [UInt8]) -> String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                var out = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[out] = UInt8(ascii: "-")
                        out += 1
                    }
                    text[out] = hexDigits[Int(byte >> 4)]
                    text[out + 1] = hexDigits[Int(byte & 0x0F)]
                    out += 2
                }
                return out
            }
        }
    }

    /// Parses the 8-4-4-4-12 hexadecimal form, either case (as `UUID(uuidString:)` does); nil for anything else.
    public init?(text: String) {
        var text = text
        guard let value = text.withUTF8({ UUID.parse($0) }) else { return nil }
        self.init(uuid: value)
    }

    /// As ``init(text:)`` for a `Substring`.
    public init?(text: Substring) {
        self.init(text: String(text))
    }

    private static func parse(_ text: UnsafeBufferPointer<UInt8>) -> uuid_t? {
        guard text.count == 36 else { return nil }
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let parsed = withUnsafeMutableBytes(of: &value) { bytes -> Bool in
            var position = 0
            for index in 0..<16 {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    guard text[position] == UInt8(ascii: "-") else { return false }
                    position += 1
                }
                guard let high = hexValue(text[position]), let low = hexValue(text[position + 1]) else { return false }
                bytes[index] = high << 4 | low
                position += 2
            }
            return true
        }
        return parsed ? value : nil
    }
}

private let lowercaseHexDigits: [UInt8] = Array("0123456789abcdef".utf8)
private let uppercaseHexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

@inline(__always)
private func hexValue(_ character: UInt8) -> UInt8? {
    switch character {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
    default: nil
    }
}
