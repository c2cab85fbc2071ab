import CertdeployAPI
import Core
import Foundation
import ServerTestSupport
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

@testable import certdeploy

/// The server workflow as a user runs it: the real `certdeploy` binary as a subprocess, with `CERTDEPLOY_URL` and
/// `CERTDEPLOY_API_KEY` pointing at a real certdeploy server (in process), deploying to real nginx behind real sshd.
final class ServerWorkflowTests: XCTestCase {
    var server: TestServer!
    var site: NginxSite!
    var directory: TemporaryDirectory!

    override func setUp() async throws {
        site = try NginxSite()
        directory = try TemporaryDirectory(prefix: "certdeploy-workflow")
        let server = try await TestServer.start(registry: try BuiltinConnectors.registry())
        self.server = server
        addTeardownBlock { await server.stop() }
    }

    /// XCTest keeps test case instances to the end of the run: let nginx and sshd go now.
    override func tearDown() async throws {
        server = nil
        site = nil
        directory = nil
    }

    /// The environment `certdeploy` runs with: the server's URL and a key (the admin's unless told).
    func environment(key: String? = nil, _ extra: [String: String] = [:]) -> [String: String] {
        ["CERTDEPLOY_URL": server.baseURL, "CERTDEPLOY_API_KEY": key ?? server.adminKey, "RENEWED_LINEAGE": ""].merging(extra) { $1 }
    }

