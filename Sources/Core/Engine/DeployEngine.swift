import Crypto
import Foundation

/// The only code that acts on a target: lock, connect, compare, back up, write, activate, validate,
/// reload, verify, roll back, and record every step. Every connector gets all of it through its plan.
public final class DeployEngine: Sendable {
    private let locks: TargetLocks
    private let prober: any TLSProber
    /// Per-handshake timeout while verifying.
    private let probeTimeout: Duration

    public init(locks: TargetLocks = .shared, prober: any TLSProber = OpenSSLTLSProber(), probeTimeout: Duration = .seconds(5)) {
        self.locks = locks
        self.prober = prober
        self.probeTimeout = probeTimeout
    }

    /// Deploys and reports how it ended; never throws (failures are in the result).
    ///
    /// - Parameters:
    ///   - connect: opens the one transport session this deploy uses.
    ///   - observe: called with each step as it starts and ends.
    public func deploy(
        _ request: DeployRequest,
        connect: @Sendable () async throws -> any RemoteHost,
        observe: (@Sendable (StepRecord) -> Void)? = nil
    ) async -> DeploymentResult {
        var run = DeployRun(request: request, observer: observe, engine: self)
        if let failure = run.preflight() {
            return run.finish(.failed, failure)
        }
        run.log.begin(.lock)
        await locks.acquire(request.targetID)
        run.log.end(.ok, "holding the deploy lock for target \(request.targetID)")
        let result = await run.apply(connect: connect)
        await locks.release(request.targetID)
        return result
    }

    fileprivate func probe(_ endpoint: VerifyEndpoint, requestStaple: Bool) async throws -> TLSProbeResult {
        try await prober.probe(host: endpoint.host, port: endpoint.port, serverName: endpoint.serverName, requestStaple: requestStaple, timeout: probeTimeout)
    }
}

/// The state of one deploy as it moves through the pipeline.
private struct DeployRun {
    let request: DeployRequest
    let engine: DeployEngine
    var log: StepLog
    var host: (any RemoteHost)?
    var connections = 0
    /// What each planned path held before we touched it (nil: it did not exist).
    var previous: [String: RemoteFile?] = [:]
    var backups: [String] = []
    var attention: [String] = []
    var dryRun = false

    init(request: DeployRequest, observer: (@Sendable (StepRecord) -> Void)?, engine: DeployEngine) {
        self.request = request
        self.engine = engine
        let secrets = request.secrets + [request.bundle.privateKeyPEM]
        self.log = StepLog(observer: observer, redactor: Redactor(secrets: secrets), now: request.options.now)
    }

    var plan: DeploymentPlan { request.plan }
    var target: String { request.targetID }

    func failure(_ step: StepRecord.Name, _ message: String) -> DeployFailure {
        DeployFailure(targetID: target, step: step, message: log.redactor.redact(message))
    }

    // MARK: Preflight (no I/O)

    mutating func preflight() -> DeployFailure? {
        log.begin(.preflight)
        let info = request.bundle.info
        if info.mustStaple, !plan.stapling.willStaple, !request.options.allowMustStapleWithoutStapling {
            let message = "certificate \(info.shortDescription) is Must-Staple (TLS Feature status_request) but this target will not staple (\(plan.stapling.reason)); clients would reject it. Turn stapling on for the target, or deploy with allow_must_staple_without_stapling"
            log.end(.failed, message)
            return failure(.preflight, message)
        }
        var seen = Set<String>()
        for file in plan.files {
            if let problem = RemotePath.problem(with: file.path) {
                let message = "planned file \(file.path): \(problem)"
                log.end(.failed, message)
                return failure(.preflight, message)
            }
            if !seen.insert(file.path).inserted {
                let message = "plan writes \(file.path) twice"
                log.end(.failed, message)
                return failure(.preflight, message)
            }
        }
        var detail = "certificate \(info.shortDescription), not after \(ISO8601DateFormatter().string(from: info.notAfter)); stapling: \(plan.stapling.mode.rawValue) (\(plan.stapling.reason))"
        let notes = request.bundle.notes + plan.notes
        if !notes.isEmpty { detail += "; " + notes.joined(separator: "; ") }
        if info.mustStaple, !plan.stapling.willStaple {
            detail += "; Must-Staple certificate deployed without stapling because the request allowed it"
        }
        log.end(notes.isEmpty ? .ok : .warning, detail)
        return nil
    }

