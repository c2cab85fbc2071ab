import Core
import Foundation

/// Where the API server is and how to prove who we are: resolved from a kubeconfig context or from the
/// in-cluster service account. Holds key material; `description` never shows it.
public struct KubernetesAccess: Sendable, CustomStringConvertible {
    /// How the server's certificate is checked.
    public enum Trust: Sendable, Equatable {
        /// The system's trust store.
        case system
        /// These CA certificates (PEM) only.
        case certificateAuthority([UInt8])
        /// No verification (`insecure-skip-tls-verify`); only when the target explicitly allows it.
        case insecure
    }

    public enum Credential: Sendable {
        case none
        case bearerToken(String)
        /// Read again for every request: bound service account tokens rotate.
        case tokenFile(String)
        /// Mutual TLS: a client certificate chain and its key (PEM).
        case clientCertificate(certificatePEM: [UInt8], keyPEM: [UInt8])
    }

    /// `https://host:port`, without a trailing slash.
    public var server: String
    public var trust: Trust
    public var credential: Credential
    /// The context's (or service account's) namespace, when it names one.
    public var namespace: String?
    /// "kubeconfig /root/.kube/config, context prod (user deployer)", for messages.
    public var origin: String

    public init(server: String, trust: Trust, credential: Credential, namespace: String? = nil, origin: String) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.trust = trust
        self.credential = credential
        self.namespace = namespace
        self.origin = origin
    }

    public var description: String { "\(server) (\(origin); \(credentialDescription))" }

    /// How we authenticate, without the secret: "bearer token", "token file /path", "client certificate".
    public var credentialDescription: String {
        switch credential {
        case .none: "no credentials"
        case .bearerToken: "bearer token"
        case .tokenFile(let path): "token file \(path)"
        case .clientCertificate: "client certificate"
        }
    }

    /// Strings that must never appear in records.
    public var secrets: [String] {
        switch credential {
        case .bearerToken(let token): [token]
        case .clientCertificate(_, let key): [String(decoding: key, as: UTF8.self)]
        case .none, .tokenFile: []
        }
    }

    /// The token to send now (a token file is read again on every call).
    func currentToken() throws -> String? {
        switch credential {
        case .bearerToken(let token):
            return token
        case .tokenFile(let path):
            do {
                let token = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                guard !token.isEmpty else { throw ClusterError(.configuration, "token file \(path) is empty") }
                return token
            } catch let error as ClusterError {
                throw error
            } catch {
                throw ClusterError(.configuration, "cannot read token file \(path): \(error.localizedDescription)")
            }
        case .none, .clientCertificate:
            return nil
        }
    }

    // MARK: kubeconfig

    /// The access a kubeconfig context gives: its cluster's server and CA, its user's token, token file or
    /// client certificate. `insecure-skip-tls-verify: true` is refused unless `allowInsecure`.
    public static func kubeConfig(_ config: KubeConfig, context name: String? = nil, allowInsecure: Bool = false) throws -> KubernetesAccess {
        let context = try config.context(named: name)
        let source = config.source
        guard let cluster = config.clusters.first(where: { $0.name == context.cluster }) else {
            throw ClusterError(.configuration, "\(source): context \"\(context.name)\" names cluster \"\(context.cluster)\", which is not defined")
        }
        guard let user = config.users.first(where: { $0.name == context.user }) else {
            throw ClusterError(.configuration, "\(source): context \"\(context.name)\" names user \"\(context.user)\", which is not defined")
        }
        guard let url = URL(string: cluster.server), url.scheme?.lowercased() == "https", url.host != nil else {
            throw ClusterError(.configuration, "\(source): cluster \"\(cluster.name)\" server \(cluster.server) is not an https:// URL; certdeploy sends private keys only over TLS")
        }
        if cluster.tlsServerName != nil {
            throw ClusterError(.configuration, "\(source): cluster \"\(cluster.name)\" sets tls-server-name, which certdeploy does not support; use a server URL whose host the certificate names")
        }
        let trust: Trust
        if cluster.insecureSkipTLSVerify {
            if cluster.certificateAuthority != nil || cluster.certificateAuthorityData != nil {
                // kubectl refuses this combination too.
                throw ClusterError(.configuration, "\(source): cluster \"\(cluster.name)\" sets both a certificate authority and insecure-skip-tls-verify")
            }
            guard allowInsecure else {
                throw ClusterError(.configuration, "\(source): cluster \"\(cluster.name)\" sets insecure-skip-tls-verify: true; certdeploy will not send a private key to a server it cannot verify unless the target sets allowInsecure: true")
            }
            trust = .insecure
        } else if let data = cluster.certificateAuthorityData {
            trust = .certificateAuthority(data)
        } else if let file = cluster.certificateAuthority {
            trust = .certificateAuthority(try readFile(config.resolve(file), what: "cluster \"\(cluster.name)\" certificate-authority", source: source))
        } else {
            trust = .system
        }

        if !user.unsupported.isEmpty {
            throw ClusterError(.configuration, "\(source): user \"\(user.name)\" authenticates with \(user.unsupported.joined(separator: ", ")), which certdeploy does not support; use a token, tokenFile, or a client certificate and key")
        }
        let hasCertificate = user.clientCertificate != nil || user.clientCertificateData != nil
        let hasKey = user.clientKey != nil || user.clientKeyData != nil
        let credential: Credential
        if hasCertificate || hasKey {
            guard hasCertificate, hasKey else {
                throw ClusterError(.configuration, "\(source): user \"\(user.name)\" has a client \(hasCertificate ? "certificate without a key" : "key without a certificate")")
            }
            let certificate = try user.clientCertificateData ?? readFile(config.resolve(user.clientCertificate!), what: "user \"\(user.name)\" client-certificate", source: source)
            let key = try user.clientKeyData ?? readFile(config.resolve(user.clientKey!), what: "user \"\(user.name)\" client-key", source: source)
            credential = .clientCertificate(certificatePEM: certificate, keyPEM: key)
        } else if let token = user.token, !token.isEmpty {
            credential = .bearerToken(token)
        } else if let file = user.tokenFile {
            let path = config.resolve(file)
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ClusterError(.configuration, "\(source): user \"\(user.name)\" tokenFile \(path) cannot be read")
            }
            credential = .tokenFile(path)
        } else {
            credential = .none
        }
        return KubernetesAccess(server: cluster.server, trust: trust, credential: credential, namespace: context.namespace,
                                origin: "kubeconfig \(source), context \(context.name) (user \(user.name))")
    }

    /// Reads `path` (a kubeconfig file, or `$KUBECONFIG`'s first entry, or `~/.kube/config` when nil).
    public static func kubeConfig(path: String?, context: String? = nil, allowInsecure: Bool = false) throws -> KubernetesAccess {
        let resolved = path ?? ProcessInfo.processInfo.environment["KUBECONFIG"]?.split(separator: ":").first.map(String.init)
            ?? (NSHomeDirectory() + "/.kube/config")
        return try kubeConfig(KubeConfig.load(path: resolved), context: context, allowInsecure: allowInsecure)
    }

    // MARK: in-cluster

    /// The standard service account mount.
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The pod's service account: `token` (re-read on every call: it rotates), `ca.crt`, `namespace` in
    /// `directory`; the server from `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` unless `server` is given.
    ///
    /// Reference: "Accessing the Kubernetes API from a Pod" (directly accessing the REST API).
    public static func inCluster(directory: String = serviceAccountDirectory, server: String? = nil,
                                 environment: [String: String] = ProcessInfo.processInfo.environment) throws -> KubernetesAccess {
        let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let endpoint: String
        if let server {
            endpoint = server
        } else {
            guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty, let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
                throw ClusterError(.configuration, "inCluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set; certdeploy is not running in a pod")
            }
            endpoint = "https://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        }
        let tokenPath = base + "/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw ClusterError(.configuration, "inCluster: no service account token at \(tokenPath) (is automountServiceAccountToken off?)")
        }
        let ca = try readFile(base + "/ca.crt", what: "service account ca.crt", source: "inCluster")
        let namespace = (try? String(contentsOfFile: base + "/namespace", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return KubernetesAccess(server: endpoint, trust: .certificateAuthority(ca), credential: .tokenFile(tokenPath),
                                namespace: namespace.flatMap { $0.isEmpty ? nil : $0 }, origin: "in-cluster service account (\(base))")
    }

    private static func readFile(_ path: String, what: String, source: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ClusterError(.configuration, "\(source): \(what) \(path) cannot be read")
        }
        return Array(data)
    }
}
