import ArgumentParser
import Foundation

/// `--server`: where the certdeploy server runs.
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("certdeploy server URL. Default: $CERTDEPLOY_URL, else http://127.0.0.1:8080. The API key is read from $CERTDEPLOY_API_KEY.",
                               valueName: "url"))
    var server: String?
}

/// The options every server command shares: `--server` and `--output`.
struct ClientOptions: ParsableArguments {
    @OptionGroup var connection: ServerOptions

    @Option(help: "Output: text, or json (the server's JSON, pretty-printed with sorted keys).")
    var output: ClientOutput = .text
}

/// `--output` of the server commands.
enum ClientOutput: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

/// Runs a server command: makes the client, runs the command's logic, prints a failure on stderr, and turns the
/// outcome into the exit status.
enum ClientSession {
    /// - Returns: the exit status: what `body` returned, 2 for bad input (a 4xx answer or a local check),
    ///   1 for other failures.
    static func run(
        server: String?, environment: [String: String] = ProcessInfo.processInfo.environment, console: Console = .standard,
        _ body: (APIClient, Console) async throws -> Int32
    ) async -> Int32 {
        do {
            return try await APIClient.withClient(server: server, environment: environment) { client in
                try await body(client, console)
            }
        } catch {
            return report(error, console: console)
        }
    }

    /// Prints an error as `error: …` lines on the console's error stream and returns the exit status for it.
    static func report(_ error: any Error, console: Console) -> Int32 {
        switch error {
        case let error as APIError:
            error.messageLines.forEach(console.error)
            return error.exitStatus
        case let error as InputError:
            console.error("error: \(error.description)")
            return 2
        case let error as ExitCode:
            return error.rawValue
        default:
            console.error("error: \(error)")
            return 1
        }
    }

    /// Ends `run()` with the status: returns for 0, throws `ExitCode` otherwise.
    static func exit(_ status: Int32) throws {
        if status != 0 { throw ExitCode(status) }
    }
}

/// A subcommand that talks to the server with the shared client options: its `run()` opens the session with
/// ``ClientSession`` and exits with what `execute` returns.
protocol ClientSubcommand: AsyncParsableCommand {
    var options: ClientOptions { get }
    func execute(client: APIClient, console: Console) async throws -> Int32
}

extension ClientSubcommand {
    func run() async throws {
        try ClientSession.exit(await ClientSession.run(server: options.connection.server) { try await execute(client: $0, console: $1) })
    }
}
