import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An OCSP responder for tests: a small HTTP/1.0 server on 127.0.0.1 and a free port, run by
/// background threads in the test process, that answers each request by running a one-shot
/// `openssl ocsp -index … -reqin <req> -respout <resp>` (so the index is read fresh on every
/// request and may change between requests).
///
/// It stands in for `openssl ocsp -port`, which spins forever after a client connects and
/// closes without sending anything (see shared/design/test-services.md). Accepts
/// `POST /` with the DER request as the body and `GET /<url-encoded base64 request>`.
/// `setMode` flips it to an HTTP 500, a `tryLater` OCSP response, a connection that never
/// answers, or a closed port.
public final class OCSPResponder: Sendable {
    public enum Mode: Sendable, Equatable {
        /// Answer from the index with `openssl ocsp`.
        case normal
        /// `HTTP/1.0 500 Internal Server Error`.
        case httpError
        /// HTTP 200 with a DER OCSPResponse of status tryLater(3): `30 03 0a 01 03`.
        case tryLater
        /// Accept the connection, read the request and never answer (the connection is
        /// closed, unanswered, once the mode changes or the responder stops).
        case hang
        /// Close the listening socket: connections are refused. Another mode re-listens on
        /// the same port.
        case down
    }

    /// "http://127.0.0.1:PORT/"
    public var url: String { "http://127.0.0.1:\(port)/" }
    public let port: UInt16
    public let indexPath: String
    public let responderCertPath: String
    public let responderKeyPath: String
    public let issuerCertPath: String
    /// nextUpdate = now + validityMinutes (`-nmin`); nil: now + 7 days (`-ndays 7`).
    public let validityMinutes: Int?

    private let server: OCSPHTTPServer

    private init(server: OCSPHTTPServer, config: OCSPHTTPServer.Config) {
        self.server = server
        self.port = server.port
        self.indexPath = config.indexPath
        self.responderCertPath = config.responderCertPath
        self.responderKeyPath = config.responderKeyPath
        self.issuerCertPath = config.issuerCertPath
        self.validityMinutes = config.validityMinutes
    }

    deinit { server.stop() }

    /// Starts the responder and returns once it listens.
    ///
    /// - Parameters:
    ///   - indexPath: an OpenSSL CA `index.txt` (`TestCertificateAuthority.writeFiles` /
    ///     `appendIndexEntry`); read anew for each request.
    ///   - responderCertPath, responderKeyPath: the OCSP signing cert (ocsp.pem) and its key.
    ///   - issuerCertPath: the CA whose certificates it answers for (intermediate.pem).
    ///   - validityMinutes: nextUpdate - thisUpdate; nil means 7 days.
    public static func start(
        indexPath: String,
        responderCertPath: String,
        responderKeyPath: String,
        issuerCertPath: String,
        validityMinutes: Int? = nil
    ) throws -> OCSPResponder {
        try Services.require(["openssl"])
        for path in [indexPath, responderCertPath, responderKeyPath, issuerCertPath] where access(path, R_OK) != 0 {
            throw HarnessError("OCSPResponder: cannot read \(path)")
        }
        let config = OCSPHTTPServer.Config(
            indexPath: indexPath, responderCertPath: responderCertPath, responderKeyPath: responderKeyPath,
            issuerCertPath: issuerCertPath, validityMinutes: validityMinutes)
        let server = try OCSPHTTPServer.start(config: config)
        return OCSPResponder(server: server, config: config)
    }

    /// Starts a responder for the files `TestCertificateAuthority.writeFiles(to:)` returned
    /// (index, ocsp.pem, ocsp.key; issuer: the intermediate).
    public static func start(
        caFiles: (root: String, intermediate: String, ocspCert: String, ocspKey: String, index: String),
        validityMinutes: Int? = nil
    ) throws -> OCSPResponder {
        try start(
            indexPath: caFiles.index, responderCertPath: caFiles.ocspCert, responderKeyPath: caFiles.ocspKey,
            issuerCertPath: caFiles.intermediate, validityMinutes: validityMinutes)
    }

    /// The current mode.
    public var mode: Mode { server.mode }

    /// Switches the mode; returns once it applies (`.down`: the port refuses connections;
    /// from `.down`: it listens again on the same port).
    public func setMode(_ mode: Mode) { server.setMode(mode) }

