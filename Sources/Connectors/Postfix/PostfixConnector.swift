import Core
import Foundation

/// Postfix smtpd: writes key and certificate chain into the one file `smtpd_tls_chain_files` names,
/// checks with `postfix check`, reloads with `postfix reload`, and verifies with SMTP STARTTLS.
/// Postfix's smtpd does not staple OCSP responses, so a Must-Staple certificate is refused.
public enum PostfixConnector: DeploymentTarget {
    public static let descriptor = ConnectorDescriptor(
        id: "postfix",
        displayName: "Postfix",
        summary: "SMTP server: key and chain in one `smtpd_tls_chain_files` file, `postfix check`, `postfix reload`, verified by STARTTLS on port 25.",
        transport: .ssh,
        configFields: fields,
        capabilities: .init(atomicFiles: true, validate: true, hotReload: false, staplingModes: [.none], verify: true, rollback: true),
        vendorVersions: [
            .init(vendor: "Postfix", versionRange: ">= 3.4", testedVersion: "3.7.11", status: .tested,
                  tests: ["PostfixTests.PostfixConformanceTests"],
                  quirks: [
                      "smtpd has no OCSP stapling: Must-Staple certificates are refused for Postfix targets.",
                      "`postfix check` does not look at the certificate file, and a reload with a broken one exits 0 while STARTTLS handshakes fail; certdeploy checks the key/certificate pair at preflight and verifies by a STARTTLS handshake after the reload.",
                      "Before 3.4 Postfix has no `smtpd_tls_chain_files`; use separate `smtpd_tls_cert_file`/`smtpd_tls_key_file` (not supported by this connector).",
                  ]),
        ],
        sampleConfig: .object([
            "chainFilesPath": .string("/etc/postfix/tls/example.com-chain.pem"),
            "verify": .object(["serverName": .string("mail.example.com")]),
        ])
    )

    public static func validate(_ config: Config) -> [ConfigIssue] {
        ConnectorKit.keyModeIssues(config.mode, group: config.group, field: "mode")
            + ConnectorKit.configSafePaths([("chainFilesPath", config.chainFilesPath), ("configDirectory", config.configDirectory)], syntax: "Postfix main.cf")
    }

    public static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
        let stapling = StaplingDecision(mode: .none, reason: "Postfix smtpd does not staple OCSP responses")
        let configOption = config.configDirectory.map { ["-c", $0] } ?? []
        let snippet = EmittedSnippet(
            name: "Postfix main.cf",
            path: nil,
            placement: "in main.cf (Postfix has no include: set it once with `postconf -e`)",
            contents: "smtpd_tls_chain_files = \(config.chainFilesPath)\nsmtpd_tls_security_level = may\n")
        return DeploymentPlan(
            files: [PlannedFile(path: config.chainFilesPath, text: bundle.privateKeyPEM + bundle.fullChainPEM, mode: config.mode,
                                owner: config.owner, group: config.group, role: .combined)],
            validateCommand: ConnectorKit.command(config.validateCommand ?? ["postfix"] + configOption + ["check"], timeoutSeconds: config.commandTimeoutSeconds),
            reloadCommand: ConnectorKit.command(config.reloadCommand ?? ["postfix"] + configOption + ["reload"], timeoutSeconds: config.commandTimeoutSeconds),
            snippets: [snippet],
            verify: try ConnectorKit.verifyEndpoint(config.verify, bundle: bundle, context: context, startTLS: .smtp),
            stapling: stapling)
    }
}
