import CertdeployAPI
import Core
import Foundation
import KubernetesClient
import Logging
import NIOConcurrencyHelpers
import SSHTransport
import ServiceLifecycle
import Store

/// Runs queued deployments: claims them from the store under a lease, runs the engine, heartbeats progress (which
/// the SSE streams read), and records how each ended. Several replicas share one PostgreSQL queue; the store makes
/// sure one target never has two running deployments.
///
/// Retries: a deploy that could not connect (nothing was changed) goes back to the queue with exponential backoff,
/// up to `maxConnectAttempts`; any other failure (validate, reload, verify, rollback) is final.
///
/// Graceful shutdown (SIGTERM): stops claiming, lets the running deployments finish (the engine completes or rolls
/// back; it is never cut off half-way), records them, then returns.
public final class DeploymentWorker: Service, Sendable {
    let store: any Store
    let codec: TargetCodec
    let configuration: ServerConfiguration
    let events: DeploymentEvents
    let metrics: ServerMetrics
    let engine: DeployEngine
    let logger: Logger
    let now: @Sendable () -> Date
    /// Notified (key 0) after every deployment this worker finishes: the rollout driver looks at its rollouts then.
    let rolloutWakeups: ChangeNotifier<Int>?
    /// Key 0 changes on every local enqueue, finished deployment and shutdown request.
    private let wakeups = ChangeNotifier<Int>()
    private let state = NIOLockedValueBox(State())
    /// Who holds this process's leases: the worker id (stable across restarts) and this boot's id, so a restarted
    /// replica can tell its own dead leases from a live replica's.
    let leaseOwner: String

    private struct State {
        var running = 0
        var started = false
        var stopping = false
    }

    init(store: any Store, codec: TargetCodec, configuration: ServerConfiguration, events: DeploymentEvents, metrics: ServerMetrics,
         engine: DeployEngine = DeployEngine(), logger: Logger, now: @escaping @Sendable () -> Date = { Date() },
         rolloutWakeups: ChangeNotifier<Int>? = nil) {
        self.rolloutWakeups = rolloutWakeups
        self.store = store
        self.codec = codec
        self.configuration = configuration
        self.events = events
        self.metrics = metrics
        self.engine = engine
        self.logger = logger
        self.now = now
        self.leaseOwner = "\(configuration.workerID)/\(UUID().lowercasedText.prefix(8))"
    }

    /// Look for work now (called after a local enqueue).
    public func wake() { wakeups.notify(0) }

    /// Whether the claim loop is running (for `/ready`).
    public var isRunning: Bool { state.withLockedValue { $0.started && !$0.stopping } }

    public var runningCount: Int { state.withLockedValue { $0.running } }

