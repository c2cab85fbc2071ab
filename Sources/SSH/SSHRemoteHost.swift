import Core
import Foundation

/// ``RemoteHost`` over one SSH session.
///
/// File access, chosen at connect:
/// - **SFTP** (default): stat/read/write with exact mode and fsync, list, unlink over SFTP. Renames go
///   through one `mv -f` exec, because libssh2 1.10 cannot send `posix-rename@openssh.com` and plain
///   SFTP rename refuses to replace an existing file.
/// - **SCP + exec** (server without an SFTP subsystem): upload with SCP, `sync` then `mv` in one exec.
/// - **sudo** (non-root user): upload into a private staging directory, then `sudo -n install` with the
///   final mode/owner, and every command through `sudo -n`.
public final class SSHRemoteHost: RemoteHost {
    enum FileAccess: Sendable, Equatable {
        case sftp
        case exec(upload: Upload, sudo: Bool, staging: String?)
        enum Upload: Sendable, Equatable { case sftp, scp }
    }

    let session: SSHSession
    let access: FileAccess
    let pool: BlockingPool
    let operationTimeout: Duration
    /// The host key the server presented (record it when trusting on first use).
    public let hostKey: PresentedHostKey
    /// How long TCP connect + handshake + auth took.
    public let connectDuration: Duration

    init(session: SSHSession, access: FileAccess, pool: BlockingPool, operationTimeout: Duration, hostKey: PresentedHostKey, connectDuration: Duration) {
        self.session = session
        self.access = access
        self.pool = pool
        self.operationTimeout = operationTimeout
        self.hostKey = hostKey
        self.connectDuration = connectDuration
    }

    public var endpointDescription: String { session.endpoint }

    /// "sftp", "scp", "sudo+sftp", "sudo+scp": which file path this session uses.
    public var fileAccessDescription: String {
        switch access {
        case .sftp: "sftp"
        case .exec(let upload, let sudo, _): (sudo ? "sudo+" : "") + (upload == .sftp ? "sftp" : "scp")
        }
    }

    private var deadline: ContinuousClock.Instant { ContinuousClock.now.advanced(by: operationTimeout) }

    /// Runs a blocking session call on the pool; cancelling the task shuts the socket so the call ends.
    func blocking<T: Sendable>(_ body: @escaping @Sendable (SSHSession) throws -> T) async throws -> T {
        let session = self.session
        return try await withTaskCancellationHandler {
            try await pool.run { try body(session) }
        } onCancel: {
            session.cancel()
        }
    }

    private var sudoPrefix: [String] {
        if case .exec(_, true, _) = access { return ["sudo", "-n", "--"] }
        return []
    }

    /// Runs argv (with sudo when configured), failing with the command's output on a non-zero exit.
    private func checked(_ argv: [String], operation: String, stdoutLimit: Int = 1 << 20) async throws -> CommandResult {
        let commandLine = ShellQuoting.commandLine(sudoPrefix + argv)
        let deadline = self.deadline
        let result = try await blocking { try $0.exec(commandLine, stdoutLimit: stdoutLimit, stdoutMustFit: true, deadline: deadline) }
        guard result.exitStatus == 0 else {
            let output = result.outputTail(limit: 512)
            let code: RemoteError.Code = output.contains("Permission denied") || output.contains("a password is required") ? .permission : .io
            throw RemoteError(code, host: endpointDescription, operation: operation, "`\(ShellQuoting.commandLine(sudoPrefix + argv).prefix(160))` \(result.exitSummary())")
        }
        return result
    }

    // MARK: RemoteHost

    public func readFile(at path: String) async throws -> RemoteFile? {
        let deadline = self.deadline
        switch access {
        case .sftp:
            return try await blocking { session in
                guard let attributes = try session.sftpStat(path, deadline: deadline) else { return nil }
                let contents = try session.sftpRead(path, limit: 16 << 20, deadline: deadline)
                return RemoteFile(contents: contents, mode: FileMode(UInt32(attributes.permissions & 0o7777)),
                                  ownerID: UInt32(attributes.uid), groupID: UInt32(attributes.gid))
            }
        case .exec:
            // One exec: a header line with mode/uid/gid, then the bytes; "absent" when there is no file.
            let script = #"if [ -e "$1" ]; then stat -c '%a %u %g' -- "$1" && exec cat -- "$1"; else echo absent; fi"#
            let result = try await checked(["sh", "-c", script, "sh", path], operation: "read \(path)", stdoutLimit: 16 << 20)
            guard let newline = result.stdout.firstIndex(of: UInt8(ascii: "\n")) else {
                throw RemoteError(.protocolError, host: endpointDescription, operation: "read \(path)", "unexpected output from stat")
            }
            let header = String(decoding: result.stdout[..<newline], as: UTF8.self).split(separator: " ")
            if header == ["absent"] { return nil }
            guard header.count == 3, let mode = UInt32(header[0], radix: 8) else {
                throw RemoteError(.protocolError, host: endpointDescription, operation: "read \(path)", "unexpected stat output \(header)")
            }
            return RemoteFile(contents: Array(result.stdout[(newline + 1)...]), mode: FileMode(mode), ownerID: UInt32(header[1]), groupID: UInt32(header[2]))
        }
    }

