import Foundation

/// What a connector wants on a target, with no I/O done yet: the engine carries it out.
public struct DeploymentPlan: Sendable {
    public var files: [PlannedFile]
    /// The vendor's own config check, run after the files are in place; failure rolls back.
    public var validateCommand: RemoteCommand?
    /// Makes the vendor pick up the files; failure rolls back and reloads again.
    public var reloadCommand: RemoteCommand?
    /// Config the connector emits for the operator (include snippets, stapling config).
    public var snippets: [EmittedSnippet]
    public var verify: VerifyEndpoint?
    public var stapling: StaplingDecision
    /// Plan-time remarks for the step record (why stapling is off, which defaults applied).
    public var notes: [String]
    /// Paths that must not exist afterwards (a stale staple for another certificate); removed with the
    /// activation and restored on rollback.
    public var removals: [String]
    /// Old generations of versioned files to prune after a successful deploy.
    public var retention: [RetentionRule]
    /// Activate through the vendor's runtime API instead of `reloadCommand` (HAProxy hot update).
    public var hotUpdate: HotUpdatePlan?
    /// For cluster connectors (no files): the Secret to write, carried out by the engine's cluster path.
    public var secret: SecretPlan?
    /// Where earlier staples for this certificate live when the connector names staple files by content.
    public var stapleHistory: StapleHistory?
    /// What makes the vendor serve the new files: a reload after the renames (the default), or the rename of
    /// one file itself (Envoy's `sds.yaml`). The engine orders the steps from it: validate always runs before
    /// anything the vendor would pick up.
    public var activation: Activation

    public init(
        files: [PlannedFile],
        validateCommand: RemoteCommand? = nil,
        reloadCommand: RemoteCommand? = nil,
        snippets: [EmittedSnippet] = [],
        verify: VerifyEndpoint? = nil,
        stapling: StaplingDecision,
        notes: [String] = [],
        removals: [String] = [],
        retention: [RetentionRule] = [],
        hotUpdate: HotUpdatePlan? = nil,
        secret: SecretPlan? = nil,
        stapleHistory: StapleHistory? = nil,
        activation: Activation = .reload
    ) {
        self.files = files
        self.validateCommand = validateCommand
        self.reloadCommand = reloadCommand
        self.snippets = snippets
        self.verify = verify
        self.stapling = stapling
        self.notes = notes
        self.removals = removals
        self.retention = retention
        self.hotUpdate = hotUpdate
        self.secret = secret
        self.stapleHistory = stapleHistory
        self.activation = activation
    }
}

/// How a plan's files go live.
public enum Activation: Sendable, Equatable {
    /// Renaming files into place changes nothing served; `reloadCommand` (or the hot update) does.
    case reload
    /// Renaming these planned paths into place *is* the activation (a watched file that names the rest). The
    /// engine renames every other file first (new names the vendor does not read yet), validates, and only then
    /// renames these.
    case rename(switching: [String])

    /// The paths whose rename is the switch (empty for `.reload`).
    public var switchPaths: Set<String> {
        if case .rename(let paths) = self { return Set(paths) }
        return []
    }
}

/// Staple files named by their content (`prefix<hash>.der` in `directory`), for a vendor that re-reads a
/// staple only under a new name (Envoy). A new staple then means a new file name and a new reference to
/// it, so the engine cannot keep a still-fresh staple by comparing one path: it looks here for one, and
/// when it finds a fresh one it plans again with it, so a repeated deploy changes nothing.
public struct StapleHistory: Sendable, Equatable {
    public var directory: String
    public var prefix: String

    public init(directory: String, prefix: String) {
        self.directory = directory
        self.prefix = prefix
    }
}

/// Keep `keep` generations of files named `prefix…` in `directory`: the one the plan writes plus the
/// `keep - 1` newest others (by modification time). Files the plan writes are never pruned.
public struct RetentionRule: Sendable, Equatable {
    public var directory: String
    public var prefix: String
    public var keep: Int

    public init(directory: String, prefix: String, keep: Int) {
        self.directory = directory
        self.prefix = prefix
        self.keep = keep
    }
}

/// One request to a vendor's runtime API, and how to tell it worked.
public struct RuntimeCommand: Sendable, Equatable {
    public var payload: String
    /// The answer must contain one of these.
    public var successMarkers: [String]
    /// What the step record shows instead of the payload (which may hold key material).
    public var summary: String

    public init(payload: String, successMarkers: [String], summary: String) {
        self.payload = payload
        self.successMarkers = successMarkers
        self.summary = summary
    }
}

/// Activation through a runtime API reached over the transport (a TCP endpoint on the target).
/// The commands are a pure function of the files, so the engine can apply the new set and, on rollback,
/// the old one, with no vendor knowledge of its own.
public struct HotUpdatePlan: Sendable {
    public var host: String
    public var port: Int
    /// Commands that make the running vendor serve `files` (path → bytes, every planned file), given the
    /// paths that `changed` (so a vendor can send only a new staple when nothing else differs).
    public var commands: @Sendable (_ files: [String: [UInt8]], _ changed: Set<String>) -> [RuntimeCommand]
    /// Commands that discard an uncommitted update.
    public var abort: [RuntimeCommand]

    public init(host: String, port: Int, commands: @escaping @Sendable (_ files: [String: [UInt8]], _ changed: Set<String>) -> [RuntimeCommand],
                abort: [RuntimeCommand]) {
        self.host = host
        self.port = port
        self.commands = commands
        self.abort = abort
    }
}

