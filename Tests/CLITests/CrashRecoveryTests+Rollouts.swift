import CertdeployAPI
import Core
import Foundation
import ServerTestSupport
import TestSupport
import XCTest

extension CrashRecoveryTests {
    /// The server is SIGKILLed while the second wave of a rollout runs, and started again: the rollout goes on from
    /// the stored state. The canary is not run again, the interrupted wave's deployments resume, the later waves run,
    /// and every target ends with exactly one deployment (a resumed one counts its two attempts).
    func testServerKilledMidWaveFinishesTheRolloutRunningEachChildOnce() async throws {
        let site = try NginxSite()
        let fleet = try FileFleet(site: site, count: 8)
        let key = String((0..<40).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        let port = try FreePort.allocate()
        let data = directory.file("data")
        let first = try serve(port: port, data: data, key: key)
        for index in fleet.names.indices {
            // A slow validate (1 s) keeps the wave's deployments in flight long enough to be caught by the kill.
            let body = String(decoding: try JSONEncoder.api.encode(fleet.target(index, labels: ["fleet": "crash"], validateSeconds: 1)), as: UTF8.self)
            let path = try directory.write("\(fleet.names[index]).json", body, mode: 0o600)
            let added = try client(["targets", "add", "--file", path], port: port, key: key)
            XCTAssertEqual(added.status, 0, "\(added)")
        }
        let leaf = try site.ca.issueLeaf()
        let cert = try directory.write("leaf.pem", leaf.certificatePEM)
        let privateKey = try directory.write("leaf.key", leaf.privateKeyPKCS8PEM, mode: 0o600)
        XCTAssertEqual(try client(["certs", "upload", "--name", "example", "--cert", cert, "--key", privateKey], port: port, key: key).status, 0)
        let started = try client(["deploy", "example", "--to", "fleet=crash", "--canary", "1", "--waves", "4"], port: port, key: key)
        XCTAssertEqual(started.status, 0, "\(started)")
        let rolloutID = try XCTUnwrap(UUID(uuidString: String(started.stdout.dropFirst("Rollout ".count).prefix(36))), started.stdout)

        // Kill it once wave 2 has deployments running.
        func show() throws -> RolloutView {
            let shown = try client(["rollouts", "show", rolloutID.lowercasedText, "--output", "json"], port: port, key: key)
            return try JSONDecoder.api.decode(RolloutView.self, from: Data(shown.stdout.utf8))
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let view = try show()
            if view.currentWave == 2, view.waves[1].targets.contains(where: { $0.status == "running" }) { break }
            guard ContinuousClock.now < deadline else { throw HarnessError("wave 2 never ran: \(view.state) \(view.counts)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(first, SIGKILL)
        var raw: Int32 = 0
        _ = waitpid(first, &raw, 0)
        let killed = try? show()
        XCTAssertNil(killed, "the server is gone")
        for index in 5..<8 { XCTAssertEqual(try fleet.certificateFile(index), fleet.oldContent, "wave 3 had not started: \(fleet.names[index])") }

        _ = try serve(port: port, data: data, key: key)
        let followed = try client(["rollouts", "show", rolloutID.lowercasedText, "--follow"], port: port, key: key)
        XCTAssertEqual(followed.status, 0, "\(followed)")
        let done = try show()
        XCTAssertEqual(done.state, "succeeded")
        XCTAssertEqual(done.counts, ["succeeded": 8])
        let attempts = done.waves.map { $0.targets.map(\.attempts) }
        XCTAssertEqual(attempts[0], [1], "the canary ran once")
        XCTAssertEqual(attempts[2], [1, 1, 1], "the wave after the crash ran once")
        XCTAssertTrue(attempts[1].allSatisfy { (1...2).contains($0) }, "\(attempts[1])")
        XCTAssertTrue(attempts[1].contains(2), "a deployment running at the kill was resumed: \(attempts[1])")
        let listed = try client(["deployments", "list", "--output", "json"], port: port, key: key)
        let deployments = try JSONDecoder.api.decode(ListResponse<DeploymentView>.self, from: Data(listed.stdout.utf8)).items
        XCTAssertEqual(deployments.count, 8, "one deployment per target, none run twice as a new one")
        XCTAssertEqual(Set(deployments.compactMap(\.targetName)).count, 8)
        for index in fleet.names.indices { XCTAssertTrue(try fleet.holds(index, leaf), fleet.names[index]) }
    }
}