    public func writeFile(at path: String, contents: [UInt8], mode: FileMode, owner: String?, group: String?) async throws {
        let deadline = self.deadline
        switch access {
        case .sftp:
            try await blocking { try $0.sftpWrite(path, contents: contents, mode: mode, deadline: deadline) }
            if let ownership = Self.ownership(owner: owner, group: group) {
                _ = try await checked(["chown", ownership, "--", path], operation: "chown \(path)")
            }
        case .exec(let upload, let sudo, let staging):
            if sudo, let staging {
                let staged = staging + "/" + RemotePath.basename(of: path)
                try await uploadBytes(contents, to: staged, mode: .privateKey, via: upload, deadline: deadline)
                var install = ["install", "-m", mode.description]
                if let owner { install += ["-o", owner] }
                if let group { install += ["-g", group] }
                _ = try await checked(install + ["--", staged, path], operation: "install \(path)")
            } else {
                try await uploadBytes(contents, to: path, mode: mode, via: upload, deadline: deadline)
                if let ownership = Self.ownership(owner: owner, group: group) {
                    _ = try await checked(["chown", ownership, "--", path], operation: "chown \(path)")
                }
            }
        }
    }

    private func uploadBytes(_ contents: [UInt8], to path: String, mode: FileMode, via upload: FileAccess.Upload, deadline: ContinuousClock.Instant) async throws {
        switch upload {
        case .sftp: try await blocking { try $0.sftpWrite(path, contents: contents, mode: mode, deadline: deadline) }
        case .scp: try await blocking { try $0.scpUpload(contents, to: path, mode: mode, deadline: deadline) }
        }
    }

    private static func ownership(owner: String?, group: String?) -> String? {
        switch (owner, group) {
        case (nil, nil): nil
        case (let owner?, nil): owner
        case (nil, let group?): ":" + group
        case (let owner?, let group?): owner + ":" + group
        }
    }

    public func move(_ moves: [FileMove]) async throws {
        guard !moves.isEmpty else { return }
        // Paths travel as positional arguments, never inside the script text.
        var script: [String] = []
        var arguments: [String] = []
        if case .exec(.scp, false, _) = access {
            // SCP has no fsync: flush the uploaded temp files before they replace live ones.
            let count = moves.count
            script.append("sync -- " + (1...count).map { "\"$\($0)\"" }.joined(separator: " "))
            arguments += moves.map(\.from) + moves.map(\.to)
            script += moves.indices.map { Self.rename("$\($0 + 1)", "$\(count + $0 + 1)") }
        } else {
            for (index, move) in moves.enumerated() {
                arguments += [move.from, move.to]
                script.append(Self.rename("$\(2 * index + 1)", "$\(2 * index + 2)"))
            }
        }
        _ = try await checked(["sh", "-c", script.joined(separator: " && "), "sh"] + arguments, operation: "rename into place")
    }

    /// One rename in shell. When `from` is already a link to the same file as `to` (a rollback restoring a path that
    /// was never replaced), rename(2) would leave both names and GNU mv refuses: removing `from` gives the same end.
    private static func rename(_ from: String, _ to: String) -> String {
        "if [ \"\(from)\" -ef \"\(to)\" ]; then rm -f -- \"\(from)\"; else mv -f -- \"\(from)\" \"\(to)\"; fi"
    }

    public func link(_ links: [FileMove]) async throws {
        guard !links.isEmpty else { return }
        // One exec for every link; paths travel as positional arguments, never inside the script text.
        let script = links.indices.map { "ln -f -- \"$\(2 * $0 + 1)\" \"$\(2 * $0 + 2)\"" }.joined(separator: " && ")
        _ = try await checked(["sh", "-c", script, "sh"] + links.flatMap { [$0.from, $0.to] }, operation: "hard-link backups")
    }

    public func removeFiles(_ paths: [String]) async throws {
        guard !paths.isEmpty else { return }
        switch access {
        case .sftp:
            let deadline = self.deadline
            try await blocking { session in
                for path in paths { try session.sftpUnlink(path, deadline: deadline) }
            }
        case .exec:
            _ = try await checked(["rm", "-f", "--"] + paths, operation: "remove")
        }
    }

    public func listDirectory(_ path: String) async throws -> [RemoteDirectoryEntry] {
        switch access {
        case .sftp:
            let deadline = self.deadline
            return try await blocking { try $0.sftpList(path, deadline: deadline) }
        case .exec:
            let result = try await checked(["find", path, "-mindepth", "1", "-maxdepth", "1", "-printf", "%T@ %f\\n"], operation: "list \(path)")
            return String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").compactMap { line in
                guard let space = line.firstIndex(of: " "), let seconds = Double(line[..<space]) else { return nil }
                return RemoteDirectoryEntry(name: String(line[line.index(after: space)...]), modified: Date(timeIntervalSince1970: seconds))
            }
        }
    }

    public func exchange(host: String, port: Int, payload: [UInt8], timeout: Duration) async throws -> [UInt8] {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        return try await blocking { try $0.exchange(host: host, port: port, payload: payload, limit: 1 << 20, deadline: deadline) }
    }

    public func run(_ argv: [String], timeout: Duration) async throws -> CommandResult {
        let commandLine = ShellQuoting.commandLine(sudoPrefix + argv)
        let deadline = ContinuousClock.now.advanced(by: timeout)
        return try await blocking { try $0.exec(commandLine, stdoutLimit: 64 * 1024, deadline: deadline) }
    }

    public var connectionDetail: String {
        "host key \(hostKey.type) \(hostKey.fingerprint), file transfer \(fileAccessDescription)"
    }

    public func close() async {
        if case .exec(_, true, let staging?) = access {
            // The SSH user made the staging directory (mktemp ran without sudo), so it removes it without sudo too.
            let deadline = ContinuousClock.now.advanced(by: .seconds(5))
            _ = try? await blocking { try $0.exec(ShellQuoting.commandLine(["rm", "-rf", "--", staging]), stdoutLimit: 4096, deadline: deadline) }
        }
        let session = self.session
        _ = try? await pool.run { session.disconnect() }
    }
}
