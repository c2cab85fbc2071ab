import Core
import Foundation

/// nginx: writes the full chain and key, emits an include snippet with stapling directives, validates
/// with `nginx -t`, reloads with `nginx -s reload`, and verifies by handshake.
public enum NginxConnector: DeploymentTarget {
    public static let descriptor = ConnectorDescriptor(
        id: "nginx",
        displayName: "nginx",
        summary: "Certificate and key files for `ssl_certificate`/`ssl_certificate_key`, an include snippet with OCSP stapling directives, `nginx -t`, graceful reload.",
        transport: .ssh,
        configFields: fields,
        capabilities: .init(atomicFiles: true, validate: true, hotReload: false, staplingModes: [.vendorFetched, .none], verify: true, rollback: true),
        vendorVersions: [
            .init(vendor: "nginx", versionRange: ">= 1.18", testedVersion: "1.22.1", status: .tested,
                  tests: ["NginxTests.NginxEndToEndTests"],
                  quirks: [
                      "nginx fetches OCSP staples lazily: the first handshakes after a reload carry no staple.",
                      "For a few hundred ms after a reload old and new workers both answer; verify waits for several consecutive matches.",
                  ]),
        ],
        sampleConfig: .object([
            "certificatePath": .string("/etc/nginx/certs/example.com.pem"),
            "keyPath": .string("/etc/nginx/certs/example.com.key"),
            "snippetPath": .string("/etc/nginx/snippets/example.com-tls.conf"),
            "verify": .object(["port": .number(443), "serverName": .string("example.com")]),
        ])
    )

    public static func validate(_ config: Config) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        let paths = [("certificatePath", config.certificatePath), ("keyPath", config.keyPath), ("chainPath", config.chainPath), ("snippetPath", config.snippetPath)]
            .compactMap { name, path in path.map { (name, $0) } }
        var seen: [String: String] = [:]
        for (name, path) in paths {
            if let other = seen[path] {
                issues.append(ConfigIssue(pointer: "/\(name)", message: "is the same file as \(other)"))
            }
            seen[path] = name
            // The snippet names these paths unquoted: a space, `;`, `{`, `}` or `$` would split or change the directive.
            if path.contains(where: { $0.isWhitespace || ";{}$\\\"'".contains($0) }) {
                issues.append(ConfigIssue(pointer: "/\(name)", message: "must not contain whitespace or any of ; { } $ \\ \" ' (nginx config syntax)"))
            }
        }
        if config.keyMode.rawValue & 0o007 != 0 {
            issues.append(ConfigIssue(pointer: "/keyMode", message: "\(config.keyMode) lets every user read the private key; use 0600 or 0640 with a group"))
        }
        if config.keyMode.rawValue & 0o070 != 0, config.group == nil {
            issues.append(ConfigIssue(pointer: "/keyMode", message: "\(config.keyMode) gives a group access to the key; name that group in `group`"))
        }
        if let resolvers = config.resolver, resolvers.contains(where: { $0.isEmpty || $0.contains(where: { $0 == ";" || $0.isWhitespace }) }) {
            issues.append(ConfigIssue(pointer: "/resolver", message: "each resolver must be one address without spaces or ';'"))
        }
        return issues
    }

    public static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
        let stapling = staplingDecision(bundle: bundle, config: config)
        var files = [
            PlannedFile(path: config.certificatePath, text: bundle.fullChainPEM, mode: config.certificateMode, owner: config.owner, group: config.group, role: .fullChain),
            PlannedFile(path: config.keyPath, text: bundle.privateKeyPEM, mode: config.keyMode, owner: config.owner, group: config.group, role: .privateKey),
        ]
        if let chainPath = config.chainPath {
            files.append(PlannedFile(path: chainPath, text: bundle.chainPEM, mode: config.certificateMode, owner: config.owner, group: config.group, role: .chain))
        }
        let snippet = EmittedSnippet(
            name: "nginx server block",
            path: config.snippetPath,
            placement: "inside the `server { listen … ssl; }` block that serves this certificate: `include \(config.snippetPath ?? "<snippet>");`",
            contents: snippetText(bundle: bundle, config: config, stapling: stapling)
        )
        if let snippetPath = config.snippetPath {
            files.append(PlannedFile(path: snippetPath, text: snippet.contents, mode: .publicFile, owner: config.owner, group: config.group, role: .snippet))
        }
        var notes: [String] = []
        if stapling.mode == .none { notes.append("no stapling directives: \(stapling.reason)") }
        return DeploymentPlan(
            files: files,
            validateCommand: RemoteCommand(config.validateCommand),
            reloadCommand: RemoteCommand(config.reloadCommand),
            snippets: [snippet],
            verify: try verifyEndpoint(bundle: bundle, config: config, context: context),
            stapling: stapling,
            notes: notes
        )
    }

    static func staplingDecision(bundle: CertificateBundle, config: Config) -> StaplingDecision {
        if config.stapling == .off {
            return StaplingDecision(mode: .none, reason: "stapling is turned off in the target config")
        }
        guard let url = bundle.info.ocspURL else {
            return StaplingDecision(mode: .none, reason: "the certificate has no AIA OCSP URL, so there is nothing to staple")
        }
        return StaplingDecision(mode: .vendorFetched, reason: "nginx fetches staples from \(url)")
    }

    static func snippetText(bundle: CertificateBundle, config: Config, stapling: StaplingDecision) -> String {
        var lines = [
            "# Managed by certdeploy; changes are overwritten on the next deploy.",
            "# Certificate \(bundle.info.subject), SHA-256 \(bundle.info.sha256)",
            "ssl_certificate \(config.certificatePath);",
            "ssl_certificate_key \(config.keyPath);",
        ]
        if stapling.mode == .vendorFetched {
            lines += [
                "ssl_stapling on;",
                "ssl_stapling_verify on;",
                // The full-chain file holds the issuer, which is what nginx needs to verify responses.
                "ssl_trusted_certificate \(config.chainPath ?? config.certificatePath);",
            ]
            if let resolvers = config.resolver, !resolvers.isEmpty {
                lines.append("resolver \(resolvers.joined(separator: " "));")
            }
        } else {
            lines.append("# OCSP stapling not configured: \(stapling.reason).")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func verifyEndpoint(bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> VerifyEndpoint? {
        guard config.verify.enabled else { return nil }
        guard let host = config.verify.host ?? context.transportHost else {
            throw PlanError("verify is on but no verify host is set and the transport has none; set verify.host")
        }
        let serverName = config.verify.serverName ?? bundle.info.subjectAlternativeNames.first { !$0.hasPrefix("*") && $0.contains(where: \.isLetter) }
        return VerifyEndpoint(host: host, port: config.verify.port, serverName: serverName,
                              deadline: .seconds(config.verify.timeoutSeconds), consecutiveMatches: config.verify.consecutiveMatches)
    }
}
