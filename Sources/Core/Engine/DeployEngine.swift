import Foundation

/// The only code that acts on a target: lock, connect, compare, back up, write, activate, validate,
/// reload, verify, roll back, and record every step. Every connector gets all of it through its plan.
public final class DeployEngine: Sendable {
    let locks: TargetLocks
    private let prober: any TLSProber
    fileprivate let ocsp: OCSPFetcher
    /// Per-handshake timeout while verifying.
    private let probeTimeout: Duration

    public init(locks: TargetLocks = .shared, prober: any TLSProber = OpenSSLTLSProber(), ocsp: OCSPFetcher = OCSPFetcher(),
                probeTimeout: Duration = .seconds(5)) {
        self.locks = locks
        self.prober = prober
        self.ocsp = ocsp
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
        if let failure = await run.prepare() {
            return run.finish(.failed, failure)
        }
        if run.plan.secret != nil {
            return run.finish(.failed, run.failure(.plan, "connector \(request.connector.descriptor.id) plans a cluster Secret; deploy it with deploy(_:cluster:observe:)"))
        }
        run.log.begin(.lock)
        await locks.acquire(request.targetID)
        run.log.end(.ok, "holding the deploy lock for target \(request.targetID)")
        let result = await run.apply(connect: connect)
        await locks.release(request.targetID)
        return result
    }

    func probe(_ endpoint: VerifyEndpoint, requestStaple: Bool) async throws -> TLSProbeResult {
        try await prober.probe(host: endpoint.host, port: endpoint.port, serverName: endpoint.serverName, requestStaple: requestStaple,
                               timeout: probeTimeout, startTLS: endpoint.startTLS)
    }
}

/// The state of one deploy as it moves through the pipeline.
struct DeployRun {
    let request: DeployRequest
    let engine: DeployEngine
    var log: StepLog
    var connections = 0
    /// What each planned path held before we touched it (nil: it did not exist).
    var previous: [String: RemoteFile?] = [:]
    var backups: [String] = []
    /// Paths this deploy changed or removed: what a rollback restores.
    var touched: [String] = []
    var attention: [String] = []
    var dryRun = false
    var plan = DeploymentPlan(files: [], stapling: StaplingDecision(mode: .none, reason: "not planned yet"))
    var staple: OCSPStaple?
    var stapleLookedUp = false

    init(request: DeployRequest, observer: (@Sendable (StepRecord) -> Void)?, engine: DeployEngine) {
        self.request = request
        self.engine = engine
        let secrets = request.secrets + [request.bundle.privateKeyPEM]
        self.log = StepLog(observer: observer, redactor: Redactor(secrets: secrets), now: request.options.now)
    }

    var target: String { request.targetID }

    func failure(_ step: StepRecord.Name, _ message: String) -> DeployFailure {
        DeployFailure(targetID: target, step: step, message: log.redactor.redact(message))
    }

    // MARK: Preflight, staple, plan

    /// Checks the bundle against the target, asks the OCSP responder, and makes the final plan.
    mutating func prepare() async -> DeployFailure? {
        log.begin(.preflight)
        let info = request.bundle.info
        let draft: DeploymentPlan
        do {
            draft = try request.connector.plan(for: request.bundle, context: request.context)
        } catch {
            log.end(.failed, "\(error)")
            return failure(.preflight, "the connector cannot plan this deploy: \(error)")
        }
        let mustStapleAllowed = request.options.allowMustStapleWithoutStapling
        if info.mustStaple, !draft.stapling.willStaple, !mustStapleAllowed {
            let message = "certificate \(info.shortDescription) is Must-Staple (TLS Feature status_request) but this target will not staple (\(draft.stapling.reason)); clients would reject it. Turn stapling on for the target, or deploy with allow_must_staple_without_stapling"
            log.end(.failed, message)
            return failure(.preflight, message)
        }
        var detail = "certificate \(info.shortDescription), not after \(ISO8601DateFormatter().string(from: info.notAfter)); stapling: \(draft.stapling.mode.rawValue) (\(draft.stapling.reason))"
        if !request.bundle.notes.isEmpty { detail += "; " + request.bundle.notes.joined(separator: "; ") }
        if info.mustStaple, !draft.stapling.willStaple {
            detail += "; Must-Staple certificate deployed without stapling because the request allowed it"
        }
        log.end(request.bundle.notes.isEmpty ? .ok : .warning, detail)

        if let refusal = await checkOCSP(draft: draft) { return refusal }

        log.begin(.plan)
        do {
            var context = request.context
            context.staple = staple
            context.stapleLookedUp = stapleLookedUp
            plan = staple == nil && !stapleLookedUp ? draft : try request.connector.plan(for: request.bundle, context: context)
        } catch {
            log.end(.failed, "\(error)")
            return failure(.plan, "\(error)")
        }
        var seen = Set<String>()
        for file in plan.files {
            if let problem = RemotePath.problem(with: file.path) {
                let message = "planned file \(file.path): \(problem)"
                log.end(.failed, message)
                return failure(.plan, message)
            }
            if !seen.insert(file.path).inserted {
                let message = "plan writes \(file.path) twice"
                log.end(.failed, message)
                return failure(.plan, message)
            }
        }
        var planDetail = plan.secret.map(\.summary) ?? "\(plan.files.count) files: " + plan.files.map { "\($0.path) (\($0.role.rawValue), \($0.mode))" }.joined(separator: ", ")
        if !plan.notes.isEmpty { planDetail += "; " + plan.notes.joined(separator: "; ") }
        log.end(.ok, planDetail)
        return nil
    }