    public func run() async throws {
        state.withLockedValue { $0.started = true }
        logger.info("deployment workers started", metadata: ["concurrency": "\(configuration.workerConcurrency)", "worker": "\(leaseOwner)",
                                                             "lease": "\(configuration.leaseDuration)"])
        await takeBackDeadLeases()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                var lastRequeue = ContinuousClock.now - .seconds(3600)
                while !state.withLockedValue({ $0.stopping }) {
                    if ContinuousClock.now - lastRequeue >= configuration.leaseDuration / 4 {
                        await requeueExpired()
                        lastRequeue = .now
                    }
                    let generation = wakeups.generation(of: 0)
                    await claimAndStart(in: &group)
                    await updateQueueGauge()
                    // Sleep until the poll interval passes, a local enqueue wakes us, or a slot frees up.
                    await wakeups.wait(for: 0, after: generation, timeout: configuration.pollInterval)
                }
                logger.info("deployment workers stopping: waiting for \(runningCount) running deployment(s) to finish")
            }
        } onGracefulShutdown: {
            self.state.withLockedValue { $0.stopping = true }
            self.wakeups.notify(0)
        }
        state.withLockedValue { $0.stopping = true }
        logger.info("deployment workers stopped")
    }

    private func claimAndStart(in group: inout DiscardingTaskGroup) async {
        let free = configuration.workerConcurrency - runningCount
        guard free > 0 else { return }
        let claimed: [DeploymentRecord]
        do {
            claimed = try await store.claimNext(owner: leaseOwner, leaseDuration: configuration.leaseDuration, limit: free, now: now())
        } catch {
            logger.error("cannot claim deployments: \(error)")
            return
        }
        for deployment in claimed {
            state.withLockedValue { $0.running += 1 }
            metrics.setRunning(runningCount)
            events.notify(deployment.id)
            group.addTask {
                await self.execute(deployment)
                self.rolloutWakeups?.notify(0)
                self.state.withLockedValue { $0.running -= 1 }
                self.metrics.setRunning(self.runningCount)
                self.wakeups.notify(0)
            }
        }
    }

    /// Deployments an earlier boot of this worker was running when it died: their leases end now, so the requeue
    /// that follows takes them back at once.
    private func takeBackDeadLeases() async {
        do {
            let ended = try await store.expireLeases(ownerPrefix: configuration.workerID + "/", except: leaseOwner, now: now())
            if ended > 0 {
                logger.warning("\(ended) deployment(s) were running under an earlier start of worker \(configuration.workerID): re-queued now, not after the lease")
            }
        } catch {
            logger.error("cannot take back this worker's dead leases: \(error)")
        }
    }

    private func requeueExpired() async {
        do {
            for deployment in try await store.requeueExpiredLeases(now: now()) {
                logger.warning("deployment \(deployment.id) lost its worker: \(deployment.status.rawValue) (\(deployment.statusNote ?? ""))")
                events.notify(deployment.id)
            }
        } catch {
            logger.error("cannot requeue expired leases: \(error)")
        }
    }

    private func updateQueueGauge() async {
        if let counts = try? await store.deploymentCounts() { metrics.setQueueDepth(counts[.queued] ?? 0) }
    }

    // MARK: One deployment

    func execute(_ deployment: DeploymentRecord) async {
        let started = ContinuousClock.now
        var logger = self.logger
        logger[metadataKey: "deployment"] = "\(deployment.id)"
        let progress = StepProgress()
        let heartbeat = Task { await self.heartbeat(deployment.id, progress: progress, logger: logger) }
        defer { heartbeat.cancel() }

        let prepared: Prepared
        do {
            prepared = try await prepare(deployment)
        } catch {
            heartbeat.cancel()
            let failure = DeployFailure(targetID: deployment.targetID.lowercasedText, step: .preflight, message: "\(error)")
            let step = StepRecord(name: .preflight, outcome: .failed, startedAt: now(), endedAt: now(), detail: "\(error)")
            await finish(deployment, completion: try? DeploymentCompletion(outcome: .failed, steps: [step], failure: failure),
                         connector: "unknown", started: started, result: nil, logger: logger)
            return
        }
        let observe: @Sendable (StepRecord) -> Void = { step in
            progress.record(step)
            self.events.notify(deployment.id)
        }
        let result: DeploymentResult
        if let kubernetes = prepared.runtime.kubernetes {
            let access: KubernetesAccess
            do {
                access = try kubernetes.access()
            } catch {
                let failure = DeployFailure(targetID: prepared.request.targetID, step: .connect, message: "\(error)")
                let step = StepRecord(name: .connect, outcome: .failed, startedAt: now(), endedAt: now(), detail: "\(error)")
                await finish(deployment, completion: try? DeploymentCompletion(outcome: .failed, steps: [step], failure: failure),
                             connector: prepared.connectorID, started: started, result: nil, logger: logger)
                return
            }
            let options = KubernetesClientOptions(userAgent: KubernetesClientOptions.userAgent(version: CertdeployServer.version))
            var request = prepared.request
            request.secrets += access.secrets  // the kubeconfig's token / client key never reach a step record
            result = await engine.deploy(request, cluster: { try await KubernetesConnection.connect(access, options: options) }, observe: observe)
        } else if let ssh = prepared.runtime.ssh {
            result = await engine.deploy(prepared.request, connect: { try await SSHConnector().connect(ssh) }, observe: observe)
        } else {
            return  // runtime() guarantees one of the two
        }
        heartbeat.cancel()

        if result.outcome == .failed, result.failure?.step == .connect, deployment.attempts < configuration.maxConnectAttempts {
            let delay = configuration.retryBackoff * (1 << min(deployment.attempts - 1, 10))
            let retryAt = now().addingTimeInterval(Double(delay.components.seconds))
            let note = "could not connect (attempt \(deployment.attempts) of \(configuration.maxConnectAttempts)): \(result.failure?.message ?? ""); retrying at \(retryAt.formatted(.iso8601))"
            do {
                _ = try await store.release(deploymentID: deployment.id, owner: leaseOwner, retryAt: retryAt, note: note, now: now())
                logger.warning("\(note)")
            } catch {
                logger.error("cannot release deployment for retry: \(error)")
            }
            events.notify(deployment.id)
            return
        }
        await finish(deployment, completion: try? DeploymentCompletion(result: result), connector: prepared.connectorID, started: started,
                     result: result, logger: logger)
    }

    private func finish(_ deployment: DeploymentRecord, completion: DeploymentCompletion?, connector: String, started: ContinuousClock.Instant,
                        result: DeploymentResult?, logger: Logger) async {
        guard let completion else {
            logger.error("cannot encode the deployment result")
            return
        }
        do {
            let record = try await store.complete(deploymentID: deployment.id, owner: leaseOwner, completion: completion, now: now())
            metrics.recordDeployment(connector: connector, status: record.status.rawValue, duration: ContinuousClock.now - started, result: result)
            logger.info("deployment finished: \(record.status.rawValue)")
            await recordServed(deployment, result: result, logger: logger)
        } catch {
            logger.error("cannot record the deployment's end: \(error)")
        }
        events.notify(deployment.id)
    }

    /// A deployment whose verify step proved the leaf served is the newest observation of the target: the list shows
    /// it at once, without waiting for the next drift check.
    private func recordServed(_ deployment: DeploymentRecord, result: DeploymentResult?, logger: Logger) async {
        guard let result, result.outcome.isSuccess, !result.dryRun,
              let verify = result.steps.last(where: { $0.name == .verify }), verify.outcome == .ok else { return }
        do {
            let was = try await store.targetStatus(targetID: deployment.targetID)?.sync
            let detail = "verified by deployment \(deployment.id.lowercasedText): \(verify.detail ?? "")"
            try await store.recordSyncStatus(
                targetID: deployment.targetID,
                TargetSyncObservation(sync: TargetSyncState.inSync.rawValue, detail: detail, servedSHA256: result.certificateSHA256,
                                      checkedAt: verify.endedAt ?? now()))
            // The same transition the drift check audits when it sees a problem go away.
            if let was, TargetSyncState(rawValue: was)?.isProblem == true {
                _ = try await store.recordAuditEvent(NewAuditEvent(
                    time: now(), actor: TargetWatch.remediationActor, action: "target.drift.resolved", objectType: "target",
                    objectID: deployment.targetID.lowercasedText, outcome: TargetSyncState.inSync.rawValue, detail: "was \(was); " + detail))
            }
        } catch {
            logger.warning("cannot record the verified state of the target: \(error)")
        }
    }

    struct Prepared {
        var request: DeployRequest
        var runtime: TargetCodec.Runtime
        var connectorID: String
    }

    private func prepare(_ deployment: DeploymentRecord) async throws -> Prepared {
        let target: TargetRecord
        do {
            target = try await store.target(id: deployment.targetID)
        } catch StoreError.notFound {
            throw TargetRuntimeError("the target was deleted")
        }
        let version = try await store.certificateVersion(name: deployment.certificateName, version: deployment.certificateVersion)
        let privateKey = try codec.vault.openBytes(
            version.encryptedPrivateKey, objectID: CertificateSecret.objectID(name: version.certificateName, leafSHA256: version.sha256),
            field: CertificateSecret.field)
        let bundle = try CertificateBundle.parse(
            certificatePEM: version.certificatePEM, chainPEM: version.chainPEM.isEmpty ? nil : version.chainPEM, privateKeyPEM: privateKey)
        let runtime = try codec.runtime(target)
        let requested = (try? JSONDecoder.api.decode(DeploymentRequest.Options.self, from: Data(deployment.optionsJSON.utf8)))
            ?? DeploymentRequest.Options()
        var options = DeployOptions(
            force: requested.force ?? false, dryRun: requested.dryRun ?? false,
            allowMustStapleWithoutStapling: requested.allowMustStapleWithoutStapling ?? false,
            resumingInterruptedAttempt: deployment.interruptions > 0)
        if let refresh = StapleRefreshOrder(optionsJSON: deployment.optionsJSON) {
            // A staple refresh: the response the refresher fetched once for every target serving this certificate.
            options.staple = try await refresh.staple(for: deployment, bundle: bundle, store: store)
        }
        let request = DeployRequest(
            targetID: target.name, bundle: bundle, connector: runtime.connector,
            context: PlanContext(targetID: target.name, transportHost: runtime.ssh?.host), options: options,
            secrets: runtime.secrets + [privateKey])
        return Prepared(request: request, runtime: runtime, connectorID: target.connectorID)
    }

    /// Extends the lease and publishes progress: at once when a step changed (at most every 200 ms), else every
    /// third of the lease.
    private func heartbeat(_ id: UUID, progress: StepProgress, logger: Logger) async {
        var lastBeat = ContinuousClock.now
        var lastPublished = -1
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            if Task.isCancelled { return }
            let (generation, stepsJSON) = progress.snapshot()
            let due = ContinuousClock.now - lastBeat >= configuration.leaseDuration / 3
            guard generation != lastPublished || due else { continue }
            do {
                _ = try await store.heartbeat(
                    deploymentID: id, owner: leaseOwner, leaseDuration: configuration.leaseDuration,
                    stepsJSON: generation != lastPublished ? stepsJSON : nil, now: now())
                lastPublished = generation
                lastBeat = .now
                events.notify(id)
            } catch {
                logger.warning("heartbeat failed: \(error)")
            }
        }
    }
}

/// The steps of a running deployment as the engine reports them (a step appears when it starts and is replaced
/// when it ends).
final class StepProgress: Sendable {
    private let state = NIOLockedValueBox<(generation: Int, steps: [StepRecord])>((0, []))

    func record(_ step: StepRecord) {
        state.withLockedValue { state in
            if let last = state.steps.last, last.name == step.name, last.outcome == .running {
                state.steps[state.steps.count - 1] = step
            } else {
                state.steps.append(step)
            }
            state.generation += 1
        }
    }

    func snapshot() -> (generation: Int, stepsJSON: String) {
        let (generation, steps) = state.withLockedValue { ($0.generation, $0.steps) }
        let json = (try? JSONEncoder.api.encode(steps)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        return (generation, json)
    }
}
