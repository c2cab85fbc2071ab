import Core
import Foundation

/// The files `certdeploy push` uploads: `--cert`/`--key` (and `--chain`), or, when both are absent, the
/// `fullchain.pem` and `privkey.pem` of `$RENEWED_LINEAGE`, the live directory certbot names to a `--deploy-hook`.
struct PushFiles: Equatable {
    var cert: String
    var key: String
    var chain: String?

    static let lineageVariable = "RENEWED_LINEAGE"

    static func resolve(cert: String?, key: String?, chain: String?, environment: [String: String]) throws(InputError) -> PushFiles {
        switch (cert, key) {
        case let (cert?, key?):
            return PushFiles(cert: cert, key: key, chain: chain)
        case (nil, nil):
            guard let lineage = environment[lineageVariable], !lineage.isEmpty else {
                throw InputError("give --cert and --key (run from certbot's --deploy-hook, $\(lineageVariable) supplies both)")
            }
            let directory = URL(fileURLWithPath: lineage)
            return PushFiles(cert: directory.appendingPathComponent("fullchain.pem").path, key: directory.appendingPathComponent("privkey.pem").path,
                             chain: chain)
        default:
            throw InputError("give both --cert and --key, or neither (then $\(lineageVariable) names the directory holding them)")
        }
    }

    /// A PEM file's text; an unreadable file is bad input naming the option.
    static func read(_ path: String, what: String) throws(InputError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw InputError("\(what) \(path): cannot read: \(error.localizedDescription)")
        }
    }
}

/// The certificate name `push` uses when `--name` is absent: the leaf's first DNS name (or IP address), else its
/// subject CN, with every character outside `[A-Za-z0-9._-]` replaced by `_` and a leading `*.` written `wildcard.`
/// (`*.example.com` → `wildcard.example.com`).
enum CertificateName {
    static let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
    static let maximumLength = 128

    static func derive(from info: CertificateInfo) throws(InputError) -> String {
        let candidates = info.subjectAlternativeNames + (commonName(info.subject).map { [$0] } ?? [])
        guard let name = candidates.lazy.compactMap(sanitize).first else {
            throw InputError("the certificate names no DNS name and no CN to name it by; give --name")
        }
        return name
    }

    /// `[A-Za-z0-9._-]`, at most 128 characters; nil when nothing usable is left.
    static func sanitize(_ raw: String) -> String? {
        var text = raw.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("*.") { text = "wildcard." + String(text.dropFirst(2)) }
        let cleaned = String(text.map { allowed.contains($0) ? $0 : "_" }.prefix(maximumLength))
        return cleaned.contains(where: { $0.isLetter || $0.isNumber }) ? cleaned : nil
    }

    /// Whether `name` may name a certificate as given.
    static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.count <= maximumLength && name.allSatisfy(allowed.contains)
    }

    /// The CN of an RFC 4514 distinguished name (`CN=example.com,O=Example`), unescaped.
    static func commonName(_ distinguishedName: String) -> String? {
        var components: [String] = []
        var current = ""
        var escaped = false
        for character in distinguishedName {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "," || character == "+" {
                components.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        components.append(current)
        for component in components {
            let trimmed = component.trimmingCharacters(in: .whitespaces)
            if trimmed.uppercased().hasPrefix("CN=") { return String(trimmed.dropFirst(3)) }
        }
        return nil
    }
}
