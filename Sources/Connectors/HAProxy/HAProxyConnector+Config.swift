import Core

extension HAProxyConnector {
    /// An HAProxy target's config. Field docs live in ``HAProxyConnector/fields``.
    public struct Config: Codable, Sendable, Equatable {
        public var pemPath: String
        public var configPath: String
        public var crtListPath: String?
        public var serverNames: [String]?
        public var mode: FileMode
        public var owner: String?
        public var group: String?
        public var stapling: Stapling
        public var activation: Activation
        public var runtimeAPI: RuntimeAPI
        public var validateCommand: [String]?
        public var reloadCommand: [String]
        public var commandTimeoutSeconds: Int?
        public var verify: ConnectorKit.VerifyConfig

        /// `certdeploy`: certdeploy fetches the staple and writes `<pem>.ocsp`. `haproxy`: HAProxy 2.8+
        /// fetches it itself (`ocsp-update on` in the crt-list). `off`: no staple.
        public enum Stapling: String, Codable, Sendable { case certdeploy, haproxy, off }
        public enum Activation: String, Codable, Sendable { case reload, hotUpdate = "hot-update" }

        public struct RuntimeAPI: Codable, Sendable, Equatable {
            public var host: String
            public var port: Int?
        }
    }

    static let runtimeAPIFields: [ConfigField] = [
        ConfigField("host", .string, default: .string("127.0.0.1"), "Address of the stats socket as seen on the target (`stats socket ipv4@127.0.0.1:9999 level admin`)."),
        ConfigField("port", .integer(minimum: 1, maximum: 65535), "Port of the admin-level stats socket. Required for hot-update."),
    ]

    static let fields: [ConfigField] = [
        ConfigField("pemPath", .absolutePath, required: true, "The file a `bind … ssl crt` (or crt-list) names. certdeploy writes leaf, chain and key into it (0600); `<pemPath>.issuer` and `<pemPath>.ocsp` sit beside it."),
        ConfigField("configPath", .absolutePath, default: .string("/etc/haproxy/haproxy.cfg"), "HAProxy configuration, for the default validate command."),
        ConfigField("crtListPath", .absolutePath, "Write a crt-list file with this certificate's line (needed for `stapling: haproxy`)."),
        ConfigField("serverNames", .stringArray, "SNI filters for the crt-list line. Default: none (the certificate's own names are used)."),
        ConfigField("mode", .fileMode, default: .string("0600"), "Mode of the combined PEM (it holds the key): 0600, or 0640 with `group`."),
        ConfigField("owner", .string, "Owner of the written files (needs root or sudo)."),
        ConfigField("group", .string, "Group of the written files, e.g. haproxy."),
        ConfigField("stapling", .choice(["certdeploy", "haproxy", "off"]), default: .string("certdeploy"), "Who fetches OCSP staples: certdeploy writes `<pemPath>.ocsp` (any version); `haproxy` sets `ocsp-update on` in the crt-list (HAProxy 2.8 and later); `off`."),
        ConfigField("activation", .choice(["reload", "hot-update"]), default: .string("reload"), "`reload`: validate, then `reloadCommand`. `hot-update`: files are written and the running HAProxy is updated through the Runtime API (`set ssl cert` / `commit ssl cert`), keeping connections open."),
        ConfigField("runtimeAPI", .object(runtimeAPIFields), "Where the admin stats socket listens on the target (hot-update), reached through the SSH session."),
        ConfigField("validateCommand", .argv, "Config check as argv. Default: `haproxy -c -f <configPath>`."),
        ConfigField("reloadCommand", .argv, default: .array([.string("systemctl"), .string("reload"), .string("haproxy")]), "Reload as argv (reload activation, and rollback)."),
        ConnectorKit.verifyField(),
        ConnectorKit.commandTimeoutField,
    ]
}