    /// Requests answered so far (in `.normal`, `.httpError` and `.tryLater`).
    public var requestCount: Int { server.counters.answered }

    /// Requests read so far, answered or not (includes the ones `.hang` swallowed).
    public var receivedCount: Int { server.counters.received }

    /// The last failure (a socket error, an `openssl ocsp` failure, a re-listen that failed), if any.
    public var lastError: String? { server.lastError }

    /// Stops listening and closes held connections. Idempotent; also runs on deinit.
    public func stop() { server.stop() }
}

// MARK: - The HTTP server

/// The threads and sockets behind `OCSPResponder` (kept separate so that the threads hold
/// this object, not the responder, and the responder's deinit can stop them).
final class OCSPHTTPServer: @unchecked Sendable {
    // @unchecked Sendable: every stored property is a `let`; the mutable state lives in `state`
    // (a `Locked`, so every access holds its lock) and mode changes are serialised by `modeLock`.
    struct Config: Sendable {
        let indexPath: String
        let responderCertPath: String
        let responderKeyPath: String
        let issuerCertPath: String
        let validityMinutes: Int?
    }

    struct Counters { var answered = 0; var received = 0 }

    private struct State {
        var mode: OCSPResponder.Mode = .normal
        var stopped = false
        var listener: Listener?
        var lastError: String?
        var counters = Counters()
        var sequence = 0
    }

    /// One listening socket and its accept thread. The thread alone closes the socket.
    private final class Listener: @unchecked Sendable {
        // @unchecked Sendable: `fd` is immutable, `stopRequested` is a `Locked`, and DispatchSemaphore is thread-safe.
        let fd: Int32
        let stopRequested = Locked(false)
        let done = DispatchSemaphore(value: 0)
        init(fd: Int32) { self.fd = fd }

        /// Asks the accept thread to close the socket and waits until it has.
        func close() {
            stopRequested.withLock { $0 = true }
            _ = done.wait(timeout: .now() + 5)
        }
    }

    let port: UInt16
    let config: Config
    let workDir: TemporaryDirectory
    private let state = Locked(State())
    /// Serializes mode changes (listen / unlisten) without holding `state` while waiting.
    private let modeLock = NSLock()

    private init(port: UInt16, config: Config, workDir: TemporaryDirectory) {
        self.port = port
        self.config = config
        self.workDir = workDir
    }

    static func start(config: Config) throws -> OCSPHTTPServer {
        let workDir = try TemporaryDirectory(prefix: "certdeploy-ocsp")
        var lastError = ""
        for _ in 0..<5 {  // retry on a port lost to a race
            let port = try FreePort.allocate()
            let fd: Int32
            do {
                fd = try listenSocket(port: port)
            } catch {
                lastError = "\(error)"
                continue
            }
            let server = OCSPHTTPServer(port: port, config: config, workDir: workDir)
            server.startAcceptThread(fd: fd)
            return server
        }
        workDir.remove()
        throw HarnessError("OCSPResponder: could not listen: \(lastError)")
    }

    var mode: OCSPResponder.Mode { state.withLock { $0.mode } }
    var counters: Counters { state.withLock { $0.counters } }
    var lastError: String? { state.withLock { $0.lastError } }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func record(error: String) {
        state.withLock { $0.lastError = error }
    }

    func setMode(_ newMode: OCSPResponder.Mode) {
        modeLock.lock()
        defer { modeLock.unlock() }
        let (old, stopped) = state.withLock { s -> (OCSPResponder.Mode, Bool) in
            let old = s.mode
            s.mode = newMode
            return (old, s.stopped)
        }
        guard !stopped, old != newMode else { return }
        if newMode == .down {
            let listener = state.withLock { s -> Listener? in
                defer { s.listener = nil }
                return s.listener
            }
            listener?.close()
        } else if old == .down {
            // Re-listen on the same port (SO_REUSEADDR: connections in TIME_WAIT do not block it).
            let deadline = Date().addingTimeInterval(5)
            while true {
                do {
                    let fd = try Self.listenSocket(port: port)
                    startAcceptThread(fd: fd)
                    return
                } catch {
                    if Date() >= deadline {
                        record(error: "OCSPResponder: cannot listen again on \(port): \(error)")
                        return
                    }
                    usleep(20_000)
                }
            }
        }
    }

