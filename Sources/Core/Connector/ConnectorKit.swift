import Foundation

/// Pieces every file-based connector shares, so each one states only what is vendor-specific.
public enum ConnectorKit {
    /// The `verify` section: prove by handshake that the new leaf is served.
    public struct VerifyConfig: Codable, Sendable, Equatable {
        public var enabled: Bool
        public var host: String?
        public var port: Int
        public var serverName: String?
        public var timeoutSeconds: Int
        public var consecutiveMatches: Int
        /// Check the served chain as a client would (default on).
        public var chain: Bool?
        /// Trust anchors for the chain check instead of the system store (a private PKI).
        public var caBundle: String?
    }

    public static func verifyFields(defaultPort: Int = 443, defaultConsecutive: Int = 3) -> [ConfigField] {
        [
            ConfigField("enabled", .boolean, default: .bool(true), "Prove by TLS handshake that the new leaf is served; roll back if not."),
            ConfigField("host", .string, "Host to handshake with. Default: the SSH host."),
            ConfigField("port", .integer(minimum: 1, maximum: 65535), default: .number(Double(defaultPort)), "TLS port."),
            ConfigField("serverName", .string, "SNI to send. Default: the certificate's first DNS name."),
            ConfigField("timeoutSeconds", .integer(minimum: 1, maximum: 600), default: .number(20), "How long to keep trying before rolling back."),
            ConfigField("consecutiveMatches", .integer(minimum: 1, maximum: 20), default: .number(Double(defaultConsecutive)),
                        "Handshakes in a row that must serve the new leaf (old workers may answer for a moment after a reload)."),
            ConfigField("chain", .boolean, default: .bool(true),
                        "Check what a client checks: the served chain builds to a trust anchor with every intermediate served, the SNI name is one of the leaf's names, the leaf is within its validity. Turn off only for an endpoint behind a TLS-terminating proxy."),
            ConfigField("caBundle", .pemCertificates, "Trust anchors (PEM) for the chain check, for a private PKI. Default: the system trust store."),
        ]
    }

    /// The deadline for the validate and reload commands: a command still running then counts as failed (and the
    /// deploy rolls back), so a hung config check or reload cannot hold a target, or a worker, for long.
    public static let commandTimeoutField = ConfigField(
        "commandTimeoutSeconds", .integer(minimum: 1, maximum: 3600), default: .number(60),
        "Deadline for the validate and reload commands; a command still running then fails the step and the deploy rolls back.")

    /// `argv` with the target's command deadline (60 s when unset).
    public static func command(_ argv: [String], timeoutSeconds: Int?) -> RemoteCommand {
        RemoteCommand(argv, timeout: .seconds(timeoutSeconds ?? 60))
    }

    public static func verifyField(defaultPort: Int = 443) -> ConfigField {
        ConfigField("verify", .object(verifyFields(defaultPort: defaultPort)), "Post-deploy TLS verification.")
    }

    /// The endpoint for `verify`, or nil when it is turned off.
    public static func verifyEndpoint(_ verify: VerifyConfig, bundle: CertificateBundle, context: PlanContext, startTLS: StartTLS = .none) throws(PlanError) -> VerifyEndpoint? {
        guard verify.enabled else { return nil }
        guard let host = verify.host ?? context.transportHost else {
            throw PlanError("verify is on but no verify host is set and the transport has none; set verify.host")
        }
        let serverName = verify.serverName ?? bundle.info.subjectAlternativeNames.first { !$0.hasPrefix("*") && $0.contains(where: \.isLetter) }
        return VerifyEndpoint(host: host, port: verify.port, serverName: serverName,
                              deadline: .seconds(verify.timeoutSeconds), consecutiveMatches: verify.consecutiveMatches, startTLS: startTLS,
                              clientChecks: verify.chain ?? true, trustAnchorsPEM: verify.caBundle)
    }

    /// Where a vendor reads the certificate, chain and key as separate files.
    public struct CertificateFileLayout: Sendable {
        public var certificatePath: String
        public var keyPath: String
        /// A separate intermediates file, when the vendor wants one.
        public var chainPath: String?
        public var certificateMode: FileMode
        public var keyMode: FileMode
        public var owner: String?
        public var group: String?
        /// With a separate chain file, put only the leaf in the certificate file (Apache before 2.4.8).
        public var leafOnlyWithSeparateChain: Bool

