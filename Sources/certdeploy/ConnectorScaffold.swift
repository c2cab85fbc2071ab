import Foundation

/// `certdeploy connectors new <Name>`: the files a new connector needs, and the three one-line edits
/// that wire it in (Package.swift targets, the executable's dependency, the registry line).
struct ConnectorScaffold {
    let name: String
    let id: String
    let root: URL

    enum Failure: Error, CustomStringConvertible {
        case invalidName(String), exists(String), markerMissing(String, String)
        var description: String {
            switch self {
            case .invalidName(let name): "connector name \"\(name)\" must be UpperCamelCase letters and digits (e.g. Postfix)"
            case .exists(let path): "\(path) already exists; pick another name"
            case .markerMissing(let file, let marker): "\(file) has no `\(marker)` line to insert before"
            }
        }
    }

    init(name: String, root: URL) throws {
        guard name.range(of: "^[A-Z][A-Za-z0-9]{1,30}\\z", options: .regularExpression) != nil else { throw Failure.invalidName(name) }
        self.name = name
        self.id = name.lowercased()
        self.root = root
    }

    /// Writes everything; returns the paths created or changed.
    func run() throws -> [String] {
        let sources = "Sources/Connectors/\(name)"
        let tests = "Tests/\(name)Tests"
        for path in [sources, tests, "docs/connectors/\(id).md"] where FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path) {
            throw Failure.exists(path)
        }
        var touched: [String] = []
        try write("\(sources)/\(name)Connector.swift", connectorSource)
        try write("\(sources)/\(name)Connector+Config.swift", configSource)
        try write("\(tests)/\(name)ConformanceTests.swift", testSource)
        try write("docs/connectors/\(id).md", docsPage)
        touched += ["\(sources)/\(name)Connector.swift", "\(sources)/\(name)Connector+Config.swift", "\(tests)/\(name)ConformanceTests.swift", "docs/connectors/\(id).md"]
        try insert(into: "Package.swift", before: "// scaffold:connector-targets",
                   "        .target(name: \"\(name)Connector\", dependencies: [\"Core\"], path: \"\(sources)\"),\n")
        try insert(into: "Package.swift", before: "// scaffold:connector-tests",
                   "        .testTarget(name: \"\(name)Tests\", dependencies: [\"\(name)Connector\", \"ConnectorTestSupport\", \"Core\", \"TestSupport\"], path: \"\(tests)\"),\n")
        try insert(into: "Package.swift", before: "// scaffold:executable-connectors", "                \"\(name)Connector\",\n")
        try insert(into: "Sources/certdeploy/BuiltinConnectors.swift", before: "// scaffold:imports", "import \(name)Connector\n")
        try insert(into: "Sources/certdeploy/BuiltinConnectors.swift", before: "// scaffold:registry", "        \(name)Connector.self,\n")
        touched += ["Package.swift", "Sources/certdeploy/BuiltinConnectors.swift"]
        return touched
    }

    private func write(_ path: String, _ contents: String) throws {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try contents.write(to: url, atomically: true, encoding: .utf8)
    }

    /// Inserts `text` as whole lines before the line holding `marker`, keeping the marker's indentation.
    private func insert(into path: String, before marker: String, _ text: String) throws {
        let url = root.appendingPathComponent(path)
        let contents = try String(contentsOf: url, encoding: .utf8)
        guard let markerRange = contents.range(of: marker) else { throw Failure.markerMissing(path, marker) }
        let lineStart = contents[..<markerRange.lowerBound].lastIndex(of: "\n").map { contents.index(after: $0) } ?? contents.startIndex
        try (String(contents[..<lineStart]) + text + String(contents[lineStart...])).write(to: url, atomically: true, encoding: .utf8)
    }

    var connectorSource: String {
        """
        import Core
        import Foundation

        /// \(name): TODO — one paragraph: which files this connector writes, which vendor commands check and
        /// activate them, and how stapling works for this vendor.
        public enum \(name)Connector: DeploymentTarget {
            public static let descriptor = ConnectorDescriptor(
                id: "\(id)",
                displayName: "\(name)",
                summary: "TODO: one sentence for `certdeploy connectors list` and the vendor matrix.",
                transport: .ssh,
                configFields: fields,
                capabilities: .init(atomicFiles: true, validate: true, hotReload: false, staplingModes: [.none], verify: true, rollback: true),
                vendorVersions: [
                    // Mark `tested` only once named end-to-end tests run against this exact version.
                    .init(vendor: "\(name)", versionRange: "TODO", testedVersion: nil, status: .untested),
                ],
                sampleConfig: .object([
                    "certificatePath": .string("/etc/\(id)/tls/cert.pem"),
                    "keyPath": .string("/etc/\(id)/tls/key.pem"),
                ])
            )

            public static func validate(_ config: Config) -> [ConfigIssue] {
                ConnectorKit.distinctPaths([("certificatePath", config.certificatePath), ("keyPath", config.keyPath)])
                    + ConnectorKit.keyModeIssues(config.keyMode, group: config.group)
            }

            public static func plan(for bundle: CertificateBundle, config: Config, context: PlanContext) throws(PlanError) -> DeploymentPlan {
                // TODO: describe the files (PlannedFile with path, bytes, mode, role), the validate and reload
                // commands (`ConnectorKit.command(argv, timeoutSeconds: config.commandTimeoutSeconds)`), any snippet, the
                // stapling decision, the verify endpoint, and the activation (`.rename(switching:)` when renaming a file
                // is what makes the vendor switch). No I/O here: the engine acts.
                throw PlanError("the \(id) connector's plan is not written yet (Sources/Connectors/\(name)/\(name)Connector.swift)")
            }
        }

        """
    }

    var configSource: String {
        """
        import Core

        extension \(name)Connector {
            /// A \(name) target's config. Field docs live in ``\(name)Connector/fields``.
            public struct Config: Codable, Sendable, Equatable {
                public var certificatePath: String
                public var keyPath: String
                public var certificateMode: FileMode
                public var keyMode: FileMode
                public var owner: String?
                public var group: String?
                public var validateCommand: [String]?
                public var reloadCommand: [String]?
                public var commandTimeoutSeconds: Int?
                public var verify: ConnectorKit.VerifyConfig
            }

            static let fields: [ConfigField] = [
                ConfigField("certificatePath", .absolutePath, required: true, "TODO: what the vendor reads here (leaf + chain?)."),
                ConfigField("keyPath", .absolutePath, required: true, "TODO: where the vendor reads the private key."),
                ConfigField("certificateMode", .fileMode, default: .string("0644"), "Mode of the certificate file."),
                ConfigField("keyMode", .fileMode, default: .string("0600"), "Mode of the key file: 0600, or 0640 with `group`."),
                ConfigField("owner", .string, "Owner of the written files (needs root or sudo)."),
                ConfigField("group", .string, "Group of the written files."),
                ConfigField("validateCommand", .argv, "TODO: the vendor's config check, as argv."),
                ConfigField("reloadCommand", .argv, "TODO: the vendor's graceful reload, as argv."),
                ConnectorKit.verifyField(),
                ConnectorKit.commandTimeoutField,
            ]
        }

        """
    }

    var testSource: String {
        """
        import ConnectorTestSupport
        import Core
        import Foundation
        import \(name)Connector
        import TestSupport
        import XCTest

        /// The conformance suite every connector passes. The static part needs no daemon; the live part
        /// drives the real \(name) through the real engine over a real sshd (see DeployHarness).
        final class \(name)ConformanceTests: XCTestCase {
            func testStaticConformance() throws {
                try ConnectorConformance.checkStatic(\(name)Connector.self)
            }

            func testLiveConformance() async throws {
                // TODO: start a real \(name) in Tests/TestSupport (see NginxServer.swift for the pattern), then:
                //   let harness = try DeployHarness(prefix: "certdeploy-\(id)")
                //   try await ConnectorConformance.checkLive(.init(config: …, deploy: { try await harness.deploy(\(name)Connector.self, config: $0, leaf: $1) },
                //       servedLeaf: …, issueLeaf: { try harness.issueLeaf() }, failingValidate: …, failingReload: …, failingVerify: …), id: "\(id)")
                XCTFail("the live conformance test for \(id) is not written yet: start a real \(name) and call ConnectorConformance.checkLive")
            }
        }

        """
    }

    var docsPage: String {
        """
        # \(name)

        TODO: what this connector does for \(name), in two or three sentences.

        ## Where the files go

        TODO: which \(name) settings point at the files certdeploy writes.

        <!-- BEGIN GENERATED: reference (certdeploy connectors docs) -->
        <!-- END GENERATED: reference -->

        """
    }
}
