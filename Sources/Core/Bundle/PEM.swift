import Foundation

/// One `-----BEGIN X-----` … `-----END X-----` block.
struct PEMBlock: Sendable {
    var label: String
    /// RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` (only encrypted traditional keys have them).
    var headers: [String]
    var base64: String

    var der: [UInt8]? {
        Data(base64Encoded: base64).map { Array($0) }
    }

    /// Canonical PEM text: 64-column base64, one trailing newline.
    var canonicalText: String {
        var lines = ["-----BEGIN \(label)-----"]
        var rest = Substring(base64)
        while !rest.isEmpty {
            lines.append(String(rest.prefix(64)))
            rest = rest.dropFirst(64)
        }
        lines.append("-----END \(label)-----")
        return lines.joined(separator: "\n") + "\n"
    }
}

enum PEMScanner {
    /// How many `CERTIFICATE` blocks a text holds (0 when it does not parse).
    static func certificateCount(in text: String) -> Int {
        ((try? blocks(in: text, source: "text")) ?? []).filter { $0.label == "CERTIFICATE" }.count
    }

    /// The DER of the first `CERTIFICATE` block in a file's bytes, if any (a leaf, full chain or combined PEM).
    static func firstCertificateDER(in bytes: [UInt8]) -> [UInt8]? {
        let text = String(decoding: bytes, as: UTF8.self)
        return (try? blocks(in: text, source: "file"))?.first { $0.label == "CERTIFICATE" }?.der
    }

    /// Splits text into PEM blocks. Text outside blocks (comments, `openssl x509 -text` output) is ignored,
    /// as OpenSSL does; a BEGIN without its END is an error.
    static func blocks(in text: String, source: String) throws(BundleError) -> [PEMBlock] {
        var result: [PEMBlock] = []
        var open: PEMBlock?
        // `\.isNewline`, not "\n": in Swift "\r\n" is one Character, so splitting on "\n" leaves CRLF files as one line.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----") {
                if let open {
                    throw BundleError(.malformedPEM, "\(source): \"BEGIN \(open.label)\" has no matching END line")
                }
                open = PEMBlock(label: String(line.dropFirst(11).dropLast(5)), headers: [], base64: "")
            } else if line.hasPrefix("-----END "), line.hasSuffix("-----") {
                let label = String(line.dropFirst(9).dropLast(5))
                guard let block = open, block.label == label else {
                    throw BundleError(.malformedPEM, "\(source): \"END \(label)\" without a matching BEGIN line")
                }
                result.append(block)
                open = nil
            } else if open != nil, !line.isEmpty {
                if line.contains(":") {
                    open!.headers.append(line)
                } else {
                    open!.base64 += line
                }
            }
        }
        if let open {
            throw BundleError(.malformedPEM, "\(source): \"BEGIN \(open.label)\" has no matching END line")
        }
        return result
    }
}
