import ArgumentParser
import CertdeployAPI
import Core
import Foundation

/// `certdeploy certs …`: the certificates the server holds.
struct CertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Upload, list, show and remove the server's certificates.",
        discussion: """
        Talks to the certdeploy server at --server (default: $CERTDEPLOY_URL, else http://127.0.0.1:8080) with the API key in \
        $CERTDEPLOY_API_KEY. Exit status: 0 done, 1 failed, 2 bad input (the server's 4xx answers included).
        """,
        subcommands: [List.self, Show.self, Upload.self, Remove.self, Policy.self],
        defaultSubcommand: List.self
    )

    struct Upload: ClientSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload a certificate and its key as the next version of the named certificate (created on first upload).")
        @Option(help: "Certificate name, [A-Za-z0-9._-].") var name: String
        @Option(help: "Certificate PEM: the leaf, optionally followed by its chain (fullchain.pem).") var cert: String
        @Option(help: "Private key PEM (sent to the server, which stores it encrypted and never returns it).") var key: String
        @Option(help: "Extra chain PEM (intermediates), in any order.") var chain: String?
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let upload = CertificateUpload(name: name, certificatePEM: try PushFiles.read(cert, what: "--cert"),
                                           chainPEM: try chain.map { path throws(InputError) in try PushFiles.read(path, what: "--chain") },
                                           privateKeyPEM: try PushFiles.read(key, what: "--key"))
            let version = try await client.uploadCertificate(upload)
            if options.output == .json { try console.json(version); return 0 }
            CertsCommand.uploaded(version).forEach(console.line)
            return 0
        }
    }

    struct Policy: ClientSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set how new versions roll out: --auto-rollout starts a rollout to every bound target on each upload.",
            discussion: "Without flags, shows the policy. The rollout flags set the strategy those rollouts (and push to several targets) use.")
        @Argument(help: "Certificate name.") var name: String
        @Flag(inversion: .prefixedNo, help: "Start a rollout to every bound target when a new version is uploaded.") var autoRollout: Bool?
        @Option(name: .customLong("behind-after"), help: ArgumentHelp("A bound target not serving the newest version this long after its upload is behind (default 1d).",
                                                                      valueName: "duration"))
        var behindAfter: String?
        @OptionGroup(title: "Strategy") var strategy: RolloutStrategyOptions
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            var policy = try await client.certificatePolicy(name)
            if autoRollout != nil || behindAfter != nil || !strategy.isEmpty {
                var behind: RolloutDuration?
                if let behindAfter {
                    guard let parsed = RolloutDuration(parsing: behindAfter) else { throw InputError("--behind-after \(behindAfter): give a duration such as 12h") }
                    behind = parsed
                }
                policy = try await client.setCertificatePolicy(name, CertificatePolicyRequest(
                    autoRollout: autoRollout ?? policy.autoRollout, strategy: try strategy.strategy(base: policy.strategy) ?? policy.strategy,
                    behindAfter: behind ?? policy.behindAfter))
            }
            if options.output == .json { try console.json(policy); return 0 }
            TextTable.columns([
                ["certificate", policy.certificate],
                ["auto-rollout", policy.autoRollout ? "on: each new version rolls out to every bound target" : "off"],
                ["strategy", RolloutReport.strategyText(policy.strategy)],
                ["behind after", policy.behindAfter.description],
            ]).forEach(console.line)
            return 0
        }
    }

    /// `Uploaded example.com version 3: CN=example.com (SHA-256 58da071d34dcfeed…), valid until …`, then preflight notes.
    static func uploaded(_ version: CertificateVersionView) -> [String] {
        uploadedLines(version) + (version.autoRollout.map { ["Auto-rollout started: certdeploy rollouts show \($0.lowercasedText) --follow"] } ?? [])
    }

    private static func uploadedLines(_ version: CertificateVersionView) -> [String] {
        ["Uploaded \(version.name) version \(version.version): \(version.subject) (SHA-256 \(ClientFormat.shortHash(version.sha256))…), "
            + "valid until \(ClientFormat.date(version.notAfter))" + (version.mustStaple ? ", Must-Staple" : "")]
            + version.notes.map { "  note: \($0)" }
    }

    struct List: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "List certificates (every page, unless --limit).")
        @Option(help: "Only certificates whose name starts with this.") var namePrefix: String?
        @Option(help: "At most this many certificates.") var limit: Int?
        @OptionGroup var options: ClientOptions

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let list = try await APIClient.allPages(limit: limit) { cursor, limit in
                try await client.certificates(namePrefix: namePrefix, limit: limit, cursor: cursor)
            }
            if options.output == .json { try console.json(list); return 0 }
            CertsCommand.table(list.items).forEach(console.line)
            return 0
        }
    }

    /// `NAME VERSION NOT-AFTER NAMES`.
    static func table(_ certificates: [CertificateView]) -> [String] {
        TextTable.render(["NAME", "VERSION", "NOT-AFTER", "NAMES"], certificates.map { certificate in
            [certificate.name, certificate.latestVersion.map { "\($0)" } ?? "-", ClientFormat.date(certificate.latest?.notAfter),
             certificate.latest.map { $0.subjectAlternativeNames.isEmpty ? $0.subject : $0.subjectAlternativeNames.joined(separator: ",") } ?? "-"]
        })
    }

    struct Show: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "Show a certificate and its versions (never the key).")
        @Argument(help: "Certificate name.") var name: String
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let certificate = try await client.certificate(name)
            if options.output == .json { try console.json(certificate); return 0 }
            CertsCommand.details(certificate).forEach(console.line)
            return 0
        }
    }

    static func details(_ certificate: CertificateView) -> [String] {
        var fields = [["name", certificate.name], ["created", ClientFormat.date(certificate.createdAt)], ["updated", ClientFormat.date(certificate.updatedAt)]]
        if let latest = certificate.latest {
            fields += [["subject", latest.subject], ["issuer", latest.issuer], ["names", latest.subjectAlternativeNames.joined(separator: ", ")],
                       ["OCSP", latest.ocspURL ?? "-"]]
        }
        var lines = TextTable.columns(fields)
        let versions = certificate.versions ?? certificate.latest.map { [$0] } ?? []
        if !versions.isEmpty {
            lines.append("")
            lines += TextTable.render(["VERSION", "SHA-256", "NOT-BEFORE", "NOT-AFTER", "MUST-STAPLE", "CREATED"], versions.map { version in
                ["\(version.version)", ClientFormat.shortHash(version.sha256), ClientFormat.date(version.notBefore), ClientFormat.date(version.notAfter),
                 version.mustStaple ? "yes" : "no", ClientFormat.date(version.createdAt)]
            })
        }
        return lines
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a certificate and all its versions.")
        @Argument(help: "Certificate name.") var name: String
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            try ClientSession.exit(await ClientSession.run(server: connection.server) { try await execute(client: $0, console: $1) })
        }

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            try await client.deleteCertificate(name)
            console.line("Removed certificate \(name)")
            return 0
        }
    }
}