    // MARK: Apply

    mutating func apply(connect: @Sendable () async throws -> any RemoteHost) async -> DeploymentResult {
        log.begin(.connect)
        do {
            let opened = try await connect()
            host = opened
            connections += 1
            log.end(.ok, "connected to \(opened.endpointDescription)")
        } catch {
            log.end(.failed, "\(error)")
            return finish(.failed, failure(.connect, "\(error)"))
        }
        let result = await applyConnected(host!)
        await host?.close()
        return result
    }

    private mutating func applyConnected(_ host: any RemoteHost) async -> DeploymentResult {
        // Compare: idempotency by content and mode.
        log.begin(.compare)
        var changed: [PlannedFile] = []
        do {
            for file in plan.files {
                let current = try await host.readFile(at: file.path)
                previous[file.path] = .some(current)
                if current?.contents != file.contents || current?.mode != file.mode {
                    changed.append(file)
                }
            }
        } catch {
            log.end(.failed, "\(error)")
            return finish(.failed, failure(.compare, "cannot read current files: \(error)"))
        }
        if changed.isEmpty, !request.options.force {
            log.end(.ok, "all \(plan.files.count) files already match (SHA-256 and mode); nothing to write, no reload")
            return finish(.unchanged, nil)
        }
        let changeList = changed.map(\.path).joined(separator: ", ")
        log.end(.ok, changed.isEmpty ? "forced: rewriting \(plan.files.count) files that already match" : "\(changed.count) of \(plan.files.count) files differ: \(changeList)")

        if request.options.dryRun {
            dryRun = true
            log.skip(.write, "dry run: would write \(plan.files.map(\.path).joined(separator: ", "))"
                + (plan.validateCommand.map { "; validate with `\($0)`" } ?? "")
                + (plan.reloadCommand.map { "; reload with `\($0)`" } ?? ""))
            return finish(.succeeded, nil)
        }

        // Backup: copies beside the live files, for the operator (rollback restores from memory).
        let stamp = Self.backupStamp(request.options.now())
        let existing = plan.files.compactMap { file in previous[file.path].flatMap { $0 }.map { (file.path, $0) } }
        if existing.isEmpty {
            log.skip(.backup, "no existing files to back up")
        } else {
            log.begin(.backup)
            do {
                for (path, file) in existing {
                    let backupPath = "\(path).certdeploy-bak.\(stamp)"
                    try await host.writeFile(at: backupPath, contents: file.contents, mode: file.mode,
                                             owner: file.ownerID.map(String.init), group: file.groupID.map(String.init))
                    backups.append(backupPath)
                }
                log.end(.ok, "backed up \(backups.joined(separator: ", "))")
            } catch {
                log.end(.failed, "\(error)")
                try? await host.removeFiles(backups)
                backups = []
                return finish(.failed, failure(.backup, "cannot write backup: \(error)"))
            }
        }

        // Write: each file to a temp name in its own directory, with its final mode, fsynced.
        log.begin(.write)
        var moves: [FileMove] = []
        do {
            for file in plan.files {
                let temporary = "\(file.path).certdeploy-tmp.\(Self.randomSuffix())"
                moves.append(FileMove(from: temporary, to: file.path))
                try await host.writeFile(at: temporary, contents: file.contents, mode: file.mode, owner: file.owner, group: file.group)
            }
            log.end(.ok, "wrote \(moves.count) temporary files (" + plan.files.map { "\($0.path) \($0.mode)" }.joined(separator: ", ") + ")")
        } catch {
            log.end(.failed, "\(error)")
            try? await host.removeFiles(moves.map(\.from))
            return finish(.failed, failure(.write, "\(error); temporary files removed, live files untouched"))
        }

        // Activate: rename over the live paths.
        log.begin(.activate)
        do {
            try await host.move(moves)
            log.end(.ok, "renamed \(moves.count) files into place")
        } catch {
            log.end(.failed, "\(error)")
            try? await host.removeFiles(moves.map(\.from))
            return await rollBack(host, after: failure(.activate, "\(error)"), reload: false)
        }

        // Validate: the vendor's own config check, before anything is reloaded.
        if let validate = plan.validateCommand {
            log.begin(.validate, command: validate)
            switch await runCommand(validate, on: host) {
            case .success(let result) where result.exitStatus == 0:
                log.end(.ok, "config check passed", exitStatus: 0, output: result.outputTail())
            case .success(let result):
                log.end(.failed, "exited \(result.exitStatus)", exitStatus: result.exitStatus, output: result.outputTail())
                return await rollBack(host, after: failure(.validate, "`\(validate)` exited \(result.exitStatus): \(result.outputTail(limit: 512))"), reload: false)
            case .failure(let error):
                log.end(.failed, "\(error)")
                return await rollBack(host, after: failure(.validate, "`\(validate)`: \(error)"), reload: false)
            }
        } else {
            log.skip(.validate, "connector has no validate command for this target")
        }

        // Reload.
        if let reload = plan.reloadCommand {
            log.begin(.reload, command: reload)
            switch await runCommand(reload, on: host) {
            case .success(let result) where result.exitStatus == 0:
                log.end(.ok, "reloaded", exitStatus: 0, output: result.outputTail())
            case .success(let result):
                log.end(.failed, "exited \(result.exitStatus)", exitStatus: result.exitStatus, output: result.outputTail())
                return await rollBack(host, after: failure(.reload, "`\(reload)` exited \(result.exitStatus): \(result.outputTail(limit: 512))"), reload: true)
            case .failure(let error):
                log.end(.failed, "\(error)")
                return await rollBack(host, after: failure(.reload, "`\(reload)`: \(error)"), reload: true)
            }
        } else {
            log.skip(.reload, "connector needs no reload for this target")
        }

        // Verify: the served leaf must be ours.
        if let endpoint = plan.verify {
            log.begin(.verify)
            switch await verify(endpoint) {
            case .success(let detail):
                log.end(.ok, detail)
            case .failure(let mismatch):
                log.end(.failed, mismatch.message)
                return await rollBack(host, after: failure(.verify, mismatch.message), reload: plan.reloadCommand != nil)
            }
        } else {
            log.skip(.verify, "no verify endpoint configured")
        }

        await pruneBackups(host)
        return finish(.succeeded, nil)
    }

