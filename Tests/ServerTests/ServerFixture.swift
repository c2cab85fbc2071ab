import CertdeployAPI
import ConnectorTestSupport
import Core
import Foundation
import HAProxyConnector
import NginxConnector
import ServerTestSupport
import TestSupport
import XCTest

/// The connectors these tests register (the executable's full list is tested in CLITests).
func testRegistry() throws -> ConnectorRegistry {
    try ConnectorRegistry([NginxConnector.self, HAProxyConnector.self])
}

extension TestServer {
    /// Creates a target, failing the test with the problem body when it is refused.
    @discardableResult
    func createTarget(_ input: TargetInput, file: StaticString = #filePath, line: UInt = #line) async throws -> TargetView {
        let answer = try await send(.POST, "/api/v1/targets", json: input)
        XCTAssertEqual(answer.status, 201, answer.text, file: file, line: line)
        return try answer.decode(TargetView.self)
    }

    @discardableResult
    func upload(_ upload: CertificateUpload, file: StaticString = #filePath, line: UInt = #line) async throws -> CertificateVersionView {
        let answer = try await send(.POST, "/api/v1/certificates", json: upload)
        XCTAssertEqual(answer.status, 201, answer.text, file: file, line: line)
        return try answer.decode(CertificateVersionView.self)
    }
}

/// A TLS leaf for tests that do not deploy (no daemon needed).
func standaloneLeaf(name: String = "example.test") throws -> (ca: TestCertificateAuthority, leaf: TestIssuedCertificate) {
    let ca = try TestCertificateAuthority()
    var options = TestCertificateAuthority.LeafOptions()
    options.commonName = name
    options.dnsNames = [name]
    return (ca, try ca.issueLeaf(options))
}
