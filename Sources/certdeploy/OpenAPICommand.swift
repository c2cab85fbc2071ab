import ArgumentParser
import Foundation
import Server

/// `certdeploy openapi`: print, write or check the OpenAPI document (generated from the registry and the routes).
struct OpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi",
        abstract: "Print the HTTP API's OpenAPI 3.1 document, write it (--out), or check a committed copy (--check)."
    )

    @Option(help: "Write the document to this file instead of printing it.")
    var out: String?

    @Flag(help: "Exit 1 when the file named by --out (default: \(OpenAPIDocument.committedPath)) differs from what this build generates.")
    var check = false

    func run() throws {
        let registry = try BuiltinConnectors.registry()
        let version = CertdeployServer.version
        if check {
            let path = out ?? OpenAPIDocument.committedPath
            guard OpenAPIDocument.check(path: path, registry: registry, version: version) else {
                FileHandle.standardError.write(Data("\(path) is out of date: run `certdeploy openapi --out \(path)`\n".utf8))
                throw ExitCode(1)
            }
            print("\(path) is up to date")
        } else if let out {
            try OpenAPIDocument.write(to: out, registry: registry, version: version)
            print("wrote \(out)")
        } else {
            print(OpenAPIDocument.yaml(registry: registry, version: version), terminator: "")
        }
    }
}
