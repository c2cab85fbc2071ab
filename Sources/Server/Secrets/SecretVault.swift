import Core
import Foundation
import ServerSecurity
import Store

/// The server's secrets at rest: the `SecretBox` opened from the operator passphrase, and the sealed-value format
/// used inside stored JSON (`{"$sealed": "<base64 blob>"}`).
///
/// Start-up rule (security contract): with a passphrase and a stored key record, the passphrase must match or the
/// server refuses to start; with a passphrase and no record, a new record is created and stored; without a
/// passphrase the server runs but refuses to store secrets, and refuses to start when secrets are already stored.
public struct SecretVault: Sendable {
    /// The settings row holding the `SecretKeyRecord` (JSON).
    public static let settingName = "secret-key-record"
    /// Alternative to `CERTDEPLOY_SECRET_KEY`: a file holding the passphrase.
    public static let passphraseFileVariable = "CERTDEPLOY_SECRET_KEY_FILE"
    static let sealedMember = "$sealed"

    public let box: SecretBox?

    public init(box: SecretBox?) { self.box = box }

    /// The passphrase from `CERTDEPLOY_SECRET_KEY`, else from the file named by `CERTDEPLOY_SECRET_KEY_FILE`.
    public static func passphrase(environment: [String: String]) throws -> String? {
        if let value = environment[SecretBox.passphraseVariable], !value.isEmpty { return value }
        guard let path = environment[passphraseFileVariable], !path.isEmpty else { return nil }
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? nil : text
        } catch {
            throw ServerStartupError("\(passphraseFileVariable)=\(path): cannot read the passphrase file: \(error.localizedDescription)")
        }
    }

    /// Opens (or creates) the vault for `store` following the start-up rule. A stored key record with nothing
    /// encrypted under it yet does not bind the server to its passphrase: a different passphrase replaces it.
    public static func open(store: any Store, passphrase: String?, iterations: Int = SecretBox.defaultIterations) async throws -> SecretVault {
        let stored = try await store.setting(named: settingName)
        let record: SecretKeyRecord?
        do {
            record = try stored.map { try JSONDecoder().decode(SecretKeyRecord.self, from: Data($0.utf8)) }
        } catch {
            throw ServerStartupError("the stored secret key record cannot be read: \(error)")
        }
        let holdsSecrets = record == nil ? false : try await store.hasEncryptedData(targetHasSecret: TargetCodec.hasSecret)
        guard let passphrase else {
            if holdsSecrets {
                throw ServerStartupError(
                    "the store holds encrypted secrets: set \(SecretBox.passphraseVariable) (or \(passphraseFileVariable)) to the passphrase they were stored with")
            }
            return SecretVault(box: nil)
        }
        if let record {
            do {
                return SecretVault(box: try SecretBox.open(passphrase: passphrase, record: record))
            } catch .wrongPassphrase {
                if holdsSecrets {
                    throw ServerStartupError(
                        "\(SecretBox.passphraseVariable) does not open the secrets in this store (wrong passphrase); refusing to start")
                }
            } catch {
                throw ServerStartupError("cannot open the stored secrets: \(error)")
            }
        }
        let box: SecretBox
        do {
            box = try SecretBox.create(passphrase: passphrase, iterations: iterations)
        } catch {
            throw ServerStartupError("cannot derive the secret key: \(error)")
        }
        try await store.setSetting(named: settingName, value: try recordJSON(box.record), actor: "system")
        return SecretVault(box: box)
    }

    static func recordJSON(_ record: SecretKeyRecord) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(record), as: UTF8.self)
    }

    /// The box, or a 422 naming `pointer` that explains why nothing secret can be stored.
    func requireBox(for pointer: String) throws -> SecretBox {
        guard let box else {
            throw APIError.invalid(
                pointer,
                "is a secret, and this server has no \(SecretBox.passphraseVariable): start it with a passphrase to store secrets encrypted")
        }
        return box
    }

    // MARK: Sealed JSON values

    /// `{"$sealed": "<base64>"}` for `plaintext`, bound to `objectID` and `field`.
    func seal(_ plaintext: String, objectID: String, field: String) throws -> JSONValue {
        let box = try requireBox(for: field)
        let blob = box.seal(plaintext, for: SecretContext(objectID: objectID, field: field))
        return .object([Self.sealedMember: .string(blob.base64EncodedString())])
    }

    static func isSealed(_ value: JSONValue) -> Bool {
        if case .object(let members) = value, members.count == 1, case .string? = members[sealedMember] { return true }
        return false
    }

    /// The plaintext of a sealed value.
    func open(_ value: JSONValue, objectID: String, field: String) throws -> String {
        guard case .object(let members) = value, case .string(let text)? = members[Self.sealedMember],
            let blob = Data(base64Encoded: text)
        else { throw SecretVaultError("\(field) of \(objectID) is not a sealed value") }
        guard let box else {
            throw SecretVaultError("\(field) of \(objectID) is encrypted and this server has no \(SecretBox.passphraseVariable)")
        }
        do {
            return try box.openString(blob, for: SecretContext(objectID: objectID, field: field))
        } catch {
            throw SecretVaultError("\(field) of \(objectID) cannot be decrypted: \(error)")
        }
    }

    /// Seals raw bytes (certificate private keys) for the store's opaque column.
    func sealBytes(_ plaintext: String, objectID: String, field: String, pointer: String) throws -> [UInt8] {
        let box = try requireBox(for: pointer)
        return Array(box.seal(plaintext, for: SecretContext(objectID: objectID, field: field)))
    }

    func openBytes(_ blob: [UInt8], objectID: String, field: String) throws -> String {
        guard let box else {
            throw SecretVaultError("\(field) of \(objectID) is encrypted and this server has no \(SecretBox.passphraseVariable)")
        }
        do {
            return try box.openString(Data(blob), for: SecretContext(objectID: objectID, field: field))
        } catch {
            throw SecretVaultError("\(field) of \(objectID) cannot be decrypted: \(error)")
        }
    }
}

/// A stored secret could not be opened (no passphrase, tampered or moved ciphertext).
public struct SecretVaultError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The AAD names of certificate private keys: bound to the certificate's name and its leaf (the version number is
/// assigned by the store after sealing), so a key copied to another certificate or version row does not decrypt.
enum CertificateSecret {
    static func objectID(name: String, leafSHA256: String) -> String { "certificate/\(name)/\(leafSHA256)" }
    static let field = "privateKey"
}
