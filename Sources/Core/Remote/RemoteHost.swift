import Foundation

/// A file as it is on the target now.
public struct RemoteFile: Sendable, Equatable {
    public var contents: [UInt8]
    public var mode: FileMode
    /// Numeric owner and group, when the transport can see them (used to restore them on rollback).
    public var ownerID: UInt32?
    public var groupID: UInt32?

    public init(contents: [UInt8], mode: FileMode, ownerID: UInt32? = nil, groupID: UInt32? = nil) {
        self.contents = contents
        self.mode = mode
        self.ownerID = ownerID
        self.groupID = groupID
    }
}

/// What a remote command did. Output is bounded by the transport.
public struct CommandResult: Sendable {
    public var exitStatus: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]

    public init(exitStatus: Int32, stdout: [UInt8], stderr: [UInt8]) {
        self.exitStatus = exitStatus
        self.stdout = stdout
        self.stderr = stderr
    }

    /// The last `limit` bytes of stderr (stdout when stderr is empty), as text.
    public func outputTail(limit: Int = 2048) -> String {
        let source = stderr.isEmpty ? stdout : stderr
        let tail = source.suffix(limit)
        return String(decoding: tail, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// "exited 1: <output tail>", or "exited 1 (no output)" when the command printed nothing.
    public func exitSummary(limit: Int = 512) -> String {
        let tail = outputTail(limit: limit)
        return tail.isEmpty ? "exited \(exitStatus) (no output)" : "exited \(exitStatus): \(tail)"
    }
}

/// A name in a directory listing.
public struct RemoteDirectoryEntry: Sendable, Equatable {
    public var name: String
    public var modified: Date

    public init(name: String, modified: Date) {
        self.name = name
        self.modified = modified
    }
}

/// One atomic replace: `from` is renamed over `to` (same directory, so rename(2) is atomic).
public struct FileMove: Sendable, Equatable {
    public var from: String
    public var to: String

    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }
}

/// The primitive operations the deploy engine needs on a target. The SSH transport implements them
/// over libssh2 (SFTP, SCP+exec, or sudo); ``LocalHost`` implements them on this machine.
///
/// Implementations run every call within a deadline and honour task cancellation.
public protocol RemoteHost: Sendable {
    /// "user@host:port", for messages.
    var endpointDescription: String { get }
    /// What the step record should say about the session (host key seen, transfer method).
    var connectionDetail: String { get }
    /// The file's bytes and mode, or nil when it does not exist.
    func readFile(at path: String) async throws -> RemoteFile?
    /// Creates or truncates `path` with `mode` (and owner/group when given), writes, and fsyncs.
    func writeFile(at path: String, contents: [UInt8], mode: FileMode, owner: String?, group: String?) async throws
    /// Renames each `from` over its `to`, in order; each rename is atomic.
    func move(_ moves: [FileMove]) async throws
    /// Hard-links each existing `from` at `to` (replacing `to`), in order: a backup that keeps the inode, so owner,
    /// group, mode and bytes stay exactly as they were without needing the rights to set them. Throws when a link
    /// cannot be made (another filesystem, a filesystem without hard links).
    func link(_ links: [FileMove]) async throws
    /// Removes files; a missing file is not an error.
    func removeFiles(_ paths: [String]) async throws
    /// Entries of a directory (no "." or ".."), with modification times.
    func listDirectory(_ path: String) async throws -> [RemoteDirectoryEntry]
    /// Runs an argv command (quoted for the remote shell by the transport).
    func run(_ argv: [String], timeout: Duration) async throws -> CommandResult
    /// Sends `payload` to a TCP endpoint as seen from the target (a loopback admin socket) and returns
    /// everything it answers until it closes the connection.
    func exchange(host: String, port: Int, payload: [UInt8], timeout: Duration) async throws -> [UInt8]
    /// Ends the session; safe to call twice.
    func close() async
}

/// A transport failure: which host, what operation, and why. `code` says whether retrying may help.
public struct RemoteError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable {
        case connect
        case timeout
        case hostKeyMismatch = "host_key_mismatch"
        case hostKeyUnknown = "host_key_unknown"
        case authentication
        case io
        case permission
        case protocolError = "protocol"
        case cancelled
        case configuration
    }

    public var code: Code
    public var host: String
    public var operation: String
    public var message: String

    public init(_ code: Code, host: String, operation: String, _ message: String) {
        self.code = code
        self.host = host
        self.operation = operation
        self.message = message
    }

    /// Connection-level failures are worth a retry; everything else is final.
    public var isRetryable: Bool { code == .connect || code == .timeout }

    public var description: String { "\(host): \(operation): \(message)" }
}
