import Core
import Foundation
import Yams

/// A kubeconfig file as `kubectl config view --raw` writes it: clusters, users and contexts, each a named
/// entry, plus `current-context`. Only what certdeploy uses is read; unknown keys are ignored, as kubectl does.
///
/// Reference: "Organizing Cluster Access Using kubeconfig Files" and the `clientcmd/api/v1` types
/// (`Config`, `Cluster`, `AuthInfo`, `Context`).
public struct KubeConfig: Sendable, Equatable {
    public struct Cluster: Sendable, Equatable {
        public var name: String
        public var server: String
        /// `certificate-authority`: a PEM file, relative to the kubeconfig's directory when not absolute.
        public var certificateAuthority: String?
        /// `certificate-authority-data`, base64-decoded: PEM bytes.
        public var certificateAuthorityData: [UInt8]?
        public var insecureSkipTLSVerify: Bool
        public var tlsServerName: String?
    }

    public struct User: Sendable, Equatable {
        public var name: String
        public var token: String?
        /// `tokenFile`: read again on every request (projected tokens rotate).
        public var tokenFile: String?
        public var clientCertificate: String?
        public var clientCertificateData: [UInt8]?
        public var clientKey: String?
        public var clientKeyData: [UInt8]?
        /// `exec` / `auth-provider` / basic auth: present, but not something certdeploy can use.
        public var unsupported: [String]
    }

    public struct Context: Sendable, Equatable {
        public var name: String
        public var cluster: String
        public var user: String
        public var namespace: String?
    }

    public var clusters: [Cluster]
    public var users: [User]
    public var contexts: [Context]
    public var currentContext: String?
    /// Directory relative file references are resolved against (the kubeconfig's own directory).
    public var baseDirectory: String?
    /// The file, for messages.
    public var source: String

    /// Parses kubeconfig YAML. `path` names the file in messages and anchors relative paths.
    public static func parse(_ text: String, path: String? = nil) throws -> KubeConfig {
        let source = path ?? "kubeconfig"
        let raw: RawConfig
        do {
            raw = try YAMLDecoder().decode(RawConfig.self, from: text)
        } catch {
            throw ClusterError(.configuration, "\(source) is not a valid kubeconfig: \(error)")
        }
        func decode(_ value: String?, _ field: String) throws -> [UInt8]? {
            guard let value else { return nil }
            guard let data = Data(base64Encoded: value, options: .ignoreUnknownCharacters) else {
                throw ClusterError(.configuration, "\(source): \(field) is not valid base64")
            }
            return Array(data)
        }
        var clusters: [Cluster] = []
        for entry in raw.clusters ?? [] {
            guard let cluster = entry.cluster, let server = cluster.server, !server.isEmpty else {
                throw ClusterError(.configuration, "\(source): cluster \"\(entry.name)\" has no server")
            }
            clusters.append(Cluster(
                name: entry.name, server: server, certificateAuthority: cluster.certificateAuthority,
                certificateAuthorityData: try decode(cluster.certificateAuthorityData, "clusters[\(entry.name)].certificate-authority-data"),
                insecureSkipTLSVerify: cluster.insecureSkipTLSVerify ?? false, tlsServerName: cluster.tlsServerName))
        }
        var users: [User] = []
        for entry in raw.users ?? [] {
            let user = entry.user ?? RawUser()
            var unsupported: [String] = []
            if user.exec != nil { unsupported.append("exec") }
            if user.authProvider != nil { unsupported.append("auth-provider") }
            if user.username != nil || user.password != nil { unsupported.append("username/password") }
            users.append(User(
                name: entry.name, token: user.token, tokenFile: user.tokenFile,
                clientCertificate: user.clientCertificate,
                clientCertificateData: try decode(user.clientCertificateData, "users[\(entry.name)].client-certificate-data"),
                clientKey: user.clientKey,
                clientKeyData: try decode(user.clientKeyData, "users[\(entry.name)].client-key-data"),
                unsupported: unsupported))
        }
        let contexts = (raw.contexts ?? []).compactMap { entry -> Context? in
            guard let context = entry.context else { return nil }
            return Context(name: entry.name, cluster: context.cluster ?? "", user: context.user ?? "", namespace: context.namespace)
        }
        let current = raw.currentContext.flatMap { $0.isEmpty ? nil : $0 }
        return KubeConfig(clusters: clusters, users: users, contexts: contexts, currentContext: current,
                          baseDirectory: path.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }, source: source)
    }

    /// Reads and parses a kubeconfig file.
    public static func load(path: String) throws -> KubeConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ClusterError(.configuration, "cannot read kubeconfig \(path): \(error.localizedDescription)")
        }
        return try parse(text, path: path)
    }

    /// The context `name`, or `current-context` when nil.
    public func context(named name: String?) throws -> Context {
        guard let wanted = name ?? currentContext else {
            throw ClusterError(.configuration, "\(source) has no current-context; name a context (contexts: \(contexts.map(\.name).joined(separator: ", ")))")
        }
        guard let context = contexts.first(where: { $0.name == wanted }) else {
            throw ClusterError(.configuration, "\(source) has no context \"\(wanted)\" (contexts: \(contexts.map(\.name).joined(separator: ", ")))")
        }
        return context
    }

    /// `path` made absolute against the kubeconfig's directory, as kubectl resolves file references.
    public func resolve(_ path: String) -> String {
        guard !path.hasPrefix("/"), let baseDirectory else { return path }
        return URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).standardizedFileURL.path
    }
}

// MARK: - The YAML shape (clientcmd/api/v1)

private struct RawConfig: Decodable {
    var clusters: [NamedCluster]?
    var users: [NamedUser]?
    var contexts: [NamedContext]?
    var currentContext: String?

    enum CodingKeys: String, CodingKey {
        case clusters, users, contexts
        case currentContext = "current-context"
    }
}

private struct NamedCluster: Decodable {
    var name: String
    var cluster: RawCluster?
}

private struct RawCluster: Decodable {
    var server: String?
    var certificateAuthority: String?
    var certificateAuthorityData: String?
    var insecureSkipTLSVerify: Bool?
    var tlsServerName: String?

    enum CodingKeys: String, CodingKey {
        case server
        case certificateAuthority = "certificate-authority"
        case certificateAuthorityData = "certificate-authority-data"
        case insecureSkipTLSVerify = "insecure-skip-tls-verify"
        case tlsServerName = "tls-server-name"
    }
}

private struct NamedUser: Decodable {
    var name: String
    var user: RawUser?
}

/// Presence of a nested mapping we do not read (exec, auth-provider).
private struct Present: Decodable {
    init(from decoder: any Decoder) throws {}
}

private struct RawUser: Decodable {
    var token: String?
    var tokenFile: String?
    var clientCertificate: String?
    var clientCertificateData: String?
    var clientKey: String?
    var clientKeyData: String?
    var username: String?
    var password: String?
    var exec: Present?
    var authProvider: Present?

    init() {}

    enum CodingKeys: String, CodingKey {
        case token, tokenFile, username, password, exec
        case clientCertificate = "client-certificate"
        case clientCertificateData = "client-certificate-data"
        case clientKey = "client-key"
        case clientKeyData = "client-key-data"
        case authProvider = "auth-provider"
    }
}

private struct NamedContext: Decodable {
    var name: String
    var context: RawContext?
}

private struct RawContext: Decodable {
    var cluster: String?
    var user: String?
    var namespace: String?
}
