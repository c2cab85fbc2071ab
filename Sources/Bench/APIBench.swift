import AsyncHTTPClient
import CertdeployAPI
import Core
import Foundation
import NIOCore
import NIOHTTP1
import TestSupport

// API benchmark (`make bench`, `certdeploy-bench api`): against a server in a child process (so its RSS is the
// server's alone), C keep-alive HTTP clients create N nginx targets through `POST /api/v1/targets`; one client
// then walks `GET /api/v1/targets` in pages; then one `POST /api/v1/deployments` enqueues a dry run to every target
// by label selector. The server runs no deployment workers, so the deployment figure is enqueue only.

struct APIBenchOptions {
    var targets = 10_000
    var clients = 16
    var pageSize = 500
    var listPasses = 3
    var stores: [BenchStore] = [.sqlite, .postgres]

    init(arguments: ArraySlice<String>) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--targets", "-n": targets = Int(iterator.next() ?? "") ?? targets
            case "--clients", "-c": clients = Int(iterator.next() ?? "") ?? clients
            case "--page-size": pageSize = Int(iterator.next() ?? "") ?? pageSize
            case "--list-passes": listPasses = Int(iterator.next() ?? "") ?? listPasses
            case "--store":
                switch iterator.next() {
                case "sqlite": stores = [.sqlite]
                case "postgres": stores = [.postgres]
                case "both": stores = [.sqlite, .postgres]
                default: benchUsage()
                }
            default:
                benchUsage()
            }
        }
        guard targets > 0, clients > 0, (1...500).contains(pageSize), listPasses > 0 else { benchUsage() }
    }
}

enum BenchStore: String {
    case sqlite, postgres
    var title: String { self == .sqlite ? "SQLite" : "PostgreSQL" }
}

/// The figures of one run against one store.
struct APIBenchResult {
    var store: BenchStore
    var createRate = 0.0
    var create: [Double] = []  // sorted latencies, seconds
    var createServerCPU = 0.0
    var createClientCPU = 0.0
    var createDatabaseCPU: Double?  // PostgreSQL's processes (SQLite runs inside the server)
    var createSeconds = 0.0
    var pages: [Double] = []  // sorted latencies, seconds
    var listed = 0
    var enqueueSeconds = 0.0
    var enqueued = 0
    var enqueueResponseBytes = 0
    var memoryIdle = MemoryReading(rss: 0, peak: 0)
    var memoryAfterCreate = MemoryReading(rss: 0, peak: 0)
    var memoryAfterList = MemoryReading(rss: 0, peak: 0)
    var memoryAfterEnqueue = MemoryReading(rss: 0, peak: 0)
}

// MARK: The server process

/// `certdeploy-bench api-server` started as a child of this process.
final class BenchServerProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched from the benchmark's sequential driver code.
    let process: Process
    let port: Int
    var pid: String { String(process.processIdentifier) }

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    static func start(dataDirectory: String, databaseURL: String?, environment: [String: String]) throws -> BenchServerProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        process.arguments = ["api-server", "--data-dir", dataDirectory] + (databaseURL.map { ["--database-url", $0] } ?? [])
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Blocks until the child says where it listens (it derives the secrets key first: a second or so).
        var text = ""
        while !text.contains("\n") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty {
                process.waitUntilExit()
                throw HarnessError("the bench server exited (status \(process.terminationStatus)) before it listened")
            }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first, line.hasPrefix("listening "), let port = Int(line.dropFirst(10)) else {
            process.terminate()
            throw HarnessError("unexpected output from the bench server: \(text)")
        }
        return BenchServerProcess(process: process, port: port)
    }

    func memory() -> MemoryReading { MemoryReading.of(pid) }
    func cpu() -> Double { cpuSeconds(pid) }

    /// SIGTERM (graceful shutdown), then waits.
    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

// MARK: HTTP

struct BenchAPIClient: Sendable {
    let http: HTTPClient
    let baseURL: String
    let key: String

    struct Answer {
        var status: Int
        var body: ByteBuffer
        var seconds: Double
    }

