import Core

extension PostfixConnector {
    /// A Postfix target's config. Field docs live in ``PostfixConnector/fields``.
    public struct Config: Codable, Sendable, Equatable {
        public var chainFilesPath: String
        public var configDirectory: String?
        public var mode: FileMode
        public var owner: String?
        public var group: String?
        public var validateCommand: [String]?
        public var reloadCommand: [String]?
        public var commandTimeoutSeconds: Int?
        public var verify: ConnectorKit.VerifyConfig
    }

    static let fields: [ConfigField] = [
        ConfigField("chainFilesPath", .absolutePath, required: true, "The file `smtpd_tls_chain_files` names. certdeploy writes the private key followed by the leaf and its chain into it (Postfix ≥ 3.4), mode 0600."),
        ConfigField("configDirectory", .absolutePath, "Postfix configuration directory when it is not /etc/postfix (adds `-c <dir>` to the default commands)."),
        ConfigField("mode", .fileMode, default: .string("0600"), "Mode of the chain file (it holds the key): 0600, or 0640 with `group`."),
        ConfigField("owner", .string, "Owner of the written file (needs root or sudo)."),
        ConfigField("group", .string, "Group of the written file."),
        ConfigField("validateCommand", .argv, "Config check as argv. Default: `postfix check`."),
        ConfigField("reloadCommand", .argv, "Reload as argv. Default: `postfix reload`."),
        ConnectorKit.verifyField(defaultPort: 25),
        ConnectorKit.commandTimeoutField,
    ]
}
