import Crypto
import _CryptoExtras
import Foundation

/// What a secret belongs to. Both parts are bound into the ciphertext (AES-GCM additional data), so a blob copied to
/// another object or field does not decrypt.
public struct SecretContext: Sendable, Hashable, CustomStringConvertible {
    /// The owning object, e.g. `"target/web-1"` or `"certificate/example.com"`.
    public let objectID: String
    /// The field within it, e.g. `"ssh.privateKey"`.
    public let field: String

    public init(objectID: String, field: String) {
        self.objectID = objectID
        self.field = field
    }

    public var description: String { "field \"\(field)\" of \"\(objectID)\"" }
}

/// Stored once beside the encrypted rows: how the master key is derived from the passphrase, and a value that tells
/// whether a passphrase is the right one. It holds nothing secret.
public struct SecretKeyRecord: Sendable, Codable, Equatable {
    public static let currentVersion = 1
    public static let kdfName = "pbkdf2-hmac-sha256"

    public var version: Int
    public var kdf: String
    public var iterations: Int
    public var salt: Data
    /// HKDF of the master key with a fixed label: equal only when the passphrase is.
    public var check: Data

    public init(version: Int = SecretKeyRecord.currentVersion, kdf: String = SecretKeyRecord.kdfName, iterations: Int, salt: Data, check: Data) {
        self.version = version
        self.kdf = kdf
        self.iterations = iterations
        self.salt = salt
        self.check = check
    }
}

public enum SecretBoxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `CERTDEPLOY_SECRET_KEY` is not set (or empty): secrets cannot be stored or read.
    case noPassphrase
    /// The passphrase does not match the stored check value.
    case wrongPassphrase
    /// The stored key record is not one this version understands, or is weaker than the floor.
    case unsupportedKeyRecord(String)
    /// Not a certdeploy secret blob (bad magic or too short).
    case notASecretBlob(SecretContext)
    case unsupportedBlobVersion(UInt8, SecretContext)
    /// Authentication failed: the blob belongs to another object or field, or it was altered.
    case decryptionFailed(SecretContext)
    /// The decrypted secret is not UTF-8 text (only from the `String` conveniences).
    case notText(SecretContext)

    public var description: String {
        switch self {
        case .noPassphrase:
            "\(SecretBox.passphraseVariable) is not set: certdeploy refuses to store or read secrets without the passphrase that encrypts them"
        case .wrongPassphrase:
            "\(SecretBox.passphraseVariable): the passphrase does not match the one the stored secrets were encrypted with"
        case .unsupportedKeyRecord(let why):
            "the stored secret key record cannot be used: \(why)"
        case .notASecretBlob(let context):
            "the stored value for \(context) is not an encrypted certdeploy secret"
        case .unsupportedBlobVersion(let version, let context):
            "the encrypted secret for \(context) has format version \(version), which this certdeploy does not know"
        case .decryptionFailed(let context):
            "the encrypted secret for \(context) does not decrypt: it was encrypted for a different object or field, or it was altered"
        case .notText(let context):
            "the secret for \(context) is not UTF-8 text"
        }
    }
}

