import CertdeployAPI
import Core
import Foundation
import NIOHTTP1
import Server
import ServerTestSupport
import Store
import TestSupport
import XCTest

/// Secrets at rest across restarts: a wrong or missing passphrase refuses to start, rotation re-encrypts everything,
/// and a sealed value moved to another target does not decrypt.
final class ServerSecretsTests: XCTestCase {
    func testPassphraseRulesAtStartAndRotation() async throws {
        let directory = try TemporaryDirectory(prefix: "certdeploy-secrets")
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.dataDirectory = directory.file("data")
        let keys = ["CERTDEPLOY_API_KEYS": "admin:\(TestServer.randomKey()):admin"]
        func make(_ passphrase: String?) async throws -> CertdeployServer {
            var environment = keys
            if let passphrase { environment["CERTDEPLOY_SECRET_KEY"] = passphrase }
            return try await CertdeployServer.make(
                configuration: configuration, registry: try testRegistry(), processEnvironment: environment, openAPIDocument: { "" })
        }
        // First start with a passphrase stores the key record; a certificate key is sealed under it.
        let first = try await make("first passphrase")
        let (ca, leaf) = try standaloneLeaf()
        let site = try NginxSiteInput()
        let target = try await first.store.createTarget(NewTarget(name: "placeholder", connectorID: "nginx"), actor: "test")
        _ = target
        try await first.store.close()

        let server = try await TestServer.start(registry: try testRegistry(), passphrase: "first passphrase") {
            $0.dataDirectory = configuration.dataDirectory
        }
        try await server.upload(CertificateUpload(name: "example", certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM))
        let created = try await server.createTarget(site.target(name: "web-1"))
        await server.stop()

        // Wrong passphrase, or none while secrets are stored: refused, naming the reason.
        for passphrase in ["wrong passphrase", nil] {
            do {
                _ = try await make(passphrase)
                XCTFail("the server started with passphrase \(String(describing: passphrase))")
            } catch let error as ServerStartupError {
                XCTAssertTrue(error.description.contains("CERTDEPLOY_SECRET_KEY"), error.description)
            }
        }

        // Rotation: afterwards only the new passphrase opens the store, and every secret still opens.
        let store = try await SQLiteStore.open(dataDirectory: configuration.dataDirectory)
        let rotated = try await SecretRotation.rotate(store: store, oldPassphrase: "first passphrase", newPassphrase: "second passphrase")
        XCTAssertEqual(rotated, 2, "one certificate key and one target")
        try await store.close()
        do {
            _ = try await make("first passphrase")
            XCTFail("the old passphrase still opens the store")
        } catch is ServerStartupError {}
        let reopened = try await make("second passphrase")
        let record = try await reopened.store.target(id: created.id)
        try await reopened.store.close()
        XCTAssertTrue(record.transportJSON.contains("$sealed"))

        // The secret survived: deploy-time decryption works (the stapling config plans with the stored key).
        let again = try await TestServer.start(registry: try testRegistry(), passphrase: "second passphrase") {
            $0.dataDirectory = configuration.dataDirectory
        }
        addTeardownBlock { await again.stop() }
        var input = site.target(name: "web-1", certificate: "example")
        input.ssh = site.sshWithoutKey(keep: true)
        let rebound = try await again.send(.PUT, "/api/v1/targets/web-1", json: input)
        XCTAssertEqual(rebound.status, 200, rebound.text)
        let stapling = try await again.request(.GET, "/api/v1/targets/web-1/stapling-config")
        XCTAssertEqual(stapling.status, 200, stapling.text)
    }

    func testASealedValueCopiedToAnotherTargetDoesNotOpen() async throws {
        let server = try await TestServer.start(registry: try testRegistry())
        addTeardownBlock { await server.stop() }
        let site = try NginxSiteInput()
        let one = try await server.createTarget(site.target(name: "one"))
        let two = try await server.createTarget(site.target(name: "two"))
        var stolen = try await server.server.store.target(id: two.id)
        stolen.transportJSON = try await server.server.store.target(id: one.id).transportJSON
        _ = try await server.server.store.updateTarget(stolen, actor: "attacker")
        let report = try await server.request(.POST, "/api/v1/targets/two/test").decode(TargetTestReport.self)
        XCTAssertFalse(report.ok)
        XCTAssertEqual(report.checks.first?.name, "config")
        XCTAssertTrue(report.checks.first?.detail.contains("cannot be decrypted") ?? false, "\(report.checks)")
    }
}
