import Foundation

extension DeployEngine {
    /// Deploys to a cluster: the connector's plan names a Secret (``DeploymentPlan/secret``), written through
    /// `connect`'s ``ClusterConnection`` with optimistic concurrency. Never throws (failures are in the result).
    ///
    /// Preflight, the OCSP staple, planning, the target lock, the step record and verify-by-handshake are the
    /// same as for file targets; only the apply stage differs:
    /// - compare: read the Secret; refuse another type (a Secret's type is immutable); `unchanged`, with no
    ///   write, when our keys, labels and annotations already match;
    /// - write: create it, or replace it naming the resourceVersion we read. On 409 Conflict re-read: when
    ///   only metadata changed (another controller's label), retry on the new version (3 times at most);
    ///   when another writer changed the data, fail rather than clobber it;
    /// - reload: restart the configured rollouts;
    /// - verify: read the Secret back (SHA-256 of every key written), wait for the rollouts, then the optional
    ///   TLS handshake;
    /// - rollback: write the previous data, labels and annotations back naming the resourceVersion we wrote
    ///   (or delete the Secret if it did not exist), so a concurrent writer is never overwritten there either.
    public func deploy(
        _ request: DeployRequest,
        cluster connect: @Sendable () async throws -> any ClusterConnection,
        observe: (@Sendable (StepRecord) -> Void)? = nil
    ) async -> DeploymentResult {
        var run = DeployRun(request: request, observer: observe, engine: self)
        if let failure = await run.prepare() {
            return run.finish(.failed, failure)
        }
        guard let secret = run.plan.secret else {
            return run.finish(.failed, run.failure(.plan, "connector \(request.connector.descriptor.id) plans files, not a cluster Secret; deploy it over its own transport"))
        }
        run.log.begin(.lock)
        await locks.acquire(request.targetID)
        run.log.end(.ok, "holding the deploy lock for target \(request.targetID)")
        var cluster = ClusterDeployRun(run: run, secret: secret)
        let result = await cluster.apply(connect: connect)
        await locks.release(request.targetID)
        return result
    }
}

/// The cluster half of one deploy: the shared ``DeployRun`` plus what a rollback needs.
struct ClusterDeployRun {
    var run: DeployRun
    let secret: SecretPlan
    /// The Secret before our write; nil when it did not exist (then a rollback deletes it).
    var previous: ClusterSecret?
    /// The Secret as our write left it: a rollback names its resourceVersion.
    var written: ClusterSecret?
    var restarted: [RolloutTarget] = []

    /// At most this many re-reads after a 409 before the write gives up.
    static let conflictRetries = 3

    init(run: DeployRun, secret: SecretPlan) {
        self.run = run
        self.secret = secret
    }

    private var object: String { secret.objectDescription }

    mutating func apply(connect: @Sendable () async throws -> any ClusterConnection) async -> DeploymentResult {
        run.log.begin(.connect)
        let connection: any ClusterConnection
        do {
            connection = try await connect()
            run.connections += 1
            run.log.end(.ok, "connected to \(connection.endpointDescription); \(connection.connectionDetail)")
        } catch {
            run.log.end(.failed, "\(error)")
            return run.finish(.failed, run.failure(.connect, "\(error)"))
        }
        let result = await applyConnected(connection)
        await connection.close()
        return result
    }

