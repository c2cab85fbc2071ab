import Core
import Foundation
import TestSupport
import XCTest

// MARK: - Test connectors

private func testDescriptor(id: String, fields: [ConfigField] = EchoConnector.fields, sample: JSONValue = EchoConnector.sample) -> ConnectorDescriptor {
    ConnectorDescriptor(
        id: id, displayName: "Test \(id)", summary: "A connector for registry tests.", transport: .ssh, configFields: fields,
        capabilities: .init(atomicFiles: true, validate: false, hotReload: false, staplingModes: [.none], verify: false, rollback: false),
        vendorVersions: [], sampleConfig: sample
    )
}

/// Writes the certificate to `path`; its plan echoes the decoded config so tests can see what was decoded.
private enum EchoConnector: DeploymentTarget {
    struct Config: Codable, Sendable {
        var path: String
        var retries: Int
        var mode: FileMode
        var command: [String]
        var token: String?
        var options: Options

        struct Options: Codable, Sendable {
            var verbose: Bool
            var label: String?
        }
    }

    static let fields: [ConfigField] = [
        ConfigField("path", .absolutePath, required: true, "Where the certificate goes."),
        ConfigField("retries", .integer(minimum: 0, maximum: 9), default: .number(2), "Retries."),
        ConfigField("mode", .fileMode, default: .string("0644"), "Mode."),
        ConfigField("command", .argv, default: .array([.string("true")]), "Command."),
        ConfigField("token", .string, secret: true, "A secret."),
        ConfigField("options", .object([
            ConfigField("verbose", .boolean, default: .bool(false), "Verbose."),
            ConfigField("label", .string, "Label."),
        ]), "Options."),
    ]
    static let sample: JSONValue = .object(["path": .string("/etc/echo/cert.pem")])
    static let descriptor = testDescriptor(id: "echo")

    static func validate(_ config: Config) -> [ConfigIssue] {
        config.retries == 7 ? [ConfigIssue(pointer: "/retries", message: "7 is unlucky")] : []
    }

    static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
        if config.options.label == "fail" { throw PlanError("asked to fail") }
        let summary = "retries=\(config.retries) verbose=\(config.options.verbose) target=\(context.targetID)"
        return DeploymentPlan(
            files: [PlannedFile(path: config.path, text: bundle.fullChainPEM, mode: config.mode, role: .fullChain)],
            reloadCommand: RemoteCommand(config.command),
            stapling: StaplingDecision(mode: .none, reason: "test"),
            notes: [summary]
        )
    }
}

/// Same id as EchoConnector, different type.
private enum EchoTwinConnector: DeploymentTarget {
    typealias Config = EchoConnector.Config
    static let descriptor = testDescriptor(id: "echo")
    static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
        DeploymentPlan(files: [], stapling: StaplingDecision(mode: .none, reason: "test"))
    }
}

private protocol IDOnlyConnector: DeploymentTarget where Config == EchoConnector.Config {}
extension IDOnlyConnector {
    static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
        DeploymentPlan(files: [], stapling: StaplingDecision(mode: .none, reason: "test"))
    }
}

private enum UppercaseIDConnector: IDOnlyConnector { static let descriptor = testDescriptor(id: "Echo") }
private enum EmptyIDConnector: IDOnlyConnector { static let descriptor = testDescriptor(id: "") }
private enum DigitIDConnector: IDOnlyConnector { static let descriptor = testDescriptor(id: "9echo") }
private enum OneLetterIDConnector: IDOnlyConnector { static let descriptor = testDescriptor(id: "e") }
private enum SpaceIDConnector: IDOnlyConnector { static let descriptor = testDescriptor(id: "echo two") }
private enum NewlineIDConnector: IDOnlyConnector { static let descriptor = testDescriptor(id: "echo\n") }
private enum LongIDConnector: IDOnlyConnector { static let descriptor = testDescriptor(id: "e" + String(repeating: "x", count: 32)) }
private enum GoodIDConnector: IDOnlyConnector { static let descriptor = testDescriptor(id: "haproxy-2") }

/// Its sample config misses the required field and has an unknown one.
private enum BadSampleConnector: IDOnlyConnector {
    static let descriptor = testDescriptor(id: "badsample", sample: .object(["pth": .string("/etc/x.pem")]))
}

