import CertdeployAPI
import ConnectorTestSupport
import Core
import EnvoyConnector
import Foundation
import HAProxyConnector
import NginxConnector
import Synchronization
import ServerTestSupport
import TestSupport
import XCTest

/// The connectors the watch tests deploy to.
func watchRegistry() throws -> ConnectorRegistry {
    try ConnectorRegistry([NginxConnector.self, HAProxyConnector.self, EnvoyConnector.self])
}

/// Real daemons behind the harness's sshd, each described as the API's `TargetInput`.
extension DeployHarness {
    var sshJSON: JSONValue {
        .object([
            "host": .string(sshd.host), "port": .number(Double(sshd.port)), "user": .string("root"), "privateKey": .string(userKey.privateKeyPEM),
            "hostKeyFingerprint": .string(sshd.hostKeyFingerprint), "connectTimeoutSeconds": .number(5), "commandTimeoutSeconds": .number(20),
        ])
    }

    func upload(_ leaf: TestIssuedCertificate, name: String) -> CertificateUpload {
        CertificateUpload(name: name, certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
    }

    func verifyJSON(port: UInt16) -> JSONValue {
        .object(["host": .string("127.0.0.1"), "port": .number(Double(port)), "serverName": .string("example.test"), "timeoutSeconds": .number(10),
                 "consecutiveMatches": .number(1)])
    }
}

/// An HAProxy serving an old self-signed leaf from its own directory.
final class WatchedHAProxy {
    let directory: TemporaryDirectory
    let haproxy: HAProxyServer
    let pemPath: String

    init() throws {
        try Services.require(["haproxy"])
        directory = try TemporaryDirectory(prefix: "certdeploy-watch-haproxy")
        _ = try directory.makeDirectory("tls", mode: 0o755)
        pemPath = directory.file("tls/site.pem")
        let old = try TestCertificateAuthority.selfSigned(commonName: "old.example.test", dnsNames: ["example.test"])
        _ = try directory.write("tls/site.pem", old.certificatePEM + old.privateKeyPKCS8PEM, mode: 0o600)
        haproxy = try HAProxyServer.start(combinedPEMPath: pemPath, in: directory)
    }

    deinit { haproxy.stop() }

    func target(_ name: String, harness: DeployHarness, certificate: String, hotUpdate: Bool = false) -> TargetInput {
        var config: [String: JSONValue] = [
            "pemPath": .string(pemPath), "configPath": .string(haproxy.confPath),
            "reloadCommand": .array(haproxy.reloadCommand.map(JSONValue.string)),
            "runtimeAPI": .object(["port": .number(Double(haproxy.statsPort))]),
            "verify": harness.verifyJSON(port: haproxy.port),
        ]
        if hotUpdate { config["activation"] = .string("hot-update") }
        return TargetInput(name: name, connector: "haproxy", certificate: certificate, ssh: harness.sshJSON, config: .object(config))
    }

    var staple: Data? { FileManager.default.contents(atPath: pemPath + ".ocsp") }
}

/// Envoy with file-based SDS, starting from an old leaf with a staple.
final class WatchedEnvoy {
    let envoy: EnvoyServer
    let sdsDirectory: String

    init(harness: DeployHarness, policy: String) throws {
        try Services.require([EnvoyServer.binaryPath])
        sdsDirectory = try harness.directory.makeDirectory("sds", mode: 0o755)
        let oldLeaf = try harness.issueLeaf()
        let staple = try harness.fetchStaple(oldLeaf)
        _ = try harness.directory.write("sds/cert-old.pem", oldLeaf.certificatePEM + harness.ca.chainPEM)
        _ = try harness.directory.write("sds/key-old.pem", oldLeaf.privateKeyPKCS8PEM, mode: 0o600)
        _ = FileManager.default.createFile(atPath: sdsDirectory + "/ocsp-old.der", contents: Data(staple.der))
        _ = try harness.directory.write("sds/sds.yaml", """
            resources:
            - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
              name: "server_cert"
              tls_certificate:
                certificate_chain: {filename: "\(sdsDirectory)/cert-old.pem"}
                private_key: {filename: "\(sdsDirectory)/key-old.pem"}
                ocsp_staple: {filename: "\(sdsDirectory)/ocsp-old.der"}

            """)
        envoy = try EnvoyServer.start(sdsDirectory: sdsDirectory, sdsPath: sdsDirectory + "/sds.yaml", watchedDirectory: sdsDirectory,
                                      ocspStaplePolicy: policy, in: harness.directory)
    }

    deinit { envoy.stop() }

    func target(_ name: String, harness: DeployHarness, certificate: String, policy: String) -> TargetInput {
        TargetInput(name: name, connector: "envoy", certificate: certificate, ssh: harness.sshJSON, config: .object([
            "sdsDirectory": .string(sdsDirectory), "validateCommand": .array(envoy.validateCommand.map(JSONValue.string)),
            "verify": harness.verifyJSON(port: envoy.port), "ocspStaplePolicy": .string(policy),
        ]))
    }
}

extension TestServer {
    /// Queues deployments of `certificate` to `targets` and waits for each to end.
    func deployAndWait(_ certificate: String, to targets: [String], file: StaticString = #filePath, line: UInt = #line) async throws -> [DeploymentView] {
        let accepted = try await send(.POST, "/api/v1/deployments", json: DeploymentRequest(certificate: certificate, targets: targets))
        XCTAssertEqual(accepted.status, 202, accepted.text, file: file, line: line)
        var finals: [DeploymentView] = []
        for deployment in try accepted.decode(ListResponse<DeploymentView>.self).items {
            do {
                finals.append(try await waitForDeployment(deployment.id, timeout: .seconds(60)))
            } catch {
                let view = try await request(.GET, "/api/v1/deployments/\(deployment.id.uuidString.lowercased())").decode(DeploymentView.self)
                XCTFail("\(error): \(view.steps.map { "\($0.name.rawValue) \($0.outcome.rawValue) \($0.detail ?? "")" })", file: file, line: line)
                throw error
            }
        }
        return finals
    }

    func deployments(of target: String) async throws -> [DeploymentView] {
        try await request(.GET, "/api/v1/deployments?target=\(target)&limit=500").decode(ListResponse<DeploymentView>.self).items
    }

    func target(_ name: String) async throws -> TargetView {
        try await request(.GET, "/api/v1/targets/\(name)").decode(TargetView.self)
    }

    func audit(_ action: String) async throws -> [AuditEventView] {
        try await request(.GET, "/api/v1/audit?action=\(action)&limit=500").decode(ListResponse<AuditEventView>.self).items
    }
}

/// A thread-safe flag for background loops.
final class StopFlag: Sendable {
    private let box = Mutex(false)
    var isSet: Bool { box.withLock { $0 } }
    func set() { box.withLock { $0 = true } }
}
