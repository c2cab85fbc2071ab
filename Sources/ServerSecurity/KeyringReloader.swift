import Logging

/// Holds the live keyring for a keys file and re-reads the file on demand (the server calls `reload()` on SIGHUP).
/// A file that no longer parses leaves the previous keyring in force; the outcome says why.
public actor KeyringReloader {
    public enum Outcome: Sendable, Equatable {
        /// The new file is in force. `rotationWindows` are the names with two keys.
        case reloaded(keyCount: Int, rotationWindows: [String])
        /// The new file was refused; the previous keyring stays in force.
        case keptPrevious(APIKeyringError)
    }

    public let path: String
    public private(set) var keyring: APIKeyring
    private let logger: Logger?

    /// Loads the file once; throws (and the server refuses to start) when it is invalid.
    public init(path: String, logger: Logger? = nil) throws(APIKeyringError) {
        self.path = path
        self.logger = logger
        self.keyring = try APIKeyring(contentsOfFile: path)
    }

    /// Starts from an already loaded keyring (e.g. the one the server loaded at startup).
    public init(path: String, initial: APIKeyring, logger: Logger? = nil) {
        self.path = path
        self.logger = logger
        self.keyring = initial
    }

    /// Re-reads the file. On success the new keys replace the old ones at once and an INFO line is logged for each
    /// open rotation window; on failure the old keys stay and an ERROR line names the refused entries.
    @discardableResult
    public func reload() -> Outcome {
        do throws(APIKeyringError) {
            let fresh = try APIKeyring(contentsOfFile: path)
            keyring = fresh
            logger?.info("API keys reloaded", metadata: ["path": .string(path), "keys": .stringConvertible(fresh.count)])
            if let logger { fresh.logRotationWindows(to: logger) }
            return .reloaded(keyCount: fresh.count, rotationWindows: fresh.rotationWindows)
        } catch {
            logger?.error("API keys not reloaded, the previous keys stay in force: \(error.description)")
            return .keptPrevious(error)
        }
    }

    public func authenticate(_ presentedKey: String?) -> APIPrincipal? {
        keyring.authenticate(presentedKey)
    }
}
