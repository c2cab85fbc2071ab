import ArgumentParser
import Core
import Foundation

/// `certdeploy connectors [list|show <id>]`: what the registry holds.
struct ConnectorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connectors",
        abstract: "List the built-in connectors, or show one's config schema.",
        subcommands: [List.self, Show.self, Docs.self, New.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List connectors.")
        @Option(help: "text or json") var output: String = "text"

        func run() async throws {
            let registry = try BuiltinConnectors.registry()
            if output == "json" {
                print(JSONValue.array(registry.connectors.map { .string($0.descriptor.id) }).jsonText())
                return
            }
            for connector in registry.connectors {
                let descriptor = connector.descriptor
                let versions = descriptor.vendorVersions.map { "\($0.vendor) \($0.versionRange) (\($0.status.rawValue)\($0.testedVersion.map { " on \($0)" } ?? ""))" }
                print("\(descriptor.id.padding(toLength: 10, withPad: " ", startingAt: 0)) \(descriptor.displayName) — \(versions.joined(separator: "; "))")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a connector's descriptor and config schema as JSON.")
        @Argument(help: "Connector id.") var id: String

        func run() async throws {
            let registry = try BuiltinConnectors.registry()
            guard let connector = registry.connector(id: id) else {
                FileHandle.standardError.write(Data("error: unknown connector \"\(id)\"; known: \(registry.ids.joined(separator: ", "))\n".utf8))
                throw ExitCode(2)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            var object: [String: JSONValue] = [:]
            if case .object(let descriptor) = try JSONValue.parse(encoder.encode(connector.descriptor)) { object = descriptor }
            object["configSchema"] = connector.descriptor.configSchema
            print(JSONValue.object(object).jsonText())
        }
    }

    struct Docs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the vendor matrix and each connector page's reference block from the registry.",
            discussion: "Hand-written text outside the generated markers is kept. With --check, nothing is written; the exit status is 1 when a file differs.")
        @Option(help: "Directory of the connector docs.") var out: String = "docs/connectors"
        @Flag(help: "Only check that the files are up to date.") var check = false

        func run() async throws {
            let registry = try BuiltinConnectors.registry()
            let directory = URL(fileURLWithPath: out)
            let files = ConnectorDocs.generate(registry) { name in
                try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            }
            var stale: [String] = []
            for (name, contents) in files.sorted(by: { $0.key < $1.key }) {
                let url = directory.appendingPathComponent(name)
                let current = try? String(contentsOf: url, encoding: .utf8)
                guard current != contents else { continue }
                stale.append(name)
                if !check {
                    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                    try contents.write(to: url, atomically: true, encoding: .utf8)
                }
            }
            if check, !stale.isEmpty {
                FileHandle.standardError.write(Data("out of date (run `certdeploy connectors docs --out \(out)`): \(stale.joined(separator: ", "))\n".utf8))
                throw ExitCode(1)
            }
            print(check ? "connector docs are up to date" : (stale.isEmpty ? "connector docs already up to date" : "wrote \(stale.joined(separator: ", "))"))
        }
    }

    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new connector module wired into the package, the registry, the tests and the docs.",
            discussion: "Creates Sources/Connectors/<Name>, Tests/<Name>Tests (conformance suite), docs/connectors/<id>.md, and adds one line each to Package.swift (targets, executable dependency) and the registry list.")
        @Argument(help: "UpperCamelCase name, e.g. Postfix (the id is its lowercase form).") var name: String
        @Option(help: "Repository root.") var root: String = "."

        func run() async throws {
            do {
                let scaffold = try ConnectorScaffold(name: name, root: URL(fileURLWithPath: root))
                for path in try scaffold.run() { print("wrote \(path)") }
                print("next: fill in the TODOs, then `swift build` and `swift test --filter \(name)Tests`, and `certdeploy connectors docs --out docs/connectors`")
            } catch let failure as ConnectorScaffold.Failure {
                FileHandle.standardError.write(Data("error: \(failure)\n".utf8))
                throw ExitCode(2)
            }
        }
    }
}
