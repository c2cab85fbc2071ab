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
        public var stapling: Stapling
        public var resolver: [String]?
        public var verify: Verify

        public enum Stapling: String, Codable, Sendable { case auto, off }

        public struct Verify: Codable, Sendable, Equatable {
            public var enabled: Bool
            public var host: String?
            public var port: Int
            public var serverName: String?
            public var timeoutSeconds: Int
            public var consecutiveMatches: Int
        }
    }

    static let verifyFields: [ConfigField] = [
        ConfigField("enabled", .boolean, default: .bool(true), "Prove by TLS handshake that the new leaf is served; roll back if not."),
        ConfigField("host", .string, "Host to handshake with. Default: the SSH host."),
        ConfigField("port", .integer(minimum: 1, maximum: 65535), default: .number(443), "TLS port."),
        ConfigField("serverName", .string, "SNI to send. Default: the certificate's first DNS name."),
        ConfigField("timeoutSeconds", .integer(minimum: 1, maximum: 600), default: .number(20), "How long to keep trying before rolling back."),
        ConfigField("consecutiveMatches", .integer(minimum: 1, maximum: 20), default: .number(3), "Handshakes in a row that must serve the new leaf (old workers answer for a moment after a reload)."),
    ]

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
        ConfigField("stapling", .choice(["auto", "off"]), default: .string("auto"), "`auto`: emit stapling directives when the leaf has an OCSP URL. `off`: never."),
        ConfigField("resolver", .stringArray, "DNS resolvers for nginx to reach the OCSP responder (`resolver` directive)."),
        ConfigField("verify", .object(verifyFields), "Post-deploy TLS verification."),
    ]
}
