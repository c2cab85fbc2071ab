import Core
import Foundation
import NginxConnector
import TestSupport
import XCTest

private let sharedCA: TestCertificateAuthority = {
    do { return try TestCertificateAuthority() } catch { fatalError("test CA: \(error)") }
}()

/// The nginx connector's plan, without any target: files, modes, commands, snippet, verify endpoint, config checks.
final class NginxPlanTests: XCTestCase {
    private let certificatePath = "/etc/nginx/certs/example.pem"
    private let keyPath = "/etc/nginx/certs/example.key"

    private func bundle(ocspURL: String? = nil, dnsNames: [String] = ["example.test", "www.example.test"]) throws -> CertificateBundle {
        var options = TestCertificateAuthority.LeafOptions()
        options.ocspURL = ocspURL
        options.dnsNames = dnsNames
        let leaf = try sharedCA.issueLeaf(options)
        return try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: sharedCA.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
    }

    /// The config under test: the two required paths plus `extra`, given as JSON members.
    private func configJSON(_ extra: String = "") -> String {
        #"{"certificatePath": "\#(certificatePath)", "keyPath": "\#(keyPath)""# + (extra.isEmpty ? "" : ", " + extra) + "}"
    }

    private func configure(_ json: String) throws -> ConfiguredConnector {
        let registry = try ConnectorRegistry([NginxConnector.self])
        let connector = try XCTUnwrap(registry.connector(id: "nginx"))
        return try connector.configure(JSONValue.parse(Data(json.utf8)))
    }

    private func plan(
        _ json: String, bundle: CertificateBundle, transportHost: String? = "web1.internal"
    ) throws -> DeploymentPlan {
        try configure(json).plan(for: bundle, context: PlanContext(targetID: "web-1", transportHost: transportHost))
    }

    private func configIssues(_ json: String, file: StaticString = #filePath, line: UInt = #line) throws -> [ConfigIssue] {
        do {
            _ = try configure(json)
            XCTFail("config accepted: \(json)", file: file, line: line)
            return []
        } catch let error as ConfigError {
            XCTAssertEqual(error.connectorID, "nginx", file: file, line: line)
            return error.issues
        }
    }

    private func text(_ file: PlannedFile?) -> String? {
        file.map { String(decoding: $0.contents, as: UTF8.self) }
    }

    // MARK: - Registry

    func testSampleConfigValidates() throws {
        let registry = try ConnectorRegistry([NginxConnector.self])
        XCTAssertEqual(registry.ids, ["nginx"])
        let connector = try XCTUnwrap(registry.connector(id: "nginx"))
        let configured = try connector.configure(NginxConnector.descriptor.sampleConfig)
        XCTAssertEqual(configured.normalizedConfig["keyMode"], .string("0600"))
        XCTAssertEqual(configured.normalizedConfig["verify"]?["port"], .number(443))
        // The descriptor's schema covers every field the sample uses.
        guard case .object(let sample) = NginxConnector.descriptor.sampleConfig,
              case .object(let properties) = NginxConnector.descriptor.configSchema["properties"]
        else { return XCTFail("sample or schema is not an object") }
        XCTAssertTrue(Set(sample.keys).isSubset(of: Set(properties.keys)))
        XCTAssertEqual(NginxConnector.descriptor.configSchema["required"], .array([.string("certificatePath"), .string("keyPath")]))
    }

    // MARK: - Files

    func testDefaultFilesAndModes() throws {
        let bundle = try bundle()
        let plan = try plan(configJSON(), bundle: bundle)
        XCTAssertEqual(plan.files.map(\.path), [certificatePath, keyPath])

        let certificate = plan.files[0]
        XCTAssertEqual(certificate.role, .fullChain)
        XCTAssertEqual(certificate.mode, FileMode(0o644))
        XCTAssertEqual(text(certificate), bundle.fullChainPEM)
        XCTAssertTrue(text(certificate)?.contains(sharedCA.intermediate.certificatePEM) == true, "nginx needs the chain in ssl_certificate")
        XCTAssertFalse(certificate.isSecret)
        XCTAssertNil(certificate.owner)
        XCTAssertNil(certificate.group)

        let key = plan.files[1]
        XCTAssertEqual(key.role, .privateKey)
        XCTAssertEqual(key.mode, FileMode(0o600))
        XCTAssertEqual(text(key), bundle.privateKeyPEM)
        XCTAssertTrue(key.isSecret)
    }

