import Core

extension ApacheConnector {
    /// An Apache httpd target's config. Field docs live in ``ApacheConnector/fields``.
    public struct Config: Codable, Sendable, Equatable {
        public var certificatePath: String
        public var keyPath: String
        public var chainPath: String?
        public var vhostSnippetPath: String?
        public var serverSnippetPath: String?
        public var certificateMode: FileMode
        public var keyMode: FileMode
        public var owner: String?
        public var group: String?
        public var distribution: Distribution
        public var validateCommand: [String]?
        public var reloadCommand: [String]?
        public var commandTimeoutSeconds: Int?
        public var stapling: Stapling
        public var staplingCachePath: String
        public var staplingCacheSize: Int
        public var verify: ConnectorKit.VerifyConfig

        public enum Stapling: String, Codable, Sendable { case auto, off }

        /// Where the distribution's control script and its verbs differ.
        public enum Distribution: String, Codable, Sendable {
            case debian, rhel

            var validate: [String] { self == .debian ? ["apache2ctl", "-t"] : ["apachectl", "configtest"] }
            var reload: [String] { self == .debian ? ["apache2ctl", "graceful"] : ["apachectl", "graceful"] }
        }
    }

    static let fields: [ConfigField] = [
        ConfigField("certificatePath", .absolutePath, required: true, "Where `SSLCertificateFile` points. certdeploy writes the leaf followed by the chain (Apache ≥ 2.4.8 reads both from it); with `chainPath`, the leaf only."),
        ConfigField("keyPath", .absolutePath, required: true, "Where `SSLCertificateKeyFile` points."),
        ConfigField("chainPath", .absolutePath, "For Apache before 2.4.8: a separate `SSLCertificateChainFile` with the intermediates."),
        ConfigField("vhostSnippetPath", .absolutePath, "Where to write the virtual-host snippet (`Include` it inside the `<VirtualHost *:443>` block)."),
        ConfigField("serverSnippetPath", .absolutePath, "Where to write the server-level snippet with `SSLStaplingCache` (`Include` it outside any `<VirtualHost>`: Apache refuses it inside one)."),
        ConfigField("certificateMode", .fileMode, default: .string("0644"), "Mode of the certificate, chain and snippet files."),
        ConfigField("keyMode", .fileMode, default: .string("0600"), "Mode of the key file: 0600, or 0640 together with `group`."),
        ConfigField("owner", .string, "Owner of the written files (needs root or sudo)."),
        ConfigField("group", .string, "Group of the written files."),
        ConfigField("distribution", .choice(["debian", "rhel"]), default: .string("debian"), "Chooses the default commands: `apache2ctl -t` / `apache2ctl graceful` (Debian, Ubuntu) or `apachectl configtest` / `apachectl graceful` (RHEL, Fedora)."),
        ConfigField("validateCommand", .argv, "Config check as argv; default from `distribution`. Note: Apache's check does not notice a key that does not match its certificate — certdeploy checks that pair itself before deploying."),
        ConfigField("reloadCommand", .argv, "Graceful reload as argv; default from `distribution`."),
        ConfigField("stapling", .choice(["auto", "off"]), default: .string("auto"), "`auto`: `SSLUseStapling on` when the leaf has an OCSP URL. `off`: never."),
        ConfigField("staplingCachePath", .absolutePath, default: .string("/var/run/apache2/ssl_stapling"), "Shared-memory cache file for `SSLStaplingCache shmcb:<path>(<size>)`."),
        ConfigField("staplingCacheSize", .integer(minimum: 1024, maximum: 16_777_216), default: .number(128000), "Size in bytes of the stapling cache."),
        ConnectorKit.verifyField(),
        ConnectorKit.commandTimeoutField,
    ]
}
