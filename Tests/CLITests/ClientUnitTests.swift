import CertdeployAPI
import Core
import Foundation
import TestSupport
import XCTest

@testable import certdeploy

/// The server client's pure parts: the event-stream parser, `--to` selections, tables, push's inputs, exit statuses.
final class ClientUnitTests: XCTestCase {
    // MARK: Server-Sent Events

    func parse(_ chunks: [String]) -> [ServerSentEvent] {
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        for chunk in chunks { events += parser.feed(Array(chunk.utf8)) }
        return events + parser.finish()
    }

    func testEventsSplitAnywhereParseTheSame() {
        let stream = "event: step\ndata: {\"name\":\"write\"}\n\n: keep-alive\n\nevent: end\r\ndata: {\"status\":\"succeeded\"}\r\n\r\n"
        let expected = [ServerSentEvent(event: "step", data: "{\"name\":\"write\"}"), ServerSentEvent(event: "end", data: "{\"status\":\"succeeded\"}")]
        XCTAssertEqual(parse([stream]), expected)
        // Every split point, including between CR and LF and inside "data:".
        let bytes = Array(stream.utf8)
        for split in 1..<bytes.count {
            var parser = ServerSentEventParser()
            let events = parser.feed(bytes[..<split]) + parser.feed(bytes[split...]) + parser.finish()
            XCTAssertEqual(events, expected, "split at \(split)")
        }
        // One byte at a time.
        var parser = ServerSentEventParser()
        XCTAssertEqual(bytes.flatMap { parser.feed([$0]) }, expected)
    }

    func testMultiLineDataCommentsAndFieldForms() {
        let events = parse([
            ": a comment\n",
            "data: first\ndata:second\ndata:  third has one space kept\ndata\n\n",
            "event:status\ndata:x\n:comment between fields\nretry: 100\nunknown: y\n\n",
        ])
        XCTAssertEqual(events, [
            ServerSentEvent(event: "message", data: "first\nsecond\n third has one space kept\n"),
            ServerSentEvent(event: "status", data: "x"),
        ])
    }

    func testCRLineEndingsIDsAndEventsWithoutData() {
        let events = parse(["\u{FEFF}id: 7\revent: step\r\r", "event: step\rdata: a\r\rdata: b\r", "\n\r\n"])
        // The first block has no data line: nothing is dispatched, and its event name does not leak into the next.
        XCTAssertEqual(events, [ServerSentEvent(event: "step", data: "a", id: "7"), ServerSentEvent(event: "message", data: "b", id: "7")])
    }

    func testEmptyDataLineDispatchesAnEmptyEvent() {
        XCTAssertEqual(parse(["data:\n\n"]), [ServerSentEvent(event: "message", data: "")])
        XCTAssertEqual(parse(["data\n\n"]), [ServerSentEvent(event: "message", data: "")])
    }

    func testIncompleteEventAtEndOfStreamIsDropped() {
        XCTAssertEqual(parse(["event: end\ndata: {}\n"]), [])
        XCTAssertEqual(parse(["event: end\ndata: {}"]), [])
    }

    func testUTF8CharacterSplitAcrossChunks() {
        let bytes = Array("data: größe ✓\n\n".utf8)
        let check = bytes.firstIndex(of: 0xE2)! + 1
        var parser = ServerSentEventParser()
        let events = parser.feed(bytes[..<check]) + parser.feed(bytes[check...])
        XCTAssertEqual(events, [ServerSentEvent(event: "message", data: "größe ✓")])
    }

    func testAsyncSequenceYieldsEventsAsChunksArrive() async throws {
        let (chunks, continuation) = AsyncStream<[UInt8]>.makeStream()
        var iterator = ServerSentEvents(chunks).makeAsyncIterator()
        continuation.yield(Array("event: step\nda".utf8))
        continuation.yield(Array("ta: 1\n\nevent: end\ndata: 2\n".utf8))
        continuation.yield(Array("\n".utf8))
        continuation.yield(Array("data: never closed\n".utf8))
        continuation.finish()
        let first = try await iterator.next()
        XCTAssertEqual(first, ServerSentEvent(event: "step", data: "1"))
        let second = try await iterator.next()
        XCTAssertEqual(second, ServerSentEvent(event: "end", data: "2"))
        let end = try await iterator.next()
        XCTAssertNil(end)
    }

