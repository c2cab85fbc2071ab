import CertdeployAPI
import Core
import Foundation
import ServerTestSupport
import TestSupport
import XCTest

@testable import certdeploy

/// Lines a command printed, collected from its console.
final class CapturedConsole: @unchecked Sendable {
    private let lock = NSLock()
    private var outLines: [String] = []
    private var errorLines: [String] = []

    var console: Console {
        Console(out: { [self] line in lock.withLock { outLines.append(line) } }, error: { [self] line in lock.withLock { errorLines.append(line) } })
    }

    var out: String { lock.withLock { outLines.joined(separator: "\n") } }
    var error: String { lock.withLock { errorLines.joined(separator: "\n") } }
}

extension XCTestCase {
    /// A real server in this process (SQLite, the built-in connectors), stopped at the end of the test.
    func startServer() async throws -> TestServer {
        let server = try await TestServer.start(registry: try BuiltinConnectors.registry())
        addTeardownBlock { await server.stop() }
        return server
    }

    /// Runs a command's logic as `ClientSession` does for the CLI, against `server` with `key` (the admin key by default).
    func run(_ server: TestServer, key: String? = nil, _ body: (APIClient, Console) async throws -> Int32) async -> (status: Int32, output: CapturedConsole) {
        let captured = CapturedConsole()
        let status = await ClientSession.run(server: server.baseURL, environment: ["CERTDEPLOY_API_KEY": key ?? server.adminKey], console: captured.console,
                                             body)
        return (status, captured)
    }
}

/// The client's commands over real HTTP against a real certdeploy server (in process, SQLite), and real nginx behind
/// real sshd where a deploy is needed: the API key, problems, pages and queries, event streams, a refused connection.
final class ClientTransportTests: XCTestCase {

