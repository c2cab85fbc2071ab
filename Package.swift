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
            path: "Sources/Core"
        ),

        // SSH transport over libssh2, implementing Core's RemoteHost.
        .target(
            name: "SSHTransport",
            dependencies: [
                "Core", "CLibSSH2",
                .product(name: "NIOPosix", package: "swift-nio"),
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

        // The executable: CLI + the built-in registry list.
        .executableTarget(
            name: "certdeploy",
            dependencies: [
                "Core", "SSHTransport", "NginxConnector", "ApacheConnector", "HAProxyConnector", "EnvoyConnector",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/certdeploy"
        ),

        // `make bench`: fleet deploy benchmark against the local sshd.
        .executableTarget(
            name: "certdeploy-bench",
            dependencies: ["Core", "SSHTransport", "NginxConnector", "TestSupport"],
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

        .testTarget(name: "CoreTests", dependencies: ["Core", "TestSupport"], path: "Tests/CoreTests"),
        .testTarget(name: "SSHTests", dependencies: ["SSHTransport", "Core", "TestSupport"], path: "Tests/SSHTests"),
        .testTarget(
            name: "NginxTests",
            dependencies: ["NginxConnector", "SSHTransport", "Core", "TestSupport", "ConnectorTestSupport"],
            path: "Tests/NginxTests"
        ),
        .testTarget(name: "ApacheTests", dependencies: ["ApacheConnector", "ConnectorTestSupport", "Core", "TestSupport"], path: "Tests/ApacheTests"),
        .testTarget(name: "HAProxyTests", dependencies: ["HAProxyConnector", "ConnectorTestSupport", "Core", "TestSupport"], path: "Tests/HAProxyTests"),
        .testTarget(name: "EnvoyTests", dependencies: ["EnvoyConnector", "ConnectorTestSupport", "Core", "TestSupport"], path: "Tests/EnvoyTests"),
        .testTarget(name: "CLITests", dependencies: ["certdeploy", "Core", "TestSupport"], path: "Tests/CLITests"),
    ],
    swiftLanguageModes: [.v6]
)
