import Core
import Foundation
import Server
import XCTest

@testable import certdeploy

/// `docs/reference/openapi.yaml` is exactly what this executable's server serves at `GET /api/v1/openapi.yaml`:
/// the built-in connectors and this version.
final class OpenAPIDocumentDriftTests: XCTestCase {
    func testCommittedOpenAPIDocumentIsWhatTheServerServes() throws {
        let path = ConnectorDocsTests.repository.appendingPathComponent(OpenAPIDocument.committedPath).path
        let registry = try BuiltinConnectors.registry()
        XCTAssertTrue(
            OpenAPIDocument.check(path: path, registry: registry, version: CertdeployServer.version),
            "\(OpenAPIDocument.committedPath) is stale: regenerate it with `swift run certdeploy openapi --out \(OpenAPIDocument.committedPath)`")
    }

    func testTheDocumentNamesEveryBuiltinConnector() throws {
        let registry = try BuiltinConnectors.registry()
        let yaml = OpenAPIDocument.yaml(registry: registry, version: CertdeployServer.version)
        for id in registry.ids {
            XCTAssertTrue(yaml.contains("- \(id)\n"), "the ConnectorID enum lists \(id)")
        }
    }
}
