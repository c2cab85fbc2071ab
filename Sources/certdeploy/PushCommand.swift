import ArgumentParser
import CertdeployAPI
import Core
import Foundation

/// `certdeploy push`: upload a renewed certificate and deploy it to the selected targets, in one command for an
/// ACME client's hook.
struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Upload a certificate to the server and deploy the new version to the selected targets.",
        discussion: """
        Made for ACME clients' hooks. Without --cert and --key, reads $RENEWED_LINEAGE/fullchain.pem and privkey.pem \
        (certbot sets RENEWED_LINEAGE for a --deploy-hook). The name defaults to the certificate's first DNS name \
        (e.g. example.com). When the certificate's policy has autoRollout, the upload itself starts a rollout to every \
        target bound to the certificate; push follows that one and --to is not needed. Exit status: 0 queued (or, with \
        --follow, all succeeded or unchanged), 1 failed (a rollout failed or halted), 2 bad input, 3 rolled back, 4 rollback \
        failed (operator action needed), 5 a followed rollout waits for approval; with several targets, the worst.
        """
    )

    @Option(help: "Certificate PEM: the leaf, optionally followed by its chain (fullchain.pem). Default: $RENEWED_LINEAGE/fullchain.pem.")
    var cert: String?

    @Option(help: "Private key PEM. Default: $RENEWED_LINEAGE/privkey.pem.")
    var key: String?

    @Option(help: "Extra chain PEM (intermediates), in any order.")
    var chain: String?

    @Option(help: "Certificate name on the server, [A-Za-z0-9._-]. Default: the leaf's first DNS name, else its CN.")
    var name: String?

    @Option(name: .customLong("to"), help: ArgumentHelp("Target id or name, or a label selector key=value (repeatable; labels are ANDed).",
                                                        valueName: "target|key=value"))
    var to: [String] = []

    @Flag(help: "Show each target's steps as they happen, wait for the end, and exit with the outcome.")
    var follow = false

    @Flag(help: "Deploy as a dry run: check, plan and compare only; write nothing. (The upload still happens.)")
    var dryRun = false

    @Flag(help: "Write and reload even when a target already has these files.")
    var force = false

    @Flag(help: "Deploy a Must-Staple certificate to targets that will not staple it.")
    var allowMustStapleWithoutStapling = false

    @Flag(name: .customLong("wait-approval"), help: "With --follow: keep following a rollout through approval gates instead of exiting 5 there.")
    var waitApproval = false

    @OptionGroup(title: "Rollout (several targets; default: the certificate's policy)") var rollout: RolloutStrategyOptions

    @OptionGroup var options: ClientOptions

    func validate() throws {
        if let name, !CertificateName.isValid(name) { throw ValidationError("--name \(name): use 1–128 characters from A-Z a-z 0-9 . _ -") }
    }

    func run() async throws {
        try ClientSession.exit(await ClientSession.run(server: options.connection.server) { try await execute(client: $0, console: $1) })
    }

    /// What `push` prints with `--output json`.
    struct Result: Encodable {
        var certificate: CertificateVersionView
        var deployments: [DeploymentView]
        var rollout: RolloutView?
    }

    func execute(client: APIClient, console: Console, environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> Int32 {
        let selection = to.isEmpty ? nil : try TargetSelection(to: to)
        let strategy = try rollout.strategy()
        let files = try PushFiles.resolve(cert: cert, key: key, chain: chain, environment: environment)
        let certificatePEM = try PushFiles.read(files.cert, what: "--cert")
        let chainPEM = try files.chain.map { path throws(InputError) in try PushFiles.read(path, what: "--chain") }
        let keyPEM = try PushFiles.read(files.key, what: "--key")
        let bundle: CertificateBundle
        do {
            bundle = try CertificateBundle.parse(certificatePEM: certificatePEM, chainPEM: chainPEM, privateKeyPEM: keyPEM)
        } catch {
            throw InputError("\(files.cert): \(error.message)")
        }
        let name = try self.name ?? CertificateName.derive(from: bundle.info)
        let deployOptions = DeploymentRequest.Options(dryRun: dryRun ? true : nil, force: force ? true : nil,
                                                      allowMustStapleWithoutStapling: allowMustStapleWithoutStapling ? true : nil)
        // Should the certificate's policy start a rollout on this upload, it gets this push's options and strategy.
        let version = try await client.uploadCertificate(CertificateUpload(
            name: name, certificatePEM: certificatePEM, chainPEM: chainPEM, privateKeyPEM: keyPEM,
            rolloutOptions: deployOptions.isEmpty ? nil : deployOptions, rolloutStrategy: strategy))
        if options.output == .text { CertsCommand.uploaded(version).forEach(console.line) }
        if let autoRollout = version.autoRollout {
            if options.output == .text {
                console.line("The certificate's policy started rollout \(autoRollout.lowercasedText) to every bound target"
                             + (to.isEmpty ? "." : "; --to is not used (the rollout covers the bound targets)."))
            }
            let deploy = RemoteDeploy(request: DeploymentRequest(certificate: version.name, version: version.version), follow: follow,
                                      waitApproval: waitApproval, live: isatty(STDOUT_FILENO) == 1 && options.output == .text)
            let outcome = try await deploy.executeRollout(autoRollout, created: [], client: client, console: console,
                                                          printing: options.output == .text ? .text : .none)
            if options.output == .json { try console.json(Result(certificate: version, deployments: [], rollout: outcome.rollout)) }
            return outcome.status
        }
        guard let selection else {
            throw InputError("uploaded \(version.name) v\(version.version), but deployed nothing: give --to (a target or key=value), or bind "
                             + "targets to the certificate and set its policy to auto-rollout (certdeploy certs policy \(version.name) --auto-rollout)")
        }
        let deploy = RemoteDeploy(
            request: DeploymentRequest(certificate: version.name, version: version.version, targets: selection.targets.isEmpty ? nil : selection.targets,
                                       selector: selection.selector, options: deployOptions, strategy: strategy),
            follow: follow, waitApproval: waitApproval, live: isatty(STDOUT_FILENO) == 1 && options.output == .text)
        let outcome = try await deploy.execute(client: client, console: console, printing: options.output == .text ? .text : .none)
        if options.output == .json { try console.json(Result(certificate: version, deployments: outcome.deployments, rollout: outcome.rollout)) }
        return outcome.status
    }
}