    func testDeploymentEventsDecode() throws {
        let step = StepRecord(name: .write, outcome: .ok, startedAt: Date(timeIntervalSince1970: 1_800_000_000), endedAt: Date(timeIntervalSince1970: 1_800_000_000.04),
                              detail: "3 files written")
        let data = String(decoding: try JSONEncoder.api.encode(step), as: UTF8.self)
        guard case .step(let decoded) = try DeploymentEvent(ServerSentEvent(event: "step", data: data)) else { return XCTFail("not a step") }
        XCTAssertEqual(decoded.name, .write)
        XCTAssertEqual(decoded.outcome, .ok)
        XCTAssertEqual(decoded.detail, "3 files written")
        XCTAssertEqual(try XCTUnwrap(decoded.duration), 0.04, accuracy: 0.001)
        guard case .other = try DeploymentEvent(ServerSentEvent(event: "ping", data: "")) else { return XCTFail("unknown events are kept as other") }
        XCTAssertThrowsError(try DeploymentEvent(ServerSentEvent(event: "end", data: "{")))
    }

    // MARK: Selections and labels

    func testToValuesWithEqualsFormOneSelectorAndOthersAreTargets() throws {
        let selection = try TargetSelection(to: ["role=web", "web-9", "env=prod,tier=edge", "web-9", "role=web"])
        XCTAssertEqual(selection.targets, ["web-9"])
        XCTAssertEqual(selection.selector, "role=web,env=prod,tier=edge")
        XCTAssertEqual(try TargetSelection(to: ["web-1", "3f2c0a4e-0000-4000-8000-000000000000"]).selector, nil)
        XCTAssertEqual(try TargetSelection(to: ["note=a=b"]).selector, "note=a=b")
        for bad in [[], ["=web"], ["role=web,=x"], ["web-1,web-2"], ["role=web", "role=db"], [" "]] {
            XCTAssertThrowsError(try TargetSelection(to: bad), "\(bad)")
        }
    }

    func testLabelFlags() throws {
        XCTAssertEqual(try Labels.dictionary(["role=web", "env=prod", "role=edge", "empty="]), ["role": "edge", "env": "prod", "empty": ""])
        XCTAssertThrowsError(try Labels.dictionary(["role"])) { XCTAssertTrue("\($0)".contains("--label role: expected key=value"), "\($0)") }
        XCTAssertEqual(try Labels.selector(["b=2", "a=1"]), "b=2,a=1")
        XCTAssertNil(try Labels.selector([]))
        XCTAssertEqual(Labels.text(["b": "2", "a": "1"]), "a=1,b=2")
        XCTAssertEqual(Labels.text([:]), "-")
    }

    func testQueryAndPathEncoding() {
        XCTAssertEqual(APIClient.queryValue("role=web,env=prod"), "role%3Dweb,env%3Dprod")
        XCTAssertEqual(APIClient.queryValue("a b&c+d#"), "a%20b%26c%2Bd%23")
        XCTAssertEqual(APIClient.segment("example.com"), "example.com")
        XCTAssertEqual(APIClient.segment("a/b"), "a%2Fb")
    }

    // MARK: Tables

    func testTableAlignsColumnsWithoutTrailingSpaces() {
        XCTAssertEqual(TextTable.render(["NAME", "STATUS", "DETAIL"], [["web-1", "succeeded", ""], ["web-10", "rolled_back", "verify: ✓ differs"]]), [
            "NAME    STATUS       DETAIL",
            "web-1   succeeded",
            "web-10  rolled_back  verify: ✓ differs",
        ])
    }

