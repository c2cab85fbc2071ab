import Core
import Foundation

/// How to reach a target over SSH: the `ssh` section of a target.
public struct SSHTarget: Codable, Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    /// Private key PEM (OpenSSH, PKCS#8 or traditional form). A secret.
    public var privateKey: String?
    /// Path, on the certdeploy host, of a private key file.
    public var privateKeyFile: String?
    /// Passphrase of the private key. A secret.
    public var passphrase: String?
    /// Password authentication, where the operator insists. A secret.
    public var password: String?
    public var hostKeyFingerprint: String?
    public var knownHostsFile: String?
    public var trustOnFirstUse: Bool
    /// Run file installs and commands through `sudo -n` (for a non-root SSH user).
    public var sudo: Bool
    /// `auto` (SFTP, else SCP), `sftp`, or `scp`.
    public var transfer: Transfer
    public var connectTimeoutSeconds: Int
    public var commandTimeoutSeconds: Int

    public enum Transfer: String, Codable, Sendable { case auto, sftp, scp }

    public init(host: String, port: Int = 22, user: String, privateKey: String? = nil, privateKeyFile: String? = nil, passphrase: String? = nil,
                password: String? = nil, hostKeyFingerprint: String? = nil, knownHostsFile: String? = nil, trustOnFirstUse: Bool = false,
                sudo: Bool = false, transfer: Transfer = .auto, connectTimeoutSeconds: Int = 10, commandTimeoutSeconds: Int = 60) {
        self.host = host
        self.port = port
        self.user = user
        self.privateKey = privateKey
        self.privateKeyFile = privateKeyFile
        self.passphrase = passphrase
        self.password = password
        self.hostKeyFingerprint = hostKeyFingerprint
        self.knownHostsFile = knownHostsFile
        self.trustOnFirstUse = trustOnFirstUse
        self.sudo = sudo
        self.transfer = transfer
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.commandTimeoutSeconds = commandTimeoutSeconds
    }

    /// The schema of the `ssh` section: validation, JSON schema and docs all come from it.
    public static let configFields: [ConfigField] = [
        ConfigField("host", .string, required: true, "Host name or address of the SSH server."),
        ConfigField("port", .integer(minimum: 1, maximum: 65535), default: .number(22), "SSH port."),
        ConfigField("user", .string, required: true, "SSH user. A non-root user needs `sudo: true` to write root-owned files."),
        ConfigField("privateKey", .string, secret: true, "Private key PEM (Ed25519, ECDSA or RSA; OpenSSH, PKCS#8 or traditional form)."),
        ConfigField("privateKeyFile", .absolutePath, "Private key file on the certdeploy host (alternative to privateKey)."),
        ConfigField("passphrase", .string, secret: true, "Passphrase of the private key."),
        ConfigField("password", .string, secret: true, "Password authentication, when keys cannot be used."),
        ConfigField("hostKeyFingerprint", .string, "Pinned host key, `SHA256:…` as `ssh-keygen -lf` prints it."),
        ConfigField("knownHostsFile", .absolutePath, "OpenSSH known_hosts file to check the host key against."),
        ConfigField("trustOnFirstUse", .boolean, default: .bool(false), "Accept an unknown host key and report it for pinning. Off by default."),
        ConfigField("sudo", .boolean, default: .bool(false), "Install files and run commands with `sudo -n` (non-root SSH user)."),
        ConfigField("transfer", .choice(["auto", "sftp", "scp"]), default: .string("auto"), "File transfer: SFTP, falling back to SCP when the server has no SFTP subsystem."),
        ConfigField("connectTimeoutSeconds", .integer(minimum: 1, maximum: 300), default: .number(10), "Deadline for TCP connect, handshake and authentication."),
        ConfigField("commandTimeoutSeconds", .integer(minimum: 1, maximum: 3600), default: .number(60), "Deadline for each file operation."),
    ]

    /// Validates raw JSON strictly and decodes it, naming each bad field under `pointer`.
    public static func decode(_ raw: JSONValue, pointer: String = "/ssh") throws -> SSHTarget {
        let (normalized, issues) = ConfigValidator.validate(raw, fields: configFields, pointer: pointer)
        guard issues.isEmpty else { throw ConfigError(issues: issues) }
        let target = try JSONValueDecoder().decode(SSHTarget.self, from: normalized)
        let semantic = target.issues(pointer: pointer)
        guard semantic.isEmpty else { throw ConfigError(issues: semantic) }
        return target
    }

    func issues(pointer: String) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        let methods = [privateKey != nil, privateKeyFile != nil, password != nil].filter { $0 }.count
        if methods == 0 {
            issues.append(ConfigIssue(pointer: pointer, message: "needs one of privateKey, privateKeyFile or password"))
        } else if methods > 1 {
            issues.append(ConfigIssue(pointer: pointer, message: "give only one of privateKey, privateKeyFile or password"))
        }
        if let fingerprint = hostKeyFingerprint, !fingerprint.hasPrefix("SHA256:") || fingerprint.count < 40 {
            issues.append(ConfigIssue(pointer: pointer + "/hostKeyFingerprint", message: "must be a SHA256: fingerprint as `ssh-keygen -lf` prints it"))
        }
        if hostKeyFingerprint == nil, knownHostsFile == nil, !trustOnFirstUse {
            issues.append(ConfigIssue(pointer: pointer, message: "needs a host key policy: hostKeyFingerprint, knownHostsFile, or trustOnFirstUse: true"))
        }
        if host.isEmpty || host.contains(where: { $0.isWhitespace || $0 == "\0" }) {
            issues.append(ConfigIssue(pointer: pointer + "/host", message: "must be a host name or address"))
        }
        if user.isEmpty || user.contains(where: { $0.isWhitespace || $0 == "\0" }) {
            issues.append(ConfigIssue(pointer: pointer + "/user", message: "must be a user name"))
        }
        return issues
    }

    var hostKeyPolicy: HostKeyPolicy {
        HostKeyPolicy(pinnedFingerprint: hostKeyFingerprint, knownHostsFile: knownHostsFile, trustOnFirstUse: trustOnFirstUse)
    }

    /// Secrets to scrub from records.
    public var secrets: [String] { [privateKey, passphrase, password].compactMap { $0 } }
}
