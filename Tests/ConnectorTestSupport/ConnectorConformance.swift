import Core
import Foundation
import TestSupport
import XCTest

/// The checks every connector must pass, in two parts a connector's tests run with a few lines:
/// `checkStatic` (no daemon: schema, plan purity, modes, stapling rules) and `checkLive` (through the
/// real engine against the real daemon: idempotency, rollback on validate/reload/verify failure, redaction).
public enum ConnectorConformance {
    /// How to drive a live target for `checkLive`.
    public struct LiveTarget {
        /// A working config for the live target, with `overrides` merged at the top level.
        public var config: (_ overrides: [String: JSONValue]) -> JSONValue
        public var deploy: (_ config: JSONValue, _ leaf: TestIssuedCertificate) async throws -> DeploymentResult
        /// The leaf the live target serves now (SHA-256), after it settles on `expected`.
        public var servedLeaf: (_ expected: String) async throws -> String
        public var issueLeaf: () throws -> TestIssuedCertificate
        /// Overrides that make the validate step fail, the reload step fail, and verify fail (nil: the connector has no such step).
        public var failingValidate: [String: JSONValue]?
        public var failingReload: [String: JSONValue]?
        public var failingVerify: [String: JSONValue]?

        public init(config: @escaping ([String: JSONValue]) -> JSONValue,
                    deploy: @escaping (JSONValue, TestIssuedCertificate) async throws -> DeploymentResult,
                    servedLeaf: @escaping (String) async throws -> String,
                    issueLeaf: @escaping () throws -> TestIssuedCertificate,
                    failingValidate: [String: JSONValue]?, failingReload: [String: JSONValue]?, failingVerify: [String: JSONValue]?) {
            self.config = config
            self.deploy = deploy
            self.servedLeaf = servedLeaf
            self.issueLeaf = issueLeaf
            self.failingValidate = failingValidate
            self.failingReload = failingReload
            self.failingVerify = failingVerify
        }
    }

    /// A failing command, for `failingValidate`/`failingReload`.
    public static let failingCommand: JSONValue = .array([.string("/bin/sh"), .string("-c"), .string("echo 'conformance: forced failure' >&2; exit 3")])

    // MARK: Static

    /// Schema, plan purity, file modes and stapling rules; needs no daemon.
    public static func checkStatic<Connector: DeploymentTarget>(_ connector: Connector.Type, file: StaticString = #filePath, line: UInt = #line) throws {
        let descriptor = Connector.descriptor
        let registry = try ConnectorRegistry([connector])
        let registered = try XCTUnwrap(registry.connector(id: descriptor.id), file: file, line: line)

        // Config: the sample validates, its normal form validates to itself, unknown fields are refused by pointer.
        let configured = try registered.configure(descriptor.sampleConfig)
        let again = try registered.configure(configured.normalizedConfig)
        XCTAssertEqual(again.normalizedConfig, configured.normalizedConfig, "\(descriptor.id): normalised config is stable", file: file, line: line)
        guard case .object(var sample) = descriptor.sampleConfig else { return XCTFail("\(descriptor.id): sample config is not an object", file: file, line: line) }
        sample["certdeployUnknownField"] = .string("x")
        XCTAssertThrowsError(try registered.configure(.object(sample)), file: file, line: line) { error in
            let issues = (error as? ConfigError)?.issues ?? []
            XCTAssertTrue(issues.contains { $0.pointer == "/certdeployUnknownField" && $0.message.contains("unknown field") }, "\(descriptor.id): \(error)", file: file, line: line)
        }
        sample.removeValue(forKey: "certdeployUnknownField")
        // Every path field refuses relative, `..` and newline paths.
        for field in descriptor.configFields where field.kind == .absolutePath {
            for bad in ["relative/file.pem", "/etc/../x.pem", "/etc/x\n.pem"] {
                var broken = sample
                broken[field.name] = .string(bad)
                XCTAssertThrowsError(try registered.configure(.object(broken)), "\(descriptor.id): \(field.name) accepted \(bad.debugDescription)", file: file, line: line)
            }
        }
        // Required fields are named when missing.
        for field in descriptor.configFields where field.required {
            var missing = sample
            missing.removeValue(forKey: field.name)
            XCTAssertThrowsError(try registered.configure(.object(missing)), file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains("/\(field.name)"), "\(descriptor.id): \(error)", file: file, line: line)
            }
        }
        // Secret fields are marked write-only in the schema.
        if case .object(let schema) = descriptor.configSchema, case .object(let properties)? = schema["properties"] {
            for field in descriptor.configFields where field.secret {
                XCTAssertEqual(properties[field.name]?["writeOnly"], .bool(true), "\(descriptor.id): \(field.name) is secret", file: file, line: line)
            }
        }