    private func runCommand(_ command: RemoteCommand, on host: any RemoteHost) async -> Result<CommandResult, any Error> {
        do {
            return .success(try await host.run(command.argv, timeout: command.timeout))
        } catch {
            return .failure(error)
        }
    }

    private func verify(_ endpoint: VerifyEndpoint) async -> Result<String, VerifyMismatch> {
        let expected = request.bundle.leafSHA256
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: endpoint.deadline)
        var delay = Duration.milliseconds(200)
        var matches = 0
        var attempts = 0
        var lastProblem = "no handshake completed"
        var stapled = false
        while true {
            attempts += 1
            do {
                let seen = try await engine.probe(endpoint, requestStaple: plan.stapling.willStaple)
                if seen.leafSHA256 == expected {
                    matches += 1
                    stapled = stapled || seen.stapleDER != nil
                    if matches >= endpoint.consecutiveMatches {
                        var detail = "\(endpoint.description) serves the new leaf (SHA-256 \(expected.prefix(16))…) on \(matches) consecutive handshakes, \(seen.protocolVersion), \(attempts) attempts"
                        if plan.stapling.willStaple { detail += stapled ? "; OCSP staple seen" : "; no OCSP staple yet (the vendor fetches it lazily)" }
                        return .success(detail)
                    }
                    try? await Task.sleep(for: .milliseconds(100))
                    continue
                }
                matches = 0
                lastProblem = "served leaf SHA-256 \(seen.leafSHA256.prefix(16))…, expected \(expected.prefix(16))…"
            } catch {
                matches = 0
                lastProblem = "\(error)"
            }
            if clock.now.advanced(by: delay) > deadline || Task.isCancelled {
                return .failure(VerifyMismatch(message: "\(endpoint.description) did not serve the new leaf within \(endpoint.deadline) (\(attempts) attempts): \(lastProblem)"))
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }

    /// Puts every planned path back to what it held before (or removes it if it did not exist), then
    /// reloads when the vendor had already been reloaded.
    private mutating func rollBack(_ host: any RemoteHost, after cause: DeployFailure, reload: Bool) async -> DeploymentResult {
        log.begin(.rollback)
        var problems: [String] = []
        var restoreMoves: [FileMove] = []
        var toRemove: [String] = []
        for file in plan.files {
            guard let old = previous[file.path] else { continue }
            if let old {
                let temporary = "\(file.path).certdeploy-tmp.\(Self.randomSuffix())"
                do {
                    try await host.writeFile(at: temporary, contents: old.contents, mode: old.mode,
                                             owner: old.ownerID.map(String.init), group: old.groupID.map(String.init))
                    restoreMoves.append(FileMove(from: temporary, to: file.path))
                } catch {
                    problems.append("\(file.path): could not write its previous contents (\(error))")
                }
            } else {
                toRemove.append(file.path)
            }
        }
        do {
            try await host.move(restoreMoves)
        } catch {
            problems.append("restoring \(restoreMoves.map(\.to).joined(separator: ", ")) failed: \(error)")
            try? await host.removeFiles(restoreMoves.map(\.from))
        }
        do {
            try await host.removeFiles(toRemove)
        } catch {
            problems.append("removing new files \(toRemove.joined(separator: ", ")) failed: \(error)")
        }
        if reload, let command = plan.reloadCommand {
            switch await runCommand(command, on: host) {
            case .success(let result) where result.exitStatus == 0: break
            case .success(let result): problems.append("reload after restore (`\(command)`) exited \(result.exitStatus): \(result.outputTail(limit: 512))")
            case .failure(let error): problems.append("reload after restore (`\(command)`) failed: \(error)")
            }
        }
        let restored = restoreMoves.map(\.to) + toRemove
        if problems.isEmpty {
            log.end(.ok, "restored \(restored.joined(separator: ", "))" + (reload && plan.reloadCommand != nil ? " and reloaded" : ""))
            return finish(.rolledBack, cause)
        }
        attention = problems + backups.map { "backup: \($0)" }
        log.end(.failed, problems.joined(separator: "; "))
        return finish(.rollbackFailed, cause)
    }

    private mutating func pruneBackups(_ host: any RemoteHost) async {
        guard !backups.isEmpty else { return }
        log.begin(.cleanup)
        var removed: [String] = []
        do {
            for file in plan.files where previous[file.path].flatMap({ $0 }) != nil {
                let directory = RemotePath.directory(of: file.path)
                let prefix = RemotePath.basename(of: file.path) + ".certdeploy-bak."
                let existing = try await host.listDirectory(directory).filter { $0.hasPrefix(prefix) }.sorted()
                let excess = existing.dropLast(max(request.options.backupRetention, 1))
                let paths = excess.map { directory == "/" ? "/\($0)" : "\(directory)/\($0)" }
                try await host.removeFiles(paths)
                removed += paths
            }
            log.end(.ok, removed.isEmpty ? "kept all backups (retention \(request.options.backupRetention))" : "pruned \(removed.count) old backups")
        } catch {
            log.end(.warning, "could not prune old backups: \(error)")
        }
    }

    func finish(_ outcome: DeploymentOutcome, _ failure: DeployFailure?) -> DeploymentResult {
        DeploymentResult(
            targetID: target, outcome: outcome, steps: log.steps, failure: failure, attention: attention,
            certificateSHA256: request.bundle.leafSHA256, backups: backups, stapling: plan.stapling,
            connectionsOpened: connections, dryRun: dryRun
        )
    }

    static func backupStamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        return formatter.string(from: date)
    }

    static func randomSuffix() -> String {
        (0..<8).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
    }
}

private struct VerifyMismatch: Error {
    var message: String
}
