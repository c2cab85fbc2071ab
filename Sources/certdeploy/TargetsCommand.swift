import ArgumentParser
import CertdeployAPI
import Core
import Foundation

/// `certdeploy targets …`: the targets the server deploys to.
struct TargetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "targets",
        abstract: "Add, list, show, change, remove and test the server's targets.",
        discussion: """
        Talks to the certdeploy server at --server (default: $CERTDEPLOY_URL, else http://127.0.0.1:8080) with the API key in \
        $CERTDEPLOY_API_KEY. Exit status: 0 done, 1 failed, 2 bad input (the server's 4xx answers included).
        """,
        subcommands: [List.self, Show.self, Add.self, Update.self, Remove.self, Test.self, Verify.self, StaplingConfig.self],
        defaultSubcommand: List.self
    )

    struct Add: ClientSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a target.",
            discussion: """
            The file is a `certdeploy deploy --config` target file ({"name", "connector", "ssh": {…} or "kubernetes": {…}, \
            "config": {…}}), optionally with "labels" and "certificate". --name, --connector and --certificate win over the file; \
            --label values are added to the file's labels. Paths in the file (privateKeyFile, kubeconfig, …) are read by the server.
            """)
        @Option(help: "Target file (JSON).") var file: String
        @Option(help: "Target name, [A-Za-z0-9._-]. Default: the file's \"name\", else the file name.") var name: String?
        @Option(help: "Connector id. Default: the file's \"connector\".") var connector: String?
        @Option(help: ArgumentHelp("A label, key=value (repeatable).", valueName: "key=value")) var label: [String] = []
        @Option(help: "The certificate this target serves, by name.") var certificate: String?
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let input = try TargetInputFile.load(path: file).input(name: name, connector: connector, labels: try Labels.dictionary(label),
                                                                     certificate: certificate)
            let target = try await client.createTarget(input)
            if options.output == .json { try console.json(target); return 0 }
            console.line("Added target \(target.name) (\(target.connector), id \(target.id.lowercasedText))")
            return 0
        }
    }

    struct List: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "List targets (every page, unless --limit).")
        @Option(help: ArgumentHelp("Only targets with this label, key=value (repeatable: all must match).", valueName: "key=value"))
        var label: [String] = []
        @Option(help: "Only targets of this connector.") var connector: String?
        @Option(help: "Only targets whose name starts with this.") var namePrefix: String?
        @Option(help: "At most this many targets.") var limit: Int?
        @OptionGroup var options: ClientOptions

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let selector = try Labels.selector(label)
            let list = try await APIClient.allPages(limit: limit) { cursor, limit in
                try await client.targets(labels: selector, connector: connector, namePrefix: namePrefix, limit: limit, cursor: cursor)
            }
            if options.output == .json { try console.json(list); return 0 }
            TargetsCommand.table(list.items).forEach(console.line)
            return 0
        }
    }

    /// `NAME CONNECTOR LABELS CERTIFICATE SYNC STAPLE LAST-DEPLOY`.
    static func table(_ targets: [TargetView]) -> [String] {
        TextTable.render(["NAME", "CONNECTOR", "LABELS", "CERTIFICATE", "SYNC", "STAPLE", "LAST-DEPLOY"], targets.map { target in
            [target.name, target.connector, Labels.text(target.labels), target.certificate ?? "-", target.status?.sync ?? "-",
             staple(target.status), lastDeploy(target.lastDeployment)]
        })
    }

    /// `good (next 2026-11-29T10:41:26Z)`, `staple_expiring (next …)`, or `-` for a target certdeploy does not staple.
    static func staple(_ status: TargetStatusView?) -> String {
        guard let state = status?.staple else { return "-" }
        return state + (status?.stapleNextUpdate.map { " (next \(ClientFormat.date($0)))" } ?? "")
    }

    /// `succeeded example.com v3 2026-11-29T10:41:26Z`, or `-`.
    static func lastDeploy(_ summary: DeploymentSummary?) -> String {
        guard let summary else { return "-" }
        return "\(summary.status) \(summary.certificate) v\(summary.certificateVersion)" + (summary.finishedAt.map { " \(ClientFormat.date($0))" } ?? "")
    }

    struct Show: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "Show a target (secret values show as \"<redacted>\").")
        @Argument(help: "Target id or name.") var target: String
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let view = try await client.target(target)
            if options.output == .json { try console.json(view); return 0 }
            TargetsCommand.details(view).forEach(console.line)
            return 0
        }
    }

    static func details(_ target: TargetView) -> [String] {
        var lines = TextTable.columns([
            ["name", target.name],
            ["id", target.id.lowercasedText],
            ["connector", target.connector],
            ["labels", Labels.text(target.labels)],
            ["certificate", target.certificate ?? "-"],
            ["version", "\(target.version)"],
            ["created", ClientFormat.date(target.createdAt)],
            ["updated", ClientFormat.date(target.updatedAt)],
            ["last deploy", lastDeploy(target.lastDeployment) + (target.lastDeployment.map { " (\($0.id.lowercasedText))" } ?? "")],
            ["sync", (target.status?.sync ?? "-") + (target.status?.detail.map { ": \($0)" } ?? "")],
            ["staple", staple(target.status) + (target.status?.stapleDetail.map { ": \($0)" } ?? "")],
            ["auto-remediate", (target.autoRemediate ?? false) ? "on" : "off"],
        ])
        for (section, value) in [("ssh", target.ssh), ("kubernetes", target.kubernetes), ("config", target.config)] {
            guard let value else { continue }
            lines.append("\(section):")
            lines += value.jsonText().split(separator: "\n", omittingEmptySubsequences: false).map { "  \($0)" }
        }
        return lines
    }

    struct Update: ClientSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a target: read it, apply the changes, and write it back naming the version read.",
            discussion: """
            Each field the file has replaces the stored one; secret fields the file leaves out keep their stored values. \
            A change made by someone else in between is refused (409), and nothing is changed.
            """)
        @Argument(help: "Target id or name.") var target: String
        @Option(help: "Target file (JSON) with the fields to replace.") var file: String?
        @Option(help: ArgumentHelp("Add or replace a label, key=value (repeatable).", valueName: "key=value")) var label: [String] = []
        @Option(help: ArgumentHelp("Remove the label with this key (repeatable).", valueName: "key")) var removeLabel: [String] = []
        @Option(help: "Bind this certificate, by name.") var certificate: String?
        @Flag(help: "Unbind the certificate.") var clearCertificate = false
        @OptionGroup var options: ClientOptions

        func validate() throws {
            if file == nil, label.isEmpty, removeLabel.isEmpty, certificate == nil, !clearCertificate {
                throw ValidationError("nothing to change: give --file, --label, --remove-label, --certificate or --clear-certificate")
            }
            if certificate != nil, clearCertificate { throw ValidationError("give --certificate or --clear-certificate, not both") }
        }

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let file = try self.file.map { path throws(InputError) in try TargetInputFile.load(path: path) }
            let added = try Labels.dictionary(label)
            let current = try await client.target(target)
            var input = TargetInput(name: current.name, connector: current.connector, labels: current.labels, certificate: current.certificate,
                                    ssh: current.ssh, kubernetes: current.kubernetes, config: current.config, version: current.version)
            file?.apply(to: &input)
            var labels = (input.labels ?? [:]).merging(added) { $1 }
            for key in removeLabel { labels[key] = nil }
            input.labels = labels
            if let certificate { input.certificate = certificate }
            if clearCertificate { input.certificate = nil }
            let updated = try await client.updateTarget(current.id.lowercasedText, input)
            if options.output == .json { try console.json(updated); return 0 }
            console.line("Updated target \(updated.name) (version \(current.version) → \(updated.version))")
            return 0
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a target.")
        @Argument(help: "Target id or name.") var target: String
        @OptionGroup var connection: ServerOptions

        func run() async throws {
            try ClientSession.exit(await ClientSession.run(server: connection.server) { try await execute(client: $0, console: $1) })
        }

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            try await client.deleteTarget(target)
            console.line("Removed target \(target)")
            return 0
        }
    }

    struct Test: ClientSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that the server can reach and use a target, writing nothing live. Exit status 1 when a check fails.")
        @Argument(help: "Target id or name.") var target: String
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let report = try await client.testTarget(target)
            if options.output == .json {
                try console.json(report)
            } else {
                TargetsCommand.testLines(report).forEach(console.line)
            }
            return report.ok ? 0 : 1
        }
    }

    /// `  [ok  ] connect    <detail>` per check, then `ok` or how many failed.
    static func testLines(_ report: TargetTestReport) -> [String] {
        let width = report.checks.map(\.name.count).max() ?? 0
        var lines = report.checks.map { check in
            "  [\(check.ok ? "ok  " : "FAIL")] \(check.name)\(String(repeating: " ", count: width - check.name.count))  \(check.detail)"
        }
        let failed = report.checks.filter { !$0.ok }.count
        lines.append(report.ok ? "ok" : "not ok: \(failed) of \(report.checks.count) checks failed")
        return lines
    }

    struct StaplingConfig: ClientSubcommand {
        static let configuration = CommandConfiguration(
            commandName: "stapling-config", abstract: "Show the stapling config the connector would emit for the target's certificate.")
        @Argument(help: "Target id or name.") var target: String
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let view = try await client.staplingConfig(target)
            if options.output == .json { try console.json(view); return 0 }
            console.line("Stapling: \(view.stapling.mode.rawValue) — \(view.stapling.reason) (\(view.connector), \(view.certificate) v\(view.certificateVersion))")
            for snippet in view.snippets {
                console.line("Snippet (\(snippet.name))" + (snippet.path.map { " written to \($0)" } ?? " — not written") + ", place it \(snippet.placement):")
                console.line(snippet.contents.split(separator: "\n", omittingEmptySubsequences: false).map { "    \($0)" }.joined(separator: "\n"))
            }
            return 0
        }
    }
}
