import CertdeployAPI
import Core
import Foundation
import ServerTestSupport
import TestSupport
import XCTest

@testable import certdeploy

/// `certdeploy deploy --to … <strategy flags> --follow`, `rollouts`, `windows`, `certs policy` and `push` with an
/// auto-rollout policy, against a real server (in process) and file targets on the real sshd.
final class RolloutCommandTests: XCTestCase {
    func testStagedDeployHaltsOnABadSubsetWaitsForApprovalAndPushRollsOutByPolicy() async throws {
        let site = try NginxSite()
        let fleet = try FileFleet(site: site, count: 6)
        let server = try await startServer()
        let leaf = try site.ca.issueLeaf()
        await assertEqual(try await server.send(.POST, "/api/v1/certificates", json: site.upload(leaf, name: "example")).status, 201)
        for index in fleet.names.indices {
            let created = try await server.send(.POST, "/api/v1/targets", json: fleet.target(index, labels: ["role": "web"], certificate: "example"))
            XCTAssertEqual(created.status, 201, created.text)
        }
        try fleet.setBroken(2, true)

        // Canary file-00, then waves of 2 (file-01 + file-02, which is broken; 03 + 04; 05): the budget of 0 halts it in wave 2.
        let halting = try DeployCommand.parse(["example", "--to", "role=web", "--canary", "1", "--waves", "2", "--failure-budget", "0", "--follow"])
        let (status, output) = await run(server, key: server.deployerKey) { try await halting.remoteDeploy("example").execute(client: $0, console: $1, printing: .text).status }
        XCTAssertEqual(status, 3, output.out + output.error)  // the only failed target was rolled back
        let lines = output.out.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("wave 1/4 (canary) started: 1 target"), output.out)
        XCTAssertTrue(lines.contains("wave 1/4 finished: 1: 1 succeeded"), output.out)
        XCTAssertTrue(lines.contains { $0.hasPrefix("HALTED: failure budget exceeded (0 allowed, 1 failed) in wave 2 of 4: file-02 rolled_back") }, output.out)
        XCTAssertFalse(lines.contains { $0.hasPrefix("wave 3/4 started") }, output.out)
        for index in 3..<6 { XCTAssertEqual(try fleet.certificateFile(index), fleet.oldContent) }
        let rolloutID = try XCTUnwrap(UUID(uuidString: String(lines[0].dropFirst("Rollout ".count).prefix(36))), lines[0])

        // rollouts list / show name the halt; fix, retry, and follow it to the end.
        let (_, listed) = await run(server) { try await RolloutsCommand.List.parse([]).execute(client: $0, console: $1) }
        XCTAssertTrue(listed.out.contains("\(rolloutID.lowercasedText)  example v1   halted"), listed.out)
        let (_, shown) = await run(server) { try await RolloutsCommand.Show.parse([rolloutID.lowercasedText]).execute(client: $0, console: $1) }
        XCTAssertTrue(shown.out.contains("stopped      failure budget exceeded"), shown.out)
        XCTAssertTrue(shown.out.contains("4           file-05  pending"), shown.out)
        try fleet.setBroken(2, false)
        let (retryStatus, retried) = await run(server) { try await RolloutsCommand.Retry.parse([rolloutID.lowercasedText]).execute(client: $0, console: $1) }
        XCTAssertEqual(retryStatus, 0, retried.out + retried.error)
        XCTAssertEqual(retried.out, "Rollout \(rolloutID.lowercasedText): running")
        let (followStatus, followed) = await run(server) { try await RolloutsCommand.Show.parse([rolloutID.lowercasedText, "--follow"]).execute(client: $0, console: $1) }
        XCTAssertEqual(followStatus, 0, followed.out + followed.error)
        for index in 0..<6 { XCTAssertTrue(try fleet.holds(index, leaf)) }
        // An action the state does not allow is the server's 409, exit 2.
        let (pauseStatus, paused) = await run(server) { try await RolloutsCommand.Pause.parse([rolloutID.lowercasedText]).execute(client: $0, console: $1) }
        XCTAssertEqual(pauseStatus, 2)
        XCTAssertTrue(paused.error.contains("is succeeded; pause needs a rollout that is pending, running or waiting for approval"), paused.error)