        public init(certificatePath: String, keyPath: String, chainPath: String?, certificateMode: FileMode, keyMode: FileMode,
                    owner: String?, group: String?, leafOnlyWithSeparateChain: Bool = false) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
            self.chainPath = chainPath
            self.certificateMode = certificateMode
            self.keyMode = keyMode
            self.owner = owner
            self.group = group
            self.leafOnlyWithSeparateChain = leafOnlyWithSeparateChain
        }
    }

    /// The certificate (full chain, or the leaf), key and optional chain files for `layout`.
    public static func certificateFiles(_ bundle: CertificateBundle, layout: CertificateFileLayout) -> [PlannedFile] {
        let leafOnly = layout.leafOnlyWithSeparateChain && layout.chainPath != nil
        var files = [
            PlannedFile(path: layout.certificatePath, text: leafOnly ? bundle.leafPEM : bundle.fullChainPEM, mode: layout.certificateMode,
                        owner: layout.owner, group: layout.group, role: leafOnly ? .certificate : .fullChain),
            PlannedFile(path: layout.keyPath, text: bundle.privateKeyPEM, mode: layout.keyMode, owner: layout.owner, group: layout.group, role: .privateKey),
        ]
        if let chainPath = layout.chainPath {
            files.append(PlannedFile(path: chainPath, text: bundle.chainPEM, mode: layout.certificateMode, owner: layout.owner, group: layout.group, role: .chain))
        }
        return files
    }

    /// Two fields naming the same file.
    public static func distinctPaths(_ paths: [(field: String, path: String?)]) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        var seen: [String: String] = [:]
        for (field, path) in paths {
            guard let path else { continue }
            if let other = seen[path] {
                issues.append(ConfigIssue(pointer: "/\(field)", message: "is the same file as \(other)"))
            }
            seen[path] = field
        }
        return issues
    }

    /// Paths written unquoted into a vendor config file must not contain characters that split or change a
    /// directive there.
    public static func configSafePaths(_ paths: [(field: String, path: String?)], syntax: String) -> [ConfigIssue] {
        paths.compactMap { field, path in
            guard let path, containsWhitespaceOrConfigSyntax(path) else { return nil }
            return ConfigIssue(pointer: "/\(field)", message: "must not contain whitespace or any of ; { } $ \\ \" ' # (\(syntax) syntax)")
        }
    }

    /// Whether `text` has whitespace or a character that means something in a vendor config line (`; { } $ \ " ' #`).
    static func containsWhitespaceOrConfigSyntax(_ text: String) -> Bool {
        let special: (Character) -> Bool = { $0.isWhitespace || ";{}$\\\"'#".contains($0) }
        // ASCII text (nearly every path) is checked byte by byte; anything else by Character, so Unicode
        // whitespace such as U+00A0 is still caught.
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else { return text.contains(where: special) }
        return text.utf8.contains { byte in
            switch byte {
            case 0x09...0x0D, 0x20, UInt8(ascii: ";"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "$"), UInt8(ascii: "\\"),
                 UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "#"):
                true
            default:
                false
            }
        }
    }

    /// A key file readable by others is refused; group access needs a named group.
    public static func keyModeIssues(_ mode: FileMode, group: String?, field: String = "keyMode") -> [ConfigIssue] {
        if mode.rawValue & 0o007 != 0 {
            return [ConfigIssue(pointer: "/\(field)", message: "\(mode) lets every user read the private key; use 0600 or 0640 with a group")]
        }
        if mode.rawValue & 0o070 != 0, group == nil {
            return [ConfigIssue(pointer: "/\(field)", message: "\(mode) gives a group access to the key; name that group in `group`")]
        }
        return []
    }

    /// Stapling through the vendor's own fetcher: only when the leaf has an OCSP URL and the target allows it.
    public static func vendorFetchedStapling(vendor: String, enabled: Bool, bundle: CertificateBundle) -> StaplingDecision {
        if !enabled {
            return StaplingDecision(mode: .none, reason: "stapling is turned off in the target config")
        }
        guard let url = bundle.info.ocspURL else {
            return StaplingDecision(mode: .none, reason: "the certificate has no AIA OCSP URL, so there is nothing to staple")
        }
        return StaplingDecision(mode: .vendorFetched, reason: "\(vendor) fetches staples from \(url)")
    }

    /// Stapling from a file certdeploy writes: only with an OCSP URL; the staple itself arrives in the context.
    public static func stapleFileStapling(vendor: String, enabled: Bool, bundle: CertificateBundle, context: PlanContext) -> StaplingDecision {
        if !enabled {
            return StaplingDecision(mode: .none, reason: "stapling is turned off in the target config")
        }
        guard let url = bundle.info.ocspURL else {
            return StaplingDecision(mode: .none, reason: "the certificate has no AIA OCSP URL, so there is nothing to staple")
        }
        if context.stapleUnavailable {
            return StaplingDecision(mode: .none, reason: "no valid OCSP response could be fetched from \(url), so \(vendor) serves without a staple")
        }
        if context.staple == nil {
            return StaplingDecision(mode: .stapleFile, reason: "certdeploy fetches the staple from \(url) and writes it for \(vendor)")
        }
        return StaplingDecision(mode: .stapleFile, reason: "certdeploy wrote a staple from \(url) for \(vendor)")
    }
}