/// Its sample config passes the schema but not the connector's own semantic check.
private enum UnluckySampleConnector: IDOnlyConnector {
    static func validate(_ config: Config) -> [ConfigIssue] { EchoConnector.validate(config) }
    static let descriptor = testDescriptor(id: "unlucky", sample: .object(["path": .string("/etc/x.pem"), "retries": .number(7)]))
}

// MARK: - Tests

final class ConnectorRegistryTests: XCTestCase {
    private func registryError(_ types: [any DeploymentTarget.Type], file: StaticString = #filePath, line: UInt = #line) -> RegistryError? {
        do {
            let registry = try ConnectorRegistry(types)
            XCTFail("registry accepted \(registry.ids)", file: file, line: line)
            return nil
        } catch let error as RegistryError {
            return error
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    private func configError(_ config: String, file: StaticString = #filePath, line: UInt = #line) throws -> ConfigError? {
        let connector = try XCTUnwrap(ConnectorRegistry([EchoConnector.self]).connector(id: "echo"), file: file, line: line)
        do {
            _ = try connector.configure(JSONValue.parse(Data(config.utf8)))
            XCTFail("config accepted: \(config)", file: file, line: line)
            return nil
        } catch let error as ConfigError {
            return error
        }
    }

    // MARK: Registry

    func testRegistersConnectorsInOrder() throws {
        let registry = try ConnectorRegistry([EchoConnector.self, GoodIDConnector.self])
        XCTAssertEqual(registry.ids, ["echo", "haproxy-2"])
        XCTAssertEqual(registry.connector(id: "haproxy-2")?.descriptor.displayName, "Test haproxy-2")
        XCTAssertNil(registry.connector(id: "nginx"))
        XCTAssertNil(registry.connector(id: "ECHO"))
        XCTAssertEqual(try ConnectorRegistry([]).ids, [])
    }

    func testRefusesDuplicateIDs() {
        XCTAssertTrue(registryError([EchoConnector.self, EchoConnector.self])?.message.contains("registered twice") == true)
        let error = registryError([EchoConnector.self, GoodIDConnector.self, EchoTwinConnector.self])
        XCTAssertTrue(error?.message.contains("\"echo\" is registered twice") == true, error?.message ?? "")
    }

    func testRefusesInvalidIDs() {
        let invalid: [any DeploymentTarget.Type] = [
            UppercaseIDConnector.self, EmptyIDConnector.self, DigitIDConnector.self, OneLetterIDConnector.self,
            SpaceIDConnector.self, NewlineIDConnector.self, LongIDConnector.self,
        ]
        for type in invalid {
            let error = registryError([type])
            XCTAssertTrue(error?.message.contains("is not valid") == true, "\(type): \(error?.message ?? "accepted")")
            // An invalid id anywhere in the list refuses the whole list.
            XCTAssertNotNil(registryError([EchoConnector.self, type]), "\(type)")
        }
    }

    func testRefusesSampleConfigThatFailsItsOwnSchema() {
        let error = registryError([BadSampleConnector.self])
        XCTAssertTrue(error?.message.contains("badsample") == true, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("sample config") == true, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("/path") == true, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("/pth") == true, error?.message ?? "")
    }

    func testRefusesSampleConfigThatFailsSemanticValidation() {
        let error = registryError([EchoConnector.self, UnluckySampleConnector.self])
        XCTAssertTrue(error?.message.contains("unlucky") == true, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("/retries") == true, error?.message ?? "")
    }

    // MARK: configure

    func testConfigureRefusesUnknownFieldsWithPointersAndConnectorID() throws {
        let error = try configError(#"{"path": "/etc/echo/c.pem", "Retries": 3, "options": {"verbos": true}}"#)
        XCTAssertEqual(error?.connectorID, "echo")
        XCTAssertEqual(error?.issues.map(\.pointer).sorted(), ["/Retries", "/options/verbos"])
        XCTAssertTrue(error?.issues.first { $0.pointer == "/Retries" }?.message.contains(#"did you mean "retries""#) == true)
        XCTAssertTrue(error?.description.hasPrefix("echo config: ") == true, error?.description ?? "")
    }

    func testConfigureRefusesBadValues() throws {
        let error = try configError(#"{"path": "relative/c.pem", "retries": 12, "mode": "0900", "command": []}"#)
        XCTAssertEqual(error?.connectorID, "echo")
        XCTAssertEqual(Set(error?.issues.map(\.pointer) ?? []), ["/path", "/retries", "/mode", "/command"])

        let missing = try configError("{}")
        XCTAssertEqual(missing?.issues, [ConfigIssue(pointer: "/path", message: "is required")])
    }

    func testConfigureRunsConnectorValidation() throws {
        let error = try configError(#"{"path": "/etc/echo/c.pem", "retries": 7}"#)
        XCTAssertEqual(error?.connectorID, "echo")
        XCTAssertEqual(error?.issues, [ConfigIssue(pointer: "/retries", message: "7 is unlucky")])
    }

    func testConfigureDecodesDefaults() throws {
        let connector = try XCTUnwrap(ConnectorRegistry([EchoConnector.self]).connector(id: "echo"))
        let configured = try connector.configure(.object(["path": .string("/etc/echo/c.pem")]))
        XCTAssertEqual(configured.descriptor.id, "echo")
        XCTAssertEqual(configured.normalizedConfig, .object([
            "path": .string("/etc/echo/c.pem"),
            "retries": .number(2),
            "mode": .string("0644"),
            "command": .array([.string("true")]),
            "options": .object(["verbose": .bool(false)]),
        ]))

        let ca = try TestCertificateAuthority()
        let leaf = try ca.issueLeaf()
        let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
        let plan = try configured.plan(for: bundle, context: PlanContext(targetID: "t1"))
        XCTAssertEqual(plan.notes, ["retries=2 verbose=false target=t1"])
        XCTAssertEqual(plan.files.map(\.path), ["/etc/echo/c.pem"])
        XCTAssertEqual(plan.files.first?.mode, FileMode(0o644))
        XCTAssertEqual(plan.files.first?.contents, Array(bundle.fullChainPEM.utf8))
        XCTAssertEqual(plan.reloadCommand?.argv, ["true"])

        // Given values are decoded, not defaults.
        let custom = try connector.configure(JSONValue.parse(Data(#"{"path": "/x/c.pem", "retries": 5, "mode": "600", "options": {"verbose": true}}"#.utf8)))
        let customPlan = try custom.plan(for: bundle, context: PlanContext(targetID: "t2"))
        XCTAssertEqual(customPlan.notes, ["retries=5 verbose=true target=t2"])
        XCTAssertEqual(customPlan.files.first?.mode, FileMode(0o600))

        // A PlanError from the connector reaches the caller.
        let failing = try connector.configure(JSONValue.parse(Data(#"{"path": "/x/c.pem", "options": {"label": "fail"}}"#.utf8)))
        XCTAssertThrowsError(try failing.plan(for: bundle, context: PlanContext(targetID: "t3"))) { error in
            XCTAssertEqual((error as? PlanError)?.message, "asked to fail")
        }
    }

    func testDescriptorSchemaMarksSecrets() {
        let schema = EchoConnector.descriptor.configSchema
        XCTAssertEqual(schema["title"], .string("Test echo target config"))
        XCTAssertEqual(schema["required"], .array([.string("path")]))
        XCTAssertEqual(schema["properties"]?["token"]?["writeOnly"], .bool(true))
        XCTAssertNil(schema["properties"]?["path"]?["writeOnly"])
    }

    // MARK: Redactor

    func testRedactorRemovesGivenSecrets() {
        let redactor = Redactor(secrets: ["hunter22", "s3cr3t-token-value"])
        let text = "login with hunter22 then token=s3cr3t-token-value; again hunter22"
        let redacted = redactor.redact(text)
        XCTAssertEqual(redacted, "login with <redacted> then token=<redacted>; again <redacted>")
        XCTAssertEqual(redactor.redact("nothing secret here"), "nothing secret here")
    }

    func testRedactorPrefersLongestSecret() {
        let redactor = Redactor(secrets: ["pass", "password123"])
        XCTAssertEqual(redactor.redact("x password123 y pass"), "x <redacted> y <redacted>")
        XCTAssertFalse(redactor.redact("password123").contains("123"))
    }

    func testRedactorIgnoresTooShortSecrets() {
        // Redacting "a" or "" would mangle every message.
        let redactor = Redactor(secrets: ["", "a", "ab"])
        XCTAssertEqual(redactor.redact("a cab"), "a cab")
    }

    func testRedactorRemovesPEMPrivateKeyBlocks() throws {
        let ca = try TestCertificateAuthority()
        let leaf = try ca.issueLeaf()
        let traditional = try leaf.privateKeyTraditionalPEM()
        let keyBody = String(leaf.privateKeyPKCS8PEM.split(separator: "\n")[1])
        let text = "before\n" + leaf.privateKeyPKCS8PEM + "middle\n" + leaf.certificatePEM + traditional
            + "-----BEGIN ENCRYPTED PRIVATE KEY-----\nQUJD\n-----END ENCRYPTED PRIVATE KEY-----\nafter"
        let redacted = Redactor().redact(text)
        XCTAssertFalse(redacted.contains("PRIVATE KEY"), redacted)
        XCTAssertFalse(redacted.contains(keyBody), redacted)
        XCTAssertFalse(redacted.contains("QUJD"), redacted)
        XCTAssertTrue(redacted.hasPrefix("before\n<redacted>\nmiddle\n"), redacted)
        XCTAssertTrue(redacted.hasSuffix("<redacted>\nafter"), redacted)
        XCTAssertTrue(redacted.contains(leaf.certificatePEM), "certificates are public and stay")
        XCTAssertEqual(redacted.components(separatedBy: Redactor.placeholder).count - 1, 3)
    }

    func testRedactorRemovesUnterminatedKeyToTheEnd() {
        let redacted = Redactor().redact("output: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\ntruncated")
        XCTAssertEqual(redacted, "output: <redacted>")
    }

    // MARK: TargetLocks

    func testLocksSerialiseOneTarget() async throws {
        let locks = TargetLocks()
        let log = EventLog()
        await locks.acquire("web1")
        let held = await locks.isHeld("web1")
        XCTAssertTrue(held)

        let second = Task {
            await locks.acquire("web1")
            await log.append("second acquired")
            await locks.release("web1")
        }
        try await Task.sleep(for: .milliseconds(200))
        let beforeRelease = await log.events
        XCTAssertEqual(beforeRelease, [], "the second caller must wait while the first holds the lock")

        await log.append("first released")
        await locks.release("web1")
        await second.value
        let events = await log.events
        XCTAssertEqual(events, ["first released", "second acquired"])
        let stillHeld = await locks.isHeld("web1")
        XCTAssertFalse(stillHeld)
    }

    func testLocksAreExclusiveUnderContention() async {
        let locks = TargetLocks()
        let log = EventLog()
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    await locks.acquire("shared")
                    await log.append("enter \(worker)")
                    await Task.yield()
                    await log.append("exit \(worker)")
                    await locks.release("shared")
                }
            }
        }
        let events = await log.events
        XCTAssertEqual(events.count, 16)
        // Exclusive: every enter is immediately followed by the same worker's exit.
        for index in stride(from: 0, to: events.count, by: 2) {
            XCTAssertEqual(events[index].replacingOccurrences(of: "enter", with: "exit"), events[index + 1], "\(events)")
        }
        let held = await locks.isHeld("shared")
        XCTAssertFalse(held)
    }

    func testLocksOnDifferentTargetsDoNotBlock() async throws {
        let locks = TargetLocks()
        let log = EventLog()
        await locks.acquire("web1")
        let other = Task {
            await locks.acquire("web2")
            await log.append("web2 acquired")
        }
        // web1 stays held; web2 must still be acquired promptly.
        var acquired = false
        for _ in 0..<200 where !acquired {
            acquired = await log.events == ["web2 acquired"]
            if !acquired { try await Task.sleep(for: .milliseconds(10)) }
        }
        XCTAssertTrue(acquired, "acquiring web2 waited for web1")
        await other.value
        let web1 = await locks.isHeld("web1"), web2 = await locks.isHeld("web2")
        XCTAssertTrue(web1)
        XCTAssertTrue(web2)
        await locks.release("web1")
        await locks.release("web2")
        let afterRelease = await (locks.isHeld("web1"), locks.isHeld("web2"))
        XCTAssertFalse(afterRelease.0)
        XCTAssertFalse(afterRelease.1)
    }
}

private actor EventLog {
    private(set) var events: [String] = []
    func append(_ event: String) { events.append(event) }
}
