// swift-tools-version:6.0
import PackageDescription

// certdeploy: one package. See ../shared/design/architecture.md for who may import whom:
// Core imports no connector, transport or server; a connector imports Core only.
let package = Package(
    name: "certdeploy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "certdeploy", targets: ["certdeploy"]),
        .library(name: "CertdeployCore", targets: ["Core"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // System libraries.
        .systemLibrary(
            name: "CLibSSH2",
            path: "Sources/CLibSSH2",
            pkgConfig: "libssh2",
            providers: [.apt(["libssh2-1-dev"])]
        ),
        // Small C helpers over the system OpenSSL (libssl-dev comes with libssh2-1-dev):
        // the TLS probe that asks for an OCSP staple (status_request) and reports the served leaf.
        .target(
            name: "COpenSSLSupport",
            path: "Sources/COpenSSLSupport",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),

        // Domain: bundle, connector protocol, registry, plan, engine, TLS verify.
        .target(
            name: "Core",
            dependencies: [
                "COpenSSLSupport",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Core",
            // The fault tests' kill points (FaultPoint): debug builds only, armed only by an environment variable.
            swiftSettings: [.define("CERTDEPLOY_FAULT_INJECTION", .when(configuration: .debug))]
        ),

        // SSH transport over libssh2, implementing Core's RemoteHost.
        .target(
            name: "SSHTransport",
            dependencies: [
                "Core", "CLibSSH2",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/SSH"
        ),

        // Connectors: each imports Core only.
        .target(name: "NginxConnector", dependencies: ["Core"], path: "Sources/Connectors/Nginx"),
        .target(name: "ApacheConnector", dependencies: ["Core"], path: "Sources/Connectors/Apache"),
        .target(name: "HAProxyConnector", dependencies: ["Core"], path: "Sources/Connectors/HAProxy"),
        .target(name: "EnvoyConnector", dependencies: ["Core"], path: "Sources/Connectors/Envoy"),
        .target(name: "PostfixConnector", dependencies: ["Core"], path: "Sources/Connectors/Postfix"),
        // AWS request signing (Signature Version 4): the base of the AWS transport (issue 15).
        .target(name: "AWSClient", dependencies: [.product(name: "Crypto", package: "swift-crypto")], path: "Sources/AWS"),
        // The server's security building blocks: API keys, rate limits, secrets at rest, public routes, redaction.
        .target(
            name: "ServerSecurity",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/ServerSecurity"
        ),
        // The server's store (certificates, targets, deployments as jobs, audit events): SQLite by default,
        // PostgreSQL for replicas.
        .target(
            name: "Store",
            dependencies: [
                "Core",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Store"
        ),
        // The HTTP API's JSON types, shared by the server and the CLI client.
        .target(name: "CertdeployAPI", dependencies: ["Core"], path: "Sources/API"),
        // The server: HTTP API (Hummingbird), job workers, metrics, wired to Store and ServerSecurity. It gets the
        // connector registry from the executable and imports no connector.
        .target(
            name: "Server",
            dependencies: [
                "Core", "CertdeployAPI", "Store", "ServerSecurity", "SSHTransport", "KubernetesClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/Server"
        ),
        // scaffold:connector-targets (`certdeploy connectors new` adds connector targets above this line)
        .target(name: "K8sConnector", dependencies: ["Core"], path: "Sources/Connectors/K8s"),

        // Kubernetes API client (HTTPS, kubeconfig / in-cluster credentials) implementing Core's ClusterConnection.
        .target(
            name: "KubernetesClient",
            dependencies: [
                "Core",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/KubernetesClient"
        ),

        // The executable: CLI + the built-in registry list.
        .executableTarget(
            name: "certdeploy",
            dependencies: [
                "Core", "SSHTransport", "NginxConnector", "ApacheConnector", "HAProxyConnector", "EnvoyConnector",
                "K8sConnector", "KubernetesClient",
                "PostfixConnector",
                // scaffold:executable-connectors
                "Server", "CertdeployAPI", "Store", "ServerSecurity",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/certdeploy"
        ),

        // `make bench`: fleet deploy benchmark against the local sshd, and the HTTP API benchmark (10,000 targets).
        .executableTarget(
            name: "certdeploy-bench",
            dependencies: [
                "Core", "SSHTransport", "NginxConnector", "TestSupport", "Server", "CertdeployAPI", "ServerSecurity",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Bench"
        ),

        // Test support: starts the real services (sshd, nginx) and issues test certificates.
        .target(
            name: "TestSupport",
            dependencies: [
                "Core",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            path: "Tests/TestSupport"
        ),

        // Shared by connector tests: sshd + CA + OCSP responder + deploy through the real engine.
        .target(
            name: "ConnectorTestSupport",
            dependencies: ["Core", "SSHTransport", "TestSupport"],
            path: "Tests/ConnectorTestSupport"
        ),

        // A faithful in-process Kubernetes API server (HTTPS, token and client-certificate auth, RBAC, Secrets,
        // rollouts) for the K8s connector and client tests.
        .target(
            name: "KubernetesTestSupport",
            dependencies: [
                "Core", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            path: "Tests/KubernetesTestSupport"
        ),

        .testTarget(name: "CoreTests", dependencies: ["Core", "TestSupport"], path: "Tests/CoreTests"),
        .testTarget(name: "AWSTests", dependencies: ["AWSClient", .product(name: "Crypto", package: "swift-crypto")], path: "Tests/AWSTests"),
        .testTarget(name: "SSHTests", dependencies: ["SSHTransport", "Core", "TestSupport"], path: "Tests/SSHTests"),
        .testTarget(
            name: "NginxTests",
            dependencies: ["NginxConnector", "SSHTransport", "Core", "TestSupport", "ConnectorTestSupport"],
            path: "Tests/NginxTests"
        ),
        .testTarget(name: "ApacheTests", dependencies: ["ApacheConnector", "ConnectorTestSupport", "Core", "TestSupport"], path: "Tests/ApacheTests"),
        .testTarget(name: "HAProxyTests", dependencies: ["HAProxyConnector", "ConnectorTestSupport", "Core", "TestSupport"], path: "Tests/HAProxyTests"),
        .testTarget(name: "EnvoyTests", dependencies: ["EnvoyConnector", "ConnectorTestSupport", "Core", "TestSupport"], path: "Tests/EnvoyTests"),
        .testTarget(
            name: "K8sTests",
            dependencies: [
                "K8sConnector", "KubernetesClient", "KubernetesTestSupport", "ConnectorTestSupport", "Core", "TestSupport", "ServerTestSupport",
                "CertdeployAPI",
            ],
            path: "Tests/K8sTests"
        ),
        .testTarget(name: "PostfixTests", dependencies: ["PostfixConnector", "ConnectorTestSupport", "Core", "TestSupport"], path: "Tests/PostfixTests"),
        .testTarget(
            name: "ServerSecurityTests",
            dependencies: ["ServerSecurity", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log")],
            path: "Tests/ServerSecurityTests"
        ),
        .testTarget(
            name: "StoreTests",
            dependencies: [
                "Store", "Core", "TestSupport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/StoreTests"
        ),
        // scaffold:connector-tests (`certdeploy connectors new` adds test targets above this line)
        // Starts a real `CertdeployServer` (SQLite or PostgreSQL) on a free port and talks to it over HTTP; a real
        // nginx behind sshd to deploy to.
        .target(
            name: "ServerTestSupport",
            dependencies: [
                "Server", "CertdeployAPI", "Core", "Store", "TestSupport", "ConnectorTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ServerTestSupport"
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "CertdeployAPI", "Store", "ServerSecurity", "Core", "TestSupport", "ConnectorTestSupport", "NginxConnector",
                "HAProxyConnector", "EnvoyConnector", "SSHTransport", "ServerTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ServerTests"
        ),
        .testTarget(name: "CLITests", dependencies: ["certdeploy", "Core", "TestSupport", "KubernetesTestSupport", "ServerTestSupport", "CertdeployAPI"], path: "Tests/CLITests"),
    ],
    swiftLanguageModes: [.v6]
)