    /// The OCSP rules: no URL → nothing to check; revoked → always refused; no valid answer → refused for a
    /// Must-Staple leaf on a stapling target, otherwise a warning and no staple.
    private mutating func checkOCSP(draft: DeploymentPlan) async -> DeployFailure? {
        let info = request.bundle.info
        guard request.options.checkOCSP else {
            // Staple-file connectors must then plan without a staple rather than wait for one.
            stapleLookedUp = true
            if info.mustStaple, draft.stapling.willStaple, !request.options.allowMustStapleWithoutStapling {
                let message = "certificate \(info.shortDescription) is Must-Staple, and with the OCSP check turned off no staple can be served"
                log.skip(.staple, message)
                return failure(.staple, message)
            }
            log.skip(.staple, "OCSP check turned off for this deploy: no revocation check, no staple file")
            return nil
        }
        guard let url = info.ocspURL else {
            log.skip(.staple, "the certificate has no AIA OCSP URL: no revocation check, no staple")
            return nil
        }
        let mustServeStaple = info.mustStaple && draft.stapling.willStaple && !request.options.allowMustStapleWithoutStapling
        log.begin(.staple)
        stapleLookedUp = true
        let problem: String
        if let issuer = request.bundle.issuerDER {
            do {
                let answer: OCSPStaple
                if let supplied = request.options.staple {
                    // Fetched by the caller: checked again here against this leaf and issuer (no network).
                    answer = try OCSPStaple.check(der: supplied.der, leafDER: request.bundle.leafDER, issuerDER: issuer)
                } else {
                    answer = try await engine.ocsp.fetch(url: url, leafDER: request.bundle.leafDER, issuerDER: issuer)
                }
                switch answer.status {
                case .revoked:
                    let message = "certificate \(info.shortDescription) is revoked according to \(url) (\(answer.summary)); refusing to deploy it"
                    log.end(.failed, message)
                    return failure(.staple, message)
                case .good:
                    if let stale = answer.problem(at: request.options.now()) {
                        problem = "the response from \(url) is not usable: \(stale)"
                    } else {
                        staple = answer
                        log.end(.ok, (request.options.staple == nil ? "OCSP \(url): " : "OCSP response supplied by the caller (from \(url)): ")
                            + answer.summary + (draft.stapling.mode == .stapleFile ? "; the staple is deployed with the certificate" : ""))
                        return nil
                    }
                case .unknown:
                    problem = "\(url) does not know this certificate (status unknown)"
                }
            } catch {
                problem = "\(error)"
            }
        } else {
            problem = "the chain holds no issuer certificate, so no OCSP request can be made"
        }
        if mustServeStaple {
            let message = "certificate \(info.shortDescription) is Must-Staple and no valid OCSP response could be obtained (\(problem)); clients would reject it, so nothing was deployed"
            log.end(.failed, message)
            return failure(.staple, message)
        }
        log.end(.warning, "deploying without a staple: \(problem)")
        return nil
    }

    // MARK: Apply

    mutating func apply(connect: @Sendable () async throws -> any RemoteHost) async -> DeploymentResult {
        log.begin(.connect)
        let host: any RemoteHost
        do {
            host = try await connect()
            connections += 1
            log.end(.ok, "connected to \(host.endpointDescription); \(host.connectionDetail)")
        } catch {
            log.end(.failed, "\(error)")
            return finish(.failed, failure(.connect, "\(error)"))
        }
        let result = await applyConnected(host)
        await host.close()
        return result
    }