    private mutating func applyConnected(_ cluster: any ClusterConnection) async -> DeploymentResult {
        // Compare.
        run.log.begin(.compare)
        let current: ClusterSecret?
        do {
            current = try await cluster.getSecret(namespace: secret.namespace, name: secret.name)
        } catch {
            run.log.end(.failed, "\(error)")
            return run.finish(.failed, run.failure(.compare, "cannot read \(object): \(error)"))
        }
        if let current, current.type != secret.type {
            let message = "\(object) exists with type \(current.type); a Secret's type is immutable, so certdeploy will not replace it with a \(secret.type) Secret. Delete it or choose another secretName"
            run.log.end(.failed, message)
            return run.finish(.failed, run.failure(.compare, message))
        }
        previous = current
        if let current {
            let stapleKey = secret.stapleKey
            let keepFresh: (String, [UInt8]) -> Bool = { [run] key, bytes in key == stapleKey && run.freshStaple(bytes) != nil }
            let strict = secret.differences(from: current)
            let differences = secret.differences(from: current, keep: keepFresh)
            if differences.isEmpty, !run.request.options.force {
                let stapleNote = strict.isEmpty ? "" : "; the staple in the Secret is still fresh and is kept"
                run.log.end(.ok, "\(object) (resourceVersion \(current.resourceVersion)) already holds this certificate (tls.crt SHA-256 \(digest("tls.crt").prefix(16))…) with our labels and annotations; nothing to write" + stapleNote)
                return run.finish(.unchanged, nil)
            }
            run.log.end(.ok, run.request.options.force && differences.isEmpty
                ? "forced: rewriting \(object) (resourceVersion \(current.resourceVersion))"
                : "\(object) at resourceVersion \(current.resourceVersion) differs: \(differences.joined(separator: ", "))")
        } else {
            run.log.end(.ok, "\(object) does not exist; it will be created")
        }

        if run.request.options.dryRun {
            run.dryRun = true
            run.log.skip(.write, "dry run: would \(current == nil ? "create" : "replace") \(object) with keys \(secret.data.keys.sorted().joined(separator: ", "))"
                + (secret.rollouts.isEmpty ? "" : "; restart \(secret.rollouts.map(\.description).joined(separator: ", "))"))
            return run.finish(.succeeded, nil)
        }
        if let current {
            run.log.skip(.backup, "the previous data of \(object) (resourceVersion \(current.resourceVersion), keys \(current.data.keys.sorted().joined(separator: ", "))) is kept for rollback")
        } else {
            run.log.skip(.backup, "nothing to back up: \(object) does not exist (a rollback deletes it)")
        }

        // Write, with optimistic concurrency.
        run.log.begin(.write)
        switch await write(cluster) {
        case .success(let detail):
            run.log.end(.ok, detail)
        case .failure(let problem):
            run.log.end(.failed, problem.message)
            return run.finish(.failed, run.failure(.write, problem.message + "; nothing was changed"))
        }

        // Reload: restart the workloads that use the Secret.
        if secret.rollouts.isEmpty {
            run.log.skip(.reload, "no rollouts configured: pods that mount \(object) see the new data when the kubelet syncs it")
        } else {
            run.log.begin(.reload)
            let stamp = Self.timestamp(run.request.options.now())
            for target in secret.rollouts {
                do {
                    try await cluster.restartRollout(target, namespace: secret.namespace, stamp: stamp)
                    restarted.append(target)
                } catch {
                    run.log.end(.failed, "restarting \(target): \(error)")
                    return await rollBack(cluster, after: run.failure(.reload, "restarting \(target): \(error)"))
                }
            }
            run.log.end(.ok, "restarted \(restarted.map(\.description).joined(separator: ", ")) (pod template annotation \(Self.restartAnnotation)=\(stamp))")
        }

        // Verify: the Secret holds our bytes, the rollouts finish, and (optionally) the endpoint serves the leaf.
        run.log.begin(.verify)
        switch await verify(cluster) {
        case .success(let detail):
            run.log.end(.ok, detail)
        case .failure(let mismatch):
            run.log.end(.failed, mismatch.message)
            return await rollBack(cluster, after: run.failure(.verify, mismatch.message))
        }
        return run.finish(.succeeded, nil)
    }

