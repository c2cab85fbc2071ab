import Core
import Foundation
import TestSupport

/// The floor every deploy benchmark compares with: one OpenSSH client process per target doing the same file work
/// (`cat > tmp && mv tmp live`, then two no-op commands for validate and reload), `concurrency` at a time,
/// curve25519 key exchange. Returns deploys/s and the sorted latencies (seconds).
func measureSSHFloor(sshd: SSHServer, userKey: SSHUserKey, user: String, directories: [String], payload: Data, concurrency: Int) async throws
    -> (rate: Double, latencies: [Double])
{
    let pool = BlockingPool(threads: concurrency)
    let started = ContinuousClock.now
    var latencies: [Double] = []
    try await withThrowingTaskGroup(of: Double.self) { group in
        var next = 0
        func add(_ index: Int) {
            let directory = directories[index]
            group.addTask {
                try await pool.run {
                    let begin = ContinuousClock.now
                    let result = try ProcessRunner.run("/usr/bin/ssh", [
                        "-i", userKey.privateKeyPath, "-p", String(sshd.port),
                        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                        "-o", "KexAlgorithms=curve25519-sha256", "-o", "LogLevel=ERROR",
                        "\(user)@127.0.0.1", "cat > \(directory)/floor.tmp && mv \(directory)/floor.tmp \(directory)/floor.pem && true && true",
                    ], stdin: payload)
                    guard result.status == 0 else { throw HarnessError("ssh floor failed: \(result.stderr)") }
                    return seconds(ContinuousClock.now - begin)
                }
            }
        }
        while next < min(concurrency, directories.count) { add(next); next += 1 }
        for try await latency in group {
            latencies.append(latency)
            if next < directories.count { add(next); next += 1 }
        }
    }
    return (Double(directories.count) / seconds(ContinuousClock.now - started), latencies.sorted())
}
