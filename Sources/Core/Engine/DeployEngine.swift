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
    /// The request as given, except that a root found in the trust anchors may be added to its bundle.
    var request: DeployRequest
    let engine: DeployEngine
    var log: StepLog
    var connections = 0
    /// What each planned path held before we touched it (nil: it did not exist).
    var previous: [String: RemoteFile?] = [:]
    var backups: [String] = []
    /// Live path → its backup on the target, which a rollback renames back.
    var backupOf: [String: String] = [:]
    /// Where this deploy's in-flight marker lives (see ``InflightMarker``).
    var markerPath: String?
    /// Whether the verify endpoint completed a handshake during this deploy's verify (nil: not asked yet).
    var endpointAnswered: Bool?
    /// Why the activation runs although no file changed (an interrupted attempt, a target serving another leaf).
    var reactivation: String?
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
        var draft: DeploymentPlan
        do {
            draft = try request.connector.plan(for: request.bundle, context: request.context)
        } catch {
            log.end(.failed, "\(error)")
            return failure(.preflight, "the connector cannot plan this deploy: \(error)")
        }
        if draft.stapling.mode == .vendorFetched, request.bundle.rootPEM == nil {
            // A vendor that fetches staples verifies them up to a root (nginx `ssl_stapling_verify`): without one it
            // never staples. Find the root where a client would: the target's verify anchors, or the system store.
            let anchors = draft.verify?.trustAnchorsPEM
            if let der = ClientChecks.trustAnchor(issuing: request.bundle.topOfChainDER, trustAnchorsPEM: anchors),
               let root = CertificateBundle.rootPEM(der: der, issuing: request.bundle) {
                request.context.trustedRoot = TrustedRoot(pem: root, source: anchors == nil ? "the system trust store" : "verify.caBundle")
                if let replanned = try? request.connector.plan(for: request.bundle, context: request.context) { draft = replanned }
            }
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
        var interrupted: InflightMarker?
        do {
            keptStaple = try await keepStapleFromHistory(host)
            markerPath = InflightMarker.path(for: plan, targetID: target)
            if let markerPath, let file = try await host.readFile(at: markerPath) {
                interrupted = InflightMarker.decode(file.contents)
                    ?? InflightMarker(targetID: target, holder: "unknown", certificateSHA256: "?", startedAt: .distantPast, entries: [], temporaries: [])
            }
            if let interrupted, !request.options.resumingInterruptedAttempt, interrupted.mayBeRunning(now: request.options.now()) {
                // Not interrupted: another deploy of this target is running now (another certdeploy process or server).
                let message = "another deploy of this target is in progress (\(interrupted.holder), started \(interrupted.startedAt.iso8601MillisecondsText), "
                    + "certificate \(interrupted.certificateSHA256.prefix(16))…); nothing was changed. If that deploy was killed on another machine, "
                    + "deploy again after \(interrupted.startedAt.addingTimeInterval(InflightMarker.presumedAliveFor).iso8601MillisecondsText) or remove \(markerPath ?? "the marker")"
                log.end(.failed, message)
                return finish(.failed, failure(.compare, message))
            }

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
            if let interrupted { try await adopt(interrupted, host) }
        } catch {
            log.end(.failed, "\(error)")
            return finish(.failed, failure(.compare, "cannot read current files: \(error)"))
        }
        if request.options.force { changed = plan.files }
        let stapleNote = keptStaple ? "; the staple on the target is still fresh and is kept" : ""
        var differences = changed.map(\.path)
        differences += removals.map { "\($0) (to remove)" }
        var compareDetail = request.options.force
            ? "forced: rewriting all \(plan.files.count) files"
            : differences.isEmpty ? "all \(plan.files.count) files already match (SHA-256 and mode)"
            : "\(differences.count) of \(plan.files.count + plan.removals.count) paths differ: \(differences.joined(separator: ", "))"
        compareDetail += stapleNote

        // Files that match are not proof that they are served: an interrupted attempt may have renamed them into
        // place and never reloaded. Then, and whenever the target does not serve the planned leaf, activate anyway.
        var reason: String?
        if let interrupted {
            reason = "resuming an interrupted attempt (a deploy of \(interrupted.certificateSHA256.prefix(16))… started "
                + "\(interrupted.startedAt.iso8601MillisecondsText) did not finish): validating, reloading and verifying whatever the files hold"
        } else if request.options.resumingInterruptedAttempt {
            reason = "resuming an interrupted attempt (its worker stopped before it ended): validating, reloading and verifying whatever the files hold"
        }
        if changed.isEmpty, removals.isEmpty, reason == nil {
            guard let endpoint = plan.verify else {
                log.end(.ok, compareDetail + "; nothing to write, no reload")
                log.skip(.verify, "unchanged (not verified: verify is off)")
                return finish(.unchanged, nil)
            }
            log.end(.ok, compareDetail + "; checking that they are served")
            log.begin(.verify)
            switch await verify(endpoint, deadline: min(endpoint.deadline, .seconds(3))) {
            case .success(let detail):
                log.end(.ok, detail + "; unchanged")
                return finish(.unchanged, nil)
            case .failure(let mismatch):
                let why = "files matched, but \(mismatch.served)"
                reason = why
                log.end(.warning, why + (request.options.dryRun ? "" : ": activating again"))
            }
        } else {
            log.end(.ok, compareDetail + (reason.map { "; " + $0 } ?? ""))
        }
        if let reason, changed.isEmpty, removals.isEmpty {
            // Nothing to write: the switch files (if the rename is the activation) are renamed again to re-trigger it.
            changed = plan.files.filter { plan.activation.switchPaths.contains($0.path) }
            reactivation = reason
        }
        touched = changed.map(\.path) + removals
        for entry in interrupted?.entries ?? [] where !touched.contains(entry.path) { touched.append(entry.path) }

        if request.options.dryRun {
            dryRun = true
            if let reactivation, changed.isEmpty {
                log.skip(.write, "dry run: nothing to write; would validate, reload and verify again (\(reactivation))")
                return finish(.succeeded, nil)
            }
            log.skip(.write, "dry run: would write \(changed.map(\.path).joined(separator: ", "))"
                + (removals.isEmpty ? "" : "; remove \(removals.joined(separator: ", "))")
                + (plan.validateCommand.map { "; validate with `\($0)`" } ?? "")
                + (plan.hotUpdate != nil ? "; activate through the runtime API" : plan.reloadCommand.map { "; reload with `\($0)`" } ?? ""))
            return finish(.succeeded, nil)
        }

        // Backup: hard links beside the live files (same inode: owner, group, mode and bytes kept without any
        // rights to set them); a rollback renames them back.
        if let failure = await backUp(host) { return failure }

        // Write: each changed file to a temp name in its own directory, with its final mode, fsynced. The in-flight
        // marker goes first, so a deploy cut off from here on is known to the next one.
        log.begin(.write)
        let moves = changed.map { FileMove(from: "\($0.path).certdeploy-tmp.\(Self.randomSuffix())", to: $0.path) }
        do {
            try await writeMarker(host, interrupted: interrupted, temporaries: moves.map(\.from))
            for (index, (file, move)) in zip(changed, moves).enumerated() {
                try await host.writeFile(at: move.from, contents: file.contents, mode: file.mode, owner: file.owner, group: file.group)
                if index == 0, moves.count > 1 { await FaultPoint.midWrite() }
            }
            FaultPoint.reached(.write)
            log.end(.ok, moves.isEmpty ? "nothing to write" : "wrote \(moves.count) temporary files (" + changed.map { "\($0.path) \($0.mode)" }.joined(separator: ", ") + ")")
        } catch {
            log.end(.failed, "\(error)")
            try? await host.removeFiles(moves.map(\.from))
            // Live files are untouched. A marker of an earlier interrupted attempt still speaks for them: keep it.
            if interrupted == nil, let markerPath { try? await host.removeFiles([markerPath] + backups) }
            return finish(.failed, failure(.write, "\(error); temporary files removed, live files untouched"))
        }

        // Activate: rename over the live paths (in plan order), then remove what must no longer exist. Where the
        // rename of a switch file is the activation, those wait until validate has passed.
        let switching = plan.activation.switchPaths
        let staged = moves.filter { !switching.contains($0.to) }
        let switches = moves.filter { switching.contains($0.to) }
        log.begin(.activate)
        do {
            try await host.move(staged)
            try await host.removeFiles(removals)
            FaultPoint.reached(.activate)
            log.end(.ok, (staged.isEmpty ? "no files to rename" : "renamed \(staged.count) files into place")
                + (removals.isEmpty ? "" : ", removed \(removals.joined(separator: ", "))")
                + (switches.isEmpty ? "" : "; \(switches.map(\.to).joined(separator: ", ")) held back until the config check passes"))
        } catch {
            log.end(.failed, "\(error)")
            try? await host.removeFiles(moves.map(\.from))
            return await rollBack(host, after: failure(.activate, "\(error)"), reload: false)
        }

        // Validate: the vendor's own config check, before anything is reloaded.
        if let validate = plan.validateCommand {
            log.begin(.validate, command: validate)
            let outcome = await runCommand(validate, on: host)
            FaultPoint.reached(.validate)
            switch outcome {
            case .success(let result) where result.exitStatus == 0:
                log.end(.ok, "config check passed", exitStatus: 0, output: result.outputTail())
            case .success(let result):
                log.end(.failed, result.exitSummary(limit: 200), exitStatus: result.exitStatus, output: result.outputTail())
                try? await host.removeFiles(switches.map(\.from))
                return await rollBack(host, after: failure(.validate, "`\(validate)` \(result.exitSummary())"), reload: false)
            case .failure(let error):
                log.end(.failed, "\(error)")
                try? await host.removeFiles(switches.map(\.from))
                return await rollBack(host, after: failure(.validate, "`\(validate)`: \(error)"), reload: false)
            }
        } else {
            log.skip(.validate, "connector has no validate command for this target")
        }

        // Reload: the switch rename, a hot update through the vendor's runtime API, or the reload command.
        if let failure = await activate(host, switches: switches) { return failure }
        FaultPoint.reached(.reload)

        // Verify: the served leaf must be ours.
        if let endpoint = plan.verify {
            log.begin(.verify)
            let outcome = await verify(endpoint)
            FaultPoint.reached(.verify)
            switch outcome {
            case .success(let detail):
                log.end(.ok, detail)
            case .failure(let mismatch):
                log.end(.failed, mismatch.message)
                endpointAnswered = mismatch.handshakeCompleted
                return await rollBack(host, after: failure(.verify, mismatch.message), reload: true)
            }
        } else {
            log.skip(.verify, "no verify endpoint configured")
        }

        if let markerPath { try? await host.removeFiles([markerPath]) }
        await cleanUp(host)
        return finish(.succeeded, nil)
    }

    /// Takes over what an interrupted attempt left: its temporary files are removed, and what each path held before
    /// that attempt (read from its backups) becomes what a rollback restores.
    private mutating func adopt(_ marker: InflightMarker, _ host: any RemoteHost) async throws {
        if !request.options.dryRun { try? await host.removeFiles(marker.temporaries) }
        for entry in marker.entries {
            guard let backup = entry.backup else {
                previous[entry.path] = .some(nil)
                continue
            }
            // A backup that is gone means the attempt never replaced that path: what is live is what was there.
            guard let file = try await host.readFile(at: backup) else { continue }
            previous[entry.path] = .some(file)
            backupOf[entry.path] = backup
            backups.append(backup)
        }
    }

    /// Hard-links each touched live file to a backup name; a copy (owner and group set as they were) where a link
    /// cannot be made.
    private mutating func backUp(_ host: any RemoteHost) async -> DeploymentResult? {
        let stamp = Self.backupStamp(request.options.now())
        let links = touched.compactMap { path -> FileMove? in
            guard backupOf[path] == nil, previous[path].flatMap({ $0 }) != nil else { return nil }
            return FileMove(from: path, to: "\(path).certdeploy-bak.\(stamp)")
        }
        guard !links.isEmpty else {
            log.skip(.backup, backupOf.isEmpty ? "no existing files to back up" : "the interrupted attempt's backups are kept: \(backups.joined(separator: ", "))")
            return nil
        }
        log.begin(.backup)
        var method = "hard links"
        do {
            do {
                try await host.link(links)
            } catch {
                method = "copies (hard links failed: \(error))"
                for link in links {
                    guard let file = previous[link.from].flatMap({ $0 }) else { continue }
                    try await host.writeFile(at: link.to, contents: file.contents, mode: file.mode,
                                             owner: file.ownerID.map(String.init), group: file.groupID.map(String.init))
                }
            }
        } catch {
            log.end(.failed, "\(error)")
            try? await host.removeFiles(links.map(\.to))
            return finish(.failed, failure(.backup, "cannot write backup: \(error)"))
        }
        for link in links { backupOf[link.from] = link.to }
        backups += links.map(\.to)
        log.end(.ok, "backed up as \(method): \(links.map(\.to).joined(separator: ", "))")
        return nil
    }

    /// Records the attempt on the target before anything live changes (see ``InflightMarker``).
    private func writeMarker(_ host: any RemoteHost, interrupted: InflightMarker?, temporaries: [String]) async throws {
        guard let markerPath else { return }
        let entries = touched.map { InflightMarker.Entry(path: $0, backup: backupOf[$0]) }
        let marker = InflightMarker(
            targetID: target, certificateSHA256: request.bundle.leafSHA256, startedAt: request.options.now(),
            entries: interrupted?.merged(with: entries) ?? entries, temporaries: temporaries)
        try await host.writeFile(at: markerPath, contents: marker.encoded(), mode: FileMode(0o600), owner: nil, group: nil)
    }

    /// The `reload` step: makes the vendor serve the files now in place.
    private mutating func activate(_ host: any RemoteHost, switches: [FileMove]) async -> DeploymentResult? {
        let why = reactivation.map { " (\($0))" } ?? ""
        if !switches.isEmpty {
            log.begin(.reload)
            do {
                try await host.move(switches)
                log.end(.ok, "switched \(switches.map(\.to).joined(separator: ", ")) into place: the vendor picks up the new set" + why)
            } catch {
                log.end(.failed, "\(error)")
                try? await host.removeFiles(switches.map(\.from))
                return await rollBack(host, after: failure(.reload, "\(error)"), reload: false)
            }
        } else if let hotUpdate = plan.hotUpdate {
            log.begin(.reload)
            let files = Dictionary(plan.files.map { ($0.path, $0.contents) }, uniquingKeysWith: { $1 })
            // Re-activating unchanged files sends all of them.
            let changedPaths = reactivation != nil && touched.isEmpty ? Set(plan.files.map(\.path)) : Set(touched)
            switch await runRuntimeCommands(hotUpdate.commands(files, changedPaths), hotUpdate, on: host) {
            case .success(let detail):
                log.end(.ok, "hot update through the runtime API at \(hotUpdate.host):\(hotUpdate.port): \(detail)" + why)
            case .failure(let problem):
                _ = await runRuntimeCommands(hotUpdate.abort, hotUpdate, on: host)
                log.end(.failed, problem.message + "; update aborted")
                return await rollBack(host, after: failure(.reload, problem.message), reload: false)
            }
        } else if let reload = plan.reloadCommand {
            log.begin(.reload, command: reload)
            switch await runCommand(reload, on: host) {
            case .success(let result) where result.exitStatus == 0:
                log.end(.ok, "reloaded" + why, exitStatus: 0, output: result.outputTail())
            case .success(let result):
                log.end(.failed, result.exitSummary(limit: 200), exitStatus: result.exitStatus, output: result.outputTail())
                return await rollBack(host, after: failure(.reload, "`\(reload)` \(result.exitSummary())"), reload: true)
            case .failure(let error):
                log.end(.failed, "\(error)")
                return await rollBack(host, after: failure(.reload, "`\(reload)`: \(error)"), reload: true)
            }
        } else {
            log.skip(.reload, "connector needs no reload for this target")
        }
        return nil
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

    /// Handshakes until `consecutiveMatches` in a row serve `expecting` (the new leaf by default) or `deadline`
    /// (the endpoint's own by default) passes. For the new leaf on a staple-file target, the served staple must be
    /// the deployed one.
    func verify(_ endpoint: VerifyEndpoint, expecting: String? = nil, deadline limit: Duration? = nil) async -> Result<String, VerifyMismatch> {
        let expected = expecting ?? request.bundle.leafSHA256
        let checkStaple = expecting == nil
        let clock = ContinuousClock()
        let window = limit ?? endpoint.deadline
        let deadline = clock.now.advanced(by: window)
        var delay = Duration.milliseconds(200)
        var matches = 0
        var attempts = 0
        var lastProblem = "no handshake completed"
        var stapled = false
        var clientChecks: String?
        var answered = false
        while true {
            attempts += 1
            do {
                let seen = try await engine.probe(endpoint, requestStaple: plan.stapling.willStaple)
                answered = true
                if seen.leafSHA256 == expected {
                    if checkStaple, endpoint.clientChecks, clientChecks == nil {
                        // Deterministic for this leaf and chain: a client that rejects it now always will.
                        let info = request.bundle.info
                        let problems = ClientChecks.problems(
                            leafDER: seen.leafDER, chainPEM: seen.chainPEM, serverName: endpoint.serverName, trustAnchorsPEM: endpoint.trustAnchorsPEM,
                            notBefore: info.notBefore, notAfter: info.notAfter, now: request.options.now())
                        guard problems.isEmpty else {
                            let phrase = "the new leaf is served, but a client would reject it: " + problems.joined(separator: "; ")
                            return .failure(VerifyMismatch(message: "\(endpoint.description): " + phrase, served: phrase))
                        }
                        clientChecks = "; a client's checks pass (chain to \(endpoint.trustAnchorsPEM == nil ? "the system trust store" : "verify.caBundle"), name\(endpoint.serverName.map { " " + $0 } ?? ""), validity)"
                    }
                    if checkStaple, let requirement = servedStapleRequirement, let issuer = request.bundle.issuerDER {
                        // Not yet: retried below like any other mismatch, until the deadline.
                        guard let served = seen.stapleDER else {
                            throw VerifyMismatch(message: "the new leaf is served without an OCSP staple (\(requirement))",
                                                 served: "the leaf was served without an OCSP staple, though \(requirement)")
                        }
                        let servedStaple = try OCSPStaple.check(der: served, leafDER: request.bundle.leafDER, issuerDER: issuer)
                        if servedStaple.status != .good || servedStaple.problem(at: request.options.now()) != nil {
                            throw VerifyMismatch(message: "the served staple is \(servedStaple.summary): not good and fresh",
                                                 served: "the served staple was \(servedStaple.summary): not good and fresh")
                        }
                        if plan.stapling.mode == .stapleFile, let staple, servedStaple.thisUpdate < staple.thisUpdate {
                            throw VerifyMismatch(message: "the served staple is \(servedStaple.summary), not the one deployed",
                                                 served: "the served staple was \(servedStaple.summary), not the one deployed")
                        }
                    }
                    matches += 1
                    stapled = stapled || seen.stapleDER != nil
                    if matches >= endpoint.consecutiveMatches {
                        var detail = "\(endpoint.description) serves the \(checkStaple ? "new" : "expected") leaf (SHA-256 \(expected.prefix(16))…) on \(matches) consecutive handshakes, \(seen.protocolVersion), \(attempts) attempts"
                        if checkStaple, servedStapleRequirement != nil {
                            detail += "; a good, fresh OCSP staple for this leaf is served"
                        } else if checkStaple, plan.stapling.willStaple {
                            detail += stapled ? "; OCSP staple seen" : "; no OCSP staple yet (the vendor fetches it lazily)"
                        }
                        return .success(detail + (clientChecks ?? ""))
                    }
                    try? await Task.sleep(for: .milliseconds(100))
                    continue
                }
                matches = 0
                lastProblem = "the served leaf was SHA-256 \(seen.leafSHA256.prefix(16))…, not \(expected.prefix(16))…"
            } catch let mismatch as VerifyMismatch {
                matches = 0
                lastProblem = mismatch.served
            } catch {
                matches = 0
                lastProblem = "no handshake completed (\(error))"
            }
            if clock.now.advanced(by: delay) > deadline || Task.isCancelled {
                return .failure(VerifyMismatch(message: "\(endpoint.description) did not serve the \(checkStaple ? "new" : "expected") leaf within \(window) (\(attempts) attempts): \(lastProblem)",
                                               served: lastProblem, handshakeCompleted: answered))
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }


    /// Why clients must get a staple with the new leaf, when they must: a Must-Staple leaf on a stapling target, or a
    /// target that staples when the responder gave a good answer at deploy time (so the vendor can fetch one too).
    var servedStapleRequirement: String? {
        guard plan.stapling.willStaple else { return nil }
        if request.bundle.info.mustStaple { return "the leaf is Must-Staple" }
        if plan.stapling.mode == .stapleFile, staple != nil { return "certdeploy deployed a staple" }
        if plan.stapling.mode == .vendorFetched, staple != nil { return "the target staples and the responder answers" }
        return nil
    }

    /// Puts every touched path back to what it held before (renaming its backup back, or removing it if it did not
    /// exist), re-activates when the vendor had already picked up the new files, and then checks that the target
    /// serves the previous leaf again: a daemon that the rollback finds dead is a failed rollback, not "reloaded".
    private mutating func rollBack(_ host: any RemoteHost, after cause: DeployFailure, reload: Bool) async -> DeploymentResult {
        guard !touched.isEmpty else {
            // Activated again over files that already matched: there is no earlier state to go back to.
            log.skip(.rollback, "nothing to restore: this deploy changed no file (the files on the target were already the planned ones)")
            if let markerPath { try? await host.removeFiles([markerPath]) }
            return finish(.failed, cause)
        }
        log.begin(.rollback)
        var problems: [String] = []
        var restoreMoves: [FileMove] = []
        var toRemove: [String] = []
        // A second link to each backup, renamed over the live path: atomic, and the backup stays for the operator.
        var relinks: [FileMove] = []
        var relinkedMoves: [FileMove] = []
        for path in touched {
            guard let old = previous[path] else { continue }
            if let backup = backupOf[path] {
                let temporary = "\(path).certdeploy-tmp.\(Self.randomSuffix())"
                relinks.append(FileMove(from: backup, to: temporary))
                relinkedMoves.append(FileMove(from: temporary, to: path))
            } else if let old {
                // No backup on the target (nothing was linked yet): write what was read.
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
            try await host.link(relinks)
            restoreMoves += relinkedMoves
        } catch {
            problems.append("could not link the backups \(relinks.map(\.from).joined(separator: ", ")) for the restore (\(error))")
            try? await host.removeFiles(relinks.map(\.to))
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
            switch await runRuntimeCommands(hotUpdate.commands(oldFiles, Set(plan.files.map(\.path))), hotUpdate, on: host) {
            case .success: reactivated = " and pushed the previous certificate through the runtime API"
            case .failure(let problem): problems.append("hot update back to the previous certificate failed: \(problem.message)")
            }
        } else if reload, let command = plan.reloadCommand {
            switch await runCommand(command, on: host) {
            case .success(let result) where result.exitStatus == 0: reactivated = " and reloaded"
            case .success(let result): problems.append("reload after restore (`\(command)`) \(result.exitSummary())")
            case .failure(let error): problems.append("reload after restore (`\(command)`) failed: \(error)")
            }
        }
        var served = ""
        var unansweredAfterRollback = false
        if reload, problems.isEmpty, let endpoint = plan.verify, let previousLeaf = previousLeafSHA256() {
            // A daemon that the rollback's reload left dead is an outage, not a rollback: say so.
            switch await verify(endpoint, expecting: previousLeaf) {
            case .success: served = "; \(endpoint.description) serves the previous leaf (SHA-256 \(previousLeaf.prefix(16))…) again"
            case .failure(let mismatch) where mismatch.handshakeCompleted:
                served = "; \(endpoint.description) answers, but \(mismatch.served)"
            case .failure(let mismatch) where endpointAnswered != false:
                problems.append("after the rollback \(endpoint.description) does not answer: \(mismatch.served)")
            case .failure(let mismatch):
                // It did not answer during verify either: nothing says this deploy stopped it, but nobody is served.
                served = "; \(endpoint.description) does not answer, as during verify (\(mismatch.served)): check the service and the verify endpoint"
                unansweredAfterRollback = true
            }
        }
        let restored = restoreMoves.map(\.to) + toRemove
        if problems.isEmpty {
            if let markerPath { try? await host.removeFiles([markerPath]) }
            log.end(unansweredAfterRollback ? .warning : .ok, "restored \(restored.joined(separator: ", "))" + reactivated + served)
            return finish(.rolledBack, cause)
        }
        // The marker stays: the next deploy then knows this one did not end cleanly.
        attention = problems + backups.map { "backup: \($0)" }
        log.end(.failed, (restored.isEmpty ? "" : "restored \(restored.joined(separator: ", "))" + reactivated + "; ") + problems.joined(separator: "; "))
        return finish(.rollbackFailed, cause)
    }

    /// The SHA-256 of the leaf the target's certificate file held before this deploy, when it had one.
    private func previousLeafSHA256() -> String? {
        let roles: [PlannedFile.Role] = [.certificate, .fullChain, .combined]
        for role in roles {
            guard let file = plan.files.first(where: { $0.role == role }), let old = previous[file.path].flatMap({ $0 }) else { continue }
            if let der = PEMScanner.firstCertificateDER(in: old.contents) { return Checksum.sha256Hex(Data(der)) }
        }
        return nil
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
        // One listing per directory, however many files of the plan live there (a certificate and its key usually share one).
        var listings: [String: [RemoteDirectoryEntry]] = [:]
        do {
            for rule in rules {
                if listings[rule.directory] == nil { listings[rule.directory] = try await host.listDirectory(rule.directory) }
                let entries = (listings[rule.directory] ?? [])
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
    /// What the target served instead, as a phrase ("the served leaf was …").
    var served: String
    /// Whether any handshake completed (the daemon answers, with the wrong leaf or staple).
    var handshakeCompleted: Bool

    init(message: String, served: String? = nil, handshakeCompleted: Bool = true) {
        self.message = message
        self.served = served ?? message
        self.handshakeCompleted = handshakeCompleted
    }
}
