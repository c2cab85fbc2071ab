import Core
import Foundation
import TestSupport
import XCTest

/// A network partition during verify: nginx runs in a network namespace reached over a veth pair, and the reload
/// command takes the host's side of the link down right after it reloads, so verify cannot reach the target.
final class NginxPartitionTests: XCTestCase {
    func testAPartitionDuringVerifyRollsBackAndTheTargetServesTheOldLeafOnceItHeals() async throws {
        let namespace = try TestNetworkNamespace()
        defer { namespace.remove() }
        let fixture = try NginxFixture(namespace: namespace)
        let before = try fixture.liveFiles()
        let reachable = try await fixture.servedLeaf()
        XCTAssertEqual(reachable, fixture.oldLeaf.sha256Hex, "reachable through the veth pair")

        let reload = ShellQuoting.commandLine(fixture.nginx.reloadCommand)
        let partitioning = "\(reload) && /usr/sbin/ip link set \(namespace.hostLink) down"
        // `nginx -t` binds the listen address, which only exists inside the namespace.
        let validate = ["/usr/sbin/ip", "netns", "exec", namespace.name] + fixture.nginx.validateCommand
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config(
            ["reloadCommand": .array([.string("/bin/sh"), .string("-c"), .string(partitioning)]), "validateCommand": .array(validate.map(JSONValue.string))],
            verify: ["timeoutSeconds": .number(3)]))
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .verify)
        XCTAssertTrue(result.failure?.message.contains("no handshake completed") ?? false, "\(String(describing: result.failure))")
        let rollback = try XCTUnwrap(step(result, .rollback))
        XCTAssertEqual(rollback.outcome, .warning, "restored, but nobody can be seen to be served: \(rollback.detail ?? "")")
        XCTAssertTrue(rollback.detail?.contains("does not answer, as during verify") ?? false, rollback.detail ?? "")
        XCTAssertEqual(try fixture.liveFiles(), before)

        // The partition heals: clients get exactly the old leaf, as the record says.
        try namespace.setLink(up: true)
        let served = try await fixture.servedLeaf(expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served, fixture.oldLeaf.sha256Hex)
    }
}
