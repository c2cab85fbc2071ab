import Foundation
import NIOSSL
import XCTest

import Store
import TestSupport

/// `--database-url` parsing and what each `sslmode` asks of TLS. Only `disable` is exercised against a
/// real server (PostgresStoreTests); the TLS modes are checked here, on the configuration they produce.
final class PostgresURLTests: XCTestCase {
    func testParsesUserPasswordHostPortDatabase() throws {
        let url = try PostgresURL(parsing: "postgres://cert%40deploy:p%3Ass%2Fw0rd@db.example.net:6432/certdeploy_prod?sslmode=disable")
        XCTAssertEqual(url.username, "cert@deploy")
        XCTAssertEqual(url.password, "p:ss/w0rd")
        XCTAssertEqual(url.host, "db.example.net")
        XCTAssertEqual(url.port, 6432)
        XCTAssertEqual(url.database, "certdeploy_prod")
        XCTAssertEqual(url.sslMode, .disable)
        XCTAssertNil(url.unixSocketPath)
        XCTAssertNil(try url.tlsConfiguration())
        XCTAssertFalse(url.description.contains("p:ss"), "the password never shows: \(url)")
        XCTAssertEqual(url.description, "postgres://cert@deploy:***@db.example.net:6432/certdeploy_prod?sslmode=disable")
    }

    func testDefaults() throws {
        let url = try PostgresURL(parsing: "postgresql://app@localhost")
        XCTAssertEqual(url.port, 5432)
        XCTAssertEqual(url.database, "app", "the database defaults to the user name, as in libpq")
        XCTAssertNil(url.password)
        XCTAssertEqual(url.sslMode, .prefer, "libpq's default")
        XCTAssertEqual(url.connectTimeout, .seconds(10))
        let tls = try XCTUnwrap(url.tlsConfiguration())
        XCTAssertEqual(tls.certificateVerification, .none)
    }

    func testIPv6AndUnixSocket() throws {
        let v6 = try PostgresURL(parsing: "postgres://app@[::1]:5433/db")
        XCTAssertEqual(v6.host, "::1")
        XCTAssertEqual(v6.port, 5433)
        let socket = try PostgresURL(parsing: "postgres://app@/db?host=/run/postgresql&application_name=certdeploy&connect_timeout=3")
        XCTAssertNil(socket.host)
        XCTAssertEqual(socket.unixSocketPath, "/run/postgresql/.s.PGSQL.5432")
        XCTAssertEqual(socket.applicationName, "certdeploy")
        XCTAssertEqual(socket.connectTimeout, .seconds(3))
        let socketPort = try PostgresURL(parsing: "postgres://app@/db?host=/tmp/pg/&port=6543")
        XCTAssertEqual(socketPort.unixSocketPath, "/tmp/pg/.s.PGSQL.6543")
        XCTAssertEqual(socketPort.description, "postgres://app@/db?sslmode=prefer&host=/tmp/pg&port=6543")
    }

    func testRequireEncryptsWithoutVerifyingUnlessGivenACA() throws {
        let require = try PostgresURL(parsing: "postgres://app:secret@db.example.net/app?sslmode=require")
        XCTAssertEqual(require.sslMode, .require)
        XCTAssertFalse(require.verifiesCertificate)
        let tls = try XCTUnwrap(require.tlsConfiguration())
        XCTAssertEqual(tls.certificateVerification, .none)

        // libpq: require with a root certificate behaves like verify-ca.
        let ca = try caFile()
        defer { ca.dir.remove() }
        let withCA = try PostgresURL(parsing: "postgres://app@db.example.net/app?sslmode=require&sslrootcert=\(ca.path)")
        XCTAssertTrue(withCA.verifiesCertificate)
        let caTLS = try XCTUnwrap(withCA.tlsConfiguration())
        XCTAssertEqual(caTLS.certificateVerification, .noHostnameVerification)
        XCTAssertEqual(caTLS.trustRoots, .certificates(try NIOSSLCertificate.fromPEMFile(ca.path)))
    }

    func testVerifyFullChecksChainAndHostWithTheGivenCA() throws {
        let ca = try caFile()
        defer { ca.dir.remove() }
        let url = try PostgresURL(parsing: "postgres://app@db.example.net/app?sslmode=verify-full&sslrootcert=\(ca.path)")
        XCTAssertEqual(url.sslMode, .verifyFull)
        XCTAssertEqual(url.sslRootCert, ca.path)
        XCTAssertTrue(url.verifiesCertificate)
        let tls = try XCTUnwrap(url.tlsConfiguration())
        XCTAssertEqual(tls.certificateVerification, .fullVerification)
        XCTAssertEqual(tls.trustRoots, .certificates(try NIOSSLCertificate.fromPEMFile(ca.path)))
        XCTAssertTrue(url.description.contains("sslmode=verify-full&sslrootcert=\(ca.path)"))

        let verifyCA = try PostgresURL(parsing: "postgres://app@db.example.net/app?sslmode=verify-ca&sslrootcert=\(ca.path)")
        XCTAssertEqual(try XCTUnwrap(verifyCA.tlsConfiguration()).certificateVerification, .noHostnameVerification)

        // Without sslrootcert (or with "system"), the system trust store.
        for text in ["postgres://app@db.example.net/app?sslmode=verify-full", "postgres://app@db.example.net/app?sslmode=verify-full&sslrootcert=system"] {
            let system = try PostgresURL(parsing: text)
            XCTAssertNil(system.sslRootCert)
            let systemTLS = try XCTUnwrap(system.tlsConfiguration())
            XCTAssertEqual(systemTLS.certificateVerification, .fullVerification)
            XCTAssertEqual(systemTLS.trustRoots, .default, "the system store")
        }
    }

    func testUnreadableCAFileFailsAtStartup() throws {
        let url = try PostgresURL(parsing: "postgres://app@db.example.net/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
        XCTAssertThrowsError(try url.tlsConfiguration()) { error in
            guard case StoreError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("/nonexistent/ca.pem"), message)
        }
    }

    func testRefusesWhatItCannotHonour() {
        let bad = [
            "mysql://app@db/app",  // not PostgreSQL
            "postgres://db.example.net/app",  // no user
            "postgres://app@/app",  // no host
            "postgres://app@db/app?sslmode=allow",  // unsupported mode
            "postgres://app@db/app?sslmode=verify",  // unknown mode
            "postgres://app@db/app?sslcert=/client.pem",  // client certificates are not supported: refuse, do not ignore
            "postgres://app@db/app?sslmode=verify-full&sslrootcert=ca.pem",  // relative path
            "postgres://app@db/app/extra",  // path beyond the database
            "postgres://app@db/app?connect_timeout=0",
            "postgres://app@db:99999/app",
        ]
        for text in bad {
            XCTAssertThrowsError(try PostgresURL(parsing: text), text) { error in
                guard case StoreError.invalidArgument(let message) = error else { return XCTFail("\(text): \(error)") }
                XCTAssertFalse(message.isEmpty)
            }
        }
        // The password never appears in the error.
        XCTAssertThrowsError(try PostgresURL(parsing: "postgres://app:hunter2@db/app?sslmode=bogus")) { error in
            XCTAssertFalse(String(describing: error).contains("hunter2"), "\(error)")
        }
    }

    private func caFile() throws -> (dir: TemporaryDirectory, path: String) {
        let ca = try TestCertificateAuthority(name: "certdeploy store test")
        let dir = try TemporaryDirectory(prefix: "certdeploy-pgurl")
        return (dir, try dir.write("ca.pem", ca.root.certificatePEM))
    }
}
