import CLibSSH2
import Core
import Crypto
import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// libssh2 is initialised once per process, before any session exists.
private let libssh2Initialised: Bool = libssh2_init(0) == 0

/// One libssh2 session over one TCP connection, driven in non-blocking mode so every call honours a
/// deadline and cancellation.
///
/// Thread-safety: `@unchecked Sendable` is sound because every method that touches libssh2 state
/// (`session`, `sftp`) runs inside `lock.withLock`, so at most one thread uses the session at a time;
/// `cancel()` touches only the socket descriptor (shutdown(2) is thread-safe) and the separately
/// locked `cancelled` flag. Methods block, so callers run them on the ``BlockingPool``.
final class SSHSession: @unchecked Sendable {
    let host: String
    let port: Int
    let user: String
    private let lock = NIOLock()
    private let cancelled = NIOLockedValueBox(false)
    private var socket: Int32 = -1
    private var session: OpaquePointer?
    private var sftpHandle: OpaquePointer?
    private var sftpUnavailableReason: String?

    var endpoint: String { "\(user)@\(host):\(port)" }

    init(host: String, port: Int, user: String) {
        self.host = host
        self.port = port
        self.user = user
    }

    deinit {
        if let sftpHandle { libssh2_sftp_shutdown(sftpHandle) }
        if let session { libssh2_session_free(session) }
        if socket >= 0 { close(socket) }
    }

    // MARK: Errors and waiting

    func error(_ code: RemoteError.Code, _ operation: String, _ message: String) -> RemoteError {
        RemoteError(code, host: endpoint, operation: operation, message)
    }

    private func lastError() -> (code: Int32, message: String) {
        guard let session else { return (0, "no session") }
        var messagePointer: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        let code = libssh2_session_last_error(session, &messagePointer, &length, 0)
        let message = messagePointer.map { String(cString: $0) } ?? "unknown libssh2 error"
        return (code, message)
    }

    private func libssh2Failure(_ operation: String, code: Int32? = nil) -> RemoteError {
        let last = lastError()
        let rc = code ?? last.code
        switch rc {
        case LIBSSH2_ERROR_TIMEOUT, LIBSSH2_ERROR_SOCKET_TIMEOUT:
            return error(.timeout, operation, "timed out")
        case LIBSSH2_ERROR_SOCKET_DISCONNECT, LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_SOCKET_SEND, LIBSSH2_ERROR_SOCKET_NONE:
            if cancelled.withLockedValue({ $0 }) { return error(.cancelled, operation, "cancelled") }
            return error(.connect, operation, "connection lost: \(last.message)")
        default:
            return error(.protocolError, operation, "\(last.message) (libssh2 error \(rc))")
        }
    }

    /// Blocks until the socket is ready in the direction libssh2 is waiting for, or the deadline passes.
    private func waitSocket(_ operation: String, deadline: ContinuousClock.Instant) throws {
        if cancelled.withLockedValue({ $0 }) { throw error(.cancelled, operation, "cancelled") }
        let now = ContinuousClock.now
        guard now < deadline else { throw error(.timeout, operation, "timed out") }
        var events: Int16 = 0
        if let session {
            let directions = libssh2_session_block_directions(session)
            if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
            if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        }
        if events == 0 { events = Int16(POLLIN) }
        let remaining = deadline - now
        let milliseconds = min(200, max(1, Int32(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)))
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        _ = poll(&descriptor, 1, milliseconds)
    }

    /// Repeats an int-returning libssh2 call while it says EAGAIN. Returns the non-negative result.
    @discardableResult
    private func retry(_ operation: String, deadline: ContinuousClock.Instant, _ call: () -> Int32) throws -> Int32 {
        while true {
            let rc = call()
            if rc >= 0 { return rc }
            guard rc == LIBSSH2_ERROR_EAGAIN else { throw libssh2Failure(operation, code: rc) }
            try waitSocket(operation, deadline: deadline)
        }
    }

    /// Repeats a pointer-returning libssh2 call while it fails with EAGAIN.
    private func retryPointer(_ operation: String, deadline: ContinuousClock.Instant, _ call: () -> OpaquePointer?) throws -> OpaquePointer {
        while true {
            if let pointer = call() { return pointer }
            guard let session, libssh2_session_last_errno(session) == LIBSSH2_ERROR_EAGAIN else {
                throw libssh2Failure(operation)
            }
            try waitSocket(operation, deadline: deadline)
        }
    }

