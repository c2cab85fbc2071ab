import CLibSSH2
import Core
import Crypto
import Foundation

/// How a target's SSH host key is trusted.
public struct HostKeyPolicy: Sendable, Equatable {
    /// `SHA256:<base64>` as `ssh-keygen -lf` prints it.
    public var pinnedFingerprint: String?
    /// An OpenSSH known_hosts file (plain or hashed host names).
    public var knownHostsFile: String?
    /// Accept whatever key the server shows, and report it so it can be pinned.
    public var trustOnFirstUse: Bool

    public init(pinnedFingerprint: String? = nil, knownHostsFile: String? = nil, trustOnFirstUse: Bool = false) {
        self.pinnedFingerprint = pinnedFingerprint
        self.knownHostsFile = knownHostsFile
        self.trustOnFirstUse = trustOnFirstUse
    }
}

/// The host key a server presented.
public struct PresentedHostKey: Sendable, Equatable {
    public var type: String
    public var blob: [UInt8]

    /// OpenSSH's `SHA256:` fingerprint: unpadded base64 of the SHA-256 of the key blob.
    public var fingerprint: String {
        "SHA256:" + Data(SHA256.hash(data: blob)).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    init(blob: [UInt8], libssh2Type: Int32) {
        self.blob = blob
        switch libssh2Type {
        case LIBSSH2_HOSTKEY_TYPE_RSA: type = "ssh-rsa"
        case LIBSSH2_HOSTKEY_TYPE_DSS: type = "ssh-dss"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: type = "ecdsa-sha2-nistp256"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: type = "ecdsa-sha2-nistp384"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: type = "ecdsa-sha2-nistp521"
        case LIBSSH2_HOSTKEY_TYPE_ED25519: type = "ssh-ed25519"
        default: type = "unknown"
        }
    }
}

/// Checks a presented host key against a policy. Strict by default: no policy, no connection.
enum HostKeyVerifier {
    /// Host key algorithms libssh2 1.10 can verify, strongest first.
    static let supportedTypes = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"]

    /// The order to ask the server for host key types: types listed for this host in the known_hosts
    /// file first (so the server shows the key the file has), then the rest; Ed25519 first otherwise,
    /// matching `ssh-keyscan -t ed25519` pins.
    static func preference(policy: HostKeyPolicy, host: String, port: Int) -> [String] {
        var preferred: [String] = []
        if let file = policy.knownHostsFile, let text = try? String(contentsOfFile: file, encoding: .utf8) {
            for entry in KnownHosts.entries(in: text, host: host, port: port) where supportedTypes.contains(entry.type) && !preferred.contains(entry.type) {
                preferred.append(entry.type)
            }
        }
        return preferred + supportedTypes.filter { !preferred.contains($0) }
    }

    static func verify(_ key: PresentedHostKey, host: String, port: Int, policy: HostKeyPolicy, endpoint: String) throws(RemoteError) {
        if let pinned = policy.pinnedFingerprint {
            let expected = pinned.hasSuffix("=") ? String(pinned.reversed().drop { $0 == "=" }.reversed()) : pinned
            guard expected == key.fingerprint else {
                throw RemoteError(.hostKeyMismatch, host: endpoint, operation: "host key",
                                  "host key mismatch: expected \(pinned), server presented \(key.type) \(key.fingerprint). Nothing was written. If the server's key really changed, update the target's pinned fingerprint")
            }
            return
        }
        if let file = policy.knownHostsFile {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw RemoteError(.configuration, host: endpoint, operation: "host key", "cannot read known_hosts file \(file): \(error.localizedDescription)")
            }
            let entries = KnownHosts.entries(in: text, host: host, port: port)
            if entries.contains(where: { $0.blob == key.blob }) { return }
            if let other = entries.first {
                throw RemoteError(.hostKeyMismatch, host: endpoint, operation: "host key",
                                  "host key mismatch: \(file) lists \(other.type) \(other.fingerprint) for \(KnownHosts.hostPattern(host: host, port: port)), server presented \(key.type) \(key.fingerprint). Nothing was written")
            }
            throw RemoteError(.hostKeyUnknown, host: endpoint, operation: "host key",
                              "\(KnownHosts.hostPattern(host: host, port: port)) is not in \(file); the server presented \(key.type) \(key.fingerprint). Add it (ssh-keyscan) or pin that fingerprint after checking it out of band")
        }
        if policy.trustOnFirstUse { return }
        throw RemoteError(.configuration, host: endpoint, operation: "host key",
                          "no host key policy: set hostKeyFingerprint (the server presented \(key.type) \(key.fingerprint)), knownHostsFile, or trustOnFirstUse")
    }
}

/// Reads OpenSSH known_hosts lines, including hashed (`|1|salt|hash`) host names and `[host]:port` forms.
enum KnownHosts {
    struct Entry {
        var type: String
        var blob: [UInt8]
        var fingerprint: String { PresentedHostKey(blob: blob, libssh2Type: 0).fingerprint }
    }

    static func hostPattern(host: String, port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    static func entries(in text: String, host: String, port: Int) -> [Entry] {
        let wanted = hostPattern(host: host, port: port)
        var result: [Entry] = []
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix("@") { continue }
            let fields = trimmed.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3, let blob = Data(base64Encoded: String(fields[2])) else { continue }
            let hosts = fields[0]
            let matches: Bool
            if hosts.hasPrefix("|1|") {
                matches = hashedMatch(String(hosts), name: wanted)
            } else {
                let names = hosts.split(separator: ",").map(String.init)
                matches = names.contains(wanted) && !names.contains("!" + wanted)
            }
            if matches { result.append(Entry(type: String(fields[1]), blob: Array(blob))) }
        }
        return result
    }

    private static func hashedMatch(_ field: String, name: String) -> Bool {
        let parts = field.split(separator: "|")
        guard parts.count == 3, let salt = Data(base64Encoded: String(parts[1])), let hash = Data(base64Encoded: String(parts[2])) else { return false }
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))
        return Data(mac) == hash
    }
}
