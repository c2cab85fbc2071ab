import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// An ingress controller in miniature: a TLS listener on 127.0.0.1 that serves, for every new connection,
/// whatever `tls.crt`/`tls.key` the fake API server's Secret holds at that moment (a real controller watches
/// the Secret and reloads). Without the Secret, connections are closed.
public final class FakeIngress: Sendable {
    public let port: Int
    private let channel: NIOLockedValueBox<(any Channel)?>

    public static func start(serving server: FakeKubernetesAPIServer, namespace: String, secretName: String) async throws -> FakeIngress {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let secret = server.secret(namespace: namespace, name: secretName),
                          let certificate = secret.data["tls.crt"], let key = secret.data["tls.key"] else {
                        throw FakeIngressError.noSecret
                    }
                    let tls = TLSConfiguration.makeServerConfiguration(
                        certificateChain: try NIOSSLCertificate.fromPEMBytes(certificate).map { .certificate($0) },
                        privateKey: .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem)))
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: try NIOSSLContext(configuration: tls)))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeIngress(port: channel.localAddress?.port ?? 0, channel: channel)
    }

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = NIOLockedValueBox(channel)
    }

    public func stop() async {
        let channel = self.channel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
    }
}

enum FakeIngressError: Error {
    case noSecret
}
