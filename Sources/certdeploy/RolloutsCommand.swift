import ArgumentParser
import CertdeployAPI
import Core
import Foundation

/// `certdeploy rollouts …`: staged pushes to many targets, and the operator's controls over them.
struct RolloutsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollouts",
        abstract: "List, show and control rollouts (pause, resume, approve, abort, retry).",
        discussion: """
        A deploy through the server to more than one target is a rollout: a canary, then waves, halted when more targets \
        fail than the failure budget allows. Exit status: 0 done, 1 failed, 2 bad input (the server's 4xx answers included); \
        `show --follow` exits with the rollout's outcome (0 succeeded, 1 failed, halted, paused or aborted, 3 every target that did not \
        succeed was rolled back, 4 a rollback failed (operator action needed), 5 waiting for approval).
        """,
        subcommands: [List.self, Show.self, Pause.self, Resume.self, Approve.self, Abort.self, Retry.self],
        defaultSubcommand: List.self
    )

    struct List: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "List rollouts, newest first.")
        @Option(help: "Only rollouts of this certificate.") var certificate: String?
        @Option(help: ArgumentHelp("Only rollouts in this state (repeatable, or comma-separated): pending, running, waiting_approval, paused, "
                                   + "halted, succeeded, failed, aborted.", valueName: "state"))
        var state: [String] = []
        @Option(help: "At most this many rollouts.") var limit: Int?
        @OptionGroup var options: ClientOptions

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let states = state.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
            let list = try await APIClient.allPages(limit: limit) { cursor, limit in
                try await client.rollouts(certificate: certificate, state: states.isEmpty ? nil : states.joined(separator: ","), limit: limit, cursor: cursor)
            }
            if options.output == .json { try console.json(list); return 0 }
            RolloutReport.table(list.items).forEach(console.line)
            return 0
        }
    }

    struct Show: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "Show a rollout: its strategy, state and every wave's targets.")
        @Argument(help: "Rollout id.") var id: String
        @Flag(help: "Follow it live until it finishes, waits for approval, or is halted or paused with nothing running; exit with its outcome.") var follow = false
        @Flag(name: .customLong("wait-approval"), help: "With --follow: keep following through approval gates.") var waitApproval = false
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let id = try RolloutsCommand.rolloutID(id)
            guard follow else {
                let rollout = try await client.rollout(id)
                if options.output == .json { try console.json(rollout); return 0 }
                RolloutReport.details(rollout).forEach(console.line)
                return 0
            }
            let deploy = RemoteDeploy(request: DeploymentRequest(certificate: ""), follow: true, waitApproval: waitApproval,
                                      live: isatty(STDOUT_FILENO) == 1 && options.output == .text)
            return try await deploy.executeRollout(id, created: [], client: client, console: console,
                                                   printing: options.output == .text ? .text : .json).status
        }
    }

    /// The actions: one rollout id, print the result.
    static func act(_ action: String, id text: String, rollback: Bool? = nil, client: APIClient, console: Console, output: ClientOutput)
        async throws -> Int32
    {
        let response = try await client.rolloutAction(try rolloutID(text), action, rollback: rollback)
        if output == .json { try console.json(response); return 0 }
        console.line("Rollout \(response.rollout.id.lowercasedText): \(response.rollout.state)"
                     + (response.rollout.stopReason.map { " (\($0))" } ?? ""))
        for id in response.rollbackRollouts ?? [] {
            console.line("Rolling back in rollout \(id.lowercasedText): certdeploy rollouts show \(id.lowercasedText) --follow")
        }
        for skipped in response.notRolledBack ?? [] { console.line("Not rolled back: \(skipped)") }
        return 0
    }

    struct Pause: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "Pause: nothing new starts; running deployments finish.")
        @Argument(help: "Rollout id.") var id: String
        @OptionGroup var options: ClientOptions
        func execute(client: APIClient, console: Console) async throws -> Int32 {
            try await RolloutsCommand.act("pause", id: id, client: client, console: console, output: options.output)
        }
    }

    struct Resume: ClientSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume a paused or halted rollout (a halted one accepts the failures so far; retry them with `retry`).")
        @Argument(help: "Rollout id.") var id: String
        @OptionGroup var options: ClientOptions
        func execute(client: APIClient, console: Console) async throws -> Int32 {
            try await RolloutsCommand.act("resume", id: id, client: client, console: console, output: options.output)
        }
    }

    struct Approve: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "Let the wave the approval gate holds start.")
        @Argument(help: "Rollout id.") var id: String
        @OptionGroup var options: ClientOptions
        func execute(client: APIClient, console: Console) async throws -> Int32 {
            try await RolloutsCommand.act("approve", id: id, client: client, console: console, output: options.output)
        }
    }

    struct Abort: ClientSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Abort: cancel every deployment not yet started; with --rollback, put each finished target's previous version back.")
        @Argument(help: "Rollout id.") var id: String
        @Flag(help: "Redeploy each finished target's previous version (admin), as a rollout of its own.") var rollback = false
        @OptionGroup var options: ClientOptions
        func execute(client: APIClient, console: Console) async throws -> Int32 {
            try await RolloutsCommand.act("abort", id: id, rollback: rollback ? true : nil, client: client, console: console, output: options.output)
        }
    }

    struct Retry: ClientSubcommand {
        static let configuration = CommandConfiguration(abstract: "Run the failed targets again, in their waves; a halted or failed rollout runs on.")
        @Argument(help: "Rollout id.") var id: String
        @OptionGroup var options: ClientOptions
        func execute(client: APIClient, console: Console) async throws -> Int32 {
            try await RolloutsCommand.act("retry", id: id, client: client, console: console, output: options.output)
        }
    }

    static func rolloutID(_ text: String) throws(InputError) -> UUID {
        guard let id = UUID(text: text) else { throw InputError("\(text) is not a rollout id (a UUID, as `certdeploy rollouts list` prints)") }
        return id
    }
}
