import Core
import Foundation
import ServerSecurity
import Store

/// `certdeploy secrets rotate`: re-encrypts every stored secret (certificate private keys, sealed target fields)
/// under a new passphrase, in one store transaction together with the new key record. Run it with the servers
/// stopped, then start them with the new passphrase: a server still holding the old one refuses to start.
public enum SecretRotation {
    /// Returns how many stored values were re-encrypted.
    public static func rotate(store: any Store, oldPassphrase: String, newPassphrase: String,
                              iterations: Int = SecretBox.defaultIterations, actor: String = "secrets-rotate") async throws -> Int {
        guard oldPassphrase != newPassphrase else { throw ServerStartupError("the new passphrase is the same as the old one") }
        let old = try await SecretVault.open(store: store, passphrase: oldPassphrase)
        guard let oldBox = old.box else { throw ServerStartupError("cannot open the stored secrets with the old passphrase") }
        let newBox: SecretBox
        do {
            newBox = try SecretBox.create(passphrase: newPassphrase, iterations: iterations)
        } catch {
            throw ServerStartupError("cannot derive the new secret key: \(error)")
        }
        let newVault = SecretVault(box: newBox)
        return try await store.rotateSecrets(
            settingName: SecretVault.settingName, settingValue: try SecretVault.recordJSON(newBox.record), actor: actor,
            privateKey: { version in
                let context = SecretContext(
                    objectID: CertificateSecret.objectID(name: version.certificateName, leafSHA256: version.sha256), field: CertificateSecret.field)
                return Array(try SecretBox.reencrypt(Data(version.encryptedPrivateKey), from: oldBox, to: newBox, for: context))
            },
            target: { record in
                let objectID = record.id.lowercasedText
                let config = try reseal(try JSONValue.parse(Data(record.configJSON.utf8)), pointer: "/config", objectID: objectID, from: old, to: newVault)
                let transport = try JSONValue.parse(Data(record.transportJSON.utf8))
                guard case .object(var sections) = transport else { return (record.configJSON, record.transportJSON) }
                for (name, section) in sections {
                    sections[name] = try reseal(section, pointer: "/\(name)", objectID: objectID, from: old, to: newVault)
                }
                return (config.jsonText(pretty: false), JSONValue.object(sections).jsonText(pretty: false))
            })
    }

    /// The object with each sealed member re-sealed under `to`.
    private static func reseal(_ value: JSONValue, pointer: String, objectID: String, from old: SecretVault, to new: SecretVault) throws -> JSONValue {
        guard case .object(var members) = value else { return value }
        for (name, member) in members where SecretVault.isSealed(member) {
            let field = "\(pointer)/\(name)"
            members[name] = try new.seal(try old.open(member, objectID: objectID, field: field), objectID: objectID, field: field)
        }
        return .object(members)
    }
}
