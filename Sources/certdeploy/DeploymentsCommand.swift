import ArgumentParser
import CertdeployAPI
import Core
import Foundation

/// `certdeploy deployments …`: what the server deployed, is deploying, or has queued.
struct DeploymentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deployments",
        abstract: "List, show and cancel the server's deployments.",
        discussion: """
        Talks to the certdeploy server at --server (default: $CERTDEPLOY_URL, else http://127.0.0.1:8080) with the API key in \
        $CERTDEPLOY_API_KEY. Exit status: 0 done, 1 failed, 2 bad input (the server's 4xx answers included).
        """,
        subcommands: [List.self, Show.self, Cancel.self],
        defaultSubcommand: List.self
    )

    struct List: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "List deployments, newest first (every page, unless --limit).")
        @Option(help: "Only deployments to this target (id or name).") var target: String?
        @Option(help: "Only deployments of this certificate.") var certificate: String?
        @Option(help: ArgumentHelp("Only deployments with this status (repeatable, or comma-separated): queued, running, succeeded, unchanged, "
                                   + "failed, rolled_back, rollback_failed, interrupted, cancelled.", valueName: "status"))
        var status: [String] = []
        @Option(help: "At most this many deployments.") var limit: Int?
        @OptionGroup var options: ClientOptions

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let statuses = status.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
            let list = try await APIClient.allPages(limit: limit) { cursor, limit in
                try await client.deployments(target: target, certificate: certificate, status: statuses.isEmpty ? nil : statuses.joined(separator: ","),
                                             limit: limit, cursor: cursor)
            }
            if options.output == .json { try console.json(list); return 0 }
            DeploymentsCommand.table(list.items).forEach(console.line)
            return 0
        }
    }

    /// `DEPLOYMENT TARGET CERTIFICATE STATUS CREATED DURATION`.
    static func table(_ deployments: [DeploymentView]) -> [String] {
        TextTable.render(["DEPLOYMENT", "TARGET", "CERTIFICATE", "STATUS", "CREATED", "DURATION"], deployments.map { deployment in
            [deployment.id.lowercasedText, DeploymentReport.targetName(deployment), "\(deployment.certificate) v\(deployment.certificateVersion)",
             deployment.status, ClientFormat.date(deployment.createdAt), ClientFormat.duration(from: deployment.startedAt, to: deployment.finishedAt)]
        })
    }

    struct Show: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "Show a deployment with its steps.")
        @Argument(help: "Deployment id.") var id: String
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let deployment = try await client.deployment(try DeploymentsCommand.deploymentID(id))
            if options.output == .json { try console.json(deployment); return 0 }
            DeploymentReport.details(deployment).forEach(console.line)
            return 0
        }
    }

    struct Cancel: ClientSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a queued deployment (a running one cannot be cancelled: it finishes or rolls back).")
        @Argument(help: "Deployment id.") var id: String
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let deployment = try await client.cancelDeployment(try DeploymentsCommand.deploymentID(id))
            if options.output == .json { try console.json(deployment); return 0 }
            console.line("Deployment \(deployment.id.lowercasedText) to \(DeploymentReport.targetName(deployment)): \(deployment.status)")
            return 0
        }
    }

    static func deploymentID(_ text: String) throws(InputError) -> UUID {
        guard let id = UUID(text: text) else { throw InputError("\(text) is not a deployment id (a UUID, as `certdeploy deployments list` prints)") }
        return id
    }
}
