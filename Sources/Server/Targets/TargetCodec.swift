import CertdeployAPI
import Core
import Foundation
import KubernetesClient
import SSHTransport
import Store

/// Converts between what the API receives and shows (`TargetInput`, `TargetView`), what the store keeps (JSON with
/// secret fields sealed) and what the engine needs (a configured connector and an opened transport).
///
/// Stored layout: `transportJSON` is `{"ssh": {…}}` or `{"kubernetes": {…}}`; `configJSON` is the connector config.
/// A secret field (declared `secret: true` in `SSHTarget.configFields` or the connector's fields) is stored as
/// `{"$sealed": "<base64>"}`, sealed with AAD (target id, field pointer) so it cannot be moved to another target or field.
struct TargetCodec: Sendable {
    let registry: ConnectorRegistry
    let vault: SecretVault

    /// A target ready for the engine.
    struct Runtime: Sendable {
        var record: TargetRecord
        var connector: ConfiguredConnector
        var ssh: SSHTarget?
        var kubernetes: KubernetesTarget?
        /// Plaintext secrets, for the engine's redactor.
        var secrets: [String]
    }

    /// Names of targets and certificates: 1–128 characters of `A–Z a–z 0–9 . _ -`.
    static func isValidName(_ name: String) -> Bool {
        (1...128).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F || byte == 0x2D
            }
    }

    // MARK: Input → stored

    /// Validates `input` and builds the stored form. `existing` (on update) supplies secrets the input leaves out or
    /// sends as `"<redacted>"`. Throws `APIError` 422s naming the field.
    func stored(_ input: TargetInput, id: UUID, existing: TargetRecord?) throws -> NewTarget {
        guard Self.isValidName(input.name) else {
            throw APIError.invalid("/name", "must be 1–128 characters of A–Z, a–z, 0–9, '.', '_' or '-'")
        }
        guard let registered = registry.connector(id: input.connector) else {
            throw APIError.invalid("/connector", "unknown connector \"\(input.connector)\" (known: \(registry.ids.joined(separator: ", ")))")
        }
        if let certificate = input.certificate, !Self.isValidName(certificate) {
            throw APIError.invalid("/certificate", "must be a certificate name (1–128 characters of A–Z, a–z, 0–9, '.', '_' or '-')")
        }
        let objectID = id.lowercasedText
        let existingTransport = try existing.map { try JSONValue.parse(Data($0.transportJSON.utf8)) }
        let existingConfig = try existing.map { try JSONValue.parse(Data($0.configJSON.utf8)) }

        // Transport: exactly the section the connector talks over.
        let transportMember: String
        let transportFields: [ConfigField]
        let transportValue: JSONValue?
        switch registered.descriptor.transport {
        case .ssh:
            if input.kubernetes != nil {
                throw APIError.invalid("/kubernetes", "connector \(input.connector) deploys over SSH: give ssh, not kubernetes")
            }
            guard let ssh = input.ssh else { throw APIError.invalid("/ssh", "is required for connector \(input.connector), which deploys over SSH") }
            (transportMember, transportFields, transportValue) = ("ssh", SSHTarget.configFields, ssh)
        case .kubernetes:
            if input.ssh != nil {
                throw APIError.invalid("/ssh", "connector \(input.connector) talks to the Kubernetes API: give kubernetes, not ssh")
            }
            guard let kubernetes = input.kubernetes else {
                throw APIError.invalid("/kubernetes", "is required for connector \(input.connector), which talks to the Kubernetes API")
            }
            (transportMember, transportFields, transportValue) = ("kubernetes", KubernetesTarget.configFields, kubernetes)
        }
        guard case .object(let transportMembers)? = transportValue else {
            throw APIError.invalid("/\(transportMember)", "must be an object")
        }
        guard case .object(let configMembers) = input.config else { throw APIError.invalid("/config", "must be an object") }

        let keptTransport = existingTransport?[transportMember]
        let (plainTransport, sealedTransport) = try sealSecrets(
            transportMembers, fields: transportFields, pointer: "/\(transportMember)", objectID: objectID, kept: keptTransport)
        let (plainConfig, sealedConfig) = try sealSecrets(
            configMembers, fields: registered.descriptor.configFields, pointer: "/config", objectID: objectID, kept: existingConfig)

        // Validate with plaintext stand-ins for secrets (a kept secret is checked for type only, as stored).
        do {
            switch registered.descriptor.transport {
            case .ssh: _ = try SSHTarget.decode(.object(plainTransport), pointer: "/ssh")
            case .kubernetes: _ = try KubernetesTarget.decode(.object(plainTransport), pointer: "/kubernetes")
            }
        } catch let error as ConfigError {
            throw APIError.invalid(error.issues.map { Problem.FieldError(pointer: $0.pointer, detail: $0.message) })
        } catch let error as ClusterError {
            throw APIError.invalid("/kubernetes", error.message)
        }
        do {
            _ = try registered.configure(.object(plainConfig))
        } catch let error as ConfigError {
            throw APIError.invalid(error.issues.map { Problem.FieldError(pointer: "/config" + $0.pointer, detail: $0.message) })
        }
        return NewTarget(
            id: id, name: input.name, labels: input.labels ?? [:], connectorID: input.connector,
            configJSON: JSONValue.object(sealedConfig).jsonText(pretty: false),
            transportJSON: JSONValue.object([transportMember: .object(sealedTransport)]).jsonText(pretty: false),
            certificateName: input.certificate)
    }

    /// Returns (members for validation, members to store): secret strings sealed; a secret left out or sent as
    /// `"<redacted>"` keeps the stored value from `kept`.
    private func sealSecrets(
        _ members: [String: JSONValue], fields: [ConfigField], pointer: String, objectID: String, kept: JSONValue?
    ) throws -> (plain: [String: JSONValue], sealed: [String: JSONValue]) {
        var plain = members
        var sealed = members
        for field in fields where field.secret {
            let fieldPointer = "\(pointer)/\(field.name)"
            switch members[field.name] {
            case .string(let value)? where value != redactedPlaceholder:
                sealed[field.name] = try vault.seal(value, objectID: objectID, field: fieldPointer)
            case .string? , nil:
                // Write-only: "<redacted>" or absent keeps the stored secret (if any).
                if let stored = kept?[field.name], SecretVault.isSealed(stored) {
                    sealed[field.name] = stored
                    plain[field.name] = .string(redactedPlaceholder)
                } else if members[field.name] != nil {
                    throw APIError.invalid(fieldPointer, "\"\(redactedPlaceholder)\" keeps a stored secret, but none is stored; send the value")
                }
            case .null?:
                sealed[field.name] = nil
                plain[field.name] = nil
            case let other?:
                _ = other  // a wrong type: validation names it below
            }
        }
        return (plain, sealed)
    }

    // MARK: Stored → view

    func view(_ record: TargetRecord, lastDeployment: DeploymentSummary? = nil) -> TargetView {
        let transport = (try? JSONValue.parse(Data(record.transportJSON.utf8))) ?? .object([:])
        let config = (try? JSONValue.parse(Data(record.configJSON.utf8))) ?? .object([:])
        return TargetView(
            id: record.id, name: record.name, connector: record.connectorID, labels: record.labels, certificate: record.certificateName,
            ssh: transport["ssh"].map(Self.redacted), kubernetes: transport["kubernetes"].map(Self.redacted), config: Self.redacted(config),
            createdAt: record.createdAt, updatedAt: record.updatedAt, version: record.version, lastDeployment: lastDeployment)
    }

    /// Every sealed value replaced by `"<redacted>"`.
    static func redacted(_ value: JSONValue) -> JSONValue {
        if SecretVault.isSealed(value) { return .string(redactedPlaceholder) }
        switch value {
        case .object(let members): return .object(members.mapValues(redacted))
        case .array(let items): return .array(items.map(redacted))
        default: return value
        }
    }

    /// Whether a stored target holds a sealed value.
    static func hasSecret(_ record: TargetRecord) -> Bool {
        record.configJSON.contains(SecretVault.sealedMember) || record.transportJSON.contains(SecretVault.sealedMember)
    }

    // MARK: Stored → runtime

    /// Opens the stored target for the engine. Throws `SecretVaultError`, `ConfigError` or `RegistryError`-like
    /// failures as `TargetRuntimeError` (the target changed under an old build, the passphrase is missing, …).
    func runtime(_ record: TargetRecord) throws -> Runtime {
        guard let registered = registry.connector(id: record.connectorID) else {
            throw TargetRuntimeError("connector \"\(record.connectorID)\" is not built into this server")
        }
        let objectID = record.id.lowercasedText
        var secrets: [String] = []
        func open(_ value: JSONValue, pointer: String) throws -> JSONValue {
            guard case .object(var members) = value else { return value }
            for (name, member) in members where SecretVault.isSealed(member) {
                let plaintext = try vault.open(member, objectID: objectID, field: "\(pointer)/\(name)")
                secrets.append(plaintext)
                members[name] = .string(plaintext)
            }
            return .object(members)
        }
        do {
            let transport = try JSONValue.parse(Data(record.transportJSON.utf8))
            let config = try open(try JSONValue.parse(Data(record.configJSON.utf8)), pointer: "/config")
            let connector = try registered.configure(config)
            var runtime = Runtime(record: record, connector: connector, ssh: nil, kubernetes: nil, secrets: [])
            if let ssh = transport["ssh"] {
                runtime.ssh = try SSHTarget.decode(try open(ssh, pointer: "/ssh"), pointer: "/ssh")
            } else if let kubernetes = transport["kubernetes"] {
                runtime.kubernetes = try KubernetesTarget.decode(kubernetes, pointer: "/kubernetes")
            } else {
                throw TargetRuntimeError("the stored target has neither ssh nor kubernetes")
            }
            runtime.secrets = secrets
            return runtime
        } catch let error as TargetRuntimeError {
            throw error
        } catch {
            throw TargetRuntimeError("target \(record.name): \(error)")
        }
    }
}

/// A stored target cannot be turned into something the engine can run.
struct TargetRuntimeError: Error, CustomStringConvertible, Sendable {
    var description: String
    init(_ description: String) { self.description = description }
}