    private mutating func applyConnected(_ host: any RemoteHost) async -> DeploymentResult {
        // Compare: idempotency by content and mode; a still-fresh staple on the target counts as current.
        log.begin(.compare)
        var changed: [PlannedFile] = []
        var removals: [String] = []
        var keptStaple = false
        do {
            keptStaple = try await keepStapleFromHistory(host)
            for index in plan.files.indices {
                let file = plan.files[index]
                let current = try await host.readFile(at: file.path)
                previous[file.path] = .some(current)
                if let current, file.role == .staple, current.mode == file.mode, current.contents != file.contents,
                   let fresh = freshStaple(current.contents) {
                    // Keep the staple the target has: it is what verify must then see served.
                    plan.files[index].contents = current.contents
                    staple = fresh
                    keptStaple = true
                    continue
                }
                if current?.contents != file.contents || current?.mode != file.mode {
                    changed.append(file)
                }
            }
            for path in plan.removals {
                let current = try await host.readFile(at: path)
                previous[path] = .some(current)
                if current != nil { removals.append(path) }
            }
        } catch {
            log.end(.failed, "\(error)")
            return finish(.failed, failure(.compare, "cannot read current files: \(error)"))
        }
        if request.options.force { changed = plan.files }
        let stapleNote = keptStaple ? "; the staple on the target is still fresh and is kept" : ""
        if changed.isEmpty, removals.isEmpty {
            log.end(.ok, "all \(plan.files.count) files already match (SHA-256 and mode); nothing to write, no reload" + stapleNote)
            return finish(.unchanged, nil)
        }
        var differences = changed.map(\.path)
        differences += removals.map { "\($0) (to remove)" }
        log.end(.ok, (request.options.force ? "forced: rewriting all \(plan.files.count) files" : "\(differences.count) of \(plan.files.count + plan.removals.count) paths differ: \(differences.joined(separator: ", "))") + stapleNote)
        touched = changed.map(\.path) + removals

        if request.options.dryRun {
            dryRun = true
            log.skip(.write, "dry run: would write \(changed.map(\.path).joined(separator: ", "))"
                + (removals.isEmpty ? "" : "; remove \(removals.joined(separator: ", "))")
                + (plan.validateCommand.map { "; validate with `\($0)`" } ?? "")
                + (plan.hotUpdate != nil ? "; activate through the runtime API" : plan.reloadCommand.map { "; reload with `\($0)`" } ?? ""))
            return finish(.succeeded, nil)
        }

        // Backup: copies beside the live files, for the operator (rollback restores from memory).
        let stamp = Self.backupStamp(request.options.now())
        let existing = touched.compactMap { path in previous[path].flatMap { $0 }.map { (path, $0) } }
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

        // Write: each changed file to a temp name in its own directory, with its final mode, fsynced.
        log.begin(.write)
        var moves: [FileMove] = []
        do {
            for file in changed {
                let temporary = "\(file.path).certdeploy-tmp.\(Self.randomSuffix())"
                moves.append(FileMove(from: temporary, to: file.path))
                try await host.writeFile(at: temporary, contents: file.contents, mode: file.mode, owner: file.owner, group: file.group)
            }
            log.end(.ok, "wrote \(moves.count) temporary files (" + changed.map { "\($0.path) \($0.mode)" }.joined(separator: ", ") + ")")
        } catch {
            log.end(.failed, "\(error)")
            try? await host.removeFiles(moves.map(\.from))
            return finish(.failed, failure(.write, "\(error); temporary files removed, live files untouched"))
        }

        // Activate: rename over the live paths (in plan order: a file that switches a set goes last),
        // then remove what must no longer exist.
        log.begin(.activate)
        do {
            try await host.move(moves)
            try await host.removeFiles(removals)
            log.end(.ok, "renamed \(moves.count) files into place" + (removals.isEmpty ? "" : ", removed \(removals.joined(separator: ", "))"))
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

        // Reload, or hot update through the vendor's runtime API.
        if let hotUpdate = plan.hotUpdate {
            log.begin(.reload)
            let files = Dictionary(plan.files.map { ($0.path, $0.contents) }, uniquingKeysWith: { $1 })
            switch await runRuntimeCommands(hotUpdate.commands(files, Set(touched)), hotUpdate, on: host) {
            case .success(let detail):
                log.end(.ok, "hot update through the runtime API at \(hotUpdate.host):\(hotUpdate.port): \(detail)")
            case .failure(let problem):
                _ = await runRuntimeCommands(hotUpdate.abort, hotUpdate, on: host)
                log.end(.failed, problem.message + "; update aborted")
                return await rollBack(host, after: failure(.reload, problem.message), reload: false)
            }
        } else if let reload = plan.reloadCommand {
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
                return await rollBack(host, after: failure(.verify, mismatch.message), reload: plan.reloadCommand != nil || plan.hotUpdate != nil)
            }
        } else {
            log.skip(.verify, "no verify endpoint configured")
        }

        await cleanUp(host)
        return finish(.succeeded, nil)
    }

