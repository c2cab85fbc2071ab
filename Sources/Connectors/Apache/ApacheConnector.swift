import Core
import Foundation

/// Apache httpd (mod_ssl): writes the certificate and key, emits a virtual-host snippet and a server-level
/// snippet (the stapling cache may only be set outside a vhost), validates, reloads gracefully, verifies.
public enum ApacheConnector: DeploymentTarget {
    public static let descriptor = ConnectorDescriptor(
        id: "apache",
        displayName: "Apache httpd",
        summary: "mod_ssl certificate and key files, a vhost snippet (`SSLCertificateFile`, `SSLUseStapling`) and a server snippet (`SSLStaplingCache`), config test, graceful reload.",
        transport: .ssh,
        configFields: fields,
        capabilities: .init(atomicFiles: true, validate: true, hotReload: false, staplingModes: [.vendorFetched, .none], verify: true, rollback: true),
        vendorVersions: [
            .init(vendor: "Apache httpd", versionRange: ">= 2.4.8", testedVersion: "2.4.71", status: .tested,
                  tests: ["ApacheTests.ApacheEndToEndTests"],
                  quirks: [
                      "`SSLStaplingCache` is only accepted at server level, never inside `<VirtualHost>`: include the server snippet at top level.",
                      "`apache2ctl -t` passes a key that does not match its certificate, and a graceful reload with such a pair stops Apache while returning 0; certdeploy checks the pair at preflight and verifies by handshake after the reload.",
                      "After a graceful reload Apache can take about 1.5 s to serve the new leaf; verify retries.",
                  ]),
            .init(vendor: "Apache httpd", versionRange: "2.4.0 – 2.4.7", testedVersion: nil, status: .untested,
                  quirks: ["Needs `chainPath` (`SSLCertificateChainFile`); older versions read only the leaf from `SSLCertificateFile`."]),
        ],
        sampleConfig: .object([
            "certificatePath": .string("/etc/ssl/certdeploy/example.com.pem"),
            "keyPath": .string("/etc/ssl/certdeploy/example.com.key"),
            "vhostSnippetPath": .string("/etc/apache2/certdeploy/example.com-vhost.conf"),
            "serverSnippetPath": .string("/etc/apache2/conf-enabled/certdeploy-stapling.conf"),
            "verify": .object(["serverName": .string("example.com")]),
        ])
    )

    public static func validate(_ config: Config) -> [ConfigIssue] {
        let paths: [(field: String, path: String?)] = [
            ("certificatePath", config.certificatePath), ("keyPath", config.keyPath), ("chainPath", config.chainPath),
            ("vhostSnippetPath", config.vhostSnippetPath), ("serverSnippetPath", config.serverSnippetPath), ("staplingCachePath", config.staplingCachePath),
        ]
        return ConnectorKit.distinctPaths(paths) + ConnectorKit.configSafePaths(paths, syntax: "Apache config")
            + ConnectorKit.keyModeIssues(config.keyMode, group: config.group)
    }

    public static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
        let stapling = ConnectorKit.vendorFetchedStapling(vendor: "Apache", enabled: config.stapling != .off, bundle: bundle)
        var files = ConnectorKit.certificateFiles(bundle, layout: .init(
            certificatePath: config.certificatePath, keyPath: config.keyPath, chainPath: config.chainPath, certificateMode: config.certificateMode,
            keyMode: config.keyMode, owner: config.owner, group: config.group, leafOnlyWithSeparateChain: true))
        let vhost = EmittedSnippet(
            name: "Apache virtual host",
            path: config.vhostSnippetPath,
            placement: "inside the `<VirtualHost *:443>` block with `SSLEngine on`: `Include \(config.vhostSnippetPath ?? "<vhost snippet>")`",
            contents: vhostSnippet(bundle: bundle, config: config, stapling: stapling))
        let server = EmittedSnippet(
            name: "Apache server level",
            path: config.serverSnippetPath,
            placement: "at server level, outside every `<VirtualHost>` (e.g. conf-enabled/): `Include \(config.serverSnippetPath ?? "<server snippet>")`",
            contents: serverSnippet(config: config, stapling: stapling))
        for snippet in [vhost, server] {
            if let path = snippet.path {
                files.append(PlannedFile(path: path, text: snippet.contents, mode: config.certificateMode, owner: config.owner, group: config.group, role: .snippet))
            }
        }
        var notes: [String] = []
        if stapling.mode == .none { notes.append("no SSLUseStapling: \(stapling.reason); the server snippet keeps SSLStaplingCache declared so a reload never drops it") }
        return DeploymentPlan(
            files: files,
            validateCommand: ConnectorKit.command(config.validateCommand ?? config.distribution.validate, timeoutSeconds: config.commandTimeoutSeconds),
            reloadCommand: ConnectorKit.command(config.reloadCommand ?? config.distribution.reload, timeoutSeconds: config.commandTimeoutSeconds),
            snippets: [vhost, server],
            verify: try ConnectorKit.verifyEndpoint(config.verify, bundle: bundle, context: context),
            stapling: stapling,
            notes: notes)
    }

    static func vhostSnippet(bundle: CertificateBundle, config: Config, stapling: StaplingDecision) -> String {
        var lines = [
            "# Managed by certdeploy; changes are overwritten on the next deploy.",
            "# Certificate \(bundle.info.subject), SHA-256 \(bundle.info.sha256)",
            "SSLCertificateFile \(config.certificatePath)",
            "SSLCertificateKeyFile \(config.keyPath)",
        ]
        if let chainPath = config.chainPath { lines.append("SSLCertificateChainFile \(chainPath)") }
        if stapling.mode == .vendorFetched {
            lines.append("SSLUseStapling on")
        } else {
            lines.append("# OCSP stapling not configured: \(stapling.reason).")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func serverSnippet(config: Config, stapling: StaplingDecision) -> String {
        // The cache stays declared whatever this certificate does: a graceful restart of Apache 2.4 that drops an
        // `SSLStaplingCache` it was using exits (AH00819 shmcb, AH01872), so a leaf without an OCSP URL after one
        // with it would take the server down. An unused cache costs one small shared-memory segment.
        var lines = [
            "# Managed by certdeploy; include at server level (outside <VirtualHost>).",
            "SSLStaplingCache shmcb:\(config.staplingCachePath)(\(config.staplingCacheSize))",
            // Staple only good answers: a responder error must not be passed on to clients.
            "SSLStaplingReturnResponderErrors off",
        ]
        if stapling.mode != .vendorFetched {
            lines.append("# OCSP stapling is off for the current certificate (\(stapling.reason)); the cache is kept declared so reloads stay safe.")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
