import ArgumentParser
import CertdeployAPI
import Foundation

extension TargetsCommand {
    /// `certdeploy targets verify <target>`: a drift check now.
    struct Verify: ClientSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Check now that a target serves what certdeploy deployed (leaf and OCSP staple). Exit status 1 unless in sync.",
            discussion: """
            The server handshakes with the target's verify endpoint and compares the served leaf with the one it last deployed, \
            and the served staple's status and age. States: in_sync, drifted, unreachable, staple_missing, staple_stale, \
            not_deployed, not_verifiable. A target with auto-remediation on is redeployed when drifted.
            """)
        @Argument(help: "Target id or name.") var target: String
        @OptionGroup var options: ClientOptions

        func execute(client: APIClient, console: Console) async throws -> Int32 {
            let status = try await client.verifyTarget(target)
            if options.output == .json {
                try console.json(status)
            } else {
                TargetsCommand.verifyLines(status).forEach(console.line)
            }
            return status.sync == TargetSyncState.inSync.rawValue ? 0 : 1
        }
    }

    /// `sync  drifted: …`, `staple  good (next …): …`.
    static func verifyLines(_ status: TargetStatusView) -> [String] {
        TextTable.columns([
            ["sync", (status.sync ?? "-") + (status.detail.map { ": \($0)" } ?? "")],
            ["served", status.servedSHA256 ?? "-"],
            ["expected", status.expectedSHA256 ?? "-"],
            ["staple", staple(status) + (status.stapleDetail.map { ": \($0)" } ?? "")],
        ])
    }
}