    /// For content-named staples: when the planned staple is not on the target but a fresh one for this leaf
    /// is (under its own name), plans again with that one, so nothing changes while it is fresh.
    private mutating func keepStapleFromHistory(_ host: any RemoteHost) async throws -> Bool {
        guard let history = plan.stapleHistory, let planned = plan.files.first(where: { $0.role == .staple }),
              try await host.readFile(at: planned.path) == nil else { return false }
        var newest: OCSPStaple?
        for entry in try await host.listDirectory(history.directory) where entry.name.hasPrefix(history.prefix) {
            let path = RemotePath.join(history.directory, entry.name)
            guard path != planned.path, let file = try await host.readFile(at: path),
                  file.mode == planned.mode, let fresh = freshStaple(file.contents) else { continue }
            if newest.map({ fresh.thisUpdate > $0.thisUpdate }) ?? true { newest = fresh }
        }
        guard let newest else { return false }
        var context = request.context
        context.staple = newest
        context.stapleLookedUp = true
        guard let replanned = try? request.connector.plan(for: request.bundle, context: context) else { return false }
        plan = replanned
        staple = newest
        return true
    }

    /// The staple `der` when it is good for this leaf and not yet halfway to its nextUpdate.
    /// With a staple supplied by the caller, the target's staple is kept only when it is at least as new.
    func freshStaple(_ der: [UInt8]) -> OCSPStaple? {
        guard let issuer = request.bundle.issuerDER,
              let current = try? OCSPStaple.check(der: der, leafDER: request.bundle.leafDER, issuerDER: issuer),
              current.problem(at: request.options.now()) == nil else { return nil }
        if let supplied = request.options.staple {
            return current.thisUpdate >= supplied.thisUpdate ? current : nil
        }
        guard let nextUpdate = current.nextUpdate else { return nil }
        let halfLife = current.thisUpdate.addingTimeInterval(nextUpdate.timeIntervalSince(current.thisUpdate) / 2)
        return request.options.now() < halfLife ? current : nil
    }

