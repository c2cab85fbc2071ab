import AsyncHTTPClient
import CertdeployAPI
import Core
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Server
import TestSupport
import XCTest

/// A real `CertdeployServer` on a free loopback port (SQLite under a temp dir, or a given PostgreSQL URL), with an
/// admin key and a read/deploy key, driven over real HTTP.
public final class TestServer: @unchecked Sendable {
    // @unchecked: every stored property is a `let` of a Sendable type except `task`, which is written once in
    // `start` before the instance is shared and only read afterwards.
    public let server: CertdeployServer
    public let port: Int
    public let directory: TemporaryDirectory
    public let adminKey: String
    public let deployerKey: String
    private var task: Task<Void, any Error>?

    public static let adminName = "admin"
    public static let deployerName = "deployer"

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts a server. `environment` is merged over the keys and passphrase this harness sets.
    public static func start(
        registry: ConnectorRegistry, databaseURL: String? = nil, passphrase: String? = "test passphrase for secrets at rest",
        environment extra: [String: String] = [:], configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        let directory = try TemporaryDirectory(prefix: "certdeploy-server")
        let adminKey = randomKey()
        let deployerKey = randomKey()
        var environment = [
            "CERTDEPLOY_API_KEYS": "\(adminName):\(adminKey):admin,\(deployerName):\(deployerKey)"
        ]
        if let passphrase { environment["CERTDEPLOY_SECRET_KEY"] = passphrase }
        environment.merge(extra) { $1 }
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.dataDirectory = directory.file("data")
        configuration.databaseURL = databaseURL
        configuration.pollInterval = .milliseconds(200)
        configure(&configuration)
        var logger = Logger(label: "certdeploy.test-server")
        logger.logLevel = ProcessInfo.processInfo.environment["CERTDEPLOY_TEST_LOG"] == nil ? .critical : .debug
        let server = try await CertdeployServer.make(
            configuration: configuration, registry: registry, processEnvironment: environment, logger: logger,
            openAPIDocument: { OpenAPIDocument.yaml(registry: registry, version: CertdeployServer.version) })
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task {
            defer { portContinuation.finish() }
            try await server.run(onListening: { port in portContinuation.yield(port) }, gracefulShutdownSignals: [])
        }
        var iterator = portStream.makeAsyncIterator()
        guard let port = await iterator.next() else {
            _ = try await task.value
            throw TestServerError("the server stopped before it listened")
        }
        let harness = TestServer(server: server, port: port, directory: directory, adminKey: adminKey, deployerKey: deployerKey)
        harness.task = task
        return harness
    }

    private init(server: CertdeployServer, port: Int, directory: TemporaryDirectory, adminKey: String, deployerKey: String) {
        self.server = server
        self.port = port
        self.directory = directory
        self.adminKey = adminKey
        self.deployerKey = deployerKey
    }

    /// Graceful shutdown, then waits for `run()` to return.
    public func stop() async {
        await server.shutdown()
        _ = try? await task?.value
    }

    public static func randomKey() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<40).map { _ in alphabet.randomElement()! })
    }

    // MARK: HTTP

    public struct HTTPAnswer: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: Data

        public var text: String { String(decoding: body, as: UTF8.self) }

        public func decode<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                return try JSONDecoder.api.decode(T.self, from: body)
            } catch {
                throw TestServerError("HTTP \(status): cannot decode \(T.self) from \(text): \(error)")
            }
        }

        public func problem() throws -> Problem { try decode(Problem.self) }
    }

    public enum Caller: Sendable {
        case admin, deployer, anonymous
        case key(String)
    }

    /// One request. `body` is sent as is (JSON unless `contentType` says otherwise).
    public func request(
        _ method: HTTPMethod, _ path: String, body: Data? = nil, as caller: Caller = .admin, contentType: String = "application/json",
        headers extra: [(String, String)] = []
    ) async throws -> HTTPAnswer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        switch caller {
        case .admin: request.headers.add(name: "Authorization", value: "Bearer \(adminKey)")
        case .deployer: request.headers.add(name: "Authorization", value: "Bearer \(deployerKey)")
        case .key(let key): request.headers.add(name: "Authorization", value: "Bearer \(key)")
        case .anonymous: break
        }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return HTTPAnswer(status: Int(response.status.code), headers: response.headers, body: Data(buffer: buffer))
    }

    /// A request with an `Encodable` JSON body.
    public func send(_ method: HTTPMethod, _ path: String, json: some Encodable, as caller: Caller = .admin) async throws -> HTTPAnswer {
        try await request(method, path, body: try JSONEncoder.api.encode(json), as: caller)
    }

    /// Reads a Server-Sent Events stream to its end: (event, data) pairs in order.
    public func events(_ path: String, as caller: Caller = .admin, timeout: Duration = .seconds(120)) async throws -> [(event: String, data: String)] {
        var request = HTTPClientRequest(url: baseURL + path)
        switch caller {
        case .admin: request.headers.add(name: "Authorization", value: "Bearer \(adminKey)")
        case .deployer: request.headers.add(name: "Authorization", value: "Bearer \(deployerKey)")
        case .key(let key): request.headers.add(name: "Authorization", value: "Bearer \(key)")
        case .anonymous: break
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout.components.seconds))
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 20)
            throw TestServerError("events: HTTP \(response.status.code): \(String(buffer: body))")
        }
        var text = ""
        for try await chunk in response.body { text += String(buffer: chunk) }
        var result: [(String, String)] = []
        for block in text.components(separatedBy: "\n\n") where !block.isEmpty {
            var event = "message"
            var data: [String] = []
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))) }
            }
            result.append((event, data.joined(separator: "\n")))
        }
        return result
    }

    /// Polls a deployment until it is final.
    public func waitForDeployment(_ id: UUID, timeout: Duration = .seconds(120)) async throws -> DeploymentView {
        let deadline = ContinuousClock.now + timeout
        while true {
            let view = try await request(.GET, "/api/v1/deployments/\(id.uuidString.lowercased())").decode(DeploymentView.self)
            if !view.isLive { return view }
            if ContinuousClock.now > deadline { throw TestServerError("deployment \(id) still \(view.status) after \(timeout)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

public struct TestServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// `XCTAssertEqual` for an `async` expression (XCTest's autoclosures cannot `await`).
public func assertEqual<T: Equatable>(
    _ expression: @autoclosure () async throws -> T, _ expected: T, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) async {
    do {
        let value = try await expression()
        XCTAssertEqual(value, expected, message(), file: file, line: line)
    } catch {
        XCTFail("threw \(error)", file: file, line: line)
    }
}