    /// One request; `seconds` runs from sending to the last body byte received.
    func send(_ method: HTTPMethod, _ path: String, body: ByteBuffer? = nil, timeout: Int64 = 60) async throws -> Answer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        let started = ContinuousClock.now
        let response = try await http.execute(request, timeout: .seconds(timeout))
        let received = try await response.body.collect(upTo: 256 << 20)
        return Answer(status: Int(response.status.code), body: received, seconds: seconds(ContinuousClock.now - started))
    }

    func decode<T: Decodable>(_ type: T.Type, _ answer: Answer, expecting status: Int, _ what: String) throws -> T {
        guard answer.status == status else {
            throw HarnessError("\(what): HTTP \(answer.status) (expected \(status)): \(String(buffer: answer.body).prefix(500))")
        }
        return try JSONDecoder.api.decode(T.self, from: Data(buffer: answer.body))
    }
}

/// The request body for target `index`: an nginx site over SSH (with a private key, which the server seals).
func benchTargetInput(_ index: Int) -> TargetInput {
    let name = String(format: "bench-%05d", index)
    let ssh: JSONValue = .object([
        "host": .string("10.\(index / 65536 % 256).\(index / 256 % 256).\(index % 256)"), "port": .number(22), "user": .string("deploy"),
        "hostKeyFingerprint": .string("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        "privateKey": .string("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-\(index)\n-----END OPENSSH PRIVATE KEY-----\n"),
    ])
    let config: JSONValue = .object([
        "certificatePath": .string("/etc/nginx/tls/\(name).pem"), "keyPath": .string("/etc/nginx/tls/\(name).key"),
        "verify": .object(["host": .string("127.0.0.1"), "port": .number(443), "serverName": .string("\(name).example.test")]),
    ])
    return TargetInput(name: name, connector: "nginx", labels: ["bench": "api", "shard": String(index % 16)], certificate: "bench", ssh: ssh, config: config)
}

// MARK: The benchmark

/// Prints and flushes (progress shows as it happens even when stdout is a pipe or file).
func say(_ text: String) {
    print(text)
    fflush(nil)
}

func runAPIBench(_ options: APIBenchOptions) async throws {
    print("certdeploy API benchmark: N=\(options.targets) targets, C=\(options.clients) clients, pages of \(options.pageSize), "
          + "\(ProcessInfo.processInfo.activeProcessorCount) cores; server: child process (certdeploy-bench api-server), "
          + "no deployment workers")
    let ca = try TestCertificateAuthority()
    let leaf = try ca.issueLeaf()
    let upload = CertificateUpload(name: "bench", certificatePEM: leaf.certificatePEM, chainPEM: ca.chainPEM, privateKeyPEM: leaf.privateKeyPKCS8PEM)
    // Encoded up front so the clients spend their CPU on HTTP, not on JSON.
    let bodies = try (0..<options.targets).map { ByteBuffer(bytes: try JSONEncoder.api.encode(benchTargetInput($0))) }

    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: options.clients)
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    var results: [APIBenchResult] = []
    do {
        for store in options.stores {
            results.append(try await runAPIBench(store, options: options, upload: upload, bodies: bodies, http: http))
        }
    } catch {
        try? await http.shutdown()
        throw error
    }
    try await http.shutdown()
    printAPIBenchTable(results, options: options)
}