    private func runRuntimeCommands(_ commands: [RuntimeCommand], _ hotUpdate: HotUpdatePlan, on host: any RemoteHost) async -> Result<String, VerifyMismatch> {
        var done: [String] = []
        for command in commands {
            do {
                let answer = try await host.exchange(host: hotUpdate.host, port: hotUpdate.port, payload: Array(command.payload.utf8), timeout: .seconds(15))
                let text = String(decoding: answer, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard command.successMarkers.contains(where: { text.contains($0) }) else {
                    return .failure(VerifyMismatch(message: "runtime API refused `\(command.summary)`: \(log.redactor.redact(String(text.prefix(300))))"))
                }
                done.append(command.summary)
            } catch {
                return .failure(VerifyMismatch(message: "runtime API `\(command.summary)` failed: \(error)"))
            }
        }
        return .success(done.joined(separator: "; "))
    }

    private func runCommand(_ command: RemoteCommand, on host: any RemoteHost) async -> Result<CommandResult, any Error> {
        do {
            return .success(try await host.run(command.argv, timeout: command.timeout))
        } catch {
            return .failure(error)
        }
    }

    func verify(_ endpoint: VerifyEndpoint) async -> Result<String, VerifyMismatch> {
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
                    // A staple-file target must staple what we deployed (checked, not just present).
                    if plan.stapling.mode == .stapleFile, let staple, let issuer = request.bundle.issuerDER {
                        // Not yet: retried below like any other mismatch, until the deadline.
                        guard let served = seen.stapleDER else {
                            throw VerifyMismatch(message: "the new leaf is served without an OCSP staple")
                        }
                        let servedStaple = try OCSPStaple.check(der: served, leafDER: request.bundle.leafDER, issuerDER: issuer)
                        if servedStaple.status != .good || servedStaple.thisUpdate < staple.thisUpdate {
                            throw VerifyMismatch(message: "the served staple is \(servedStaple.summary), not the one deployed")
                        }
                    }
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
            } catch let mismatch as VerifyMismatch {
                matches = 0
                lastProblem = mismatch.message
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


    /// Puts every touched path back to what it held before (or removes it if it did not exist), then
    /// re-activates when the vendor had already picked up the new files.
    private mutating func rollBack(_ host: any RemoteHost, after cause: DeployFailure, reload: Bool) async -> DeploymentResult {
        log.begin(.rollback)
        var problems: [String] = []
        var restoreMoves: [FileMove] = []
        var toRemove: [String] = []
        for path in touched {
            guard let old = previous[path] else { continue }
            if let old {
                let temporary = "\(path).certdeploy-tmp.\(Self.randomSuffix())"
                do {
                    try await host.writeFile(at: temporary, contents: old.contents, mode: old.mode,
                                             owner: old.ownerID.map(String.init), group: old.groupID.map(String.init))
                    restoreMoves.append(FileMove(from: temporary, to: path))
                } catch {
                    problems.append("\(path): could not write its previous contents (\(error))")
                }
            } else {
                toRemove.append(path)
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
        var reactivated = ""
        if reload, let hotUpdate = plan.hotUpdate, plan.files.allSatisfy({ previous[$0.path].flatMap { $0 } != nil }) {
            // The runtime serves the new set: push the old one back the same way.
            let oldFiles = Dictionary(plan.files.compactMap { file in previous[file.path].flatMap { $0 }.map { (file.path, $0.contents) } }, uniquingKeysWith: { $1 })
            switch await runRuntimeCommands(hotUpdate.commands(oldFiles, Set(touched)), hotUpdate, on: host) {
            case .success: reactivated = " and pushed the previous certificate through the runtime API"
            case .failure(let problem): problems.append("hot update back to the previous certificate failed: \(problem.message)")
            }
        } else if reload, let command = plan.reloadCommand {
            switch await runCommand(command, on: host) {
            case .success(let result) where result.exitStatus == 0: reactivated = " and reloaded"
            case .success(let result): problems.append("reload after restore (`\(command)`) exited \(result.exitStatus): \(result.outputTail(limit: 512))")
            case .failure(let error): problems.append("reload after restore (`\(command)`) failed: \(error)")
            }
        }
        let restored = restoreMoves.map(\.to) + toRemove
        if problems.isEmpty {
            log.end(.ok, "restored \(restored.joined(separator: ", "))" + reactivated)
            return finish(.rolledBack, cause)
        }
        attention = problems + backups.map { "backup: \($0)" }
        log.end(.failed, problems.joined(separator: "; "))
        return finish(.rollbackFailed, cause)
    }

    /// Prunes old backups (keeping `backupRetention` per file) and old generations named by the plan's rules.
    private mutating func cleanUp(_ host: any RemoteHost) async {
        var rules = plan.retention
        for path in touched where previous[path].flatMap({ $0 }) != nil {
            // Backups are never the live generation, so keeping N of them means a rule of N + 1.
            rules.append(RetentionRule(directory: RemotePath.directory(of: path), prefix: RemotePath.basename(of: path) + ".certdeploy-bak.",
                                       keep: max(request.options.backupRetention, 1) + 1))
        }
        guard !rules.isEmpty else { return }
        log.begin(.cleanup)
        let planned = Set(plan.files.map(\.path))
        var removed: [String] = []
        do {
            for rule in rules {
                let entries = try await host.listDirectory(rule.directory)
                    .filter { $0.name.hasPrefix(rule.prefix) }
                    .map { (path: RemotePath.join(rule.directory, $0.name), modified: $0.modified) }
                    .filter { !planned.contains($0.path) }
                    .sorted { ($0.modified, $0.path) > ($1.modified, $1.path) }
                // `keep` counts the live generation, which the plan writes and the filter above left out.
                let excess = entries.dropFirst(max(rule.keep - 1, 0)).map(\.path)
                try await host.removeFiles(excess)
                removed += excess
            }
            log.end(.ok, removed.isEmpty ? "nothing to prune (keeping \(request.options.backupRetention) backups per file)" : "pruned \(removed.count) old files: \(removed.joined(separator: ", "))")
        } catch {
            log.end(.warning, "could not prune old files: \(error)")
        }
    }

    func finish(_ outcome: DeploymentOutcome, _ failure: DeployFailure?) -> DeploymentResult {
        DeploymentResult(
            targetID: target, outcome: outcome, steps: log.steps, failure: failure, attention: attention,
            certificateSHA256: request.bundle.leafSHA256, backups: backups, stapling: plan.stapling, snippets: plan.snippets, staple: staple,
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

struct VerifyMismatch: Error {
    var message: String
}