    func testTargetsTable() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var targets = [
            TargetView(id: UUID(), name: "web-1", connector: "nginx", labels: ["role": "web", "env": "prod"], certificate: "example.com", ssh: nil,
                       kubernetes: nil, config: .object([:]), createdAt: now, updatedAt: now, version: 2,
                       lastDeployment: DeploymentSummary(id: UUID(), status: "succeeded", certificate: "example.com", certificateVersion: 3, finishedAt: now)),
            TargetView(id: UUID(), name: "shop-ingress", connector: "k8s", labels: [:], certificate: nil, ssh: nil, kubernetes: .object([:]),
                       config: .object([:]), createdAt: now, updatedAt: now, version: 1),
        ]
        targets[0].status = TargetStatusView(sync: "drifted", staple: "staple_expiring", stapleNextUpdate: now)
        XCTAssertEqual(TargetsCommand.table(targets), [
            "NAME          CONNECTOR  LABELS             CERTIFICATE  SYNC     STAPLE                                       LAST-DEPLOY",
            "web-1         nginx      env=prod,role=web  example.com  drifted  staple_expiring (next 2027-01-15T08:00:00Z)  succeeded example.com v3 2027-01-15T08:00:00Z",
            "shop-ingress  k8s        -                  -            -        -                                            -",
        ])
    }

    func testTargetTestLines() {
        let report = TargetTestReport(ok: false, checks: [.init(name: "connect", ok: true, detail: "SSH to 10.0.0.5:22"), .init(name: "paths", ok: false, detail: "/etc/x: no such directory")])
        XCTAssertEqual(TargetsCommand.testLines(report), [
            "  [ok  ] connect  SSH to 10.0.0.5:22",
            "  [FAIL] paths    /etc/x: no such directory",
            "not ok: 1 of 2 checks failed",
        ])
    }

    func testDurations() {
        XCTAssertEqual(ClientFormat.duration(0.04), "0.0s")
        XCTAssertEqual(ClientFormat.duration(1.26), "1.3s")
        XCTAssertEqual(ClientFormat.duration(185), "3m05s")
        XCTAssertEqual(ClientFormat.duration(7620), "2h07m")
        XCTAssertEqual(ClientFormat.duration(nil), "-")
    }

    // MARK: Deployment outcomes

    static func deployment(_ target: String, status: String, failure: DeployFailure? = nil, attention: [String]? = nil, seconds: TimeInterval = 1.5,
                           dryRun: Bool = false) -> DeploymentView {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        return DeploymentView(id: UUID(), targetID: UUID(), targetName: target, certificate: "example.com", certificateVersion: 3, status: status,
                              options: .init(dryRun: dryRun ? true : nil), steps: [], failure: failure, attention: attention, statusNote: nil, attempts: 1,
                              createdAt: start, startedAt: start, finishedAt: start.addingTimeInterval(seconds), actor: "ci")
    }

    func testExitStatusIsTheWorstOutcome() {
        XCTAssertEqual(DeploymentReport.exitStatus(statuses: []), 0)
        XCTAssertEqual(DeploymentReport.exitStatus(statuses: ["succeeded", "unchanged"]), 0)
        XCTAssertEqual(DeploymentReport.exitStatus(statuses: ["succeeded", "failed"]), 1)
        XCTAssertEqual(DeploymentReport.exitStatus(statuses: ["succeeded", "cancelled"]), 1)
        XCTAssertEqual(DeploymentReport.exitStatus(statuses: ["interrupted"]), 1)
        XCTAssertEqual(DeploymentReport.exitStatus(statuses: ["running"]), 1)
        XCTAssertEqual(DeploymentReport.exitStatus(statuses: ["rolled_back", "succeeded"]), 3)
        XCTAssertEqual(DeploymentReport.exitStatus(statuses: ["failed", "rolled_back"]), 3)
        XCTAssertEqual(DeploymentReport.exitStatus(statuses: ["rollback_failed", "rolled_back", "failed"]), 4)
    }

    func testSummaryTable() {
        let results = [
            FollowedDeployment(deployment: Self.deployment("web-1", status: "succeeded", seconds: 2.04)),
            FollowedDeployment(deployment: Self.deployment("web-2", status: "rolled_back",
                                                           failure: DeployFailure(targetID: "web-2", step: .verify, message: "the served leaf differs"))),
            FollowedDeployment(deployment: Self.deployment("db", status: "rollback_failed",
                                                           failure: DeployFailure(targetID: "db", step: .rollback, message: "restore failed"),
                                                           attention: ["/etc/ssl/db.pem: backup /etc/ssl/db.pem.certdeploy-bak.1"])),
            FollowedDeployment(deployment: Self.deployment("web-3", status: "running"), error: "lost track of the deployment: connection refused"),
        ]
        XCTAssertEqual(DeploymentReport.summary(results), [
            "TARGET  STATUS           DURATION  DETAIL",
            "web-1   succeeded        2.0s",
            "web-2   rolled_back      1.5s      verify: the served leaf differs",
            "db      rollback_failed  1.5s      rollback: restore failed",
            "web-3   running          1.5s      lost track of the deployment: connection refused",
            "Operator action needed on db:",
            "  - /etc/ssl/db.pem: backup /etc/ssl/db.pem.certdeploy-bak.1",
        ])
    }

    func testStepLinesCarryTheTargetPrefix() {
        let step = StepRecord(name: .reload, outcome: .failed, startedAt: Date(timeIntervalSince1970: 0), endedAt: Date(timeIntervalSince1970: 0.25),
                              detail: "reload failed", command: "nginx -s reload", exitStatus: 1, outputTail: "line 1\nline 2")
        XCTAssertEqual(StepPrinter.text(step, prefix: "web-1  "), """
            web-1  [FAIL] reload    reload failed (250 ms)
                          $ nginx -s reload  → exit 1
                          | line 1
                          | line 2
            """)
        XCTAssertEqual(StepPrinter.text(step)?.split(separator: "\n").first, "  [FAIL] reload    reload failed (250 ms)")
        XCTAssertNil(StepPrinter.text(StepRecord(name: .write)))
    }

    // MARK: Errors

    func testProblemPrintsDetailAndEachFieldAndExitsTwoFor4xx() {
        let problem = Problem(type: "https://certdeploy.dev/problems/invalid-input", title: "Invalid input", status: 422, detail: "the target is not valid",
                              errors: [.init(pointer: "/config/keyPath", detail: "must be an absolute path"), .init(pointer: "/ssh/host", detail: "is required")])
        let error = APIError.problem(problem)
        XCTAssertEqual(error.messageLines, ["error: the target is not valid", "  /config/keyPath: must be an absolute path", "  /ssh/host: is required"])
        XCTAssertEqual(error.exitStatus, 2)
        // A detail that already says it all is not repeated.
        let single = Problem(type: "t", title: "Invalid input", status: 422, detail: "/config/keyPath: must be an absolute path",
                             errors: [.init(pointer: "/config/keyPath", detail: "must be an absolute path")])
        XCTAssertEqual(APIError.problem(single).messageLines, ["error: /config/keyPath: must be an absolute path"])
        XCTAssertEqual(APIError.problem(Problem(type: "t", title: "Internal", status: 500, detail: "boom")).exitStatus, 1)
        XCTAssertEqual(APIError.problem(Problem(type: "t", title: "Unauthorized", status: 401, detail: "no key")).messageLines.last,
                       "hint: set CERTDEPLOY_API_KEY to an API key the server accepts")
        XCTAssertEqual(APIError.unexpectedStatus(status: 404, bodyTail: "nope").exitStatus, 2)
        XCTAssertEqual(APIError.unreachable(url: "http://x", reason: "connection refused", refused: true).exitStatus, 1)
    }

    func testServerURLComesFromFlagThenEnvironmentThenDefault() async throws {
        let fromFlag = try APIClient(server: "http://10.0.0.1:9000/", environment: ["CERTDEPLOY_URL": "http://ignored"])
        XCTAssertEqual(fromFlag.baseURL, "http://10.0.0.1:9000")
        let fromEnvironment = try APIClient(server: nil, environment: ["CERTDEPLOY_URL": "https://certdeploy.internal"])
        XCTAssertEqual(fromEnvironment.baseURL, "https://certdeploy.internal")
        let byDefault = try APIClient(server: nil, environment: [:])
        XCTAssertEqual(byDefault.baseURL, "http://127.0.0.1:8080")
        for client in [fromFlag, fromEnvironment, byDefault] { await client.shutdown() }
        for bad in ["127.0.0.1:8080", "ftp://x", "http://", "http://x?y=1"] {
            XCTAssertThrowsError(try APIClient(server: bad, environment: [:]), bad)
        }
    }

    // MARK: Push inputs

    func testPushFilesFromFlagsOrRenewedLineage() throws {
        XCTAssertEqual(try PushFiles.resolve(cert: "/c.pem", key: "/k.pem", chain: nil, environment: ["RENEWED_LINEAGE": "/etc/letsencrypt/live/x"]),
                       PushFiles(cert: "/c.pem", key: "/k.pem", chain: nil))
        XCTAssertEqual(try PushFiles.resolve(cert: nil, key: nil, chain: nil, environment: ["RENEWED_LINEAGE": "/etc/letsencrypt/live/example.com"]),
                       PushFiles(cert: "/etc/letsencrypt/live/example.com/fullchain.pem", key: "/etc/letsencrypt/live/example.com/privkey.pem", chain: nil))
        XCTAssertThrowsError(try PushFiles.resolve(cert: nil, key: nil, chain: nil, environment: [:])) {
            XCTAssertTrue("\($0)".contains("RENEWED_LINEAGE"), "\($0)")
        }
        XCTAssertThrowsError(try PushFiles.resolve(cert: nil, key: nil, chain: nil, environment: ["RENEWED_LINEAGE": ""]))
        XCTAssertThrowsError(try PushFiles.resolve(cert: "/c.pem", key: nil, chain: nil, environment: ["RENEWED_LINEAGE": "/x"])) {
            XCTAssertTrue("\($0)".contains("give both --cert and --key"), "\($0)")
        }
    }

    func testPushNameFromFirstDNSNameElseCN() throws {
        XCTAssertEqual(CertificateName.sanitize("example.com"), "example.com")
        XCTAssertEqual(CertificateName.sanitize("*.example.com"), "wildcard.example.com")
        XCTAssertEqual(CertificateName.sanitize("2001:db8::1"), "2001_db8__1")
        XCTAssertEqual(CertificateName.sanitize("Büro Server"), "B_ro_Server")
        XCTAssertNil(CertificateName.sanitize("*"))
        XCTAssertEqual(CertificateName.sanitize(String(repeating: "a", count: 200))?.count, 128)
        XCTAssertEqual(CertificateName.commonName("CN=mail.example.com,O=Example\\, Inc.,C=DE"), "mail.example.com")
        XCTAssertEqual(CertificateName.commonName("O=Example\\, Inc.,CN=a\\,b"), "a,b")
        XCTAssertNil(CertificateName.commonName("O=Example"))

        let ca = try TestCertificateAuthority()
        func name(_ options: TestCertificateAuthority.LeafOptions) throws -> String {
            let leaf = try ca.issueLeaf(options)
            let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM + ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
            return try CertificateName.derive(from: bundle.info)
        }
        var options = TestCertificateAuthority.LeafOptions()
        options.commonName = "ignored.example"
        options.dnsNames = ["example.com", "www.example.com"]
        XCTAssertEqual(try name(options), "example.com")
        options.dnsNames = ["*.shop.example"]
        XCTAssertEqual(try name(options), "wildcard.shop.example")
        options.dnsNames = []
        options.commonName = "legacy.example"
        XCTAssertEqual(try name(options), "legacy.example")
        XCTAssertTrue(CertificateName.isValid("example.com"))
        XCTAssertFalse(CertificateName.isValid("example com"))
    }

    // MARK: Target files

    func testTargetFileFlagsWinAndLabelsMerge() throws {
        let file = try TargetInputFile.parse(Data("""
            {"name": "from-file", "connector": "nginx", "labels": {"role": "web", "env": "dev"},
             "ssh": {"host": "10.0.0.5", "user": "deploy", "privateKeyFile": "/etc/certdeploy/id_ed25519", "trustOnFirstUse": true},
             "config": {"certificatePath": "/etc/nginx/c.pem", "keyPath": "/etc/nginx/c.key"}}
            """.utf8), path: "web-1.json")
        let input = try file.input(name: "web-1", connector: nil, labels: ["env": "prod"], certificate: "example.com")
        XCTAssertEqual(input.name, "web-1")
        XCTAssertEqual(input.connector, "nginx")
        XCTAssertEqual(input.labels, ["role": "web", "env": "prod"])
        XCTAssertEqual(input.certificate, "example.com")
        XCTAssertEqual(input.ssh?["host"], .string("10.0.0.5"))
        XCTAssertNil(input.kubernetes)

        let bare = try TargetInputFile.parse(Data(#"{"kubernetes": {"inCluster": true}, "config": {"namespace": "shop"}}"#.utf8), path: "/tmp/shop-ingress.json")
        XCTAssertEqual(try bare.input(name: nil, connector: "k8s", labels: [:], certificate: nil).name, "shop-ingress")
        XCTAssertThrowsError(try bare.input(name: nil, connector: nil, labels: [:], certificate: nil)) {
            XCTAssertTrue("\($0)".contains("--connector"), "\($0)")
        }
    }

    func testTargetFileShapeErrorsNameTheField() {
        let cases: [(String, String)] = [
            (#"{"ssh": {}, "kubernetes": {}, "config": {}}"#, "/kubernetes: give either ssh or kubernetes, not both"),
            (#"{"ssh": {}, "config": {}, "hosts": []}"#, "/hosts: unknown field"),
            (#"{"ssh": {}, "config": {}, "labels": {"a": 1}}"#, "/labels/a: must be a string"),
            (#"{"ssh": "x", "config": {}}"#, "/ssh: must be an object"),
            (#"{"name": 5, "ssh": {}, "config": {}}"#, "/name: must be a string"),
            (#"[1]"#, "must be a JSON object"),
            (#"{"#, "is not valid JSON"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try TargetInputFile.parse(Data(text.utf8), path: "t.json"), text) {
                XCTAssertTrue("\($0)".contains(expected), "\(text): \($0)")
            }
        }
        XCTAssertThrowsError(try TargetInputFile.parse(Data(#"{"config": {}}"#.utf8), path: "t.json").input(name: "a", connector: "nginx", labels: [:], certificate: nil)) {
            XCTAssertTrue("\($0)".contains("/ssh: is required"), "\($0)")
        }
    }

    func testTargetFileAppliedToAStoredTargetReplacesOnlyItsFields() throws {
        var input = TargetInput(name: "web-1", connector: "nginx", labels: ["role": "web"], certificate: "example.com",
                                ssh: .object(["host": .string("10.0.0.5"), "privateKey": .string(redactedPlaceholder)]), config: .object(["a": .number(1)]),
                                version: 4)
        try TargetInputFile.parse(Data(#"{"config": {"a": 2}}"#.utf8), path: "t.json").apply(to: &input)
        XCTAssertEqual(input.config, .object(["a": .number(2)]))
        XCTAssertEqual(input.ssh?["privateKey"], .string(redactedPlaceholder), "secrets not in the file stay as stored")
        XCTAssertEqual(input.labels, ["role": "web"])
        XCTAssertEqual(input.version, 4)
        try TargetInputFile.parse(Data(#"{"kubernetes": {"inCluster": true}}"#.utf8), path: "t.json").apply(to: &input)
        XCTAssertNil(input.ssh)
        XCTAssertEqual(input.kubernetes, .object(["inCluster": .bool(true)]))
    }

    // MARK: Command lines

    func testDeployThroughTheServerBuildsOneRequest() throws {
        let command = try DeployCommand.parse(["example.com", "--to", "role=web", "--to", "web-9", "--to", "env=prod", "--cert-version", "3", "--dry-run",
                                               "--force", "--follow", "--server", "http://10.0.0.1:8080"])
        let request = try command.remoteDeploy("example.com").request
        XCTAssertEqual(request.certificate, "example.com")
        XCTAssertEqual(request.version, 3)
        XCTAssertEqual(request.targets, ["web-9"])
        XCTAssertEqual(request.selector, "role=web,env=prod")
        XCTAssertEqual(request.options?.dryRun, true)
        XCTAssertEqual(request.options?.force, true)
        XCTAssertNil(request.options?.allowMustStapleWithoutStapling)
        XCTAssertTrue(command.follow)
        XCTAssertEqual(command.connection.server, "http://10.0.0.1:8080")
        // The certificate version has its own flag, so `deploy --version` stays the root command's version flag.
        let parsed = try CertdeployCommand.parseAsRoot(["deploy", "example.com", "--to", "web-1", "--cert-version", "2"])
        XCTAssertEqual((parsed as? DeployCommand)?.certificateVersion, 2)
    }

    func testDeployModesAreNotMixed() throws {
        XCTAssertNoThrow(try DeployCommand.parse(["--config", "t.json", "--cert", "c.pem", "--key", "k.pem"]))
        let refused: [([String], String)] = [
            (["example.com"], "--to is required"),
            (["example.com", "--to", "web-1", "--config", "t.json"], "not both"),
            (["example.com", "--to", "web-1", "--cert", "c.pem", "--key", "k.pem"], "--cert, --key: only for a direct deploy"),
            (["--config", "t.json", "--cert", "c.pem"], "missing --key"),
            (["--config", "t.json", "--cert", "c.pem", "--key", "k.pem", "--to", "web-1", "--follow"], "--to, --follow: only for a deploy through the server"),
        ]
        for (arguments, expected) in refused {
            XCTAssertThrowsError(try DeployCommand.parse(arguments), "\(arguments)") { error in
                XCTAssertTrue(DeployCommand.message(for: error).contains(expected), "\(arguments): \(DeployCommand.message(for: error))")
                XCTAssertEqual(DeployCommand.exitCode(for: error).rawValue, 64)
            }
        }
    }

    func testPushNeedsAValidNameAndTargetsOnlyWithoutAutoRollout() {
        // Without --to, push relies on the certificate's auto-rollout policy (checked after the upload).
        XCTAssertNoThrow(try PushCommand.parse(["--cert", "c.pem", "--key", "k.pem"]))
        XCTAssertThrowsError(try PushCommand.parse(["--to", "role=web", "--name", "bad name"]))
        XCTAssertNoThrow(try PushCommand.parse(["--to", "role=web"]))
    }
}