    func testChainSnippetOwnerAndGroupFiles() throws {
        let bundle = try bundle()
        let plan = try plan(configJSON(#"""
            "chainPath": "/etc/nginx/certs/chain.pem", "snippetPath": "/etc/nginx/snippets/tls.conf",
            "certificateMode": "0640", "keyMode": "0640", "owner": "root", "group": "www-data"
            """#), bundle: bundle)
        XCTAssertEqual(plan.files.map(\.path), [certificatePath, keyPath, "/etc/nginx/certs/chain.pem", "/etc/nginx/snippets/tls.conf"])
        XCTAssertEqual(plan.files.map(\.role), [.fullChain, .privateKey, .chain, .snippet])
        XCTAssertEqual(plan.files.map(\.mode), [FileMode(0o640), FileMode(0o640), FileMode(0o640), FileMode(0o644)])
        for file in plan.files {
            XCTAssertEqual(file.owner, "root", file.path)
            XCTAssertEqual(file.group, "www-data", file.path)
        }
        XCTAssertEqual(text(plan.files[2]), bundle.chainPEM)
        XCTAssertFalse(text(plan.files[2])?.contains(bundle.leafPEM) == true, "the chain file holds intermediates only")

        XCTAssertEqual(plan.snippets.count, 1)
        let snippet = plan.snippets[0]
        XCTAssertEqual(snippet.path, "/etc/nginx/snippets/tls.conf")
        XCTAssertEqual(text(plan.files[3]), snippet.contents, "the written snippet is the shown snippet")
        XCTAssertTrue(snippet.placement.contains("include /etc/nginx/snippets/tls.conf;"), snippet.placement)
    }

    func testNoSnippetFileWithoutSnippetPath() throws {
        let plan = try plan(configJSON(), bundle: try bundle())
        XCTAssertFalse(plan.files.contains { $0.role == .snippet })
        XCTAssertFalse(plan.files.contains { $0.role == .chain })
        XCTAssertEqual(plan.snippets.count, 1, "the snippet is still shown to the operator")
        XCTAssertNil(plan.snippets.first?.path)
        XCTAssertTrue(plan.snippets.first?.contents.contains("ssl_certificate \(certificatePath);") == true)
        XCTAssertTrue(plan.snippets.first?.contents.contains("ssl_certificate_key \(keyPath);") == true)
    }

    // MARK: - Commands

    func testDefaultCommands() throws {
        let plan = try plan(configJSON(), bundle: try bundle())
        XCTAssertEqual(plan.validateCommand?.argv, ["nginx", "-t"])
        XCTAssertEqual(plan.reloadCommand?.argv, ["nginx", "-s", "reload"])
        XCTAssertEqual(plan.validateCommand?.description, "nginx -t")
    }

    func testCustomCommands() throws {
        let plan = try plan(configJSON(#""validateCommand": ["/usr/sbin/nginx", "-t", "-c", "/etc/nginx/nginx.conf"], "reloadCommand": ["systemctl", "reload", "nginx"]"#),
                            bundle: try bundle())
        XCTAssertEqual(plan.validateCommand?.argv, ["/usr/sbin/nginx", "-t", "-c", "/etc/nginx/nginx.conf"])
        XCTAssertEqual(plan.reloadCommand?.argv, ["systemctl", "reload", "nginx"])
    }

    // MARK: - Snippet and stapling

    func testStaplingDirectivesWhenLeafHasOCSPURL() throws {
        let bundle = try bundle(ocspURL: "http://ocsp.example.test/")
        let plan = try plan(configJSON(#""resolver": ["127.0.0.53", "[::1]:53"]"#), bundle: bundle)
        XCTAssertEqual(plan.stapling.mode, .vendorFetched)
        XCTAssertTrue(plan.stapling.reason.contains("http://ocsp.example.test/"), plan.stapling.reason)
        let lines = plan.snippets[0].contents.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("ssl_stapling on;"), "\(lines)")
        XCTAssertTrue(lines.contains("ssl_stapling_verify on;"), "\(lines)")
        XCTAssertTrue(lines.contains("ssl_trusted_certificate \(certificatePath);"), "\(lines)")
        XCTAssertTrue(lines.contains("resolver 127.0.0.53 [::1]:53;"), "\(lines)")
        XCTAssertFalse(lines.contains { $0.contains("not configured") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("#") && $0.contains(bundle.info.sha256) }, "the snippet names the certificate")
        // Without the root in the bundle, the operator is told what ssl_stapling_verify still needs.
        XCTAssertEqual(plan.notes.count, 1)
        XCTAssertTrue(plan.notes[0].contains("no root certificate"), "\(plan.notes)")
    }

    func testTrustedCertificateUsesChainPathWhenSet() throws {
        let plan = try plan(configJSON(#""chainPath": "/etc/nginx/certs/chain.pem""#), bundle: try bundle(ocspURL: "http://ocsp.example.test/"))
        XCTAssertTrue(plan.snippets[0].contents.contains("ssl_trusted_certificate /etc/nginx/certs/chain.pem;\n"), plan.snippets[0].contents)
    }

    func testNoResolverLineWithoutResolverConfig() throws {
        let plan = try plan(configJSON(), bundle: try bundle(ocspURL: "http://ocsp.example.test/"))
        XCTAssertEqual(plan.stapling.mode, .vendorFetched)
        XCTAssertTrue(plan.snippets[0].contents.contains("ssl_stapling on;"))
        XCTAssertFalse(plan.snippets[0].contents.contains("resolver"), plan.snippets[0].contents)
    }

    func testStaplingOffWritesCommentOnly() throws {
        let plan = try plan(configJSON(#""stapling": "off", "resolver": ["127.0.0.53"]"#), bundle: try bundle(ocspURL: "http://ocsp.example.test/"))
        XCTAssertEqual(plan.stapling.mode, .none)
        XCTAssertFalse(plan.stapling.willStaple)
        let contents = plan.snippets[0].contents
        XCTAssertFalse(contents.contains("ssl_stapling"), contents)
        XCTAssertFalse(contents.contains("ssl_trusted_certificate"), contents)
        XCTAssertFalse(contents.contains("resolver 127.0.0.53"), contents)
        XCTAssertTrue(contents.contains("# OCSP stapling not configured: stapling is turned off"), contents)
        XCTAssertTrue(plan.notes.contains { $0.contains("no stapling directives") }, "\(plan.notes)")
    }

    func testNoOCSPURLWritesCommentOnly() throws {
        let plan = try plan(configJSON(#""resolver": ["127.0.0.53"]"#), bundle: try bundle(ocspURL: nil))
        XCTAssertEqual(plan.stapling.mode, .none)
        let contents = plan.snippets[0].contents
        XCTAssertFalse(contents.contains("ssl_stapling"), contents)
        XCTAssertFalse(contents.contains("resolver"), contents)
        XCTAssertTrue(contents.contains("# OCSP stapling not configured: the certificate has no AIA OCSP URL"), contents)
        XCTAssertTrue(contents.hasSuffix(".\n"), contents)
    }

    // MARK: - Verify endpoint

    func testVerifyDefaults() throws {
        let plan = try plan(configJSON(), bundle: try bundle(dnsNames: ["example.test", "www.example.test"]), transportHost: "web1.internal")
        let verify = try XCTUnwrap(plan.verify)
        XCTAssertEqual(verify.host, "web1.internal")
        XCTAssertEqual(verify.port, 443)
        XCTAssertEqual(verify.serverName, "example.test")
        XCTAssertEqual(verify.deadline, .seconds(20))
        XCTAssertEqual(verify.consecutiveMatches, 3)
    }

    func testVerifyServerNameSkipsWildcard() throws {
        let plan = try plan(configJSON(), bundle: try bundle(dnsNames: ["*.example.test", "api.example.test"]))
        XCTAssertEqual(plan.verify?.serverName, "api.example.test")
    }

    func testVerifyOverrides() throws {
        let plan = try plan(configJSON(#""verify": {"host": "10.0.0.5", "port": 8443, "serverName": "alt.example.test", "timeoutSeconds": 5, "consecutiveMatches": 1}"#),
                            bundle: try bundle(), transportHost: "web1.internal")
        XCTAssertEqual(plan.verify, VerifyEndpoint(host: "10.0.0.5", port: 8443, serverName: "alt.example.test", deadline: .seconds(5), consecutiveMatches: 1))
    }

    func testVerifyDisabled() throws {
        let plan = try plan(configJSON(#""verify": {"enabled": false}"#), bundle: try bundle(), transportHost: nil)
        XCTAssertNil(plan.verify)
    }

    func testVerifyWithoutAnyHostIsPlanError() throws {
        XCTAssertThrowsError(try plan(configJSON(), bundle: try bundle(), transportHost: nil)) { error in
            XCTAssertTrue((error as? PlanError)?.message.contains("verify.host") == true, "\(error)")
        }
        // An explicit verify host is enough.
        XCTAssertEqual(try plan(configJSON(#""verify": {"host": "10.0.0.5"}"#), bundle: try bundle(), transportHost: nil).verify?.host, "10.0.0.5")
    }

    // MARK: - Config checks

    func testWorldReadableKeyModeRefused() throws {
        let issues = try configIssues(configJSON(#""keyMode": "0644""#))
        XCTAssertFalse(issues.isEmpty)
        XCTAssertTrue(issues.allSatisfy { $0.pointer == "/keyMode" }, "\(issues)")
        XCTAssertTrue(issues.contains { $0.message.contains("every user") }, "\(issues)")
        // Even with a group, other-readable stays refused.
        let withGroup = try configIssues(configJSON(#""keyMode": "0644", "group": "www-data""#))
        XCTAssertEqual(withGroup.map(\.pointer), ["/keyMode"])
    }

    func testGroupReadableKeyNeedsGroup() throws {
        let issues = try configIssues(configJSON(#""keyMode": "0640""#))
        XCTAssertEqual(issues.map(\.pointer), ["/keyMode"])
        XCTAssertTrue(issues.first?.message.contains("group") == true, "\(issues)")

        let plan = try plan(configJSON(#""keyMode": "0640", "group": "www-data""#), bundle: try bundle())
        XCTAssertEqual(plan.files.first { $0.role == .privateKey }?.mode, FileMode(0o640))
        XCTAssertEqual(plan.files.first { $0.role == .privateKey }?.group, "www-data")
    }

    func testSamePathForCertificateAndKeyRefused() throws {
        let issues = try configIssues(#"{"certificatePath": "/etc/nginx/certs/a.pem", "keyPath": "/etc/nginx/certs/a.pem"}"#)
        XCTAssertEqual(issues.map(\.pointer), ["/keyPath"])
        XCTAssertTrue(issues.first?.message.contains("certificatePath") == true, "\(issues)")

        let snippetClash = try configIssues(configJSON(#""snippetPath": "\#(certificatePath)""#))
        XCTAssertEqual(snippetClash.map(\.pointer), ["/snippetPath"])
    }

    /// The snippet names the paths unquoted, so a path must not be able to split or extend a directive.
    func testPathsThatWouldBreakTheSnippetAreRefused() throws {
        for bad in ["/etc/nginx/my certs/a.pem", "/etc/nginx/a.pem;ssl_stapling", "/etc/nginx/{a}.pem", "/etc/nginx/$host.pem", "/etc/nginx/a\\b.pem",
                    "/etc/nginx/\"a\".pem", "/etc/nginx/a\tb.pem"] {
            let value = JSONValue.object(["certificatePath": .string("/etc/nginx/ok.pem"), "keyPath": .string("/etc/nginx/ok.key"), "snippetPath": .string(bad)])
            let issues = try configIssues(value.jsonText(pretty: false))
            XCTAssertEqual(issues.map(\.pointer), ["/snippetPath"], "\(bad.debugDescription) → \(issues)")
        }
        let issues = try configIssues(#"{"certificatePath": "/etc/nginx/a b.pem", "keyPath": "/etc/nginx/a;b.key"}"#)
        XCTAssertEqual(issues.map(\.pointer), ["/certificatePath", "/keyPath"])
        // Ordinary punctuation is fine.
        XCTAssertNoThrow(try configure(#"{"certificatePath": "/etc/nginx/certs/example.com_2024-01+v1.pem", "keyPath": "/etc/nginx/certs/example.com@1,x=y.key"}"#))
    }

    func testUnknownFieldRefused() throws {
        let issues = try configIssues(configJSON(#""certPath": "/etc/nginx/certs/x.pem""#))
        XCTAssertEqual(issues.map(\.pointer), ["/certPath"])
        XCTAssertTrue(issues.first?.message.contains("unknown field") == true)

        let nested = try configIssues(configJSON(#""verify": {"Port": 8443}"#))
        XCTAssertEqual(nested.map(\.pointer), ["/verify/Port"])
        XCTAssertTrue(nested.first?.message.contains(#"did you mean "port""#) == true, "\(nested)")
    }

    func testSchemaLevelIssues() throws {
        XCTAssertEqual(try configIssues(#"{"certificatePath": "/etc/nginx/certs/a.pem"}"#).map(\.pointer), ["/keyPath"])
        XCTAssertEqual(try configIssues(#"{"certificatePath": "certs/a.pem", "keyPath": "/etc/a.key"}"#).map(\.pointer), ["/certificatePath"])
        XCTAssertEqual(try configIssues(configJSON(#""stapling": "on""#)).map(\.pointer), ["/stapling"])
        XCTAssertEqual(try configIssues(configJSON(#""reloadCommand": "nginx -s reload""#)).map(\.pointer), ["/reloadCommand"])
        XCTAssertEqual(try configIssues(configJSON(#""verify": {"port": 0}"#)).map(\.pointer), ["/verify/port"])
        XCTAssertEqual(try configIssues(configJSON(#""resolver": ["127.0.0.1; evil"]"#)).map(\.pointer), ["/resolver"])
        XCTAssertEqual(try configIssues(configJSON(#""resolver": [""]"#)).map(\.pointer), ["/resolver"])
    }

    // MARK: - Purity

    func testPlanIsDeterministic() throws {
        let bundle = try bundle(ocspURL: "http://ocsp.example.test/")
        let json = configJSON(#""chainPath": "/etc/nginx/certs/chain.pem", "snippetPath": "/etc/nginx/snippets/tls.conf", "resolver": ["127.0.0.53"]"#)
        let configured = try configure(json)
        let context = PlanContext(targetID: "web-1", transportHost: "web1.internal")
        let first = try configured.plan(for: bundle, context: context)
        let second = try configured.plan(for: bundle, context: context)
        let fresh = try configure(json).plan(for: bundle, context: PlanContext(targetID: "web-1", transportHost: "web1.internal", now: Date().addingTimeInterval(60)))
        for other in [second, fresh] {
            XCTAssertEqual(other.files, first.files)
            XCTAssertEqual(other.files.map(\.contents), first.files.map(\.contents))
            XCTAssertEqual(other.snippets, first.snippets)
            XCTAssertEqual(other.snippets.map(\.contents), first.snippets.map(\.contents))
            XCTAssertEqual(other.validateCommand, first.validateCommand)
            XCTAssertEqual(other.reloadCommand, first.reloadCommand)
            XCTAssertEqual(other.verify, first.verify)
            XCTAssertEqual(other.stapling, first.stapling)
            XCTAssertEqual(other.notes, first.notes)
        }
    }

    func testPlanningTouchesNoFiles() throws {
        let missing = "/tmp/certdeploy-plan-\(UUID().uuidString)"
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing))
        let plan = try plan(#"""
            {"certificatePath": "\#(missing)/certs/a.pem", "keyPath": "\#(missing)/certs/a.key",
             "chainPath": "\#(missing)/certs/chain.pem", "snippetPath": "\#(missing)/snippets/tls.conf"}
            """#, bundle: try bundle())
        XCTAssertEqual(plan.files.count, 4)
        XCTAssertTrue(plan.files.allSatisfy { $0.path.hasPrefix(missing + "/") })
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing), "planning created the target directory locally")
    }
}