func runAPIBench(
    _ store: BenchStore, options: APIBenchOptions, upload: CertificateUpload, bodies: [ByteBuffer], http: HTTPClient
) async throws -> APIBenchResult {
    let work = try TemporaryDirectory(prefix: "certdeploy-api-bench")
    defer { work.remove() }
    var postgres: PostgresServer?
    defer { postgres?.stop() }
    var databaseURL: String?
    if store == .postgres {
        let started = try PostgresServer.start()
        postgres = started
        databaseURL = started.url(database: try started.createDatabase(prefix: "certdeploy_bench"))
    }
    let adminKey = String((0..<40).map { _ in Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789").randomElement()! })
    let server = try BenchServerProcess.start(
        dataDirectory: work.file("data"), databaseURL: databaseURL,
        environment: ["CERTDEPLOY_API_KEYS": "admin:\(adminKey):admin", "CERTDEPLOY_SECRET_KEY": "certdeploy bench passphrase"])
    defer { server.stop() }
    let client = BenchAPIClient(http: http, baseURL: "http://127.0.0.1:\(server.port)", key: adminKey)
    var result = APIBenchResult(store: store)
    say("\n\(store.title): server pid \(server.pid) on port \(server.port)\(postgres.map { " (PostgreSQL 15 on port \($0.port))" } ?? "")")

    result.memoryIdle = server.memory()
    let uploaded = try await client.send(.POST, "/api/v1/certificates", body: ByteBuffer(bytes: try JSONEncoder.api.encode(upload)))
    guard uploaded.status == 201 else { throw HarnessError("certificate upload: HTTP \(uploaded.status): \(String(buffer: uploaded.body))") }

    // Opens the C keep-alive connections before the clock starts.
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<options.clients {
            group.addTask { _ = try await client.send(.GET, "/api/v1/targets?limit=1") }
        }
        try await group.waitForAll()
    }

    // CPU of the PostgreSQL postmaster and its backends (the pool's connections stay open across the phase).
    func databaseCPU() -> Double? {
        postgres.map { ([$0.pid] + ProcessRunner.children(of: $0.pid)).map { cpuSeconds(String($0)) }.reduce(0, +) }
    }

    // 1. Create N targets, C clients, each sending its next request when the previous one is answered.
    let databaseCPUBefore = databaseCPU()
    let serverCPUBefore = server.cpu()
    let clientCPUBefore = cpuSeconds()
    let started = ContinuousClock.now
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        for worker in 0..<options.clients {
            group.addTask {
                var mine: [Double] = []
                for index in stride(from: worker, to: bodies.count, by: options.clients) {
                    let answer = try await client.send(.POST, "/api/v1/targets", body: bodies[index])
                    guard answer.status == 201 else {
                        throw HarnessError("create target \(index): HTTP \(answer.status): \(String(buffer: answer.body).prefix(500))")
                    }
                    mine.append(answer.seconds)
                }
                return mine
            }
        }
        var all: [Double] = []
        for try await part in group { all += part }
        return all
    }
    result.createSeconds = seconds(ContinuousClock.now - started)
    result.createServerCPU = server.cpu() - serverCPUBefore
    result.createClientCPU = cpuSeconds() - clientCPUBefore
    if let before = databaseCPUBefore, let after = databaseCPU() { result.createDatabaseCPU = after - before }
    result.create = latencies.sorted()
    result.createRate = Double(bodies.count) / result.createSeconds
    result.memoryAfterCreate = server.memory()
    say(String(format: "  create:  %7.0f targets/s   p50 %6.1f ms   p99 %6.1f ms   max %6.1f ms   (%.1f s; CPU s: server %.1f, bench %.1f%@)",
                 result.createRate, percentile(result.create, 0.5) * 1000, percentile(result.create, 0.99) * 1000,
                 (result.create.last ?? 0) * 1000, result.createSeconds, result.createServerCPU, result.createClientCPU,
                 result.createDatabaseCPU.map { String(format: ", PostgreSQL %.1f", $0) } ?? ""))
    say(String(format: "  server RSS after create: %.1f MB (idle before: %.1f MB)", result.memoryAfterCreate.rss, result.memoryIdle.rss))

    // 2. Walk every target in pages, one client, `listPasses` times.
    var pages: [Double] = []
    let listCPUBefore = server.cpu()
    for _ in 0..<options.listPasses {
        var cursor: String?
        var listed = 0
        repeat {
            let path = "/api/v1/targets?limit=\(options.pageSize)"
                + (cursor.map { "&cursor=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" } ?? "")
            let answer = try await client.send(.GET, path)
            let page = try client.decode(ListResponse<TargetView>.self, answer, expecting: 200, "list targets")
            pages.append(answer.seconds)
            listed += page.items.count
            cursor = page.nextCursor
        } while cursor != nil
        guard listed == bodies.count else { throw HarnessError("listed \(listed) targets, created \(bodies.count)") }
        result.listed = listed
    }
    let listServerCPU = server.cpu() - listCPUBefore
    result.pages = pages.sorted()
    result.memoryAfterList = server.memory()
    say(String(format: "  list:    %d pages of %d   p50 %6.1f ms   p99 %6.1f ms   max %6.1f ms   (server CPU %.1f ms a page)   server RSS %.1f MB",
                 result.pages.count, options.pageSize, percentile(result.pages, 0.5) * 1000, percentile(result.pages, 0.99) * 1000,
                 (result.pages.last ?? 0) * 1000, listServerCPU * 1000 / Double(max(1, pages.count)), result.memoryAfterList.rss))

    // 3. One dry-run deployment to every target by label selector: the time to 202 (enqueue only: no workers).
    let request = DeploymentRequest(certificate: "bench", selector: "bench=api", options: .init(dryRun: true))
    let answer = try await client.send(.POST, "/api/v1/deployments", body: ByteBuffer(bytes: try JSONEncoder.api.encode(request)), timeout: 1800)
    let created = try client.decode(ListResponse<DeploymentView>.self, answer, expecting: 202, "enqueue deployments")
    guard created.items.count == bodies.count else { throw HarnessError("enqueued \(created.items.count) deployments for \(bodies.count) targets") }
    result.enqueueSeconds = answer.seconds
    result.enqueued = created.items.count
    result.enqueueResponseBytes = answer.body.readableBytes
    result.memoryAfterEnqueue = server.memory()
    say(String(format: "  enqueue: %d dry-run deployments in %.2f s (%.0f/s) to 202 (response %.1f MB)   server RSS %.1f MB, peak %.1f MB",
                 result.enqueued, result.enqueueSeconds, Double(result.enqueued) / result.enqueueSeconds,
                 Double(result.enqueueResponseBytes) / 1_048_576, result.memoryAfterEnqueue.rss, result.memoryAfterEnqueue.peak))
    return result
}

