import ArgumentParser
import Core

@main
struct CertdeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certdeploy",
        abstract: "Deploy certificates to nginx and other TLS servers, atomically and verified.",
        version: CertdeployVersion.current,
        subcommands: [DeployCommand.self, ConnectorsCommand.self]
    )
}

enum CertdeployVersion {
    static let current = "0.1.0"
}
