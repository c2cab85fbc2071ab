import Core
import Foundation
import TestSupport
import XCTest

/// `certdeploy connectors new` creates a connector module and wires it in with one line per place.
final class ScaffoldTests: XCTestCase {
    func testScaffoldCreatesModuleTestsDocsAndWiresPackageAndRegistry() throws {
        let copy = try TemporaryDirectory(prefix: "certdeploy-scaffold")
        let repository = ConnectorDocsTests.repository
        _ = try copy.makeDirectory("Sources")
        _ = try copy.makeDirectory("Sources/certdeploy")
        for path in ["Package.swift", "Sources/certdeploy/BuiltinConnectors.swift"] {
            try FileManager.default.copyItem(atPath: repository.appendingPathComponent(path).path, toPath: copy.file(path))
        }
        let packageBefore = try String(contentsOfFile: copy.file("Package.swift"), encoding: .utf8)
        let run = try ProcessRunner.run(DeployCommandTests.binary, ["connectors", "new", "Demo", "--root", copy.path])
        XCTAssertEqual(run.status, 0, run.stderr)

        for path in ["Sources/Connectors/Demo/DemoConnector.swift", "Sources/Connectors/Demo/DemoConnector+Config.swift",
                     "Tests/DemoTests/DemoConformanceTests.swift", "docs/connectors/demo.md"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: copy.file(path)), path)
        }
        let package = try String(contentsOfFile: copy.file("Package.swift"), encoding: .utf8)
        let added = package.split(separator: "\n").filter { !packageBefore.split(separator: "\n").contains($0) }
        XCTAssertEqual(added.map { $0.trimmingCharacters(in: .whitespaces) }, [
            #".target(name: "DemoConnector", dependencies: ["Core"], path: "Sources/Connectors/Demo"),"#,
            #""DemoConnector","#,
            #".testTarget(name: "DemoTests", dependencies: ["DemoConnector", "ConnectorTestSupport", "Core", "TestSupport"], path: "Tests/DemoTests"),"#,
        ].sorted { package.range(of: $0)!.lowerBound < package.range(of: $1)!.lowerBound })
        let registry = try String(contentsOfFile: copy.file("Sources/certdeploy/BuiltinConnectors.swift"), encoding: .utf8)
        XCTAssertTrue(registry.contains("import DemoConnector\n"))
        XCTAssertTrue(registry.contains("        DemoConnector.self,\n"))
        // The skeleton plans nothing until its author writes the plan: conformance fails there, not silently.
        let connector = try String(contentsOfFile: copy.file("Sources/Connectors/Demo/DemoConnector.swift"), encoding: .utf8)
        XCTAssertTrue(connector.contains("throw PlanError(\"the demo connector's plan is not written yet"))
        XCTAssertFalse(connector.contains("fatalError"))
        let docs = try String(contentsOfFile: copy.file("docs/connectors/demo.md"), encoding: .utf8)
        XCTAssertTrue(docs.contains(ConnectorDocs.beginMarker) && docs.contains(ConnectorDocs.endMarker))

        let again = try ProcessRunner.run(DeployCommandTests.binary, ["connectors", "new", "Demo", "--root", copy.path])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
        let bad = try ProcessRunner.run(DeployCommandTests.binary, ["connectors", "new", "demo-x", "--root", copy.path])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("UpperCamelCase"), bad.stderr)
    }
}
