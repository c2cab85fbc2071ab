import CertdeployAPI
import Core
import Foundation
import Logging
import ServiceLifecycle
import Store

extension TargetWatch {
    /// Handshakes with the target's verify endpoint and compares what it serves with its current deployment: the
    /// leaf, and (where certdeploy writes the staple) the served staple's status and age. Records the result, audits
    /// a change into `drifted`, `unreachable` or a staple problem, and, when the target has auto-remediation on,
    /// queues a forced redeploy of the expected certificate version for `drifted` and `staple_missing`.
    @discardableResult
    public func verify(_ target: TargetRecord, now: Date) async -> TargetStatusView {
        let previous = try? await store.targetStatus(targetID: target.id)
        var (state, detail, served, expected, current) = await check(target, now: now)
        if state == .inSync, let current, let behind = await behindDetail(target, current: current, now: now) {
            state = .behind
            detail = behind
        }
        metrics.recordDriftCheck(state: state.rawValue)
        var status: TargetStatusRecord?
        do {
            status = try await store.recordSyncStatus(
                targetID: target.id, TargetSyncObservation(sync: state.rawValue, detail: detail, servedSHA256: served, checkedAt: now))
        } catch {
            logger.error("drift check: cannot record the state of target \(target.name): \(error)")
        }
        if state.rawValue != previous?.sync {
            switch state {
            case .inSync:
                if let was = previous?.sync, was != TargetSyncState.notDeployed.rawValue {
                    logger.info("target \(target.name) is in sync again (was \(was))")
                    await audit("target.drift.resolved", target: target, outcome: state.rawValue, detail: detail, actor: Self.remediationActor)
                }
            case .drifted, .unreachable, .stapleMissing, .stapleStale, .behind:
                logger.warning("target \(target.name): \(state.rawValue): \(detail)")
                await audit("target.drift", target: target, outcome: state.rawValue, detail: detail, actor: Self.remediationActor)
            case .notDeployed, .notVerifiable:
                break
            }
        }
        if state == .drifted || state == .stapleMissing, let current, status?.autoRemediate ?? previous?.autoRemediate ?? false {
            await remediate(target, current: current, state: state, detail: detail)
        }
        await refreshDriftGauge()
        var view = Self.view(status ?? previous) ?? TargetStatusView()
        view.expectedSHA256 = expected
        if status == nil {
            view.sync = state.rawValue
            view.detail = detail
            view.checkedAt = now
            view.servedSHA256 = served
        }
        return view
    }

    /// Checks every target, a few at a time (the drift sweep).
    public func verifyAll(now: Date) async {
        let targets: [TargetRecord]
        do {
            targets = try await store.allTargets()
        } catch {
            logger.error("drift check: cannot list targets: \(error)")
            return
        }
        let width = max(configuration.driftConcurrency, 1)
        await withTaskGroup(of: Void.self) { group in
            for (index, target) in targets.enumerated() {
                if index >= width { await group.next() }
                group.addTask { await self.verify(target, now: now) }
            }
        }
    }

    private func check(_ target: TargetRecord, now: Date) async
        -> (TargetSyncState, String, served: String?, expected: String?, current: CurrentDeployment?) {
        let current: CurrentDeployment?
        do {
            current = try await currentDeployment(of: target.id)
        } catch {
            return (.unreachable, "cannot read the target's deployments: \(error)", nil, nil, nil)
        }
        guard let current else { return (.notDeployed, "no successful deployment yet: nothing to compare with", nil, nil, nil) }
        let expected = current.result.certificateSHA256
        let endpoint: VerifyEndpoint
        let bundle: CertificateBundle
        do {
            let version = try await store.certificateVersion(name: current.record.certificateName, version: current.record.certificateVersion)
            bundle = try codec.bundle(version)
            let runtime = try codec.runtime(target)
            var context = PlanContext(targetID: target.name, transportHost: runtime.ssh?.host)
            context.staple = current.result.staple
            guard let verify = try runtime.connector.plan(for: bundle, context: context).verify else {
                return (.notVerifiable, "the target has no verify endpoint to handshake with", nil, expected, current)
            }
            endpoint = verify
        } catch {
            return (.notVerifiable, "cannot plan \(current.record.certificateName) v\(current.record.certificateVersion) for the target: \(error)",
                    nil, expected, current)
        }
        let seen: TLSProbeResult
        do {
            seen = try await prober.probe(host: endpoint.host, port: endpoint.port, serverName: endpoint.serverName, requestStaple: true,
                                          timeout: configuration.driftProbeTimeout, startTLS: endpoint.startTLS)
        } catch {
            return (.unreachable, "no TLS handshake with \(endpoint.description): \(error)", nil, expected, current)
        }
        let deployed = "\(current.record.certificateName) v\(current.record.certificateVersion)"
        guard seen.leafSHA256 == expected else {
            return (.drifted, "\(endpoint.description) serves leaf SHA-256 \(seen.leafSHA256.prefix(16))…, not \(deployed) (SHA-256 \(expected.prefix(16))…) as deployed by \(current.record.id.lowercasedText)",
                    seen.leafSHA256, expected, current)
        }
        guard let deployedStaple = current.staple else {
            return (.inSync, "\(endpoint.description) serves \(deployed)", seen.leafSHA256, expected, current)
        }
        guard let der = seen.stapleDER else {
            return (.stapleMissing, "\(endpoint.description) serves \(deployed) without the OCSP staple certdeploy deployed (\(deployedStaple.summary))",
                    seen.leafSHA256, expected, current)
        }
        guard let issuer = bundle.issuerDER, let servedStaple = try? OCSPStaple.check(der: der, leafDER: bundle.leafDER, issuerDER: issuer) else {
            return (.stapleStale, "\(endpoint.description) staples a response that does not check for this certificate", seen.leafSHA256, expected, current)
        }
        if let problem = servedStaple.problem(at: now) {
            return (.stapleStale, "the served staple is not usable: \(problem)", seen.leafSHA256, expected, current)
        }
        let margin = Double(configuration.stapleExpiringMargin.components.seconds)
        // Stale: within the margin of nextUpdate and past the point where the refresher should have replaced it.
        if let nextUpdate = servedStaple.nextUpdate, now >= nextUpdate.addingTimeInterval(-margin), now >= refreshPoint(servedStaple, leaf: expected) {
            return (.stapleStale, "the served staple expires at \(Self.format(nextUpdate)) (\(servedStaple.summary))", seen.leafSHA256, expected, current)
        }
        return (.inSync, "\(endpoint.description) serves \(deployed) with a good staple (\(servedStaple.summary))", seen.leafSHA256, expected, current)
    }

