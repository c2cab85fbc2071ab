import Core
import Foundation
import TestSupport
import XCTest

/// The client's-eye verify against a real nginx: what a TLS client checks beyond "the new leaf is served" fails the
/// deploy and rolls back, each check named in the verify step.
final class NginxClientChecksTests: XCTestCase {
    func testAMissingIntermediateFailsTheChainCheckAndRollsBack() async throws {
        let fixture = try NginxFixture()
        let before = try fixture.liveFiles()
        // The bundle without its intermediate: nginx serves the leaf alone, which no client can build to the root.
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), withChain: false)
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        XCTAssertEqual(result.failure?.step, .verify)
        let message = result.failure?.message ?? ""
        XCTAssertTrue(message.contains("a client would reject it: chain: no path from the served leaf to a trust anchor in the system trust store"), message)
        XCTAssertTrue(message.contains("the server sent 0 certificate(s) after the leaf"), message)
        XCTAssertEqual(try fixture.liveFiles(), before)
        let served = try await fixture.servedLeaf(expecting: fixture.oldLeaf.sha256Hex)
        XCTAssertEqual(served, fixture.oldLeaf.sha256Hex)

        // Behind a TLS-terminating proxy the chain is not the target's business: `verify.chain: false`.
        let leaf = try fixture.ca.issueLeaf()
        let unchecked = try await fixture.deploy(leaf, config: fixture.config(verify: ["chain": .bool(false)]), withChain: false)
        XCTAssertEqual(unchecked.outcome, .succeeded, "\(unchecked.steps)")
        XCTAssertFalse(step(unchecked, .verify)?.detail?.contains("a client's checks pass") ?? true)
    }

    func testTheServedChainPassesAndTheStepSaysWhatWasChecked() async throws {
        let fixture = try NginxFixture()
        let result = try await fixture.deploy(try fixture.ca.issueLeaf())
        XCTAssertEqual(result.outcome, .succeeded, "\(result.steps)")
        let detail = step(result, .verify)?.detail ?? ""
        XCTAssertTrue(detail.contains("a client's checks pass (chain to the system trust store, name example.test, validity)"), detail)
    }

    func testAnSNINameTheLeafDoesNotCoverFailsTheNameCheck() async throws {
        let fixture = try NginxFixture()
        let before = try fixture.liveFiles()
        // nginx's only server answers any SNI with the new leaf, which is for example.test only.
        let result = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config(verify: ["serverName": .string("www.other.test")]))
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        let message = result.failure?.message ?? ""
        XCTAssertTrue(message.contains("name: the leaf is not valid for www.other.test, the name clients ask for (SNI)"), message)
        XCTAssertFalse(message.contains("chain:"), "the chain itself is fine: \(message)")
        XCTAssertEqual(try fixture.liveFiles(), before)
    }

    func testAPrivatePKIIsTrustedThroughVerifyCABundleOnly() async throws {
        let fixture = try NginxFixture()
        let stranger = try TestCertificateAuthority(name: "Someone Else")
        // The wrong anchors: the chain builds to a root that is not in the bundle.
        let refused = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config(verify: ["caBundle": .string(stranger.root.certificatePEM)]))
        XCTAssertEqual(refused.outcome, .rolledBack, "\(refused.steps)")
        XCTAssertTrue(refused.failure?.message.contains("no path from the served leaf to a trust anchor in verify.caBundle") ?? false, "\(String(describing: refused.failure))")

        let accepted = try await fixture.deploy(try fixture.ca.issueLeaf(), config: fixture.config(verify: ["caBundle": .string(fixture.ca.root.certificatePEM)]))
        XCTAssertEqual(accepted.outcome, .succeeded, "\(accepted.steps)")
        XCTAssertTrue(step(accepted, .verify)?.detail?.contains("chain to verify.caBundle") ?? false)
    }

    func testAnExpiredLeafFailsTheValidityCheck() async throws {
        let fixture = try NginxFixture()
        let leaf = try fixture.ca.issueLeaf()
        // The engine's clock, a year on: the leaf (90 days) has expired by then.
        let later = Date().addingTimeInterval(365 * 86400)
        let result = try await fixture.deploy(leaf, options: DeployOptions(checkOCSP: false, now: { later }))
        XCTAssertEqual(result.outcome, .rolledBack, "\(result.steps)")
        XCTAssertTrue(result.failure?.message.contains("validity: the leaf expired at") ?? false, "\(String(describing: result.failure))")
    }
}
