import Foundation

/// Writes kubeconfig text exactly as `kubectl config view --raw` prints it: keys in alphabetical order,
/// entries sorted by name, `*-data` fields base64 on one line, `preferences: {}`, an empty user as `user: {}`.
/// (A test checks the output against text kubectl itself printed.)
public struct KubeconfigText: Sendable {
    public struct Cluster: Sendable {
        public var name: String
        public var server: String
        public var certificateAuthority: String?
        public var certificateAuthorityData: [UInt8]?
        public var insecureSkipTLSVerify = false

        public init(name: String, server: String, certificateAuthority: String? = nil, certificateAuthorityData: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false) {
            self.name = name
            self.server = server
            self.certificateAuthority = certificateAuthority
            self.certificateAuthorityData = certificateAuthorityData
            self.insecureSkipTLSVerify = insecureSkipTLSVerify
        }
    }

    public struct User: Sendable {
        public var name: String
        public var token: String?
        public var tokenFile: String?
        public var clientCertificate: String?
        public var clientCertificateData: [UInt8]?
        public var clientKey: String?
        public var clientKeyData: [UInt8]?

        public init(name: String, token: String? = nil, tokenFile: String? = nil, clientCertificate: String? = nil, clientCertificateData: [UInt8]? = nil,
                    clientKey: String? = nil, clientKeyData: [UInt8]? = nil) {
            self.name = name
            self.token = token
            self.tokenFile = tokenFile
            self.clientCertificate = clientCertificate
            self.clientCertificateData = clientCertificateData
            self.clientKey = clientKey
            self.clientKeyData = clientKeyData
        }
    }

    public struct Context: Sendable {
        public var name: String
        public var cluster: String
        public var user: String
        public var namespace: String?

        public init(name: String, cluster: String, user: String, namespace: String? = nil) {
            self.name = name
            self.cluster = cluster
            self.user = user
            self.namespace = namespace
        }
    }

    public var clusters: [Cluster]
    public var contexts: [Context]
    public var users: [User]
    public var currentContext: String?

    public init(clusters: [Cluster], contexts: [Context], users: [User], currentContext: String?) {
        self.clusters = clusters
        self.contexts = contexts
        self.users = users
        self.currentContext = currentContext
    }

    public func render() -> String {
        func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
        var lines = ["apiVersion: v1", "clusters:"]
        for cluster in clusters.sorted(by: { $0.name < $1.name }) {
            var fields: [(String, String)] = []
            if let path = cluster.certificateAuthority { fields.append(("certificate-authority", path)) }
            if let data = cluster.certificateAuthorityData { fields.append(("certificate-authority-data", base64(data))) }
            if cluster.insecureSkipTLSVerify { fields.append(("insecure-skip-tls-verify", "true")) }
            fields.append(("server", cluster.server))
            lines.append("- cluster:")
            lines += fields.map { "    \($0.0): \($0.1)" }
            lines.append("  name: \(cluster.name)")
        }
        lines.append("contexts:")
        for context in contexts.sorted(by: { $0.name < $1.name }) {
            lines.append("- context:")
            lines.append("    cluster: \(context.cluster)")
            if let namespace = context.namespace { lines.append("    namespace: \(namespace)") }
            lines.append("    user: \(context.user)")
            lines.append("  name: \(context.name)")
        }
        lines.append("current-context: \(currentContext ?? "\"\"")")
        lines += ["kind: Config", "preferences: {}", "users:"]
        for user in users.sorted(by: { $0.name < $1.name }) {
            var fields: [(String, String)] = []
            if let path = user.clientCertificate { fields.append(("client-certificate", path)) }
            if let data = user.clientCertificateData { fields.append(("client-certificate-data", base64(data))) }
            if let path = user.clientKey { fields.append(("client-key", path)) }
            if let data = user.clientKeyData { fields.append(("client-key-data", base64(data))) }
            if let token = user.token { fields.append(("token", token)) }
            if let file = user.tokenFile { fields.append(("tokenFile", file)) }
            lines.append("- name: \(user.name)")
            if fields.isEmpty {
                lines.append("  user: {}")
            } else {
                lines.append("  user:")
                lines += fields.map { "    \($0.0): \($0.1)" }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension FakeKubernetesAPIServer {
    /// A kubeconfig for this server with one context `fake` (namespace `namespace`) and the given user.
    public func kubeconfig(user: KubeconfigText.User, namespace: String? = nil) -> String {
        KubeconfigText(
            clusters: [.init(name: "fake", server: url, certificateAuthorityData: Array(ca.certificatePEM.utf8))],
            contexts: [.init(name: "fake", cluster: "fake", user: user.name, namespace: namespace)],
            users: [user],
            currentContext: "fake").render()
    }
}