    /// Runs `certdeploy` to its end, on a thread of its own (the in-process server keeps the concurrency pool).
    func certdeploy(_ arguments: [String], key: String? = nil, environment extra: [String: String] = [:]) async throws -> ProcessResult {
        let environment = environment(key: key, extra)
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try ProcessRunner.run(DeployCommandTests.binary, arguments, environment: environment, timeout: 180) })
            }.start()
        }
    }

    /// What `certdeploy` printed while it ran, read as it went: each snapshot of stdout that differed from the one
    /// before, then the exit status and the final outputs.
    func certdeployWatchingOutput(_ arguments: [String]) async throws -> (result: ProcessResult, snapshots: [String]) {
        let out = directory.file("watched-\(UUID().uuidString).out")
        let err = directory.file("watched-\(UUID().uuidString).err")
        func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = ([DeployCommandTests.binary] + arguments).map(quote).joined(separator: " ") + " > \(quote(out)) 2> \(quote(err))"
        let pid = try ProcessRunner.spawnBackground("/bin/sh", ["-c", "exec " + command], environment: environment())
        addTeardownBlock { ProcessRunner.terminate(pid: pid) }
        var snapshots: [String] = []
        let deadline = ContinuousClock.now + .seconds(180)
        while true {
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            if text != snapshots.last ?? "" { snapshots.append(text) }
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid {
                let status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
                let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
                if stdout != snapshots.last ?? "" { snapshots.append(stdout) }
                return (ProcessResult(status: status, stdout: stdout, stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""), snapshots)
            }
            guard ContinuousClock.now < deadline else { throw HarnessError("certdeploy \(arguments.joined(separator: " ")) still running after 180 s") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The issue's "done when": add a target from a file, upload a certificate, list and test the target, deploy by
    /// label following the steps, push a renewed certificate, list deployments as JSON; a non-admin key cannot add a
    /// target; certbot's deploy hook (RENEWED_LINEAGE) pushes and deploys.
    func testTheWholeWorkflowThroughTheBinary() async throws {
        // A target file as a user writes it, for `certdeploy targets add`. The reload takes a second, so the steps
        // before it are on screen well before the deploy ends.
        let slowReload: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("sleep 1; exec \(site.nginx.reloadCommand.joined(separator: " "))")])
        let targetFile: JSONValue = .object([
            "name": .string("web-1"), "connector": .string("nginx"), "labels": .object(["role": .string("web")]),
            "ssh": site.ssh(), "config": site.config(["reloadCommand": slowReload]),
        ])
        let targetPath = try directory.write("web-1.json", targetFile.jsonText(), mode: 0o600)
        let added = try await certdeploy(["targets", "add", "--file", targetPath])
        XCTAssertEqual(added.status, 0, "\(added)")
        XCTAssertTrue(added.stdout.hasPrefix("Added target web-1 (nginx, id "), added.stdout)

        let leaf = try site.ca.issueLeaf()
        let certPath = try directory.write("leaf.pem", leaf.certificatePEM)
        let keyPath = try directory.write("leaf.key", leaf.privateKeyPKCS8PEM, mode: 0o600)
        let chainPath = try directory.write("chain.pem", site.ca.chainPEM)
        let uploaded = try await certdeploy(["certs", "upload", "--name", "example", "--cert", certPath, "--key", keyPath, "--chain", chainPath])
        XCTAssertEqual(uploaded.status, 0, "\(uploaded)")
        XCTAssertTrue(uploaded.stdout.hasPrefix("Uploaded example version 1: "), uploaded.stdout)

        let listed = try await certdeploy(["targets", "list"])
        XCTAssertEqual(listed.status, 0, "\(listed)")
        let rows = listed.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(rows.count, 2, listed.stdout)
        let row = Dictionary(zip(rows.first ?? [], rows.last ?? []), uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(row["NAME"], "web-1", listed.stdout)
        XCTAssertEqual(row["CONNECTOR"], "nginx", listed.stdout)
        XCTAssertEqual(row["LABELS"], "role=web", listed.stdout)
        XCTAssertEqual(row["LAST-DEPLOY"], "-", listed.stdout)

        let tested = try await certdeploy(["targets", "test", "web-1"])
        XCTAssertEqual(tested.status, 0, "\(tested)")
        XCTAssertEqual(tested.stdout.split(separator: "\n").last, "ok", tested.stdout)
        XCTAssertTrue(tested.stdout.contains("[ok  ] connect"), tested.stdout)

        // Deploy by label, following: the steps show up while it runs, then the summary.
        let (deployed, snapshots) = try await certdeployWatchingOutput(["deploy", "example", "--to", "role=web", "--follow"])
        XCTAssertEqual(deployed.status, 0, "\(deployed)")
        let lines = deployed.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "Deploying example v1 to 1 target", deployed.stdout)
        for step in ["connect", "write", "validate", "reload", "verify"] {
            XCTAssertEqual(lines.filter { $0.hasPrefix("web-1  [ok  ] \(step) ") }.count, 1, "\(step) once:\n\(deployed.stdout)")
        }
        XCTAssertEqual(Array(lines.suffix(2)).map { $0.split(separator: " ").prefix(2).map(String.init) },
                       [["TARGET", "STATUS"], ["web-1", "succeeded"]], deployed.stdout)
        XCTAssertTrue(snapshots.contains { $0.contains("web-1  [ok  ] write ") && !$0.contains("TARGET") },
                      "steps are printed as they complete, before the summary: \(snapshots)")
        let served = try await site.served(expecting: leaf.sha256Hex)
        XCTAssertEqual(served, leaf.sha256Hex)

        // A renewed certificate: `push` uploads it as the next version and deploys it.
        let renewed = try site.ca.issueLeaf()
        let fullchain = try directory.write("fullchain.pem", renewed.certificatePEM + site.ca.chainPEM)
        let privkey = try directory.write("privkey.pem", renewed.privateKeyPKCS8PEM, mode: 0o600)
        let pushed = try await certdeploy(["push", "--cert", fullchain, "--key", privkey, "--name", "example", "--to", "role=web", "--follow"])
        XCTAssertEqual(pushed.status, 0, "\(pushed)")
        XCTAssertTrue(pushed.stdout.hasPrefix("Uploaded example version 2: "), pushed.stdout)
        XCTAssertTrue(pushed.stdout.contains("Deploying example v2 to 1 target"), pushed.stdout)
        XCTAssertTrue(pushed.stdout.contains("web-1  [ok  ] verify "), pushed.stdout)
        let servedRenewed = try await site.served(expecting: renewed.sha256Hex)
        XCTAssertEqual(servedRenewed, renewed.sha256Hex)
        XCTAssertNotEqual(renewed.sha256Hex, leaf.sha256Hex)

        let deployments = try await certdeploy(["deployments", "list", "--output", "json"])
        XCTAssertEqual(deployments.status, 0, "\(deployments)")
        let list = try JSONDecoder.api.decode(ListResponse<DeploymentView>.self, from: Data(deployments.stdout.utf8))
        XCTAssertEqual(list.items.map { "\($0.certificate) v\($0.certificateVersion) \($0.status)" }, ["example v2 succeeded", "example v1 succeeded"])

        // A key that is not admin may deploy but not add targets: the server's 403 reason, exit 2, the key unprinted.
        let refused = try await certdeploy(["targets", "add", "--file", targetPath, "--name", "web-2"], key: server.deployerKey)
        XCTAssertEqual(refused.status, 2, "\(refused)")
        XCTAssertTrue(refused.stderr.contains("error: creating a target needs an admin API key; \"\(TestServer.deployerName)\" is not admin"), refused.stderr)
        XCTAssertFalse(refused.stderr.contains(server.deployerKey) || refused.stdout.contains(server.deployerKey))
        let targets = try await server.request(.GET, "/api/v1/targets").decode(ListResponse<TargetView>.self)
        XCTAssertEqual(targets.items.map(\.name), ["web-1"])

        // certbot's --deploy-hook: RENEWED_LINEAGE names the live directory; the name comes from the leaf (example.test).
        let lineage = try directory.makeDirectory("live-example.test")
        let hookLeaf = try site.ca.issueLeaf()
        try hookLeaf.certificatePEM.appending(site.ca.chainPEM).write(toFile: lineage + "/fullchain.pem", atomically: true, encoding: .utf8)
        try hookLeaf.privateKeyPKCS8PEM.write(toFile: lineage + "/privkey.pem", atomically: true, encoding: .utf8)
        let hook = try await certdeploy(["push", "--to", "role=web"], environment: ["RENEWED_LINEAGE": lineage])
        XCTAssertEqual(hook.status, 0, "\(hook)")
        XCTAssertTrue(hook.stdout.hasPrefix("Uploaded example.test version 1: "), hook.stdout)
        XCTAssertTrue(hook.stdout.contains("Queued 1 deployment of example.test v1:"), hook.stdout)
        let queued = try await server.request(.GET, "/api/v1/deployments?certificate=example.test").decode(ListResponse<DeploymentView>.self)
        let id = try XCTUnwrap(queued.items.first?.id)
        XCTAssertTrue(hook.stdout.contains(id.uuidString.lowercased()), hook.stdout)
        await assertEqual(try await server.waitForDeployment(id).status, "succeeded")
        let servedHook = try await site.served(expecting: hookLeaf.sha256Hex)
        XCTAssertEqual(servedHook, hookLeaf.sha256Hex)
        for output in [added, uploaded, listed, tested, deployed, pushed, deployments, hook] {
            XCTAssertFalse(output.stdout.contains("PRIVATE KEY") || output.stderr.contains("PRIVATE KEY"))
            XCTAssertFalse(output.stdout.contains(server.adminKey) || output.stderr.contains(server.adminKey))
        }
    }
}
