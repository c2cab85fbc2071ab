import Core
import Foundation
import TestSupport

/// What a server on 127.0.0.1:`port` serves once it has settled: after a reload old and new workers can
/// both answer for a moment, so this waits until `expected` is served three handshakes in a row (with a
/// staple when `requireStaple`), or `timeout` passes, and returns the last handshake seen.
public func servedAfterSettling(
    port: UInt16, expecting expected: String? = nil, requireStaple: Bool = false, serverName: String = "example.test",
    startTLS: StartTLS = .none, timeout: Duration = .seconds(8), host: String = "127.0.0.1"
) async throws -> TLSProbeResult {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    var streak = 0
    var last: TLSProbeResult?
    while true {
        let probe = try? await OpenSSLTLSProber().probe(host: host, port: Int(port), serverName: serverName, requestStaple: true,
                                                        timeout: .seconds(5), startTLS: startTLS)
        if let probe, probe.leafSHA256 == last?.leafSHA256, !requireStaple || probe.stapleDER != nil { streak += 1 } else { streak = probe == nil ? 0 : 1 }
        last = probe ?? last
        if let last, expected == nil || (last.leafSHA256 == expected && streak >= 3 && (!requireStaple || last.stapleDER != nil)) { return last }
        if ContinuousClock.now > deadline {
            guard let last else { throw HarnessError("nothing answered TLS on 127.0.0.1:\(port)") }
            return last
        }
        try await Task.sleep(for: .milliseconds(150))
    }
}
