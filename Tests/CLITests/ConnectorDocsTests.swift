import Core
import Foundation
import TestSupport
import XCTest

/// The vendor matrix and connector pages in the repository are exactly what the registry generates, and
/// every `tested` vendor row names tests that exist.
final class ConnectorDocsTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testCommittedConnectorDocsAreWhatTheRegistryGenerates() throws {
        let docs = Self.repository.appendingPathComponent("docs/connectors").path
        let run = try ProcessRunner.run(DeployCommandTests.binary, ["connectors", "docs", "--check", "--out", docs])
        XCTAssertEqual(run.status, 0, "regenerate with `swift run certdeploy connectors docs --out docs/connectors`: \(run.stderr)")
    }

    func testDocsCheckFailsWhenAPageDrifts() throws {
        let directory = try TemporaryDirectory(prefix: "certdeploy-docs")
        let write = try ProcessRunner.run(DeployCommandTests.binary, ["connectors", "docs", "--out", directory.path])
        XCTAssertEqual(write.status, 0, write.stderr)
        let page = directory.file("nginx.md")
        var text = try String(contentsOfFile: page, encoding: .utf8)
        text = text.replacingOccurrences(of: "| `keyPath` |", with: "| `keyFile` |")
        try text.write(toFile: page, atomically: true, encoding: .utf8)
        let check = try ProcessRunner.run(DeployCommandTests.binary, ["connectors", "docs", "--check", "--out", directory.path])
        XCTAssertEqual(check.status, 1)
        XCTAssertTrue(check.stderr.contains("nginx.md"), check.stderr)
        // Hand-written text outside the markers survives regeneration.
        try ("# nginx\n\nHand-written intro.\n\n" + ConnectorDocs.beginMarker + "\nstale\n" + ConnectorDocs.endMarker + "\n\nHand-written outro.\n").write(toFile: page, atomically: true, encoding: .utf8)
        _ = try ProcessRunner.run(DeployCommandTests.binary, ["connectors", "docs", "--out", directory.path])
        let regenerated = try String(contentsOfFile: page, encoding: .utf8)
        XCTAssertTrue(regenerated.hasPrefix("# nginx\n\nHand-written intro.\n\n"))
        XCTAssertTrue(regenerated.hasSuffix("\n\nHand-written outro.\n"))
        XCTAssertTrue(regenerated.contains("| `keyPath` |"))
        XCTAssertFalse(regenerated.contains("stale"))
    }

    func testTestedVendorRowsNameTestClassesThatExist() throws {
        let ids = try JSONValue.parse(Data(try ProcessRunner.run(DeployCommandTests.binary, ["connectors", "list", "--output", "json"]).stdout.utf8))
        guard case .array(let list) = ids, !list.isEmpty else { return XCTFail("no connectors listed") }
        for case .string(let id) in list {
            let show = try JSONValue.parse(Data(try ProcessRunner.run(DeployCommandTests.binary, ["connectors", "show", id]).stdout.utf8))
            guard case .array(let rows)? = show["vendorVersions"] else { XCTFail("\(id): no vendorVersions"); continue }
            for row in rows {
                guard row["status"] == .string("tested") else { continue }
                guard case .array(let tests)? = row["tests"], !tests.isEmpty else { XCTFail("\(id): a tested row must name its tests"); continue }
                XCTAssertNotNil(row["testedVersion"].flatMap { $0 == .null ? nil : $0 }, "\(id): a tested row names the version")
                for case .string(let name) in tests {
                    let parts = name.split(separator: ".")
                    XCTAssertEqual(parts.count, 2, "\(id): test name \(name) is Module.Class")
                    let folder = Self.repository.appendingPathComponent("Tests/\(parts[0])")
                    let sources = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
                    let found = try sources.filter { $0.hasSuffix(".swift") }.contains { file in
                        try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8).contains("class \(parts[1]): XCTestCase")
                    }
                    XCTAssertTrue(found, "\(id): tested row names \(name), which does not exist")
                }
            }
        }
    }
}