    /// Ends whatever call is in progress: the socket is shut down, so the waiting call fails at once.
    func cancel() {
        cancelled.withLockedValue { $0 = true }
        let descriptor = lock.withLock { socket }
        if descriptor >= 0 { shutdown(descriptor, Int32(SHUT_RDWR)) }
    }

    // MARK: Connect, handshake, host key

    /// TCP connect and SSH handshake; returns the server's host key blob and type.
    func connect(hostKeyPreference: [String], deadline: ContinuousClock.Instant) throws -> (key: [UInt8], type: Int32) {
        precondition(libssh2Initialised, "libssh2_init failed")
        try lock.withLock { () throws in
            socket = try Self.tcpConnect(host: host, port: port, deadline: deadline, describe: { self.error($0, "connect", $1) })
            guard let created = libssh2_session_init_ex(nil, nil, nil, nil) else {
                throw error(.connect, "handshake", "cannot allocate an SSH session")
            }
            session = created
            libssh2_session_set_blocking(created, 0)
            // OpenSSH's default sntrup761x25519 costs ~100 ms of CPU a connection; curve25519 a few ms.
            _ = libssh2_session_method_pref(created, LIBSSH2_METHOD_KEX,
                "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512")
            // Ask for the host key type the operator pinned or listed, not whatever libssh2 prefers (ECDSA).
            _ = libssh2_session_method_pref(created, LIBSSH2_METHOD_HOSTKEY, hostKeyPreference.joined(separator: ","))
            let fd = socket
            do {
                try retry("handshake", deadline: deadline) { libssh2_session_handshake(created, fd) }
            } catch let failure as RemoteError {
                let message = failure.code == .protocolError ? "SSH handshake failed: \(lastError().message)" : failure.message
                throw error(failure.code == .protocolError ? .connect : failure.code, "handshake", message)
            }
        }
        return lock.withLock {
            var length = 0
            var type: Int32 = 0
            guard let key = libssh2_session_hostkey(session, &length, &type) else { return ([], 0) }
            return (Array(UnsafeRawBufferPointer(start: key, count: length)), type)
        }
    }