// MARK: Report

func printAPIBenchTable(_ results: [APIBenchResult], options: APIBenchOptions) {
    func ms(_ value: Double) -> String { String(format: "%.1f", value * 1000) }
    func verdict(_ pass: Bool) -> String { pass ? "PASS" : "MISS" }
    let limitMB = 200.0
    let rows: [(String, String, (APIBenchResult) -> String)] = [
        ("create: targets/s (\(options.clients) clients)", "≥ 1,000/s", { r in
            String(format: "%.0f/s %@", r.createRate, verdict(r.createRate >= 1000)) }),
        ("create: latency p50 / p99 / max", "p99 < 20 ms", { r in
            "\(ms(percentile(r.create, 0.5))) / \(ms(percentile(r.create, 0.99))) / \(ms(r.create.last ?? 0)) ms \(verdict(percentile(r.create, 0.99) < 0.020))" }),
        ("list: page of \(options.pageSize), p50 / p99 / max (\(results.first?.pages.count ?? 0) pages)", "p99 < 20 ms", { r in
            "\(ms(percentile(r.pages, 0.5))) / \(ms(percentile(r.pages, 0.99))) / \(ms(r.pages.last ?? 0)) ms \(verdict(percentile(r.pages, 0.99) < 0.020))" }),
        ("enqueue \(options.targets) dry runs by selector: time to 202", "—", { r in
            String(format: "%.2f s (%.0f/s)", r.enqueueSeconds, Double(r.enqueued) / max(r.enqueueSeconds, 1e-9)) }),
        ("server RSS: idle / after create", "< 200 MB", { r in
            String(format: "%.1f / %.1f MB %@", r.memoryIdle.rss, r.memoryAfterCreate.rss, verdict(r.memoryAfterCreate.rss < limitMB)) }),
        ("server RSS: after list / after enqueue", "< 200 MB", { r in
            String(format: "%.1f / %.1f MB %@", r.memoryAfterList.rss, r.memoryAfterEnqueue.rss,
                   verdict(max(r.memoryAfterList.rss, r.memoryAfterEnqueue.rss) < limitMB)) }),
        ("server peak RSS (VmHWM), whole run", "< 200 MB", { r in
            String(format: "%.1f MB %@", r.memoryAfterEnqueue.peak, verdict(r.memoryAfterEnqueue.peak < limitMB)) }),
        ("CPU per create: server / bench client (/ PostgreSQL)", "—", { r in
            let perCreate = { (cpu: Double) in String(format: "%.2f", cpu / Double(max(r.create.count, 1)) * 1000) }
            return "\(perCreate(r.createServerCPU)) / \(perCreate(r.createClientCPU))"
                + (r.createDatabaseCPU.map { " / " + perCreate($0) } ?? "") + " ms" }),
    ]
    print("\nAPI benchmark, \(options.targets) targets, \(ProcessInfo.processInfo.activeProcessorCount) cores "
          + "(server in a child process, no deployment workers: the deployment figure is enqueue only)\n")
    print("| measure | target | " + results.map(\.store.title).joined(separator: " | ") + " |")
    print("|---|---|" + results.map { _ in "---|" }.joined())
    for (measure, target, value) in rows {
        print("| \(measure) | \(target) | " + results.map(value).joined(separator: " | ") + " |")
    }
}