    /// Queues a forced deployment of the expected certificate version (unless one is already queued or running).
    private func remediate(_ target: TargetRecord, current: CurrentDeployment, state: TargetSyncState, detail: String) async {
        do {
            if try await hasLiveDeployment(target.id) {
                logger.info("target \(target.name) is \(state.rawValue); a deployment is already queued or running, no remediation queued")
                return
            }
            // Remediation is a deploy: it waits for the target's maintenance window like any other.
            if case .closed(let until, let reason) = await windowVerdict(target, at: now) {
                let when = until.map { "; the next sweep after \(Self.format($0)) remediates it" } ?? ""
                if noteWaitingForWindow(.remediation, target, waiting: true) {
                    await audit("target.drift.remediate", target: target, outcome: "deferred", detail: "\(state.rawValue): \(detail); \(reason)\(when)",
                                actor: Self.remediationActor)
                }
                logger.info("target \(target.name) is \(state.rawValue); remediation waits: \(reason)")
                return
            }
            _ = noteWaitingForWindow(.remediation, target, waiting: false)
            let options = String(decoding: try JSONEncoder.api.encode(DeploymentRequest.Options(force: true)), as: UTF8.self)
            let record = try await enqueue(
                target, certificate: current.record.certificateName, version: current.record.certificateVersion, optionsJSON: options,
                actor: Self.remediationActor)
            metrics.recordRemediation()
            let what = "\(current.record.certificateName) v\(current.record.certificateVersion)"
            logger.warning("target \(target.name) is \(state.rawValue): redeploying \(what) (deployment \(record.id))")
            await audit("target.drift.remediate", target: target, outcome: "queued",
                        detail: "\(state.rawValue): \(detail); redeploying \(what) as deployment \(record.id.lowercasedText)",
                        actor: Self.remediationActor)
        } catch {
            logger.error("target \(target.name): cannot queue the remediation: \(error)")
        }
    }

    private func refreshDriftGauge() async {
        guard let statuses = try? await store.targetStatuses(targetIDs: nil) else { return }
        metrics.setDriftedTargets(statuses.values.filter { $0.sync == TargetSyncState.drifted.rawValue }.count)
        metrics.setBehindTargets(statuses.values.filter { $0.sync == TargetSyncState.behind.rawValue }.count)
    }

    /// "Renewed but not live": the target serves what it was last deployed, but its bound certificate has a newer
    /// version, uploaded longer ago than the policy's `behindAfter` (a day by default). Nil when it is not behind.
    private func behindDetail(_ target: TargetRecord, current: CurrentDeployment, now: Date) async -> String? {
        guard let bound = target.certificateName else { return nil }
        do {
            let newest = try await store.certificateVersion(name: bound, version: nil)
            if current.record.certificateName == bound, current.record.certificateVersion >= newest.version { return nil }
            let limit = try await store.certificatePolicy(name: bound)?.behindAfterSeconds ?? CertificatePolicyDefaults.behindAfterSeconds
            guard now.timeIntervalSince(newest.createdAt) >= Double(limit) else { return nil }
            let served = "serves \(current.record.certificateName) v\(current.record.certificateVersion)"
            let age = "more than \(RolloutDuration(seconds: limit)) ago, and is not live on it"
            if current.record.certificateName != bound {
                return "\(served), but is bound to \(bound), whose v\(newest.version) was uploaded at \(Self.format(newest.createdAt)), \(age)"
            }
            return "\(served), but \(bound) v\(newest.version) was uploaded at \(Self.format(newest.createdAt)), \(age)"
        } catch {
            return nil  // no version of the bound certificate (or the store failed): nothing to be behind
        }
    }
}

/// Runs ``TargetWatch/verifyAll(now:)`` every `driftInterval` until shutdown (the first sweep one interval after start).
struct DriftDetectionService: Service {
    let watch: TargetWatch

    func run() async throws {
        let interval = watch.configuration.driftInterval
        watch.logger.info("drift detector started", metadata: ["interval": "\(interval)"])
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            await watch.verifyAll(now: watch.now)
        }
    }
}
