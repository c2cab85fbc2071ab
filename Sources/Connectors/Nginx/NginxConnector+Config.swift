import Core

extension NginxConnector {
    /// An nginx target's config. Field docs live in ``NginxConnector/fields``.
    public struct Config: Codable, Sendable, Equatable {
        public var certificatePath: String
        public var keyPath: String
        public var chainPath: String?
        public var snippetPath: String?
        public var certificateMode: FileMode
        public var keyMode: FileMode
        public var owner: String?
        public var group: String?
        public var validateCommand: [String]
        public var reloadCommand: [String]
        public var commandTimeoutSeconds: Int?
        public var stapling: Stapling
        public var staplePath: String?
        public var trustedCertificatePath: String?
        public var resolver: [String]?
        public var verify: ConnectorKit.VerifyConfig

        public enum Stapling: String, Codable, Sendable { case auto, off, file }
    }

    static let fields: [ConfigField] = [
        ConfigField("certificatePath", .absolutePath, required: true, "Where `ssl_certificate` points. certdeploy writes the leaf followed by the chain here (nginx sends the whole file)."),
        ConfigField("keyPath", .absolutePath, required: true, "Where `ssl_certificate_key` points."),
        ConfigField("chainPath", .absolutePath, "Optional separate chain file (intermediates only), used as `ssl_trusted_certificate` for stapling verification."),
        ConfigField("snippetPath", .absolutePath, "Where to write the include snippet (`include <snippetPath>;` in the server block). Omit to only show it."),
        ConfigField("certificateMode", .fileMode, default: .string("0644"), "Mode of the certificate and chain files."),
        ConfigField("keyMode", .fileMode, default: .string("0600"), "Mode of the key file: 0600, or 0640 together with `group`."),
        ConfigField("owner", .string, "Owner of the written files (needs root or sudo)."),
        ConfigField("group", .string, "Group of the written files, e.g. the group nginx workers run as."),
        ConfigField("validateCommand", .argv, default: .array([.string("nginx"), .string("-t")]), "Config check, as argv. Runs after the files are in place; failure rolls back."),
        ConfigField("reloadCommand", .argv, default: .array([.string("nginx"), .string("-s"), .string("reload")]), "Reload, as argv. Failure rolls back and reloads again."),
        ConfigField("stapling", .choice(["auto", "off", "file"]), default: .string("auto"), "`auto`: nginx fetches staples itself (`ssl_stapling on`) when the leaf has an OCSP URL. `file`: certdeploy fetches the staple and writes it to `staplePath` (`ssl_stapling_file`). `off`: never."),
        ConfigField("trustedCertificatePath", .absolutePath, "`ssl_trusted_certificate` for `ssl_stapling_verify`: nginx needs the intermediates and the root. When the bundle holds the root, certdeploy writes chain + root here (default `<certificatePath>.trusted.pem`); otherwise point it at a file you manage."),
        ConfigField("staplePath", .absolutePath, "Where `ssl_stapling_file` points (DER OCSP response); required with `stapling: file`."),
        ConfigField("resolver", .stringArray, "DNS resolvers for nginx to reach the OCSP responder (`resolver` directive)."),
        ConnectorKit.verifyField(),
        ConnectorKit.commandTimeoutField,
    ]
}
