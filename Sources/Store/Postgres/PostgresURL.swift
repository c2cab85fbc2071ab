import Foundation
import NIOSSL
import PostgresNIO

/// A parsed `--database-url`: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]` (or `postgresql://`).
///
/// Parameters, as libpq reads them:
/// - `sslmode`: `disable`, `prefer` (the default), `require`, `verify-ca`, `verify-full`.
///   `require` encrypts without checking the server certificate, unless `sslrootcert` is given, when it
///   checks the chain like `verify-ca` (libpq's rule). `verify-ca` checks the chain; `verify-full` checks
///   the chain and that the certificate names the host.
/// - `sslrootcert`: a PEM file of CA certificates to trust, or `system` for the system trust store (the
///   default for the verifying modes).
/// - `host`: a directory holding the server's Unix socket (`postgres://user@/db?host=/run/postgresql`);
///   `port` (which also names the socket file, `.s.PGSQL.<port>`).
/// - `application_name`, `connect_timeout` (seconds).
/// Other parameters are refused rather than ignored (an ignored `sslcert` would silently weaken the setup).
/// User and password are percent-decoded. The database defaults to the user name.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable
        case prefer
        case require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    /// TCP host (name or address), nil with a Unix socket.
    public var host: String?
    public var port: Int
    /// The socket file (`<dir>/.s.PGSQL.<port>`) when `host` names a directory.
    public var unixSocketPath: String?
    public var username: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode
    /// The CA file; nil means the system trust store.
    public var sslRootCert: String?
    public var applicationName: String?
    public var connectTimeout: Duration

    public init(parsing text: String) throws {
        func invalid(_ why: String) -> StoreError {
            .invalidArgument("database URL \(Self.redacted(text)): \(why)")
        }
        guard let components = URLComponents(string: text) else { throw invalid("not a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw invalid("the scheme must be postgres:// or postgresql://")
        }
        guard let user = components.percentEncodedUser?.removingPercentEncoding, !user.isEmpty else {
            throw invalid("no user name (postgres://USER@HOST/DATABASE)")
        }
        username = user
        password = components.percentEncodedPassword?.removingPercentEncoding
        port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw invalid("port \(port) out of range") }

        var path = components.percentEncodedPath
        if path.hasPrefix("/") { path.removeFirst() }
        guard !path.contains("/") else { throw invalid("the path must be just the database name") }
        let databaseName = path.removingPercentEncoding ?? path
        database = databaseName.isEmpty ? user : databaseName

        var hostValue = components.percentEncodedHost?.removingPercentEncoding ?? ""
        if hostValue.hasPrefix("["), hostValue.hasSuffix("]") { hostValue = String(hostValue.dropFirst().dropLast()) }

        var mode = SSLMode.prefer
        var rootCert: String?
        var appName: String?
        var timeout = Duration.seconds(10)
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let parsed = SSLMode(rawValue: value) else {
                    throw invalid("sslmode \(value.debugDescription) is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                mode = parsed
            case "sslrootcert":
                guard !value.isEmpty else { throw invalid("sslrootcert is empty") }
                rootCert = value == "system" ? nil : value
            case "host":
                guard !value.isEmpty else { throw invalid("host is empty") }
                hostValue = value
            case "port":
                guard let parsed = Int(value), (1...65535).contains(parsed) else { throw invalid("port \(value.debugDescription) out of range") }
                port = parsed
            case "application_name":
                appName = value
            case "connect_timeout":
                guard let seconds = Int(value), seconds > 0 else { throw invalid("connect_timeout \(value.debugDescription) is not a positive number of seconds") }
                timeout = .seconds(seconds)
            default:
                throw invalid(
                    "unsupported parameter \(item.name.debugDescription) (supported: sslmode, sslrootcert, host, port, application_name, connect_timeout)")
            }
        }
        guard !hostValue.isEmpty else { throw invalid("no host (postgres://USER@HOST/DATABASE, or ?host=/socket/dir)") }
        if hostValue.hasPrefix("/") {
            host = nil
            unixSocketPath = (hostValue.hasSuffix("/") ? String(hostValue.dropLast()) : hostValue) + "/.s.PGSQL.\(port)"
        } else {
            host = hostValue
            unixSocketPath = nil
        }
        if let rootCert, !rootCert.hasPrefix("/") {
            throw invalid("sslrootcert \(rootCert.debugDescription) must be an absolute path (or \"system\")")
        }
        sslMode = mode
        sslRootCert = rootCert
        applicationName = appName
        connectTimeout = timeout
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        var text = "postgres://\(username)\(password == nil ? "" : ":***")@"
        if let host { text += host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
        text += "/\(database)?sslmode=\(sslMode.rawValue)"
        if let sslRootCert { text += "&sslrootcert=\(sslRootCert)" }
        if let unixSocketPath { text += "&host=\((unixSocketPath as NSString).deletingLastPathComponent)&port=\(port)" }
        return text
    }

    /// Whether the connection checks the server's certificate chain (`verify-ca`, `verify-full`, or `require`
    /// with a CA file).
    public var verifiesCertificate: Bool {
        switch sslMode {
        case .disable, .prefer: false
        case .require: sslRootCert != nil
        case .verifyCA, .verifyFull: true
        }
    }

    /// The TLS settings `sslmode` and `sslrootcert` ask for; nil for `disable`. Reads the CA file, so a
    /// missing or unreadable file fails here, at startup, not at the first query.
    public func tlsConfiguration() throws -> TLSConfiguration? {
        guard sslMode != .disable else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case .disable:
            return nil
        case .prefer:
            tls.certificateVerification = .none
        case .require:
            tls.certificateVerification = sslRootCert == nil ? .none : .noHostnameVerification
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
        case .verifyFull:
            tls.certificateVerification = .fullVerification
        }
        if tls.certificateVerification != .none, let sslRootCert {
            do {
                let certificates = try NIOSSLCertificate.fromPEMFile(sslRootCert)
                guard !certificates.isEmpty else { throw StoreError.invalidArgument("sslrootcert \(sslRootCert) holds no certificate") }
                tls.trustRoots = .certificates(certificates)
            } catch let error as StoreError {
                throw error
            } catch {
                throw StoreError.invalidArgument("sslrootcert \(sslRootCert) cannot be read as PEM certificates: \(error)")
            }
        }
        return tls
    }

    /// The connection pool's configuration.
    func clientConfiguration(maximumConnections: Int) throws -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch (sslMode, try tlsConfiguration()) {
        case (.disable, _), (_, nil): tls = .disable
        case (.prefer, let config?): tls = .prefer(config)
        case (_, let config?): tls = .require(config)
        }
        var configuration: PostgresClient.Configuration
        if let unixSocketPath {
            configuration = .init(unixSocketPath: unixSocketPath, username: username, password: password, database: database)
        } else {
            configuration = .init(host: host ?? "localhost", port: port, username: username, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = connectTimeout
        configuration.options.maximumConnections = maximumConnections
        configuration.options.minimumConnections = 0
        if let applicationName { configuration.options.additionalStartupParameters = [("application_name", applicationName)] }
        return configuration
    }

    /// A single connection's configuration (the startup probe).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch (sslMode, try tlsConfiguration()) {
        case (.disable, _), (_, nil): tls = .disable
        case (.prefer, let config?): tls = .prefer(try NIOSSLContext(configuration: config))
        case (_, let config?): tls = .require(try NIOSSLContext(configuration: config))
        }
        var configuration: PostgresConnection.Configuration
        if let unixSocketPath {
            configuration = .init(unixSocketPath: unixSocketPath, username: username, password: password, database: database)
        } else {
            configuration = .init(host: host ?? "localhost", port: port, username: username, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(connectTimeout.components.seconds)
        if let applicationName { configuration.options.additionalStartupParameters = [("application_name", applicationName)] }
        return configuration
    }

    /// `text` with any password replaced, for error messages.
    static func redacted(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://"),
            let at = text[schemeEnd.upperBound...].firstIndex(of: "@")
        else { return text }
        let userInfo = text[schemeEnd.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }
}
