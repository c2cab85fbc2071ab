import ArgumentParser
import CertdeployAPI
import Core
import Foundation
import KubernetesClient
import SSHTransport

/// `certdeploy deploy`: one deploy, straight from this machine to one target (no server), or, given a certificate
/// name, a deploy through the server to the targets `--to` selects.
struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Deploy a certificate to one target described in a JSON file, printing each step; or, through the server, to many.",
        discussion: """
        Direct: certdeploy deploy --config target.json --cert fullchain.pem --key privkey.pem. \
        Through the server: certdeploy deploy <certificate> --to <target|key=value>... [--follow]. \
        Exit status: 0 succeeded or unchanged (through the server without --follow: queued), 1 failed (nothing changed; a rollout \
        failed or halted), 2 bad input, 3 rolled back, 4 rollback failed (operator action needed), 5 a followed rollout waits for \
        approval (without --wait-approval); through the server, the worst of the targets'.
        """
    )

    @Argument(help: "Certificate name on the server: deploy through the server to the --to targets (instead of --config).")
    var certificateName: String?

    @Option(name: .customLong("to"), help: ArgumentHelp("Server: a target id or name, or a label selector key=value (repeatable; labels are ANDed).",
                                                        valueName: "target|key=value"))
    var to: [String] = []

    @Option(name: .customLong("cert-version"), help: ArgumentHelp("Server: the certificate version to deploy. Default: the newest.", valueName: "n"))
    var certificateVersion: Int?

    @Flag(help: "Server: show each target's steps (or, for several targets, the rollout wave by wave) as they happen, wait for the end, and exit with the outcome.")
    var follow = false

    @Flag(name: .customLong("wait-approval"), help: "Server, with --follow: keep following through approval gates instead of exiting 5 there.")
    var waitApproval = false

    @Flag(name: .customLong("ignore-windows"), help: "Server: deploy now even outside the targets' maintenance windows (admin; audited).")
    var ignoreWindows = false

    @OptionGroup(title: "Rollout (through the server, several targets)") var rollout: RolloutStrategyOptions

    @OptionGroup var connection: ServerOptions

    @Option(help: "Connector id (see `certdeploy connectors`). Default: the target file's `connector`.")
    var connector: String?

    @Option(name: .customLong("config"), help: "Target file: {\"name\", \"connector\", \"ssh\": {…} or \"kubernetes\": {…}, \"config\": {…}}.")
    var targetFile: String?

    @Option(help: "Certificate PEM: the leaf, optionally followed by its chain (fullchain.pem).")
    var cert: String?

    @Option(help: "Private key PEM.")
    var key: String?

    @Option(help: "Extra chain PEM (intermediates), in any order.")
    var chain: String?

    @Flag(help: "Write and reload even when the target already has these files.")
    var force = false

    @Flag(help: "Check, plan and compare only; write nothing.")
    var dryRun = false

    @Flag(help: "Deploy a Must-Staple certificate to a target that will not staple it.")
    var allowMustStapleWithoutStapling = false

    @Flag(name: .customLong("no-ocsp-check"), help: "Do not ask the OCSP responder before deploying (no revocation check, no staple file).")
    var skipOCSPCheck = false

    @Option(help: "Backups to keep per file.")
    var backups = 3

    @Option(help: "Output: text (steps as they happen) or json (the result at the end).")
    var output: OutputFormat = .text

    enum OutputFormat: String, ExpressibleByArgument { case text, json }

    func validate() throws {
        if let certificateName {
            if targetFile != nil {
                throw ValidationError("give either a certificate name (deploy through the server) or --config (deploy directly), not both")
            }
            if to.isEmpty { throw ValidationError("--to is required to deploy \(certificateName) through the server") }
            let directOnly = [("--cert", cert != nil), ("--key", key != nil), ("--chain", chain != nil), ("--connector", connector != nil),
                              ("--no-ocsp-check", skipOCSPCheck)].filter(\.1).map(\.0)
            if !directOnly.isEmpty {
                throw ValidationError("\(directOnly.joined(separator: ", ")): only for a direct deploy (--config); the server holds the certificate and targets")
            }
        } else {
            let missing = [("--config", targetFile == nil), ("--cert", cert == nil), ("--key", key == nil)].filter(\.1).map(\.0)
            if !missing.isEmpty {
                throw ValidationError("missing \(missing.joined(separator: ", ")) (or name a certificate and --to targets to deploy through the server)")
            }
            let serverOnly = [("--to", !to.isEmpty), ("--cert-version", certificateVersion != nil), ("--follow", follow), ("--server", connection.server != nil),
                              ("--wait-approval", waitApproval), ("--ignore-windows", ignoreWindows), ("rollout options", !rollout.isEmpty)]
                .filter(\.1).map(\.0)
            if !serverOnly.isEmpty {
                throw ValidationError("\(serverOnly.joined(separator: ", ")): only for a deploy through the server (certdeploy deploy <certificate> --to …)")
            }
        }
    }

    func run() async throws {
        if let certificateName {
            let printing: RemoteDeploy.Printing = output == .json ? .json : .text
            try ClientSession.exit(await ClientSession.run(server: connection.server) { client, console in
                try await remoteDeploy(certificateName).execute(client: client, console: console, printing: printing).status
            })
            return
        }
        do {
            let result = try await deploy()
            if output == .json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
            } else {
                StepPrinter.summary(result)
            }
            throw ExitCode(Self.exitStatus(result.outcome))
        } catch let error as InputError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
    }

    /// The request for a deploy through the server.
    func remoteDeploy(_ certificateName: String) throws(InputError) -> RemoteDeploy {
        let selection = try TargetSelection(to: to)
        let options = DeploymentRequest.Options(dryRun: dryRun ? true : nil, force: force ? true : nil,
                                                allowMustStapleWithoutStapling: allowMustStapleWithoutStapling ? true : nil)
        return RemoteDeploy(
            request: DeploymentRequest(certificate: certificateName, version: certificateVersion, targets: selection.targets.isEmpty ? nil : selection.targets,
                                       selector: selection.selector, options: options, strategy: try rollout.strategy(),
                                       ignoreWindows: ignoreWindows ? true : nil),
            follow: follow, waitApproval: waitApproval, live: isatty(STDOUT_FILENO) == 1 && output == .text)
    }

    static func exitStatus(_ outcome: DeploymentOutcome) -> Int32 {
        switch outcome {
        case .succeeded, .unchanged: 0
        case .failed: 1
        case .rolledBack: 3
        case .rollbackFailed: 4
        }
    }

    private func deploy() async throws -> DeploymentResult {
        guard let targetFile, let cert, let key else { throw InputError("--config, --cert and --key are required") }
        let registry: ConnectorRegistry
        do { registry = try BuiltinConnectors.registry() } catch { throw InputError("\(error)") }
        let target = try TargetFile.load(path: targetFile)
        if let connector, let named = target.connectorID, connector != named {
            throw InputError("--connector \(connector) differs from the target file's connector \"\(named)\"")
        }
        guard let connectorID = connector ?? target.connectorID else {
            throw InputError("name the connector with --connector or \"connector\" in the target file (one of: \(registry.ids.joined(separator: ", ")))")
        }
        guard let registered = registry.connector(id: connectorID) else {
            throw InputError("unknown connector \"\(connectorID)\"; known: \(registry.ids.joined(separator: ", "))")
        }
        try target.requireTransport(registered.descriptor.transport, connectorID: connectorID)
        let configured: ConfiguredConnector
        do {
            configured = try registered.configure(target.config)
        } catch let error as ConfigError {
            throw InputError("\(targetFile): " + error.issues.map { "/config\($0.pointer): \($0.message)" }.joined(separator: "; "))
        }
        let bundle: CertificateBundle
        do {
            bundle = try CertificateBundle.parse(
                certificatePEM: try readText(cert, what: "--cert"),
                chainPEM: try chain.map { try readText($0, what: "--chain") },
                privateKeyPEM: try readText(key, what: "--key"))
        } catch let error as BundleError {
            throw InputError(error.message)
        }
        let options = DeployOptions(force: force, dryRun: dryRun, allowMustStapleWithoutStapling: allowMustStapleWithoutStapling, backupRetention: backups,
                                    checkOCSP: !skipOCSPCheck)
        let printer: (@Sendable (StepRecord) -> Void)? = output == .text ? StepPrinter.print : nil
        if let kubernetes = target.kubernetes {
            let access: KubernetesAccess
            do {
                access = try kubernetes.access()
            } catch let error as ClusterError {
                throw InputError("\(targetFile): /kubernetes: \(error.message)")
            }
            let request = DeployRequest(targetID: target.name, bundle: bundle, connector: configured, context: PlanContext(targetID: target.name),
                                        options: options, secrets: access.secrets)
            if output == .text {
                StepPrinter.line("Deploying \(bundle.info.shortDescription) to \(target.name) (\(connectorID), \(access.server), \(access.origin))")
            }
            let clientOptions = KubernetesClientOptions(userAgent: KubernetesClientOptions.userAgent(version: certdeployVersion))
            return await DeployEngine().deploy(request, cluster: { try await KubernetesConnection.connect(access, options: clientOptions) }, observe: printer)
        }
        guard let ssh = target.ssh else { throw InputError("\(targetFile): /ssh: is required") }
        let request = DeployRequest(
            targetID: target.name, bundle: bundle, connector: configured,
            context: PlanContext(targetID: target.name, transportHost: ssh.host),
            options: options,
            secrets: ssh.secrets)
        if output == .text {
            StepPrinter.line("Deploying \(bundle.info.shortDescription) to \(target.name) (\(connectorID), \(ssh.user)@\(ssh.host):\(ssh.port))")
        }
        return await DeployEngine().deploy(request, connect: { try await SSHConnector().connect(ssh) }, observe: printer)
    }

    private func readText(_ path: String, what: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw InputError("\(what) \(path): cannot read: \(error.localizedDescription)")
        }
    }
}