        // Plans: pure (same input, same plan), keys private, stapling per the leaf.
        let ca = try TestCertificateAuthority()
        var withOCSP = TestCertificateAuthority.LeafOptions()
        withOCSP.ocspURL = "http://127.0.0.1:9/ocsp"
        let stapledLeaf = try ca.issueLeaf(withOCSP)
        let plainLeaf = try ca.issueLeaf()
        let context = PlanContext(targetID: "conformance", transportHost: "127.0.0.1", now: Date(timeIntervalSince1970: 1_800_000_000))
        for leaf in [stapledLeaf, plainLeaf] {
            let bundle = try CertificateBundle.parse(certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
            let first = try configured.plan(for: bundle, context: context)
            let second = try configured.plan(for: bundle, context: context)
            XCTAssertEqual(first.files, second.files, "\(descriptor.id): planning is deterministic", file: file, line: line)
            XCTAssertEqual(first.snippets, second.snippets, "\(descriptor.id): snippets are deterministic", file: file, line: line)
            XCTAssertTrue(descriptor.capabilities.staplingModes.contains(first.stapling.mode), "\(descriptor.id): plan uses a declared stapling mode", file: file, line: line)
            for planned in first.files where planned.isSecret {
                XCTAssertEqual(planned.mode.rawValue & 0o007, 0, "\(descriptor.id): \(planned.path) holds a key and must not be world-readable", file: file, line: line)
            }
            for planned in first.files {
                XCTAssertNil(RemotePath.problem(with: planned.path), "\(descriptor.id): planned path \(planned.path)", file: file, line: line)
            }
            if leaf.certificate == plainLeaf.certificate {
                XCTAssertEqual(first.stapling.mode, StaplingDecision.Mode.none, "\(descriptor.id): no OCSP URL, no stapling", file: file, line: line)
                XCTAssertFalse(first.files.contains { $0.role == .staple }, "\(descriptor.id): no staple file without an OCSP URL", file: file, line: line)
            }
            XCTAssertFalse(first.stapling.reason.isEmpty, "\(descriptor.id): every stapling decision says why", file: file, line: line)
        }
    }

    // MARK: Live

    /// Through the real engine against the real daemon: deploy, idempotent redeploy, rollbacks, redaction.
    public static func checkLive(_ target: LiveTarget, id: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        let first = try target.issueLeaf()
        let deployed = try await target.deploy(target.config([:]), first)
        XCTAssertEqual(deployed.outcome, .succeeded, "\(id): \(String(describing: deployed.failure))", file: file, line: line)
        let served = try await target.servedLeaf(first.sha256Hex)
        XCTAssertEqual(served, first.sha256Hex, "\(id): the new leaf is served", file: file, line: line)
        let record = String(decoding: try JSONEncoder().encode(deployed), as: UTF8.self)
        XCTAssertFalse(record.contains("PRIVATE KEY"), "\(id): no key material in the step record", file: file, line: line)

        let again = try await target.deploy(target.config([:]), first)
        XCTAssertEqual(again.outcome, .unchanged, "\(id): a second identical deploy changes nothing", file: file, line: line)
        XCTAssertNil(again.steps.first { $0.name == .write }, "\(id): nothing written the second time", file: file, line: line)

        for (name, overrides, expectedStep) in [("validate", target.failingValidate, StepRecord.Name.validate),
                                                ("reload", target.failingReload, .reload),
                                                ("verify", target.failingVerify, .verify)] {
            guard let overrides else { continue }
            let result = try await target.deploy(target.config(overrides), try target.issueLeaf())
            XCTAssertTrue([.rolledBack, .rollbackFailed].contains(result.outcome), "\(id): \(name) failure rolls back, got \(result.outcome)", file: file, line: line)
            XCTAssertEqual(result.failure?.step, expectedStep, "\(id): failure recorded at \(name)", file: file, line: line)
            if name != "reload" {
                let still = try await target.servedLeaf(first.sha256Hex)
                XCTAssertEqual(still, first.sha256Hex, "\(id): after a \(name) failure the previous leaf is served", file: file, line: line)
            }
        }
    }
}