    /// Creates or replaces the Secret; on 409 re-reads and retries only when nobody else changed its data.
    private mutating func write(_ cluster: any ClusterConnection) async -> Result<String, VerifyMismatch> {
        var base = previous
        var notes: [String] = []
        var attempt = 0
        while true {
            attempt += 1
            let desired = secret.applied(to: base)
            do {
                let stored: ClusterSecret
                if let base {
                    stored = try await cluster.replaceSecret(desired, resourceVersion: base.resourceVersion)
                } else {
                    stored = try await cluster.createSecret(desired)
                }
                written = stored
                let verb = base == nil ? "created" : "replaced"
                let versions = base.map { "resourceVersion \($0.resourceVersion) → \(stored.resourceVersion)" } ?? "resourceVersion \(stored.resourceVersion)"
                return .success("\(verb) \(object) (\(versions)); keys \(secret.data.keys.sorted().joined(separator: ", "))"
                    + (notes.isEmpty ? "" : "; " + notes.joined(separator: "; ")))
            } catch let error as ClusterError where error.code == .conflict || error.code == .alreadyExists {
                guard attempt <= Self.conflictRetries else {
                    return .failure(VerifyMismatch(message: "\(object) kept changing under certdeploy: still 409 after \(Self.conflictRetries) re-reads (\(error.message))"))
                }
                let fresh: ClusterSecret?
                do {
                    fresh = try await cluster.getSecret(namespace: secret.namespace, name: secret.name)
                } catch {
                    return .failure(VerifyMismatch(message: "the write was refused (\(error)) and re-reading \(object) failed: \(error)"))
                }
                let readVersion = base?.resourceVersion ?? "none: it did not exist"
                guard let fresh else {
                    return .failure(VerifyMismatch(message: "\(object) was deleted by another writer after certdeploy read it (resourceVersion \(readVersion)); not recreating it behind their back"))
                }
                if fresh.type != secret.type {
                    return .failure(VerifyMismatch(message: "\(object) was recreated by another writer with type \(fresh.type); a Secret's type is immutable"))
                }
                if secret.isSatisfied(by: fresh) {
                    // Our earlier attempt landed (its answer was lost), or another deploy wrote the same certificate.
                    written = fresh
                    return .success("\(object) already holds this deploy's data at resourceVersion \(fresh.resourceVersion) (\(error.code.rawValue) on write, then re-read)")
                }
                if let stale = base, fresh.data == stale.data {
                    // Only metadata changed (another controller's label or annotation): keep theirs, retry on the new version.
                    notes.append("resourceVersion \(stale.resourceVersion) was stale (409 Conflict); re-read \(fresh.resourceVersion): only metadata changed, so the write was retried on it, keeping the other writer's labels and annotations")
                    previous = fresh
                    base = fresh
                    continue
                }
                let changed = Set(fresh.data.keys).union(base.map { Array($0.data.keys) } ?? []).filter { fresh.data[$0] != base?.data[$0] }.sorted()
                return .failure(VerifyMismatch(message: "\(object) changed under certdeploy: another writer changed data keys \(changed.joined(separator: ", ")) between certdeploy's read (resourceVersion \(readVersion)) and its write (now resourceVersion \(fresh.resourceVersion)); certdeploy does not overwrite a concurrent writer's data. Deploy again once the other writer is done"))
            } catch {
                return .failure(VerifyMismatch(message: "\(error)"))
            }
        }
    }