    func testRefusedConnectionNamesTheURLAndHowToFixIt() async throws {
        let key = TestServer.randomKey()
        let port = try FreePort.allocate()
        let captured = CapturedConsole()
        let started = Date()
        let status = await ClientSession.run(server: "http://127.0.0.1:\(port)", environment: ["CERTDEPLOY_API_KEY": key], console: captured.console) { client, _ in
            _ = try await client.version()
            return 0
        }
        XCTAssertEqual(status, 1)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "a refused connection fails at once")
        XCTAssertTrue(captured.error.contains("error: cannot reach the certdeploy server at http://127.0.0.1:\(port): connection refused"), captured.error)
        XCTAssertTrue(captured.error.contains("certdeploy serve") && captured.error.contains("CERTDEPLOY_URL"), captured.error)
        XCTAssertFalse(captured.error.contains(key))
    }

    /// The server refuses a target with two bad paths (422): each field is printed, the exit status is 2, and neither
    /// the API key nor the target's password shows. The key was sent: a wrong one gets 401 and the hint instead.
    func testProblemAnswerPrintsFieldsExitsTwoAndSendsTheKey() async throws {
        let server = try await startServer()
        let directory = try TemporaryDirectory(prefix: "certdeploy-client")
        let file = try directory.write("web-1.json", """
            {"connector": "nginx", "ssh": {"host": "127.0.0.1", "user": "root", "password": "pw-secret-value", "trustOnFirstUse": true},
             "config": {"certificatePath": "tls/example.pem", "keyPath": "k"}}
            """)
        let command = try TargetsCommand.Add.parse(["--file", file, "--label", "role=web"])
        let (status, output) = await run(server) { try await command.execute(client: $0, console: $1) }
        XCTAssertEqual(status, 2, output.out + output.error)
        XCTAssertTrue(output.error.hasPrefix("error: "), output.error)
        XCTAssertTrue(output.error.contains("/config/certificatePath: must be an absolute path"), output.error)
        XCTAssertTrue(output.error.contains("/config/keyPath: must be an absolute path"), output.error)
        XCTAssertEqual(output.out, "")
        for secret in [server.adminKey, "pw-secret-value"] {
            XCTAssertFalse(output.error.contains(secret) || output.out.contains(secret))
        }
        // Nothing was created.
        let listed = try await server.request(.GET, "/api/v1/targets").decode(ListResponse<TargetView>.self)
        XCTAssertEqual(listed.items.map(\.name), [])

        // A key the server does not know: 401, the hint, exit 2, the key never printed.
        let wrongKey = TestServer.randomKey()
        let (refused, refusedOutput) = await run(server, key: wrongKey) { try await command.execute(client: $0, console: $1) }
        XCTAssertEqual(refused, 2)
        XCTAssertTrue(refusedOutput.error.hasSuffix("hint: set CERTDEPLOY_API_KEY to an API key the server accepts"), refusedOutput.error)
        XCTAssertFalse(refusedOutput.error.contains(wrongKey), refusedOutput.error)

        // The same file with absolute paths is accepted with the admin key: the key was sent all along.
        let fixed = try directory.write("web-1.json", """
            {"connector": "nginx", "ssh": {"host": "127.0.0.1", "user": "root", "password": "pw-secret-value", "trustOnFirstUse": true},
             "config": {"certificatePath": "/etc/nginx/tls/example.pem", "keyPath": "/etc/nginx/tls/example.key"}}
            """)
        let add = try TargetsCommand.Add.parse(["--file", fixed, "--label", "role=web"])
        let (added, addedOutput) = await run(server) { try await add.execute(client: $0, console: $1) }
        XCTAssertEqual(added, 0, addedOutput.error)
        XCTAssertTrue(addedOutput.out.hasPrefix("Added target web-1 (nginx, id "), addedOutput.out)
        let stored = try await server.request(.GET, "/api/v1/targets/web-1").decode(TargetView.self)
        XCTAssertEqual(stored.labels, ["role": "web"])
    }

    /// The real server always answers errors with a problem body, so an answer that is not a problem (a proxy's
    /// error page) is checked on the client's formatting alone: the status and the end of the body, key removed.
    func testNonProblemErrorShowsStatusAndBodyTailWithoutTheKey() async throws {
        let key = TestServer.randomKey()
        let client = try APIClient(baseURL: "http://127.0.0.1:1", apiKey: key)
        let gateway = client.failure(status: 502, contentType: "text/html", body: Data("<html>bad gateway for \(key)</html>\n".utf8))
        XCTAssertEqual(gateway.messageLines, ["error: the server answered HTTP 502: <html>bad gateway for <redacted></html>"])
        XCTAssertEqual(gateway.exitStatus, 1)
        let long = client.failure(status: 404, contentType: nil, body: Data((String(repeating: "x", count: 1000) + "END").utf8))
        XCTAssertEqual(long.messageLines.first?.count, "error: the server answered HTTP 404: ".count + 400)
        XCTAssertTrue(long.messageLines.first?.hasSuffix("END") == true)
        XCTAssertEqual(long.exitStatus, 2)
        XCTAssertEqual(client.failure(status: 503, contentType: nil, body: Data()).messageLines, ["error: the server answered HTTP 503"])
        let echoed = client.failure(status: 400, contentType: "application/problem+json",
                                    body: Data(#"{"type":"t","title":"Bad","status":400,"detail":"bad header Bearer \#(key)"}"#.utf8))
        XCTAssertEqual(echoed.messageLines, ["error: bad header Bearer <redacted>"])
        await client.shutdown()
    }

    /// More targets than a page (the server's default page is 100): every page is walked, in order, none twice; the
    /// label selector, connector and name prefix reach the server intact.
    func testListWalksEveryPageAndEncodesTheQuery() async throws {
        let server = try await startServer()
        let ssh: JSONValue = .object(["host": .string("127.0.0.1"), "user": .string("root"), "password": .string("pw"), "trustOnFirstUse": .bool(true)])
        func config(_ name: String) -> JSONValue {
            .object(["certificatePath": .string("/etc/tls/\(name).pem"), "keyPath": .string("/etc/tls/\(name).key")])
        }
        func add(_ name: String, _ connector: String, _ labels: [String: String]) async throws {
            let answer = try await server.send(.POST, "/api/v1/targets",
                                               json: TargetInput(name: name, connector: connector, labels: labels, ssh: ssh, config: config(name)))
            XCTAssertEqual(answer.status, 201, answer.text)
        }
        let matching = (0...100).map { String(format: "web-%03d", $0) }
        for name in matching { try await add(name, "nginx", ["role": "web", "env": "prod", "team/owner": "ops"]) }
        try await add("web-dev", "nginx", ["role": "web", "env": "dev"])
        try await add("db-1", "nginx", ["role": "db", "env": "prod"])
        try await add("web-apache", "apache", ["role": "web", "env": "prod"])

        let command = try TargetsCommand.List.parse(["--label", "role=web", "--label", "env=prod", "--connector", "nginx"])
        let (status, output) = await run(server) { try await command.execute(client: $0, console: $1) }
        XCTAssertEqual(status, 0, output.error)
        let lines = output.out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first?.hasPrefix("NAME     CONNECTOR  LABELS"), true, output.out)
        XCTAssertEqual(lines.dropFirst().map { String($0.prefix(while: { $0 != " " })) }, matching)

        // Several labels in one value, a key with a slash, and a name prefix.
        let narrowed = try TargetsCommand.List.parse(["--label", "env=prod,team/owner=ops", "--name-prefix", "web-09", "--output", "json"])
        let (narrowedStatus, narrowedOutput) = await run(server) { try await narrowed.execute(client: $0, console: $1) }
        XCTAssertEqual(narrowedStatus, 0, narrowedOutput.error)
        let narrowedList = try JSONDecoder.api.decode(ListResponse<TargetView>.self, from: Data(narrowedOutput.out.utf8))
        XCTAssertEqual(narrowedList.items.map(\.name), (90...99).map { "web-0\($0)" })
        XCTAssertNil(narrowedList.nextCursor)

        // --limit: that many, and the cursor to go on from.
        let limited = try TargetsCommand.List.parse(["--limit", "1", "--output", "json"])
        let (_, json) = await run(server) { try await limited.execute(client: $0, console: $1) }
        let printed = try JSONDecoder.api.decode(ListResponse<TargetView>.self, from: Data(json.out.utf8))
        XCTAssertEqual(printed.items.map(\.name), ["db-1"])
        XCTAssertNotNil(printed.nextCursor)

        // A connector the server does not know is the server's 422, naming the query parameter.
        let unknown = try TargetsCommand.List.parse(["--connector", "iis"])
        let (unknownStatus, unknownOutput) = await run(server) { try await unknown.execute(client: $0, console: $1) }
        XCTAssertEqual(unknownStatus, 2)
        XCTAssertTrue(unknownOutput.error.contains("query:connector: unknown connector \"iis\""), unknownOutput.error)
    }

    /// `deploy <certificate> --to … --follow` against two real targets on real nginx, staged as a rollout (the canary
    /// web-1, then web-2): web-1 succeeds, web-2's validate command fails so it is rolled back and the rollout halts.
    /// Each target's steps are printed once, prefixed with its name, with the waves and the halt as plain lines; the
    /// summary lists both by wave; the exit status is 3 (every target that did not succeed was rolled back).
    func testFollowShowsEachTargetsStepsAndExitsWithTheWorstOutcome() async throws {
        let site = try NginxSite()
        let server = try await startServer()
        let leaf = try site.ca.issueLeaf()
        let uploaded = try await server.send(.POST, "/api/v1/certificates", json: site.upload(leaf, name: "example"))
        XCTAssertEqual(uploaded.status, 201, uploaded.text)
        let web1 = try await server.send(.POST, "/api/v1/targets", json: site.target(name: "web-1", labels: ["role": "web"]))
        XCTAssertEqual(web1.status, 201, web1.text)
        // web-2 writes elsewhere on the same host (so the two never touch the same files), and its validate fails.
        let other = try site.directory.makeDirectory("tls-web-2")
        let failing: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("echo 'nginx: [emerg] broken' >&2; exit 1")])
        let web2Config = site.config([
            "certificatePath": .string(other + "/example.pem"), "keyPath": .string(other + "/example.key"),
            "snippetPath": .string(other + "/certdeploy.conf"), "validateCommand": failing,
        ])
        let web2 = try await server.send(.POST, "/api/v1/targets", json: site.target(name: "web-2", labels: ["role": "web"], config: web2Config))
        XCTAssertEqual(web2.status, 201, web2.text)

        let command = try DeployCommand.parse(["example", "--to", "role=web", "--follow"])
        let deploy = try command.remoteDeploy("example")
        let (status, output) = await run(server, key: server.deployerKey) { try await deploy.execute(client: $0, console: $1, printing: .text).status }
        XCTAssertEqual(status, 3, output.out + output.error)
        let lines = output.out.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.hasPrefix("Rollout ") == true && lines.first?.contains(": example v1 to 2 targets in 2 waves") == true, output.out)
        XCTAssertTrue(lines.contains("wave 1/2 (canary) started: 1 target"), output.out)
        XCTAssertTrue(lines.contains("wave 2/2 started: 1 target"), output.out)
        XCTAssertTrue(lines.contains { $0.hasPrefix("HALTED: failure budget exceeded (0 allowed, 1 failed) in wave 2 of 2: web-2 rolled_back") }, output.out)
        for step in ["connect", "write", "validate", "reload", "verify"] {
            XCTAssertEqual(lines.filter { $0.hasPrefix("web-1  [ok  ] \(step) ") }.count, 1, "web-1 \(step) once:\n\(output.out)")
        }
        XCTAssertEqual(lines.filter { $0.hasPrefix("web-2  [FAIL] validate ") }.count, 1, output.out)
        XCTAssertTrue(output.out.contains("| nginx: [emerg] broken"), "the failed step's output tail:\n\(output.out)")
        XCTAssertEqual(lines.filter { $0.hasPrefix("web-2  [ok  ] rollback ") }.count, 1, output.out)
        XCTAssertFalse(lines.contains { $0.hasPrefix("web-2  ") && $0.contains("] verify ") }, output.out)
        let summary = Array(lines.suffix(3))
        XCTAssertEqual(summary.first, "WAVE        TARGET  STATUS       DURATION  DETAIL", output.out)
        XCTAssertTrue(summary.count == 3 && summary[1].hasPrefix("1 (canary)  web-1   succeeded    "), output.out)
        XCTAssertTrue(summary.count == 3 && summary[2].hasPrefix("2           web-2   rolled_back  ") && summary[2].contains("validate: "), output.out)
        XCTAssertFalse(output.out.contains("PRIVATE KEY"))
        let served = try await site.served(expecting: leaf.sha256Hex)
        XCTAssertEqual(served, leaf.sha256Hex)
        XCTAssertFalse(FileManager.default.fileExists(atPath: other + "/example.pem"), "web-2's new files are removed on rollback")

        // Without --follow: the queued deployments, exit 0.
        let queued = try DeployCommand.parse(["example", "--to", "role=web"]).remoteDeploy("example")
        let (queuedStatus, queuedOutput) = await run(server) { try await queued.execute(client: $0, console: $1, printing: .text).status }
        XCTAssertEqual(queuedStatus, 0, queuedOutput.error)
        let queuedLines = queuedOutput.out.split(separator: "\n").map(String.init)
        XCTAssertEqual(queuedLines.count, 2, queuedOutput.out)
        let rolloutID = try XCTUnwrap(queuedLines.first.flatMap { UUID(uuidString: String($0.dropFirst("Rollout ".count).prefix(36))) }, queuedOutput.out)
        XCTAssertEqual(queuedLines.last, "Watch it with `certdeploy rollouts show \(rolloutID.lowercasedText) --follow`, or deploy with --follow.")
        // Let it end before the server stops: web-1 already has the files, web-2 fails again and the rollout halts.
        // `rollouts show --follow` follows it to there and exits with its outcome.
        let show = try RolloutsCommand.Show.parse([rolloutID.lowercasedText, "--follow"])
        let (showStatus, showOutput) = await run(server) { try await show.execute(client: $0, console: $1) }
        XCTAssertEqual(showStatus, 3, showOutput.out + showOutput.error)
        XCTAssertTrue(showOutput.out.contains("stopped      failure budget exceeded"), showOutput.out)
        let final = try await server.request(.GET, "/api/v1/rollouts/\(rolloutID.lowercasedText)").decode(RolloutView.self)
        XCTAssertEqual(final.state, "halted")
        XCTAssertEqual(final.waves.flatMap(\.targets).map(\.status), ["unchanged", "rolled_back"])
    }
}