    func stop() {
        modeLock.lock()
        defer { modeLock.unlock() }
        let listener = state.withLock { s -> Listener? in
            guard !s.stopped else { return nil }
            s.stopped = true
            defer { s.listener = nil }
            return s.listener
        }
        listener?.close()
        // Hanging connection threads notice `stopped` within 50 ms and close their sockets.
        workDir.remove()
    }

    // MARK: Sockets

    private static func listenSocket(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed: \(errnoString())") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let message = errnoString()
            close(fd)
            throw HarnessError("bind 127.0.0.1:\(port) failed: \(message)")
        }
        guard listen(fd, 128) == 0 else {
            let message = errnoString()
            close(fd)
            throw HarnessError("listen on 127.0.0.1:\(port) failed: \(message)")
        }
        return fd
    }

    private func startAcceptThread(fd: Int32) {
        let listener = Listener(fd: fd)
        state.withLock { $0.listener = listener }
        let thread = Thread { [self] in
            self.acceptLoop(listener)
        }
        thread.name = "OCSPResponder.accept.\(port)"
        thread.start()
    }

    private func acceptLoop(_ listener: Listener) {
        defer {
            close(listener.fd)
            listener.done.signal()
        }
        while !listener.stopRequested.withLock({ $0 }) {
            var pfd = pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 50)
            if ready <= 0 { continue }
            let conn = accept(listener.fd, nil, nil)
            if conn >= 0 {
                // Linux does not pass O_NONBLOCK on to accepted sockets, but make sure; and
                // keep the socket out of any child a concurrent spawn forks.
                _ = fcntl(conn, F_SETFD, FD_CLOEXEC)
                let flags = fcntl(conn, F_GETFL)
                if flags >= 0 && flags & O_NONBLOCK != 0 { _ = fcntl(conn, F_SETFL, flags & ~O_NONBLOCK) }
            }
            if conn < 0 {
                if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED {
                    record(error: "OCSPResponder: accept failed: \(errnoString())")
                    usleep(10_000)
                }
                continue
            }
            let thread = Thread { [self] in
                self.serve(connection: conn)
            }
            thread.name = "OCSPResponder.conn.\(port)"
            thread.start()
        }
    }

    // MARK: One connection

    private func serve(connection fd: Int32) {
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        // An empty or malformed connection is just closed.
        guard let request = readRequest(fd) else { return }
        let mode = state.withLock { s -> OCSPResponder.Mode in
            s.counters.received += 1
            return s.mode
        }

        switch mode {
        case .hang, .down:
            // Never answer; let go once the mode changes or the responder stops.
            while state.withLock({ $0.mode == .hang && !$0.stopped }) {
                usleep(50_000)
            }
            return
        case .httpError:
            let body = Array("responder error (test mode)\n".utf8)
            send(fd, status: "500 Internal Server Error", contentType: "text/plain", body: body)
        case .tryLater:
            send(fd, status: "200 OK", contentType: "application/ocsp-response", body: [0x30, 0x03, 0x0a, 0x01, 0x03])
        case .normal:
            let body: [UInt8]
            switch request {
            case .invalid:
                body = [0x30, 0x03, 0x0a, 0x01, 0x01]  // malformedRequest
            case .der(let der):
                body = runOpenSSL(der)
            }
            send(fd, status: "200 OK", contentType: "application/ocsp-response", body: body)
        }
        state.withLock { $0.counters.answered += 1 }
    }

    private enum Request {
        case der([UInt8])
        /// A GET whose path is not base64, or a method other than GET/POST.
        case invalid
    }

    /// Reads the request line, headers and (for POST) the Content-Length body.
    private func readRequest(_ fd: Int32) -> Request? {
        var buffer: [UInt8] = []
        var headerEnd: Int? = nil
        var chunk = [UInt8](repeating: 0, count: 16384)
        while headerEnd == nil {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
            headerEnd = Self.find([13, 10, 13, 10], in: buffer)
            if buffer.count > 1 << 20 { return nil }
        }
        let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        var body = Array(buffer[(headerEnd! + 4)...])
        let lines = head.components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ", omittingEmptySubsequences: true)
        guard requestLine.count >= 2 else { return .invalid }
        let method = requestLine[0].uppercased()
        let target = String(requestLine[1])

        var contentLength: Int? = nil
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            if name == "content-length" {
                contentLength = Int(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
        }

        switch method {
        case "POST":
            if let length = contentLength {
                guard length >= 0, length <= 1 << 20 else { return .invalid }
                while body.count < length {
                    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return nil }
                    body.append(contentsOf: chunk[0..<n])
                }
                return .der(Array(body[0..<length]))
            }
            // No Content-Length: the body runs to the end of the stream (HTTP/1.0).
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                body.append(contentsOf: chunk[0..<n])
                if body.count > 1 << 20 { return .invalid }
            }
            return body.isEmpty ? .invalid : .der(body)
        case "GET":
            return Self.decodeGETPath(target).map { .der($0) } ?? .invalid
        default:
            return .invalid
        }
    }

    /// `/<prefix>/<url-encoded base64>` → DER. Tries the whole path first (the base64 text may
    /// hold unescaped '/'), then the part after the last '/'.
    static func decodeGETPath(_ target: String) -> [UInt8]? {
        var path = target
        if let schemeEnd = path.range(of: "://") {  // absolute-form target
            path = String(path[schemeEnd.upperBound...])
            path = path.firstIndex(of: "/").map { String(path[$0...]) } ?? "/"
        }
        if let query = path.firstIndex(of: "?") { path = String(path[..<query]) }
        let trimmed = path.drop(while: { $0 == "/" })
        var candidates = [String(trimmed)]
        if let slash = trimmed.lastIndex(of: "/") {
            candidates.append(String(trimmed[trimmed.index(after: slash)...]))
        }
        for candidate in candidates {
            let decoded = (candidate.removingPercentEncoding ?? candidate)
                .replacingOccurrences(of: "-", with: "+")
                .replacingOccurrences(of: "_", with: "/")
                .replacingOccurrences(of: " ", with: "+")  // a '+' that was form-decoded
            var padded = decoded.filter { $0 != "=" }
            while padded.count % 4 != 0 { padded += "=" }
            if let data = Data(base64Encoded: padded), data.first == 0x30 {
                return Array(data)
            }
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }

    private func send(_ fd: Int32, status: String, contentType: String, body: [UInt8]) {
        let head =
            "HTTP/1.0 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            + "Connection: close\r\n\r\n"
        let bytes = Array(head.utf8) + body
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a client that went away must not SIGPIPE the test process.
            let n = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
        shutdown(fd, Int32(SHUT_WR))
    }

    // MARK: openssl

    /// Runs one-shot `openssl ocsp` for `der`; returns the DER response, or an OCSPResponse
    /// with status malformedRequest(1) / internalError(2) when openssl fails.
    private func runOpenSSL(_ der: [UInt8]) -> [UInt8] {
        let n = state.withLock { s -> Int in
            s.sequence += 1
            return s.sequence
        }
        let reqPath = workDir.file("req-\(n).der")
        let respPath = workDir.file("resp-\(n).der")
        defer {
            unlink(reqPath)
            unlink(respPath)
        }
        do {
            try Data(der).write(to: URL(fileURLWithPath: reqPath))
        } catch {
            record(error: "OCSPResponder: cannot write \(reqPath): \(error)")
            return [0x30, 0x03, 0x0a, 0x01, 0x02]
        }
        var args = [
            "ocsp", "-index", config.indexPath, "-rsigner", config.responderCertPath,
            "-rkey", config.responderKeyPath, "-CA", config.issuerCertPath,
            "-reqin", reqPath, "-respout", respPath,
        ]
        if let minutes = config.validityMinutes {
            args += ["-nmin", String(minutes)]
        } else {
            args += ["-ndays", "7"]
        }
        do {
            let result = try ProcessRunner.run("openssl", args, timeout: 30)
            if result.status == 0, let data = FileManager.default.contents(atPath: respPath), !data.isEmpty {
                return Array(data)
            }
            record(error: "OCSPResponder: openssl \(args.joined(separator: " ")): \(result)")
            if result.stderr.contains("Error reading OCSP request") {
                return [0x30, 0x03, 0x0a, 0x01, 0x01]  // malformedRequest
            }
        } catch {
            record(error: "OCSPResponder: \(error)")
        }
        return [0x30, 0x03, 0x0a, 0x01, 0x02]  // internalError
    }
}
