import Core
import Foundation

/// Envoy with file-based SDS: versioned certificate, key and staple files that never change once
/// written, and an `sds.yaml` that names them, replaced last. Envoy watches the directory and reads
/// the set named by the new `sds.yaml` in one go, so it never pairs a new certificate with an old key.
public enum EnvoyConnector: DeploymentTarget {
    public static let descriptor = ConnectorDescriptor(
        id: "envoy",
        displayName: "Envoy",
        summary: "File-based SDS: versioned cert/key/OCSP staple files and an atomically replaced `sds.yaml` in a watched directory; no reload, verified by handshake.",
        transport: .ssh,
        configFields: fields,
        capabilities: .init(atomicFiles: true, validate: true, hotReload: true, staplingModes: [.stapleFile, .none], verify: true, rollback: true),
        vendorVersions: [
            .init(vendor: "Envoy", versionRange: ">= 1.20", testedVersion: "1.40.0", status: .tested,
                  tests: ["EnvoyTests.EnvoyEndToEndTests"],
                  quirks: [
                      "With `ocsp_staple_policy: MUST_STAPLE` Envoy rejects a certificate without a staple (\"Required OCSP response is missing\"); certdeploy refuses such a deploy up front.",
                      "Envoy reports an SDS update as successful even when it keeps serving the old certificate for unchanged file paths; certdeploy writes new file names per version and verifies by handshake.",
                      "`envoy --mode validate` checks the bootstrap only, not the certificate files.",
                      "Envoy does not re-read a rewritten `ocsp_staple` file (a watched-directory move re-reads chain and key only); certdeploy names each staple file by its content, so a refreshed staple arrives with a new `sds.yaml`.",
                  ]),
        ],
        sampleConfig: .object([
            "sdsDirectory": .string("/etc/envoy/tls/example.com"),
            "verify": .object(["serverName": .string("example.com")]),
        ])
    )

    public static func validate(_ config: Config) -> [ConfigIssue] {
        var issues = ConnectorKit.keyModeIssues(config.keyMode, group: config.group)
        if config.secretName.isEmpty || config.secretName.contains(where: { $0.isNewline || $0 == "\"" || $0 == "\\" }) {
            issues.append(ConfigIssue(pointer: "/secretName", message: "must be a non-empty name without quotes, backslashes or newlines"))
        }
        if config.sdsDirectory.contains(where: { $0 == "\"" || $0 == "\\" }) {
            issues.append(ConfigIssue(pointer: "/sdsDirectory", message: "must not contain quotes or backslashes (it is written into YAML)"))
        }
        return issues
    }

    public static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
        let stapling = ConnectorKit.stapleFileStapling(vendor: "Envoy", enabled: true, bundle: bundle, context: context)
        if config.ocspStaplePolicy == .mustStaple, !stapling.willStaple || context.stapleUnavailable {
            throw PlanError("the listener's ocsp_staple_policy is MUST_STAPLE and no staple can be served (\(stapling.reason)); Envoy would reject the certificate")
        }
        let version = versionID(bundle)
        let directory = config.sdsDirectory
        let certPath = "\(directory)/cert-\(version).pem"
        let keyPath = "\(directory)/key-\(version).pem"
        var files = [
            PlannedFile(path: certPath, text: bundle.fullChainPEM, mode: .publicFile, owner: config.owner, group: config.group, role: .fullChain),
            PlannedFile(path: keyPath, text: bundle.privateKeyPEM, mode: config.keyMode, owner: config.owner, group: config.group, role: .privateKey),
        ]
        // Envoy re-reads a staple only under a new file name, so each staple gets its own (named by content).
        let staplePrefix = "ocsp-\(version)-"
        var staplePath: String?
        if stapling.mode == .stapleFile, let staple = context.staple {
            let path = "\(directory)/\(staplePrefix)\(Checksum.sha256Hex(Data(staple.der)).prefix(16)).der"
            files.append(PlannedFile(path: path, contents: staple.der, mode: .publicFile, owner: config.owner, group: config.group, role: .staple))
            staplePath = path
        }
        // Last: the file that switches Envoy to the new set.
        let sds = sdsYAML(config: config, certPath: certPath, keyPath: keyPath, staplePath: staplePath)
        files.append(PlannedFile(path: "\(directory)/sds.yaml", text: sds, mode: .publicFile, owner: config.owner, group: config.group, role: .snippet))
        var notes: [String] = ["version \(version); Envoy picks the set up from \(directory)/sds.yaml, no reload"]
        if stapling.mode == .none { notes.append("no staple: \(stapling.reason)") }
        return DeploymentPlan(
            files: files,
            validateCommand: config.validateCommand.map { ConnectorKit.command($0, timeoutSeconds: config.commandTimeoutSeconds) },
            reloadCommand: nil,
            snippets: [EmittedSnippet(name: "Envoy listener", path: nil,
                                      placement: "in the listener's filter chain (`transport_socket`); the bootstrap needs `node: {id, cluster}` for file-based SDS",
                                      contents: listenerSnippet(config: config))],
            verify: try ConnectorKit.verifyEndpoint(config.verify, bundle: bundle, context: context),
            stapling: stapling,
            notes: notes,
            retention: ["cert-", "key-", "ocsp-"].map { RetentionRule(directory: directory, prefix: $0, keep: config.keepVersions) },
            stapleHistory: StapleHistory(directory: directory, prefix: staplePrefix),
            activation: .rename(switching: ["\(directory)/sds.yaml"]))
    }

    /// Names a certificate+key pair: the same pair always gets the same file names, so a repeated deploy is unchanged.
    static func versionID(_ bundle: CertificateBundle) -> String {
        String(Checksum.sha256Hex(Data((bundle.fullChainPEM + bundle.privateKeyPEM).utf8)).prefix(16))
    }

    static func sdsYAML(config: Config, certPath: String, keyPath: String, staplePath: String?) -> String {
        var lines = [
            "# Managed by certdeploy; replaced atomically on each deploy.",
            "resources:",
            "- \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
            "  name: \"\(config.secretName)\"",
            "  tls_certificate:",
            "    certificate_chain: {filename: \"\(certPath)\"}",
            "    private_key: {filename: \"\(keyPath)\"}",
        ]
        if let staplePath { lines.append("    ocsp_staple: {filename: \"\(staplePath)\"}") }
        // Re-read the files on any move in the directory (Envoy re-reads chain and key this way, not the staple).
        lines.append("    watched_directory: {path: \"\(config.sdsDirectory)\"}")
        return lines.joined(separator: "\n") + "\n"
    }

    static func listenerSnippet(config: Config) -> String {
        """
        transport_socket:
          name: envoy.transport_sockets.tls
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
            ocsp_staple_policy: \(config.ocspStaplePolicy.rawValue)
            common_tls_context:
              tls_certificate_sds_secret_configs:
              - name: "\(config.secretName)"
                sds_config:
                  resource_api_version: V3
                  path_config_source:
                    path: "\(config.sdsDirectory)/sds.yaml"
                    watched_directory: {path: "\(config.sdsDirectory)"}

        """
    }
}