        // Bad strategy flags are refused before anything is sent.
        XCTAssertThrowsError(try DeployCommand.parse(["example", "--to", "role=web", "--waves", "lots"]).remoteDeploy("example")) { error in
            XCTAssertTrue("\(error)".contains("--waves lots: give a count (10) or a percentage (20%)"), "\(error)")
        }
        XCTAssertThrowsError(try DeployCommand.parse(["example", "--to", "role=web", "--approval", "later"]).remoteDeploy("example"))

        // Windows: a freeze over the fleet holds the next rollout's deployments; removing it lets them run.
        let (addStatus, added) = await run(server) {
            try await WindowsCommand.Add.parse(["xmas", "--selector", "role=web", "--freeze-from", "2020-01-01", "--freeze-until", "2999-12-31"])
                .execute(client: $0, console: $1)
        }
        XCTAssertEqual(addStatus, 0, added.error)
        XCTAssertTrue(added.out.contains("xmas  role=web"), added.out)
        XCTAssertTrue(added.out.contains("in force"), added.out)
        let (badStatus, bad) = await run(server) {
            try await WindowsCommand.Add.parse(["bad", "--selector", "role=web", "--schedule", "Mon-Fri 25:00-26:00"]).execute(client: $0, console: $1)
        }
        XCTAssertEqual(badStatus, 2)
        XCTAssertTrue(bad.error.contains("/schedule"), bad.error)

        // Policy: auto-rollout in waves of 50 %; push without --to uploads and follows the rollout the upload started.
        let (policyStatus, policy) = await run(server) {
            try await CertsCommand.Policy.parse(["example", "--auto-rollout", "--canary", "0", "--waves", "50%"]).execute(client: $0, console: $1)
        }
        XCTAssertEqual(policyStatus, 0, policy.error)
        XCTAssertTrue(policy.out.contains("auto-rollout  on"), policy.out)
        XCTAssertTrue(policy.out.contains("canary 0, waves 50%"), policy.out)
        let renewed = try site.ca.issueLeaf()
        let directory = try TemporaryDirectory(prefix: "certdeploy-push")
        let cert = try directory.write("fullchain.pem", renewed.certificatePEM + site.ca.chainPEM)
        let key = try directory.write("privkey.pem", renewed.privateKeyPKCS8PEM, mode: 0o600)
        let push = try PushCommand.parse(["--cert", cert, "--key", key, "--name", "example", "--follow"])
        let (baseURL, adminKey) = (server.baseURL, server.adminKey)
        let pushTask = Task {
            let captured = CapturedConsole()
            let status = await ClientSession.run(server: baseURL, environment: ["CERTDEPLOY_API_KEY": adminKey], console: captured.console) {
                try await push.execute(client: $0, console: $1)
            }
            return (status: status, output: captured)
        }
        // Frozen: the deployments wait. Remove the freeze; the rollout runs.
        var rollout: RolloutView?
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let page = try await server.request(.GET, "/api/v1/rollouts?state=running").decode(ListResponse<RolloutView>.self)
            if let first = page.items.first, first.certificateVersion == 2, first.counts["waiting_window"] == 3 { rollout = first; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let waiting = try XCTUnwrap(rollout, "the auto-rollout's first wave waits for the freeze")
        XCTAssertEqual(waiting.reason, "auto-rollout of version 2")
        for index in 0..<6 { XCTAssertTrue(try fleet.holds(index, leaf), "frozen: nothing changed") }
        let (removeStatus, _) = await run(server) { try await WindowsCommand.Remove.parse(["xmas"]).execute(client: $0, console: $1) }
        XCTAssertEqual(removeStatus, 0)
        let pushed = await pushTask.value
        XCTAssertEqual(pushed.status, 0, pushed.output.out + pushed.output.error)
        XCTAssertTrue(pushed.output.out.contains("The certificate's policy started rollout \(waiting.id.lowercasedText) to every bound target."), pushed.output.out)
        for index in 0..<6 { XCTAssertTrue(try fleet.holds(index, renewed), fleet.names[index]) }
        let (_, windows) = await run(server) { try await WindowsCommand.List.parse([]).execute(client: $0, console: $1) }
        XCTAssertEqual(windows.out, "NAME  APPLIES TO  RULE  NOW")
    }
}
