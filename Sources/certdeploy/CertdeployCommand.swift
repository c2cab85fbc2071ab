import ArgumentParser
import CertdeployAPI
import Core

@main
struct CertdeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certdeploy",
        abstract: "Deploy certificates to nginx and other TLS servers, atomically and verified.",
        version: certdeployVersion,
        subcommands: [
            ServeCommand.self, TargetsCommand.self, CertsCommand.self, DeployCommand.self, DeploymentsCommand.self, RolloutsCommand.self, WindowsCommand.self,
            PushCommand.self,
            ConnectorsCommand.self, SecretsCommand.self, OpenAPICommand.self,
        ]
    )
}
