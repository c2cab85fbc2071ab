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
        capabilities: .init(atomicFiles: true, validate: true, hotReload: false, staplingModes: [.vendorFetched, .stapleFile, .none], verify: true, rollback: true),
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
        let paths: [(field: String, path: String?)] = [
            ("certificatePath", config.certificatePath), ("keyPath", config.keyPath), ("chainPath", config.chainPath), ("snippetPath", config.snippetPath),
            ("staplePath", config.staplePath), ("trustedCertificatePath", config.trustedCertificatePath),
        ]
        var issues = ConnectorKit.distinctPaths(paths) + ConnectorKit.configSafePaths(paths, syntax: "nginx config")
        issues += ConnectorKit.keyModeIssues(config.keyMode, group: config.group)
        if config.stapling == .file, config.staplePath == nil {
            issues.append(ConfigIssue(pointer: "/staplePath", message: "is required with stapling \"file\""))
        }
        if let resolvers = config.resolver, resolvers.contains(where: { $0.isEmpty || $0.contains(where: { $0 == ";" || $0.isWhitespace }) }) {
            issues.append(ConfigIssue(pointer: "/resolver", message: "each resolver must be one address without spaces or ';'"))
        }
        return issues
    }

    public static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
        let stapling = staplingDecision(bundle: bundle, config: config, context: context)
        var removals: [String] = []
        var notes: [String] = []
        var files = ConnectorKit.certificateFiles(bundle, layout: .init(
            certificatePath: config.certificatePath, keyPath: config.keyPath, chainPath: config.chainPath, certificateMode: config.certificateMode,
            keyMode: config.keyMode, owner: config.owner, group: config.group))
        let snippet = EmittedSnippet(
            name: "nginx server block",
            path: config.snippetPath,
            placement: "inside the `server { listen … ssl; }` block that serves this certificate: `include \(config.snippetPath ?? "<snippet>");`",
            contents: snippetText(bundle: bundle, config: config, stapling: stapling, root: Self.root(bundle: bundle, config: config, context: context))
        )
        if let snippetPath = config.snippetPath {
            files.append(PlannedFile(path: snippetPath, text: snippet.contents, mode: .publicFile, owner: config.owner, group: config.group, role: .snippet))
        }
        let root = Self.root(bundle: bundle, config: config, context: context)
        if stapling.mode == .vendorFetched, let root {
            files.append(PlannedFile(path: trustedCertificatePath(root: root, config: config), text: bundle.chainPEM + root,
                                     mode: config.certificateMode, owner: config.owner, group: config.group, role: .chain))
            if bundle.rootPEM == nil, let found = context.trustedRoot {
                notes.append("the root is not in the bundle: certdeploy found it in \(found.source) and writes it to \(trustedCertificatePath(root: root, config: config)) for ssl_stapling_verify (it is never sent to clients)")
            }
        }
        if stapling.mode == .vendorFetched, root == nil, config.trustedCertificatePath == nil {
            notes.append("the bundle has no root certificate: ssl_stapling_verify can only succeed if \(config.chainPath ?? config.certificatePath) leads to a root nginx trusts; pass the root with the chain or set trustedCertificatePath")
        }
        if let staplePath = config.staplePath {
            if stapling.mode == .stapleFile, let staple = context.staple {
                files.append(PlannedFile(path: staplePath, contents: staple.der, mode: .publicFile, owner: config.owner, group: config.group, role: .staple))
            } else {
                removals.append(staplePath)
            }
        }
        if stapling.mode == .none { notes.append("no stapling directives: \(stapling.reason)") }
        return DeploymentPlan(
            files: files,
            validateCommand: ConnectorKit.command(config.validateCommand, timeoutSeconds: config.commandTimeoutSeconds),
            reloadCommand: ConnectorKit.command(config.reloadCommand, timeoutSeconds: config.commandTimeoutSeconds),
            snippets: [snippet],
            verify: try ConnectorKit.verifyEndpoint(config.verify, bundle: bundle, context: context),
            stapling: stapling,
            notes: notes,
            removals: removals
        )
    }

    static func staplingDecision(bundle: CertificateBundle, config: Config, context: PlanContext) -> StaplingDecision {
        if config.stapling == .file {
            return ConnectorKit.stapleFileStapling(vendor: "nginx (ssl_stapling_file)", enabled: true, bundle: bundle, context: context)
        }
        return ConnectorKit.vendorFetchedStapling(vendor: "nginx", enabled: config.stapling != .off, bundle: bundle)
    }

    /// The root for `ssl_trusted_certificate`: the bundle's, or the one the engine found in the trust anchors — unless
    /// the operator manages that file (`trustedCertificatePath` set), which certdeploy then writes only from a root
    /// they passed.
    static func root(bundle: CertificateBundle, config: Config, context: PlanContext) -> String? {
        bundle.rootPEM ?? (config.trustedCertificatePath == nil ? context.trustedRoot?.pem : nil)
    }

    static func snippetText(bundle: CertificateBundle, config: Config, stapling: StaplingDecision, root: String?) -> String {
        var lines = [
            "# Managed by certdeploy; changes are overwritten on the next deploy.",
            "# Certificate \(bundle.info.subject), SHA-256 \(bundle.info.sha256)",
            "ssl_certificate \(config.certificatePath);",
            "ssl_certificate_key \(config.keyPath);",
        ]
        if stapling.mode == .stapleFile, let staplePath = config.staplePath {
            lines += ["ssl_stapling on;", "ssl_stapling_file \(staplePath);"]
        } else if stapling.mode == .vendorFetched {
            lines += [
                "ssl_stapling on;",
                "ssl_stapling_verify on;",
                "ssl_trusted_certificate \(trustedCertificatePath(root: root, config: config));",
            ]
            if let resolvers = config.resolver, !resolvers.isEmpty {
                lines.append("resolver \(resolvers.joined(separator: " "));")
            }
        } else {
            lines.append("# OCSP stapling not configured: \(stapling.reason).")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The file `ssl_trusted_certificate` names: written by certdeploy when it has the root.
    static func trustedCertificatePath(root: String?, config: Config) -> String {
        if let path = config.trustedCertificatePath { return path }
        if root != nil { return config.certificatePath + ".trusted.pem" }
        return config.chainPath ?? config.certificatePath
    }
}