/// Encrypts secret fields at rest.
///
/// The master key is derived once per process from the operator passphrase (PBKDF2-HMAC-SHA256, at least 600,000
/// iterations, stored salt). Each blob gets its own AES-256-GCM key from HKDF-SHA256 over the master key and a
/// random per-blob salt, so a decrypt costs one HKDF and one AES-GCM open, not a PBKDF2 derivation.
///
/// Blob layout (version 1):
///
///     "CDS1" | 0x01 | salt (32) | nonce (12) | ciphertext (n) | tag (16)
///
/// The additional authenticated data is a domain label, the length-prefixed object id and field name, and the header
/// (magic, version, salt), so a blob only opens for the object and field it was sealed for.
public struct SecretBox: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public static let passphraseVariable = "CERTDEPLOY_SECRET_KEY"
    /// OWASP 2024 floor for PBKDF2-HMAC-SHA256.
    public static let minimumIterations = 600_000
    public static let defaultIterations = 600_000

    static let magic: [UInt8] = Array("CDS1".utf8)
    static let blobVersion: UInt8 = 1
    static let saltSize = 32
    static let nonceSize = 12
    static let tagSize = 16
    static let headerSize = magic.count + 1 + saltSize
    static let minimumBlobSize = headerSize + nonceSize + tagSize
    static let masterSaltSize = 32
    static let subkeyInfo = Data("certdeploy secret v1 aes-256-gcm".utf8)
    static let checkInfo = Data("certdeploy secret key check v1".utf8)
    static let aadLabel = Data("certdeploy secret v1".utf8)

    let masterKey: SymmetricKey
    /// What to store beside the encrypted rows (unchanged for a box opened from a record).
    public let record: SecretKeyRecord

    // MARK: - Making a box

    /// A new key record (fresh random salt) for `passphrase`: first start, or the target of a passphrase rotation.
    public static func create(passphrase: String, iterations: Int = defaultIterations) throws(SecretBoxError) -> SecretBox {
        try create(passphrase: passphrase, iterations: iterations, minimumIterations: minimumIterations)
    }

    /// Tests only: allows fewer iterations than the floor.
    static func create(passphrase: String, iterations: Int, minimumIterations: Int) throws(SecretBoxError) -> SecretBox {
        guard !passphrase.isEmpty else { throw .noPassphrase }
        guard iterations >= minimumIterations else {
            throw .unsupportedKeyRecord("\(iterations) PBKDF2 iterations is below the floor of \(minimumIterations)")
        }
        let salt = Data(randomBytes(masterSaltSize))
        let master = try deriveMasterKey(passphrase: passphrase, salt: salt, iterations: iterations)
        let record = SecretKeyRecord(iterations: iterations, salt: salt, check: checkValue(master))
        return SecretBox(masterKey: master, record: record)
    }

    /// Opens the stored key record with `passphrase` (once per process); refuses a wrong passphrase.
    public static func open(passphrase: String, record: SecretKeyRecord) throws(SecretBoxError) -> SecretBox {
        try open(passphrase: passphrase, record: record, minimumIterations: minimumIterations)
    }

    static func open(passphrase: String, record: SecretKeyRecord, minimumIterations: Int) throws(SecretBoxError) -> SecretBox {
        guard !passphrase.isEmpty else { throw .noPassphrase }
        guard record.version == SecretKeyRecord.currentVersion else { throw .unsupportedKeyRecord("version \(record.version) is not known") }
        guard record.kdf == SecretKeyRecord.kdfName else { throw .unsupportedKeyRecord("key derivation \"\(record.kdf)\" is not known") }
        guard record.iterations >= minimumIterations else {
            throw .unsupportedKeyRecord("\(record.iterations) PBKDF2 iterations is below the floor of \(minimumIterations)")
        }
        guard record.salt.count >= 16 else { throw .unsupportedKeyRecord("the salt is shorter than 16 bytes") }
        let master = try deriveMasterKey(passphrase: passphrase, salt: record.salt, iterations: record.iterations)
        guard ConstantTime.equals(checkValue(master), record.check) else { throw .wrongPassphrase }
        return SecretBox(masterKey: master, record: record)
    }

    /// The server's start-up rule: with a stored record and a passphrase, the passphrase must match (a wrong one throws
    /// `.wrongPassphrase` and the server refuses to start); with a passphrase and no record a new box is created (store
    /// its `record` before sealing anything); without a passphrase there is no box (`nil`): the server runs, and storing
    /// or reading a secret fails with `SecretBoxError.noPassphrase`.
    public static func startup(environment: [String: String] = ProcessInfo.processInfo.environment, record: SecretKeyRecord?) throws(SecretBoxError) -> SecretBox? {
        let passphrase = environment[passphraseVariable].flatMap { $0.isEmpty ? nil : $0 }
        switch (passphrase, record) {
        case (nil, _): return nil
        case (let passphrase?, let record?): return try open(passphrase: passphrase, record: record)
        case (let passphrase?, nil): return try create(passphrase: passphrase)
        }
    }

    private init(masterKey: SymmetricKey, record: SecretKeyRecord) {
        self.masterKey = masterKey
        self.record = record
    }

    // MARK: - Sealing and opening

    public func seal(_ plaintext: some DataProtocol, for context: SecretContext) -> Data {
        let salt = Self.randomBytes(Self.saltSize)
        var header = Self.magic
        header.append(Self.blobVersion)
        header += salt
        let key = subkey(salt: salt)
        let nonce = AES.GCM.Nonce()
        do {
            let sealed = try AES.GCM.seal(plaintext, using: key, nonce: nonce, authenticating: Self.additionalData(header: header, context: context))
            var blob = Data(header)
            nonce.withUnsafeBytes { blob.append(contentsOf: $0) }
            blob.append(sealed.ciphertext)
            blob.append(sealed.tag)
            return blob
        } catch {
            // AES-GCM sealing fails only for invalid key or nonce sizes, which are fixed here.
            preconditionFailure("AES-GCM seal failed with a 256-bit key and 96-bit nonce: \(error)")
        }
    }

    public func seal(_ text: String, for context: SecretContext) -> Data {
        seal(Data(text.utf8), for: context)
    }

    public func open(_ blob: Data, for context: SecretContext) throws(SecretBoxError) -> Data {
        let bytes = [UInt8](blob)
        guard bytes.count >= Self.minimumBlobSize, Array(bytes[0..<Self.magic.count]) == Self.magic else { throw .notASecretBlob(context) }
        let version = bytes[Self.magic.count]
        guard version == Self.blobVersion else { throw .unsupportedBlobVersion(version, context) }
        let header = Array(bytes[0..<Self.headerSize])
        let salt = Array(bytes[(Self.magic.count + 1)..<Self.headerSize])
        let nonceEnd = Self.headerSize + Self.nonceSize
        let tagStart = bytes.count - Self.tagSize
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: bytes[Self.headerSize..<nonceEnd]),
                ciphertext: bytes[nonceEnd..<tagStart],
                tag: bytes[tagStart...]
            )
            return try AES.GCM.open(box, using: subkey(salt: salt), authenticating: Self.additionalData(header: header, context: context))
        } catch {
            throw .decryptionFailed(context)
        }
    }

    public func openString(_ blob: Data, for context: SecretContext) throws(SecretBoxError) -> String {
        let data = try open(blob, for: context)
        guard let text = String(data: data, encoding: .utf8) else { throw .notText(context) }
        return text
    }

    /// Decrypts with `old` and seals again with `new` for the same object and field (the passphrase rotation command).
    public static func reencrypt(_ blob: Data, from old: SecretBox, to new: SecretBox, for context: SecretContext) throws(SecretBoxError) -> Data {
        new.seal(try old.open(blob, for: context), for: context)
    }

    /// Whether `data` looks like a sealed secret (magic and minimum size); says nothing about which key sealed it.
    public static func isSealed(_ data: Data) -> Bool {
        data.count >= minimumBlobSize && Array(data.prefix(magic.count)) == magic
    }

    // MARK: - Keys

    static func deriveMasterKey(passphrase: String, salt: Data, iterations: Int) throws(SecretBoxError) -> SymmetricKey {
        do {
            return try pbkdf2SHA256(password: Data(passphrase.utf8), salt: salt, iterations: iterations, outputByteCount: 32)
        } catch {
            throw .unsupportedKeyRecord("PBKDF2 failed: \(error)")
        }
    }

    /// PBKDF2-HMAC-SHA256 (BoringSSL through `_CryptoExtras`). The iteration floor is enforced by the callers.
    static func pbkdf2SHA256(password: Data, salt: Data, iterations: Int, outputByteCount: Int) throws -> SymmetricKey {
        try KDF.Insecure.PBKDF2.deriveKey(from: password, salt: salt, using: .sha256, outputByteCount: outputByteCount, unsafeUncheckedRounds: iterations)
    }

    static func checkValue(_ master: SymmetricKey) -> Data {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: master, info: checkInfo, outputByteCount: 32).withUnsafeBytes { Data($0) }
    }

    private func subkey(salt: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: masterKey, salt: salt, info: Self.subkeyInfo, outputByteCount: 32)
    }

    static func additionalData(header: [UInt8], context: SecretContext) -> Data {
        var aad = aadLabel
        for part in [context.objectID, context.field] {
            let utf8 = Data(part.utf8)
            var length = UInt32(utf8.count).bigEndian
            withUnsafeBytes(of: &length) { aad.append(contentsOf: $0) }
            aad.append(utf8)
        }
        aad.append(contentsOf: header)
        return aad
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        // Eight bytes per draw from the system generator: drawing one `UInt8` at a time cost a `getrandom` system
        // call per byte (32 for one salt).
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 8)
        while bytes.count < count {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        bytes.removeLast(bytes.count - count)
        return bytes
    }

    // MARK: - Never print the key

    public var description: String { "SecretBox(<redacted>, \(record.iterations) PBKDF2 iterations)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["record": record], displayStyle: .struct) }
}
