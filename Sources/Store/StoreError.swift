import Foundation

/// Why a store call failed. Both backends throw the same cases for the same situation.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A unique field already has this value (`"name"` of a certificate or target, `"targetID"` when a target
    /// already has a running deployment), or the object is still referenced (`"targets"`, `"deployments"`).
    case conflict(field: String)
    /// No such object. `objectType` is "certificate", "certificateVersion", "target" or "deployment".
    case notFound(objectType: String, id: String)
    /// Optimistic update refused: the caller edited version `expected`, the store holds `current`.
    case staleVersion(expected: Int, current: Int)
    /// The deployment is not running under this owner's lease any more (it finished, was cancelled, or its
    /// lease expired and it was re-queued or marked interrupted).
    case leaseLost(deploymentID: UUID)
    /// The object is not in a state that allows this (cancel a finished deployment, …).
    case invalidState(String)
    /// A caller error: bad label selector, cursor, limit, JSON, name.
    case invalidArgument(String)
    /// The database could not be reached or dropped the connection: worth retrying later.
    case unavailable(String)
    /// The schema is newer than this build, or a migration failed.
    case migration(String)
    /// The database holds something this code cannot read.
    case corrupt(String)
    /// Any other database error, with the database's message.
    case database(String)

    public var description: String {
        switch self {
        case .conflict(let field): "conflict: \(field) already in use"
        case .notFound(let type, let id): "\(type) \(id) not found"
        case .staleVersion(let expected, let current):
            "stale version: the update was based on version \(expected), the store has version \(current)"
        case .leaseLost(let id): "deployment \(id.lowercasedText) is no longer leased to this worker"
        case .invalidState(let message): "invalid state: \(message)"
        case .invalidArgument(let message): "invalid argument: \(message)"
        case .unavailable(let message): "database unavailable: \(message)"
        case .migration(let message): "migration: \(message)"
        case .corrupt(let message): "unreadable data: \(message)"
        case .database(let message): "database error: \(message)"
        }
    }

    /// True for errors a caller may retry after a pause (the connection dropped, the database was busy).
    public var isTransient: Bool {
        if case .unavailable = self { return true }
        return false
    }
}
