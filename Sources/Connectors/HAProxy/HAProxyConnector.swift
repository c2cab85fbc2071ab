import Core
import Foundation

/// HAProxy: one combined PEM (leaf, chain, key) with `.issuer` and `.ocsp` beside it; activation by
/// validated reload or by Runtime API hot update; verify by handshake, staple included.
public enum HAProxyConnector: DeploymentTarget {
    public static let descriptor = ConnectorDescriptor(
        id: "haproxy",
        displayName: "HAProxy",
        summary: "Combined PEM with `.issuer` and `.ocsp` staple files, activated by a validated reload or hot-updated through the Runtime API.",
        transport: .ssh,
        configFields: fields,
        capabilities: .init(atomicFiles: true, validate: true, hotReload: true, staplingModes: [.stapleFile, .vendorFetched, .none], verify: true, rollback: true),
        vendorVersions: [
            .init(vendor: "HAProxy", versionRange: "2.4 – 2.7", testedVersion: "2.6.12", status: .tested,
                  tests: ["HAProxyTests.HAProxyEndToEndTests"],
                  quirks: [
                      "No `ocsp-update`: use `stapling: certdeploy` (certdeploy writes `<pem>.ocsp` and refreshes it).",
                      "The Runtime API is reached through an SSH tunnel to a TCP stats socket (`stats socket ipv4@127.0.0.1:<port> level admin`); libssh2 cannot forward to a Unix socket.",
                  ]),
            .init(vendor: "HAProxy", versionRange: ">= 2.8", testedVersion: nil, status: .untested,
                  quirks: ["`stapling: haproxy` writes `ocsp-update on` in the crt-list so HAProxy fetches staples itself."]),
        ],
        sampleConfig: .object([
            "pemPath": .string("/etc/haproxy/certs/example.com.pem"),
            "verify": .object(["serverName": .string("example.com")]),
        ])
    )

    public static func validate(_ config: Config) -> [ConfigIssue] {
        var issues = ConnectorKit.distinctPaths([("pemPath", config.pemPath), ("crtListPath", config.crtListPath), ("configPath", config.configPath)])
        issues += ConnectorKit.configSafePaths([("pemPath", config.pemPath)], syntax: "HAProxy crt-list and Runtime API")
        issues += ConnectorKit.keyModeIssues(config.mode, group: config.group, field: "mode")
        if config.activation == .hotUpdate, config.runtimeAPI.port == nil {
            issues.append(ConfigIssue(pointer: "/runtimeAPI/port", message: "is required for hot-update: the port of an admin-level `stats socket ipv4@…`"))
        }
        if config.stapling == .haproxy, config.crtListPath == nil {
            issues.append(ConfigIssue(pointer: "/crtListPath", message: "is required with stapling \"haproxy\": `ocsp-update on` is a crt-list option"))
        }
        if let names = config.serverNames, names.contains(where: { $0.isEmpty || $0.contains(where: { $0.isWhitespace || $0 == "]" || $0 == "[" }) }) {
            issues.append(ConfigIssue(pointer: "/serverNames", message: "each name must be one word without brackets"))
        }
        return issues
    }

