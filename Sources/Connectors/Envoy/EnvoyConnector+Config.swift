import Core

extension EnvoyConnector {
    /// An Envoy target's config. Field docs live in ``EnvoyConnector/fields``.
    public struct Config: Codable, Sendable, Equatable {
        public var sdsDirectory: String
        public var secretName: String
        public var ocspStaplePolicy: StaplePolicy
        public var keepVersions: Int
        public var keyMode: FileMode
        public var owner: String?
        public var group: String?
        public var validateCommand: [String]?
        public var commandTimeoutSeconds: Int?
        public var verify: ConnectorKit.VerifyConfig

        public enum StaplePolicy: String, Codable, Sendable {
            case lenient = "LENIENT_STAPLING", strict = "STRICT_STAPLING", mustStaple = "MUST_STAPLE"
        }
    }

    static let fields: [ConfigField] = [
        ConfigField("sdsDirectory", .absolutePath, required: true, "Directory Envoy watches (`watched_directory`). certdeploy writes `sds.yaml` and versioned `cert-<v>.pem`, `key-<v>.pem`, `ocsp-<v>-<staple hash>.der` here."),
        ConfigField("secretName", .string, default: .string("server_cert"), "Name of the SDS secret (`tls_certificate_sds_secret_configs[].name`)."),
        ConfigField("ocspStaplePolicy", .choice(["LENIENT_STAPLING", "STRICT_STAPLING", "MUST_STAPLE"]), default: .string("LENIENT_STAPLING"), "The listener's `ocsp_staple_policy`, for the emitted snippet and for preflight: with MUST_STAPLE Envoy rejects a certificate without a staple, so certdeploy refuses to deploy one."),
        ConfigField("keepVersions", .integer(minimum: 1, maximum: 20), default: .number(3), "Versions of cert/key/staple files kept for rollback."),
        ConfigField("keyMode", .fileMode, default: .string("0600"), "Mode of the key files: 0600, or 0640 with `group`."),
        ConfigField("owner", .string, "Owner of the written files (the user Envoy runs as must read them)."),
        ConfigField("group", .string, "Group of the written files."),
        ConfigField("validateCommand", .argv, "Optional check, e.g. `[\"envoy\", \"--mode\", \"validate\", \"-c\", \"/etc/envoy/envoy.yaml\"]` (it checks the bootstrap, not the certificate)."),
        ConnectorKit.verifyField(),
        ConnectorKit.commandTimeoutField,
    ]
}
