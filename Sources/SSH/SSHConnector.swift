import Core
import Foundation

/// Opens SSH sessions to targets: connect, check the host key, authenticate, choose the file path.
public struct SSHConnector: Sendable {
    private let pool: BlockingPool

    public init(pool: BlockingPool = .shared) { self.pool = pool }

    /// One authenticated session to `target`. The caller closes it.
    public func connect(_ target: SSHTarget) async throws -> SSHRemoteHost {
        let session = SSHSession(host: target.host, port: target.port, user: target.user)
        let started = ContinuousClock.now
        let connectDeadline = started.advanced(by: .seconds(target.connectTimeoutSeconds))
        let credentials = try loadCredentials(target, endpoint: session.endpoint)
        do {
            let hostKey: PresentedHostKey = try await withTaskCancellationHandler {
                try await pool.run {
                    let preference = HostKeyVerifier.preference(policy: target.hostKeyPolicy, host: target.host, port: target.port)
                    let presented = try session.connect(hostKeyPreference: preference, deadline: connectDeadline)
                    let key = PresentedHostKey(blob: presented.key, libssh2Type: presented.type)
                    // Strict: the key is checked before any credential is sent.
                    try HostKeyVerifier.verify(key, host: target.host, port: target.port, policy: target.hostKeyPolicy, endpoint: session.endpoint)
                    switch credentials {
                    case .key(let pem, let passphrase):
                        try session.authenticate(privateKey: pem, passphrase: passphrase, deadline: connectDeadline)
                    case .password(let password):
                        try session.authenticate(password: password, deadline: connectDeadline)
                    }
                    return key
                }
            } onCancel: {
                session.cancel()
            }
            let connectDuration = ContinuousClock.now - started
            let operationTimeout = Duration.seconds(target.commandTimeoutSeconds)
            let access = try await chooseAccess(target, session: session, timeout: operationTimeout)
            return SSHRemoteHost(session: session, access: access, pool: pool, operationTimeout: operationTimeout, hostKey: hostKey, connectDuration: connectDuration)
        } catch {
            _ = try? await pool.run { session.disconnect() }
            throw error
        }
    }

    private enum Credentials {
        case key(String, passphrase: String?)
        case password(String)
    }

    private func loadCredentials(_ target: SSHTarget, endpoint: String) throws -> Credentials {
        if let pem = target.privateKey { return .key(pem, passphrase: target.passphrase) }
        if let file = target.privateKeyFile {
            do {
                return .key(try String(contentsOfFile: file, encoding: .utf8), passphrase: target.passphrase)
            } catch {
                throw RemoteError(.configuration, host: endpoint, operation: "authenticate", "cannot read private key file \(file): \(error.localizedDescription)")
            }
        }
        if let password = target.password { return .password(password) }
        throw RemoteError(.configuration, host: endpoint, operation: "authenticate", "no credentials configured")
    }

    private func chooseAccess(_ target: SSHTarget, session: SSHSession, timeout: Duration) async throws -> SSHRemoteHost.FileAccess {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var upload: SSHRemoteHost.FileAccess.Upload = .scp
        if target.transfer != .scp {
            let hasSFTP = try await pool.run { try session.startSFTP(deadline: deadline) }
            if hasSFTP {
                upload = .sftp
            } else if target.transfer == .sftp {
                throw RemoteError(.configuration, host: session.endpoint, operation: "sftp", "the server has no SFTP subsystem and transfer is \"sftp\"; use \"auto\" or \"scp\"")
            }
        }
        guard target.sudo else { return upload == .sftp ? .sftp : .exec(upload: .scp, sudo: false, staging: nil) }
        // A private staging directory (mktemp -d makes it 0700) for files sudo installs into place.
        let result = try await pool.run {
            try session.exec("mktemp -d /tmp/certdeploy-stage.XXXXXXXX", stdoutLimit: 4096, deadline: deadline)
        }
        let staging = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.exitStatus == 0, staging.hasPrefix("/") else {
            throw RemoteError(.io, host: session.endpoint, operation: "sudo staging", "mktemp -d failed: \(result.outputTail())")
        }
        return .exec(upload: upload, sudo: true, staging: staging)
    }
}