    public static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
        let stapling: StaplingDecision = switch config.stapling {
        case .off: StaplingDecision(mode: .none, reason: "stapling is turned off in the target config")
        case .haproxy: ConnectorKit.vendorFetchedStapling(vendor: "HAProxy (ocsp-update)", enabled: true, bundle: bundle)
        case .certdeploy: ConnectorKit.stapleFileStapling(vendor: "HAProxy", enabled: true, bundle: bundle, context: context)
        }
        let ocspPath = config.pemPath + ".ocsp"
        let issuerPath = config.pemPath + ".issuer"
        var files = [PlannedFile(path: config.pemPath, text: combinedPEM(bundle), mode: config.mode, owner: config.owner, group: config.group, role: .combined)]
        var removals: [String] = []
        var notes: [String] = []
        if stapling.willStaple, let issuer = bundle.issuerPEM {
            files.append(PlannedFile(path: issuerPath, text: issuer, mode: .publicFile, owner: config.owner, group: config.group, role: .chain))
        }
        if stapling.mode == .stapleFile, let staple = context.staple {
            files.append(PlannedFile(path: ocspPath, contents: staple.der, mode: .publicFile, owner: config.owner, group: config.group, role: .staple))
        } else {
            // A staple left from another certificate would make HAProxy refuse to load this one.
            removals.append(ocspPath)
            if stapling.mode != .vendorFetched { notes.append("no staple file: \(stapling.reason)") }
        }
        var snippets: [EmittedSnippet] = []
        let crtListLine = crtListLine(config: config, stapling: stapling)
        snippets.append(EmittedSnippet(
            name: "HAProxy bind",
            path: config.crtListPath,
            placement: config.crtListPath.map { "reference the crt-list from the frontend: `bind :443 ssl crt-list \($0)`" }
                ?? "in the frontend: `bind :443 ssl crt \(config.pemPath)` (HAProxy reads \(config.pemPath).ocsp and .issuer beside it)",
            contents: config.crtListPath == nil ? "bind :443 ssl crt \(config.pemPath)\n" : crtListLine))
        if let crtListPath = config.crtListPath {
            files.append(PlannedFile(path: crtListPath, text: crtListLine, mode: .publicFile, owner: config.owner, group: config.group, role: .snippet))
        }
        var hotUpdate: HotUpdatePlan?
        if config.activation == .hotUpdate, let port = config.runtimeAPI.port {
            hotUpdate = runtimeUpdate(pemPath: config.pemPath, host: config.runtimeAPI.host, port: port)
        }
        return DeploymentPlan(
            files: files,
            validateCommand: ConnectorKit.command(config.validateCommand ?? ["haproxy", "-c", "-f", config.configPath], timeoutSeconds: config.commandTimeoutSeconds),
            reloadCommand: ConnectorKit.command(config.reloadCommand, timeoutSeconds: config.commandTimeoutSeconds),
            snippets: snippets,
            verify: try ConnectorKit.verifyEndpoint(config.verify, bundle: bundle, context: context),
            stapling: stapling,
            notes: notes,
            removals: removals,
            hotUpdate: hotUpdate)
    }

    /// Leaf, chain, key; blank lines stripped (HAProxy's PEM reader stops at some of them).
    static func combinedPEM(_ bundle: CertificateBundle) -> String {
        (bundle.fullChainPEM + bundle.privateKeyPEM).split(separator: "\n", omittingEmptySubsequences: true)
            .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .joined(separator: "\n") + "\n"
    }

    static func crtListLine(config: Config, stapling: StaplingDecision) -> String {
        var options: [String] = []
        if config.stapling == .haproxy, stapling.willStaple { options.append("ocsp-update on") }
        var line = config.pemPath
        if !options.isEmpty { line += " [\(options.joined(separator: " "))]" }
        if let names = config.serverNames, !names.isEmpty { line += " " + names.joined(separator: " ") }
        return line + "\n"
    }

    /// Runtime API transaction: stage the PEM (and staple), commit; abort on any refusal. When only the staple
    /// changed (a staple refresh), `set ssl ocsp-response` replaces it in place, with no transaction.
    static func runtimeUpdate(pemPath: String, host: String, port: Int) -> HotUpdatePlan {
        HotUpdatePlan(
            host: host, port: port,
            commands: { files, changed in
                if changed == [pemPath + ".ocsp"], let staple = files[pemPath + ".ocsp"] {
                    return [RuntimeCommand(payload: "set ssl ocsp-response \(Data(staple).base64EncodedString())\n",
                                           successMarkers: ["OCSP Response updated"],
                                           summary: "set ssl ocsp-response (staple for \(pemPath))")]
                }
                var commands: [RuntimeCommand] = []
                if let pem = files[pemPath] {
                    commands.append(RuntimeCommand(
                        payload: "set ssl cert \(pemPath) <<\n\(String(decoding: pem, as: UTF8.self))\n",
                        successMarkers: ["Transaction created", "Transaction updated"],
                        summary: "set ssl cert \(pemPath)"))
                }
                if let staple = files[pemPath + ".ocsp"] {
                    commands.append(RuntimeCommand(
                        payload: "set ssl cert \(pemPath).ocsp <<\n\(Data(staple).base64EncodedString())\n\n",
                        successMarkers: ["Transaction updated", "Transaction created"],
                        summary: "set ssl cert \(pemPath).ocsp"))
                }
                commands.append(RuntimeCommand(payload: "commit ssl cert \(pemPath)\n", successMarkers: ["Success!"], summary: "commit ssl cert \(pemPath)"))
                return commands
            },
            abort: [RuntimeCommand(payload: "abort ssl cert \(pemPath)\n", successMarkers: ["aborted", "No ongoing transaction"], summary: "abort ssl cert \(pemPath)")])
    }
}