    private static func tcpConnect(host: String, port: Int, deadline: ContinuousClock.Instant,
                                   describe: (RemoteError.Code, String) -> RemoteError) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var addresses: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &addresses)
        guard rc == 0, let first = addresses else {
            throw describe(.connect, "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(addresses) }
        var lastProblem = "no address"
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let address = cursor {
            cursor = address.pointee.ai_next
            let fd = Glibc.socket(address.pointee.ai_family, address.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.ai_protocol)
            if fd < 0 { lastProblem = String(cString: strerror(errno)); continue }
            let flags = fcntl(fd, F_GETFL, 0)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return fd }
            guard errno == EINPROGRESS else {
                lastProblem = String(cString: strerror(errno))
                close(fd)
                continue
            }
            let remaining = deadline - ContinuousClock.now
            let milliseconds = max(0, Int32(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&descriptor, 1, milliseconds) <= 0 {
                close(fd)
                throw describe(.timeout, "TCP connect to \(host):\(port) timed out")
            }
            var socketError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
            if socketError == 0 { return fd }
            lastProblem = String(cString: strerror(socketError))
            close(fd)
        }
        throw describe(.connect, "cannot connect to \(host):\(port): \(lastProblem)")
    }

    // MARK: Authentication

    /// Public-key authentication from an in-memory private key.
    func authenticate(privateKey: String, passphrase: String?, deadline: ContinuousClock.Instant) throws {
        try lock.withLock { () throws in
            guard let session else { throw error(.connect, "authenticate", "not connected") }
            let keyBytes = Array(privateKey.utf8)
            let rc = keyBytes.withUnsafeBufferPointer { key in
                user.withCString { userPointer in
                    (passphrase ?? "").withCString { passphrasePointer in
                        retryLoop(deadline: deadline) {
                            key.withMemoryRebound(to: CChar.self) { keyChars in
                                libssh2_userauth_publickey_frommemory(
                                    session, userPointer, strlen(userPointer), nil, 0,
                                    keyChars.baseAddress, keyChars.count, passphrase == nil ? nil : passphrasePointer)
                            }
                        }
                    }
                }
            }
            if rc == 0 { return }
            if rc == LIBSSH2_ERROR_TIMEOUT { throw error(.timeout, "authenticate", "timed out") }
            let last = lastError()
            let keyType = SSHKeyKind.detect(privateKey)
            switch rc {
            case LIBSSH2_ERROR_FILE, LIBSSH2_ERROR_KEYFILE_AUTH_FAILED:
                if passphrase == nil && SSHKeyKind.isEncrypted(privateKey) {
                    throw error(.authentication, "authenticate", "the private key is passphrase-protected and no passphrase was given")
                }
                throw error(.authentication, "authenticate",
                            "cannot load the private key: wrong passphrase, or a format libssh2 cannot read" + (last.message.isEmpty ? "" : " (\(last.message))"))
            case LIBSSH2_ERROR_AUTHENTICATION_FAILED, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
                if keyType == .rsa {
                    throw error(.authentication, "authenticate",
                                "the server refused the RSA key for \(user). libssh2 1.10 signs RSA keys only as ssh-rsa (SHA-1), which OpenSSH 8.8 and later refuse by default; use an Ed25519 key (or enable PubkeyAcceptedAlgorithms +ssh-rsa on the server). If the server accepts ssh-rsa, the key is not in the user's authorized_keys")
                }
                throw error(.authentication, "authenticate", "the server refused the \(keyType.rawValue) key for \(user) (not in authorized_keys?)")
            default:
                throw error(.authentication, "authenticate", "\(last.message) (libssh2 error \(rc))")
            }
        }
    }

    func authenticate(password: String, deadline: ContinuousClock.Instant) throws {
        try lock.withLock { () throws in
            guard let session else { throw error(.connect, "authenticate", "not connected") }
            let rc = user.withCString { userPointer in
                password.withCString { passwordPointer in
                    retryLoop(deadline: deadline) {
                        libssh2_userauth_password_ex(session, userPointer, UInt32(strlen(userPointer)), passwordPointer, UInt32(strlen(passwordPointer)), nil)
                    }
                }
            }
            if rc == 0 { return }
            if rc == LIBSSH2_ERROR_TIMEOUT { throw error(.timeout, "authenticate", "timed out") }
            if rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED {
                throw error(.authentication, "authenticate", "password authentication for \(user) failed (wrong password, or the server does not allow passwords)")
            }
            throw error(.authentication, "authenticate", "\(lastError().message) (libssh2 error \(rc))")
        }
    }

    /// A retry loop that reports the final rc instead of throwing (for calls wrapped in withCString).
    private func retryLoop(deadline: ContinuousClock.Instant, _ call: () -> Int32) -> Int32 {
        while true {
            let rc = call()
            guard rc == LIBSSH2_ERROR_EAGAIN else { return rc }
            do { try waitSocket("authenticate", deadline: deadline) } catch { return LIBSSH2_ERROR_TIMEOUT }
        }
    }

    // MARK: Exec

    /// Runs a shell command line; collects exit status and output. Output past a limit keeps its tail,
    /// except that `stdoutMustFit` (file reads) turns stdout overflow into an error.
    func exec(_ commandLine: String, stdin: [UInt8]? = nil, stdoutLimit: Int, stdoutMustFit: Bool = false, stderrLimit: Int = 64 * 1024,
              deadline: ContinuousClock.Instant) throws -> CommandResult {
        try lock.withLock { () throws in
            guard let session else { throw error(.connect, "exec", "not connected") }
            let channel = try retryPointer("open channel", deadline: deadline) {
                libssh2_channel_open_ex(session, "session", 7, 2 * 1024 * 1024, 32768, nil, 0)
            }
            defer { libssh2_channel_free(channel) }
            do {
                try retry("exec", deadline: deadline) {
                    libssh2_channel_process_startup(channel, "exec", 4, commandLine, UInt32(commandLine.utf8.count))
                }
            } catch let error as RemoteError {
                throw self.error(error.code, "exec", "cannot start `\(commandLine.prefix(200))`: \(error.message)")
            }
            if let stdin {
                try writeAll(channel, stdin, operation: "exec stdin", deadline: deadline)
            }
            try retry("exec eof", deadline: deadline) { libssh2_channel_send_eof(channel) }

            var stdout: [UInt8] = []
            var stderr: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 32768)
            var stdoutOverflow = false
            while true {
                var progressed = false
                for stream: Int32 in [0, 1] {
                    while true {
                        let count = buffer.withUnsafeMutableBufferPointer { raw in
                            raw.withMemoryRebound(to: CChar.self) { libssh2_channel_read_ex(channel, stream, $0.baseAddress, $0.count) }
                        }
                        if count > 0 {
                            progressed = true
                            if stream == 0 {
                                if stdout.count + count > stdoutLimit { stdoutOverflow = true }
                                stdout += buffer[0..<count]
                                if stdout.count > stdoutLimit { stdout.removeFirst(stdout.count - stdoutLimit) }
                            } else {
                                stderr += buffer[0..<count]
                                if stderr.count > stderrLimit { stderr.removeFirst(stderr.count - stderrLimit) }
                            }
                            continue
                        }
                        if count == Int(LIBSSH2_ERROR_EAGAIN) || count == 0 { break }
                        throw libssh2Failure("exec read", code: Int32(count))
                    }
                }
                if libssh2_channel_eof(channel) != 0 { break }
                if !progressed { try waitSocket("exec `\(commandLine.prefix(80))`", deadline: deadline) }
            }
            try retry("close channel", deadline: deadline) { libssh2_channel_close(channel) }
            try retry("close channel", deadline: deadline) { libssh2_channel_wait_closed(channel) }
            var signalName: UnsafeMutablePointer<CChar>?
            var signalLength = 0
            _ = libssh2_channel_get_exit_signal(channel, &signalName, &signalLength, nil, nil, nil, nil)
            if let signalName {
                let name = String(cString: signalName)
                libssh2_free(session, signalName)
                stderr += Array("\n[killed by signal \(name)]".utf8)
                return CommandResult(exitStatus: 128, stdout: stdout, stderr: stderr)
            }
            if stdoutOverflow, stdoutMustFit {
                throw error(.io, "exec", "`\(commandLine.prefix(80))` printed more than \(stdoutLimit) bytes")
            }
            return CommandResult(exitStatus: libssh2_channel_get_exit_status(channel), stdout: stdout, stderr: stderr)
        }
    }

    private func writeAll(_ channel: OpaquePointer, _ bytes: [UInt8], operation: String, deadline: ContinuousClock.Instant) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBufferPointer { raw in
                raw.withMemoryRebound(to: CChar.self) { chars in
                    libssh2_channel_write_ex(channel, 0, chars.baseAddress! + offset, chars.count - offset)
                }
            }
            if written > 0 { offset += written; continue }
            if written == Int(LIBSSH2_ERROR_EAGAIN) || written == 0 {
                try waitSocket(operation, deadline: deadline)
                continue
            }
            throw libssh2Failure(operation, code: Int32(written))
        }
    }

    // MARK: SCP

    /// Uploads `bytes` to `path` with `mode` over the SCP protocol (for servers without SFTP).
    func scpUpload(_ bytes: [UInt8], to path: String, mode: FileMode, deadline: ContinuousClock.Instant) throws {
        try lock.withLock { () throws in
            guard let session else { throw error(.connect, "scp", "not connected") }
            let channel: OpaquePointer
            do {
                channel = try retryPointer("scp \(path)", deadline: deadline) {
                    libssh2_scp_send64(session, path, Int32(mode.rawValue), Int64(bytes.count), 0, 0)
                }
            } catch let error as RemoteError {
                throw self.error(error.code == .protocolError ? .io : error.code, "scp \(path)", error.message)
            }
            defer { libssh2_channel_free(channel) }
            try writeAll(channel, bytes, operation: "scp \(path)", deadline: deadline)
            try retry("scp \(path)", deadline: deadline) { libssh2_channel_send_eof(channel) }
            try retry("scp \(path)", deadline: deadline) { libssh2_channel_wait_eof(channel) }
            try retry("scp \(path)", deadline: deadline) { libssh2_channel_close(channel) }
            try retry("scp \(path)", deadline: deadline) { libssh2_channel_wait_closed(channel) }
        }
    }

    // MARK: SFTP

    /// Starts the SFTP subsystem once; returns false (and remembers why) when the server has none.
    func startSFTP(deadline: ContinuousClock.Instant) throws -> Bool {
        try lock.withLock { () throws in
            if sftpHandle != nil { return true }
            if sftpUnavailableReason != nil { return false }
            guard let session else { throw error(.connect, "sftp", "not connected") }
            do {
                sftpHandle = try retryPointer("sftp", deadline: deadline) { libssh2_sftp_init(session) }
                return true
            } catch let error as RemoteError {
                if error.code == .timeout || error.code == .cancelled || error.code == .connect { throw error }
                sftpUnavailableReason = error.message
                return false
            }
        }
    }

    private func sftpStatus() -> UInt {
        guard let sftpHandle else { return 0 }
        return UInt(libssh2_sftp_last_error(sftpHandle))
    }

    private func sftpFailure(_ operation: String, path: String) -> RemoteError {
        let status = sftpStatus()
        switch status {
        case LIBSSH2_FX_NO_SUCH_FILE, LIBSSH2_FX_NO_SUCH_PATH:
            return error(.io, operation, "\(path): no such file or directory")
        case LIBSSH2_FX_PERMISSION_DENIED:
            return error(.permission, operation, "\(path): permission denied")
        case 0:
            return libssh2Failure(operation)
        default:
            return error(.io, operation, "\(path): SFTP status \(status) (\(Self.sftpStatusName(status)))")
        }
    }

    private static func sftpStatusName(_ status: UInt) -> String {
        switch status {
        case 4: "failure, e.g. disk full or read-only file system"
        case 8: "operation unsupported"
        case 14: "no space on file system"
        case 15: "quota exceeded"
        default: "see RFC draft-ietf-secsh-filexfer"
        }
    }

    /// Runs an SFTP call that returns an int; EAGAIN is waited out, any other failure becomes a RemoteError.
    private func sftpCall(_ operation: String, path: String, deadline: ContinuousClock.Instant, _ call: () -> Int32) throws -> Int32 {
        while true {
            let rc = call()
            if rc >= 0 { return rc }
            if rc == LIBSSH2_ERROR_EAGAIN { try waitSocket(operation, deadline: deadline); continue }
            if rc == LIBSSH2_ERROR_SFTP_PROTOCOL { throw sftpFailure(operation, path: path) }
            throw libssh2Failure(operation, code: rc)
        }
    }

    private func sftpOpen(_ path: String, flags: UInt, mode: Int, type: Int32, operation: String, deadline: ContinuousClock.Instant) throws -> OpaquePointer {
        guard let sftpHandle, let session else { throw error(.protocolError, operation, "SFTP not started") }
        while true {
            if let handle = libssh2_sftp_open_ex(sftpHandle, path, UInt32(path.utf8.count), flags, mode, type) { return handle }
            let errno = libssh2_session_last_errno(session)
            if errno == LIBSSH2_ERROR_EAGAIN { try waitSocket(operation, deadline: deadline); continue }
            if errno == LIBSSH2_ERROR_SFTP_PROTOCOL { throw sftpFailure(operation, path: path) }
            throw libssh2Failure(operation, code: errno)
        }
    }

    private func sftpClose(_ handle: OpaquePointer, deadline: ContinuousClock.Instant) {
        while libssh2_sftp_close_handle(handle) == LIBSSH2_ERROR_EAGAIN {
            do { try waitSocket("sftp close", deadline: deadline) } catch { return }
        }
    }

    /// Stat; nil when the path does not exist.
    func sftpStat(_ path: String, deadline: ContinuousClock.Instant) throws -> LIBSSH2_SFTP_ATTRIBUTES? {
        try lock.withLock { () throws in
            guard let sftpHandle else { throw error(.protocolError, "stat", "SFTP not started") }
            var attributes = LIBSSH2_SFTP_ATTRIBUTES()
            do {
                _ = try sftpCall("stat", path: path, deadline: deadline) {
                    libssh2_sftp_stat_ex(sftpHandle, path, UInt32(path.utf8.count), LIBSSH2_SFTP_STAT, &attributes)
                }
            } catch {
                let status = sftpStatus()
                if status == LIBSSH2_FX_NO_SUCH_FILE || status == LIBSSH2_FX_NO_SUCH_PATH { return nil }
                throw error
            }
            return attributes
        }
    }

    func sftpRead(_ path: String, limit: Int, deadline: ContinuousClock.Instant) throws -> [UInt8] {
        try lock.withLock { () throws in
            let handle = try sftpOpen(path, flags: UInt(LIBSSH2_FXF_READ), mode: 0, type: LIBSSH2_SFTP_OPENFILE, operation: "read", deadline: deadline)
            defer { sftpClose(handle, deadline: deadline) }
            var contents: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 32768)
            while true {
                let count = buffer.withUnsafeMutableBufferPointer { raw in
                    raw.withMemoryRebound(to: CChar.self) { libssh2_sftp_read(handle, $0.baseAddress, $0.count) }
                }
                if count > 0 {
                    contents += buffer[0..<count]
                    if contents.count > limit { throw error(.io, "read", "\(path) is larger than \(limit) bytes") }
                    continue
                }
                if count == 0 { return contents }
                if count == Int(LIBSSH2_ERROR_EAGAIN) { try waitSocket("read", deadline: deadline); continue }
                if count == Int(LIBSSH2_ERROR_SFTP_PROTOCOL) { throw sftpFailure("read", path: path) }
                throw libssh2Failure("read", code: Int32(count))
            }
        }
    }

    /// Creates/truncates, sets the exact mode (the server's umask would otherwise apply), writes, fsyncs.
    func sftpWrite(_ path: String, contents: [UInt8], mode: FileMode, deadline: ContinuousClock.Instant) throws {
        try lock.withLock { () throws in
            let flags = UInt(LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC)
            let handle = try sftpOpen(path, flags: flags, mode: Int(mode.rawValue), type: LIBSSH2_SFTP_OPENFILE, operation: "write", deadline: deadline)
            defer { sftpClose(handle, deadline: deadline) }
            var attributes = LIBSSH2_SFTP_ATTRIBUTES()
            attributes.flags = UInt(LIBSSH2_SFTP_ATTR_PERMISSIONS)
            attributes.permissions = UInt(mode.rawValue)
            _ = try sftpCall("chmod", path: path, deadline: deadline) { libssh2_sftp_fstat_ex(handle, &attributes, 1) }
            var offset = 0
            while offset < contents.count {
                let written = contents.withUnsafeBufferPointer { raw in
                    raw.withMemoryRebound(to: CChar.self) { libssh2_sftp_write(handle, $0.baseAddress! + offset, $0.count - offset) }
                }
                if written > 0 { offset += written; continue }
                if written == Int(LIBSSH2_ERROR_EAGAIN) || written == 0 { try waitSocket("write", deadline: deadline); continue }
                if written == Int(LIBSSH2_ERROR_SFTP_PROTOCOL) { throw sftpFailure("write", path: path) }
                throw libssh2Failure("write", code: Int32(written))
            }
            _ = try sftpCall("fsync", path: path, deadline: deadline) { libssh2_sftp_fsync(handle) }
        }
    }

    func sftpUnlink(_ path: String, deadline: ContinuousClock.Instant) throws {
        try lock.withLock { () throws in
            guard let sftpHandle else { throw error(.protocolError, "remove", "SFTP not started") }
            do {
                _ = try sftpCall("remove", path: path, deadline: deadline) {
                    libssh2_sftp_unlink_ex(sftpHandle, path, UInt32(path.utf8.count))
                }
            } catch {
                let status = sftpStatus()
                if status == LIBSSH2_FX_NO_SUCH_FILE || status == LIBSSH2_FX_NO_SUCH_PATH { return }
                throw error
            }
        }
    }

    func sftpList(_ directory: String, deadline: ContinuousClock.Instant) throws -> [RemoteDirectoryEntry] {
        try lock.withLock { () throws in
            let handle = try sftpOpen(directory, flags: 0, mode: 0, type: LIBSSH2_SFTP_OPENDIR, operation: "list", deadline: deadline)
            defer { sftpClose(handle, deadline: deadline) }
            var names: [RemoteDirectoryEntry] = []
            var buffer = [CChar](repeating: 0, count: 4096)
            while true {
                var attributes = LIBSSH2_SFTP_ATTRIBUTES()
                let count = buffer.withUnsafeMutableBufferPointer { raw in
                    libssh2_sftp_readdir_ex(handle, raw.baseAddress, raw.count, nil, 0, &attributes)
                }
                if count > 0 {
                    let name = buffer.withUnsafeBufferPointer { raw in
                        String(decoding: UnsafeRawBufferPointer(start: raw.baseAddress, count: Int(count)), as: UTF8.self)
                    }
                    if name != "." && name != ".." {
                        names.append(RemoteDirectoryEntry(name: name, modified: Date(timeIntervalSince1970: TimeInterval(attributes.mtime))))
                    }
                    continue
                }
                if count == 0 { return names }
                if count == LIBSSH2_ERROR_EAGAIN { try waitSocket("list", deadline: deadline); continue }
                if count == LIBSSH2_ERROR_SFTP_PROTOCOL { throw sftpFailure("list", path: directory) }
                throw libssh2Failure("list", code: count)
            }
        }
    }

    // MARK: TCP through the session

    /// Opens a direct-tcpip channel to host:port as seen from the server, sends `payload`, half-closes,
    /// and reads the answer until the peer closes (a request/response admin protocol such as HAProxy's).
    func exchange(host targetHost: String, port targetPort: Int, payload: [UInt8], limit: Int, deadline: ContinuousClock.Instant) throws -> [UInt8] {
        try lock.withLock { () throws in
            guard let session else { throw error(.connect, "tunnel", "not connected") }
            let channel: OpaquePointer
            do {
                channel = try retryPointer("tunnel to \(targetHost):\(targetPort)", deadline: deadline) {
                    libssh2_channel_direct_tcpip_ex(session, targetHost, Int32(targetPort), "127.0.0.1", 22)
                }
            } catch let failure as RemoteError {
                throw error(failure.code == .protocolError ? .io : failure.code, "tunnel", "cannot open a tunnel to \(targetHost):\(targetPort) on the target: \(failure.message)")
            }
            defer { libssh2_channel_free(channel) }
            try writeAll(channel, payload, operation: "tunnel write", deadline: deadline)
            try retry("tunnel eof", deadline: deadline) { libssh2_channel_send_eof(channel) }
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16384)
            while true {
                let count = buffer.withUnsafeMutableBufferPointer { raw in
                    raw.withMemoryRebound(to: CChar.self) { libssh2_channel_read_ex(channel, 0, $0.baseAddress, $0.count) }
                }
                if count > 0 {
                    answer += buffer[0..<count]
                    if answer.count > limit { throw error(.io, "tunnel", "answer larger than \(limit) bytes") }
                    continue
                }
                if libssh2_channel_eof(channel) != 0 { break }
                if count == Int(LIBSSH2_ERROR_EAGAIN) || count == 0 {
                    try waitSocket("tunnel read", deadline: deadline)
                    continue
                }
                throw libssh2Failure("tunnel read", code: Int32(count))
            }
            _ = try? retry("tunnel close", deadline: deadline) { libssh2_channel_close(channel) }
            return answer
        }
    }

    // MARK: Close

    func disconnect() {
        lock.withLock {
            let deadline = ContinuousClock.now.advanced(by: .seconds(2))
            if let sftpHandle {
                while libssh2_sftp_shutdown(sftpHandle) == LIBSSH2_ERROR_EAGAIN {
                    do { try waitSocket("close", deadline: deadline) } catch { break }
                }
                self.sftpHandle = nil
            }
            if let session {
                while libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, "certdeploy done", "") == LIBSSH2_ERROR_EAGAIN {
                    do { try waitSocket("close", deadline: deadline) } catch { break }
                }
                libssh2_session_free(session)
                self.session = nil
            }
            if socket >= 0 {
                close(socket)
                socket = -1
            }
        }
    }
}
