import ArgumentParser
import Foundation
import Logging
import Server
import Store

/// `certdeploy secrets rotate`: re-encrypt every stored secret under a new passphrase.
struct SecretsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets",
        abstract: "Manage the encryption of secrets at rest.",
        subcommands: [Rotate.self]
    )

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-encrypt every stored secret under a new passphrase (stop the servers first).",
            discussion: """
            The old passphrase comes from CERTDEPLOY_SECRET_KEY (or CERTDEPLOY_SECRET_KEY_FILE), the new one from \
            CERTDEPLOY_NEW_SECRET_KEY (or CERTDEPLOY_NEW_SECRET_KEY_FILE). Everything is re-encrypted in one transaction: \
            on any error nothing changes. Then start the servers with the new passphrase.
            """
        )

        @Option(help: "Directory of the SQLite database (when --database-url is not given).")
        var dataDir = "./data"

        @Option(help: "PostgreSQL URL instead of SQLite. Also CERTDEPLOY_DATABASE_URL.")
        var databaseURL: String?

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            do {
                guard let old = try SecretVault.passphrase(environment: environment) else {
                    throw ServerStartupError("set CERTDEPLOY_SECRET_KEY (or CERTDEPLOY_SECRET_KEY_FILE) to the current passphrase")
                }
                let newEnvironment = [
                    "CERTDEPLOY_SECRET_KEY": environment["CERTDEPLOY_NEW_SECRET_KEY"] ?? "",
                    SecretVault.passphraseFileVariable: environment["CERTDEPLOY_NEW_SECRET_KEY_FILE"] ?? "",
                ]
                guard let new = try SecretVault.passphrase(environment: newEnvironment) else {
                    throw ServerStartupError("set CERTDEPLOY_NEW_SECRET_KEY (or CERTDEPLOY_NEW_SECRET_KEY_FILE) to the new passphrase")
                }
                let url = databaseURL ?? environment["CERTDEPLOY_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
                let store: any Store
                do {
                    if let url {
                        store = try await PostgresStore.open(url: url)
                    } else {
                        store = try await SQLiteStore.open(dataDirectory: dataDir)
                    }
                } catch {
                    throw ServerStartupError("cannot open the store: \(error)")
                }
                defer { Task { try? await store.close() } }
                let count = try await SecretRotation.rotate(store: store, oldPassphrase: old, newPassphrase: new)
                print("re-encrypted \(count) stored secret value(s); start the servers with the new passphrase")
            } catch let error as ServerStartupError {
                FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
                throw ExitCode(2)
            }
        }
    }
}