/// One file the plan puts on the target.
public struct PlannedFile: Sendable, Equatable {
    public enum Role: String, Sendable, Codable {
        case certificate, fullChain = "full_chain", chain, privateKey = "private_key", combined, snippet, staple, other
    }

    public var path: String
    public var contents: [UInt8]
    public var mode: FileMode
    public var owner: String?
    public var group: String?
    public var role: Role

    public init(path: String, contents: [UInt8], mode: FileMode, owner: String? = nil, group: String? = nil, role: Role) {
        self.path = path
        self.contents = contents
        self.mode = mode
        self.owner = owner
        self.group = group
        self.role = role
    }

    public init(path: String, text: String, mode: FileMode, owner: String? = nil, group: String? = nil, role: Role) {
        self.init(path: path, contents: Array(text.utf8), mode: mode, owner: owner, group: group, role: role)
    }

    /// Key material never appears in records or diffs.
    public var isSecret: Bool { role == .privateKey || role == .combined }
}

/// A command as argv. Shown to people in shell syntax, sent to the target quoted.
public struct RemoteCommand: Sendable, Codable, Equatable, CustomStringConvertible {
    public var argv: [String]
    public var timeout: Duration

    public init(_ argv: [String], timeout: Duration = .seconds(60)) {
        self.argv = argv
        self.timeout = timeout
    }

    public var description: String { ShellQuoting.commandLine(argv) }

    enum CodingKeys: String, CodingKey { case argv }
    public init(from decoder: any Decoder) throws {
        argv = try decoder.container(keyedBy: CodingKeys.self).decode([String].self, forKey: .argv)
        timeout = .seconds(60)
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(argv, forKey: .argv)
    }
}

/// Config text the connector emits: written to `path` when set (then it is also a planned file),
/// and always shown to the operator with where it belongs.
public struct EmittedSnippet: Sendable, Codable, Equatable {
    public var name: String
    public var path: String?
    public var placement: String
    public var contents: String

    public init(name: String, path: String?, placement: String, contents: String) {
        self.name = name
        self.path = path
        self.placement = placement
        self.contents = contents
    }
}

/// Where to prove, by TLS handshake, that the new leaf is served.
public struct VerifyEndpoint: Sendable, Codable, Equatable {
    public var host: String
    public var port: Int
    /// SNI sent in the ClientHello.
    public var serverName: String?
    /// How long to keep trying before calling it a mismatch (load balancers and graceful reloads take time).
    public var deadline: Duration
    /// Consecutive handshakes that must serve the new leaf: after a reload old workers may still answer for a moment.
    public var consecutiveMatches: Int
    /// In-band upgrade before the handshake (SMTP STARTTLS on port 25).
    public var startTLS: StartTLS
    /// Check the new leaf as a client would: chain to a trust anchor, the SNI name, validity (see ``ClientChecks``).
    public var clientChecks: Bool
    /// Trust anchors for the chain check; nil: the system trust store.
    public var trustAnchorsPEM: String?

    public init(host: String, port: Int, serverName: String?, deadline: Duration = .seconds(20), consecutiveMatches: Int = 3, startTLS: StartTLS = .none,
                clientChecks: Bool = true, trustAnchorsPEM: String? = nil) {
        self.host = host
        self.port = port
        self.serverName = serverName
        self.deadline = deadline
        self.consecutiveMatches = consecutiveMatches
        self.startTLS = startTLS
        self.clientChecks = clientChecks
        self.trustAnchorsPEM = trustAnchorsPEM
    }

    enum CodingKeys: String, CodingKey { case host, port, serverName, consecutiveMatches, startTLS, clientChecks }
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        host = try container.decode(String.self, forKey: .host)
        port = try container.decode(Int.self, forKey: .port)
        serverName = try container.decodeIfPresent(String.self, forKey: .serverName)
        consecutiveMatches = try container.decodeIfPresent(Int.self, forKey: .consecutiveMatches) ?? 3
        startTLS = try container.decodeIfPresent(StartTLS.self, forKey: .startTLS) ?? .none
        clientChecks = try container.decodeIfPresent(Bool.self, forKey: .clientChecks) ?? true
        trustAnchorsPEM = nil
        deadline = .seconds(20)
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(host, forKey: .host)
        try container.encode(port, forKey: .port)
        try container.encodeIfPresent(serverName, forKey: .serverName)
        try container.encode(consecutiveMatches, forKey: .consecutiveMatches)
        try container.encode(startTLS, forKey: .startTLS)
        try container.encode(clientChecks, forKey: .clientChecks)
    }

    public var description: String {
        "\(host):\(port)" + (startTLS == .none ? "" : " (\(startTLS.rawValue) STARTTLS)") + (serverName.map { " (SNI \($0))" } ?? "")
    }
}

/// How a target will serve OCSP staples for this certificate, and why.
public struct StaplingDecision: Sendable, Codable, Equatable {
    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// The vendor fetches staples itself (nginx `ssl_stapling`, Apache `SSLUseStapling`).
        case vendorFetched = "vendor_fetched"
        /// certdeploy fetches the staple and writes it beside the certificate (HAProxy, Envoy).
        case stapleFile = "staple_file"
        /// No staple will be served.
        case none
    }

    public var mode: Mode
    public var reason: String

    public init(mode: Mode, reason: String) {
        self.mode = mode
        self.reason = reason
    }

    public var willStaple: Bool { mode != .none }
}
