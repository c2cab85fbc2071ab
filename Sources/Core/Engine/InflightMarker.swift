import Foundation

/// A note the engine leaves on the target while a deploy is between "about to change live files" and "done":
/// written before the first rename, removed once the deploy has ended (succeeded or rolled back).
///
/// Finding one means the last deploy of these files was cut off (the process was killed, the host rebooted,
/// the connection dropped). The files may then match the plan while the vendor never reloaded them, so the next
/// deploy does not trust "files match": it validates, reloads and verifies, and it rolls back to what the target
/// had *before the interrupted attempt*, from the backups this marker names.
struct InflightMarker: Codable, Sendable, Equatable {
    struct Entry: Codable, Sendable, Equatable {
        /// A live path the attempt changes or removes.
        var path: String
        /// The hard link (or copy) of the live file as it was before; nil when the path did not exist.
        var backup: String?
    }

    var format = 1
    var targetID: String
    /// Who is deploying: "<host name> pid <pid>" of the certdeploy process.
    var holder: String = InflightMarker.thisProcess
    /// The leaf the interrupted attempt was deploying.
    var certificateSHA256: String
    var startedAt: Date
    var entries: [Entry]
    /// Temporary files the attempt writes before its renames (left behind if it was killed while writing).
    var temporaries: [String]

    /// A marker younger than this whose writer cannot be seen to be dead belongs to a deploy still running (the
    /// longest a deploy can take: every step's deadline added up, with room to spare).
    static let presumedAliveFor: TimeInterval = 15 * 60

    static var thisProcess: String { "\(ProcessInfo.processInfo.hostName) pid \(ProcessInfo.processInfo.processIdentifier)" }

    /// Whether the deploy that wrote this marker may still be running, as far as this process can tell: its writer
    /// is a live process on this host, or (on another host) the marker is recent.
    func mayBeRunning(now: Date) -> Bool {
        let parts = holder.components(separatedBy: " pid ")
        if parts.count == 2, parts[0] == ProcessInfo.processInfo.hostName, let pid = Int32(parts[1]) {
            return pid != ProcessInfo.processInfo.processIdentifier && (kill(pid, 0) == 0 || errno == EPERM)
        }
        return now.timeIntervalSince(startedAt) < Self.presumedAliveFor
    }

    /// In the directory of the plan's first file, named for the target: the same place for every certificate and
    /// stapling mode of one target (file names may carry a version; the directory does not), and apart from any
    /// other target sharing the directory.
    static func path(for plan: DeploymentPlan, targetID: String) -> String? {
        guard let first = plan.files.first else { return nil }
        let safe = String(targetID.unicodeScalars.prefix(64).map { scalar -> Character in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "-" || scalar == "_") ? Character(scalar) : "_"
        })
        let digest = Checksum.sha256Hex(Data(targetID.utf8)).prefix(8)
        return RemotePath.join(RemotePath.directory(of: first.path), ".certdeploy-inflight-\(safe)-\(digest)")
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    static func decode(_ bytes: [UInt8]) -> InflightMarker? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(InflightMarker.self, from: Data(bytes))
    }

    /// The entries of both, keeping this marker's backup where both name a path (it is the older state).
    func merged(with newer: [Entry]) -> [Entry] {
        let known = Set(entries.map(\.path))
        return entries + newer.filter { !known.contains($0.path) }
    }
}