    private mutating func verify(_ cluster: any ClusterConnection) async -> Result<String, VerifyMismatch> {
        var details: [String] = []
        // Read back.
        do {
            guard let stored = try await cluster.getSecret(namespace: secret.namespace, name: secret.name) else {
                return .failure(VerifyMismatch(message: "\(object) is gone right after the write"))
            }
            for key in secret.data.keys.sorted() {
                let seen = stored.data[key].map { Checksum.sha256Hex($0) } ?? "missing"
                if seen != digest(key) {
                    return .failure(VerifyMismatch(message: "\(object) read back: \(key) SHA-256 is \(seen.prefix(16))…, expected \(digest(key).prefix(16))…"))
                }
            }
            details.append("\(object) read back at resourceVersion \(stored.resourceVersion): tls.crt SHA-256 \(digest("tls.crt").prefix(16))… as written")
        } catch {
            return .failure(VerifyMismatch(message: "cannot read \(object) back: \(error)"))
        }

        // Rollouts, all within one deadline.
        if !restarted.isEmpty {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: secret.rolloutTimeout)
            for target in restarted {
                var delay = Duration.milliseconds(100)
                var last = "no status read yet"
                while true {
                    do {
                        let progress = try await cluster.rolloutStatus(target, namespace: secret.namespace)
                        last = progress.description
                        if progress.isComplete {
                            details.append("\(target) rolled out (\(progress.updatedReplicas)/\(progress.replicas) updated and available)")
                            break
                        }
                        if let failure = progress.failure {
                            return .failure(VerifyMismatch(message: "\(target) rollout failed: \(failure) (\(last))"))
                        }
                    } catch {
                        last = "\(error)"
                    }
                    if clock.now.advanced(by: delay) > deadline || Task.isCancelled {
                        return .failure(VerifyMismatch(message: "\(target) did not finish its rollout within \(secret.rolloutTimeout): \(last)"))
                    }
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(1))
                }
            }
        }

        // The endpoint serves the new leaf.
        if let endpoint = run.plan.verify {
            switch await run.verify(endpoint) {
            case .success(let detail): details.append(detail)
            case .failure(let mismatch): return .failure(mismatch)
            }
        }
        return .success(details.joined(separator: "; "))
    }

    /// Puts the previous data, labels and annotations back, naming the resourceVersion we wrote (or deletes the
    /// Secret we created); then restarts the rollouts again so pods run with what they had.
    private mutating func rollBack(_ cluster: any ClusterConnection, after cause: DeployFailure) async -> DeploymentResult {
        run.log.begin(.rollback)
        guard let written else {
            run.log.end(.ok, "nothing was written")
            return run.finish(.failed, cause)
        }
        var problems: [String] = []
        var done: String
        if let previous {
            var restore = written
            restore.type = previous.type
            restore.data = previous.data
            restore.labels = previous.labels
            restore.annotations = previous.annotations
            do {
                let stored = try await cluster.replaceSecret(restore, resourceVersion: written.resourceVersion)
                done = "restored the previous data, labels and annotations of \(object) (resourceVersion \(written.resourceVersion) → \(stored.resourceVersion))"
            } catch let error as ClusterError where error.code == .conflict {
                done = ""
                problems.append("\(object) changed after certdeploy wrote it (resourceVersion \(written.resourceVersion) is stale); its previous data was not restored so as not to overwrite the other writer: \(error.message)")
            } catch {
                done = ""
                problems.append("restoring \(object) failed: \(error)")
            }
        } else {
            do {
                try await cluster.deleteSecret(namespace: secret.namespace, name: secret.name, resourceVersion: written.resourceVersion)
                done = "deleted \(object), which did not exist before this deploy"
            } catch let error as ClusterError where error.code == .notFound {
                done = "\(object), which did not exist before this deploy, is already gone (\(error.message))"
            } catch let error as ClusterError where error.code == .conflict {
                done = ""
                problems.append("\(object) changed after certdeploy created it (resourceVersion \(written.resourceVersion) is stale); it was not deleted: \(error.message)")
            } catch {
                done = ""
                problems.append("deleting \(object), created by this deploy, failed: \(error)")
            }
        }
        if !restarted.isEmpty, problems.isEmpty {
            let stamp = Self.timestamp(run.request.options.now().addingTimeInterval(0.001))
            var again: [String] = []
            for target in restarted {
                do {
                    try await cluster.restartRollout(target, namespace: secret.namespace, stamp: stamp)
                    again.append(target.description)
                } catch {
                    problems.append("restarting \(target) after the restore failed: \(error)")
                }
            }
            if !again.isEmpty { done += "; restarted \(again.joined(separator: ", ")) again so their pods run with the restored data" }
        }
        if problems.isEmpty {
            run.log.end(.ok, done)
            return run.finish(.rolledBack, cause)
        }
        run.attention = problems + [previous.map { "\(object) held keys \($0.data.keys.sorted().joined(separator: ", ")) at resourceVersion \($0.resourceVersion) before this deploy; certdeploy wrote resourceVersion \(written.resourceVersion)" }
            ?? "\(object) did not exist before this deploy; certdeploy created it at resourceVersion \(written.resourceVersion)"]
        run.log.end(.failed, ([done].filter { !$0.isEmpty } + problems).joined(separator: "; "))
        return run.finish(.rollbackFailed, cause)
    }

    /// Lowercase hex SHA-256 of a planned key's bytes.
    private func digest(_ key: String) -> String {
        Checksum.sha256Hex(secret.data[key] ?? [])
    }

    static var restartAnnotation: String { RolloutTarget.restartAnnotation }

    /// RFC 3339 UTC with milliseconds: two restarts in one second still change the template.
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
