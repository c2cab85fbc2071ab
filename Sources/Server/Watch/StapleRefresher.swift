import CertdeployAPI
import Core
import Foundation
import Logging
import ServiceLifecycle
import Store

/// What one refresh pass did (tests and logs read it).
public struct StapleRefreshReport: Sendable {
    /// OCSP requests made, one per certificate at most.
    public var fetches = 0
    /// Staple refresh deployments queued.
    public var queued: [UUID] = []
    /// Targets whose staple state changed, with the new state.
    public var transitions: [(target: String, state: String)] = []
}

/// The staple refresh deployment's instruction to the worker, carried in the deployment's options JSON: deploy the
/// same certificate version with this OCSP response (fetched once for every target serving the certificate).
struct StapleRefreshOrder: Codable, Sendable {
    struct Order: Codable, Sendable {
        /// The DER OCSP response, base64.
        var ocspResponse: String
    }

    var stapleRefresh: Order

    init(staple: OCSPStaple) {
        stapleRefresh = Order(ocspResponse: Data(staple.der).base64EncodedString())
    }

    /// The order in a deployment's options, nil for any other deployment.
    init?(optionsJSON: String) {
        guard optionsJSON.contains("stapleRefresh"),
              let order = try? JSONDecoder.api.decode(StapleRefreshOrder.self, from: Data(optionsJSON.utf8)) else { return nil }
        self = order
    }

    var optionsJSON: String { (try? JSONEncoder.api.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}" }

    /// The staple for `deployment`'s deploy options. Throws when the deployment no longer deploys what the target
    /// serves (another deployment finished since it was queued) or the response does not check for this leaf.
    func staple(for deployment: DeploymentRecord, bundle: CertificateBundle, store: any Store) async throws -> OCSPStaple {
        let current = try await TargetWatch.currentDeployment(of: deployment.targetID, store: store)
        guard let current, current.record.certificateName == deployment.certificateName,
              current.record.certificateVersion == deployment.certificateVersion else {
            let serving = current.map { "\($0.record.certificateName) v\($0.record.certificateVersion)" } ?? "nothing certdeploy deployed"
            throw TargetRuntimeError(
                "staple refresh of \(deployment.certificateName) v\(deployment.certificateVersion) superseded: the target now has \(serving); not deployed")
        }
        guard let der = Data(base64Encoded: stapleRefresh.ocspResponse), let issuer = bundle.issuerDER else {
            throw TargetRuntimeError("the staple refresh carries no usable OCSP response")
        }
        return try OCSPStaple.check(der: Array(der), leafDER: bundle.leafDER, issuerDER: issuer)
    }
}

extension TargetWatch {
    /// One refresh pass at `now`: for every certificate served from a staple file, fetch a fresh response when the
    /// staples on its targets reach the refresh point (once per certificate, whatever the number of targets), queue
    /// a staple refresh deployment for each target whose staple is older, and record each target's staple state.
    @discardableResult
    public func refreshStaples(now: Date) async -> StapleRefreshReport {
        var report = StapleRefreshReport()
        let targets: [TargetRecord]
        let statuses: [UUID: TargetStatusRecord]
        do {
            targets = try await store.allTargets()
            statuses = try await store.targetStatuses(targetIDs: nil)
        } catch {
            logger.error("staple refresh: cannot list targets: \(error)")
            return report
        }
        // Group the targets by the leaf they serve (one responder question per leaf).
        var groups: [String: [(target: TargetRecord, current: CurrentDeployment)]] = [:]
        var order: [String] = []
        for target in targets {
            do {
                guard let current = try await currentDeployment(of: target.id) else {
                    updateGauges(target: target.id, stapleNextUpdate: nil, certificateNotAfter: nil, at: now)
                    continue
                }
                let leaf = current.result.certificateSHA256
                if groups[leaf] == nil { order.append(leaf) }
                groups[leaf, default: []].append((target, current))
            } catch {
                logger.error("staple refresh: cannot read the deployments of target \(target.name): \(error)")
            }
        }
        dropGauges(except: Set(targets.map(\.id)))
        for leaf in order {
            await refresh(leaf: leaf, members: groups[leaf] ?? [], statuses: statuses, now: now, report: &report)
        }
        return report
    }

    /// When a staple should be replaced: at `refreshFraction` of its validity plus this certificate's jitter.
    func refreshPoint(_ staple: OCSPStaple, leaf: String) -> Date {
        let jitter = Double(configuration.refreshJitter.components.seconds) * Self.unitFraction(leaf)
        guard let nextUpdate = staple.nextUpdate else {
            return staple.thisUpdate.addingTimeInterval(Double(configuration.refreshFloor.components.seconds) + jitter)
        }
        let validity = nextUpdate.timeIntervalSince(staple.thisUpdate)
        return staple.thisUpdate.addingTimeInterval(validity * configuration.refreshFraction + jitter)
    }

    /// A number in [0, 1) that stays the same for a certificate: its jitter share.
    static func unitFraction(_ leafSHA256: String) -> Double {
        Double(UInt32(leafSHA256.prefix(8), radix: 16) ?? 0) / (Double(UInt32.max) + 1)
    }

    private func refresh(leaf: String, members: [(target: TargetRecord, current: CurrentDeployment)], statuses: [UUID: TargetStatusRecord],
                         now: Date, report: inout StapleRefreshReport) async {
        let stapled = members.filter { $0.current.stapleFile }
        // The certificate's validity, for the expiry gauge (and its bundle, when a fetch is due).
        let first = members[0].current.record
        let version = try? await store.certificateVersion(name: first.certificateName, version: first.certificateVersion)
        for member in members {
            updateGauges(target: member.target.id, stapleNextUpdate: member.current.staple?.nextUpdate, certificateNotAfter: version?.notAfter, at: now)
        }
        guard !stapled.isEmpty else { return }

        // Due when a target's staple reached its refresh point, or a staple-file target has none.
        let memory = state.withLockedValue { $0.certificates[leaf] } ?? CertificateRefresh()
        let due = stapled.contains { member in
            guard let staple = member.current.staple else { return member.current.result.stapling != nil }
            return now >= refreshPoint(staple, leaf: leaf)
        }
        let floorPassed = memory.lastFetch.map { now >= $0.addingTimeInterval(Double(configuration.refreshFloor.components.seconds)) } ?? true
        let backoffPassed = memory.retryAt.map { now >= $0 } ?? true
        let haveNewer = memory.fetched.map { fetched in
            fetched.problem(at: now) == nil && stapled.contains { ($0.current.staple?.thisUpdate ?? .distantPast) < fetched.thisUpdate }
        } ?? false
        if due, floorPassed, backoffPassed, !haveNewer, let version {
            report.fetches += 1
            await fetch(leaf: leaf, version: version, now: now)
        }
        let refreshed = state.withLockedValue { $0.certificates[leaf] } ?? CertificateRefresh()

        // Push the freshest good response to every staple-file target that has an older one.
        var queuedAny = false
        if let fresh = refreshed.fetched, fresh.problem(at: now) == nil, refreshed.revoked == nil {
            for member in stapled where (member.current.staple?.thisUpdate ?? .distantPast) < fresh.thisUpdate {
                if await push(fresh, to: member.target, current: member.current, now: now, report: &report) { queuedAny = true }
            }
        }
        if due, refreshed.lastFetch == now {
            metrics.recordStapleRefresh(outcome: refreshed.revoked != nil ? "revoked" : refreshed.failures > 0 ? "failed" : queuedAny ? "refreshed" : "unchanged")
        }

        // Record each target's staple state; warn on the way into a bad one.
        let targets = refreshed.revoked != nil ? members : stapled
        for member in targets {
            let pushFailing = (state.withLockedValue { $0.pushes[member.target.id]?.failures } ?? 0) > 0
            let observed = stapleState(member.current, memory: refreshed, pushFailing: pushFailing, now: now)
            let previous = statuses[member.target.id]?.staple
            do {
                _ = try await store.recordStapleStatus(targetID: member.target.id, TargetStapleObservation(
                    staple: observed.state?.rawValue, detail: observed.detail, thisUpdate: member.current.staple?.thisUpdate,
                    nextUpdate: member.current.staple?.nextUpdate, checkedAt: now))
            } catch StoreError.notFound {
                continue  // deleted meanwhile
            } catch {
                logger.error("staple refresh: cannot record the staple state of target \(member.target.name): \(error)")
            }
            if observed.state?.rawValue != previous {
                report.transitions.append((member.target.name, observed.state?.rawValue ?? "none"))
                await announce(observed, previous: previous, target: member.target, current: member.current, version: version)
            }
        }
    }

    /// Asks the responder once for this certificate and remembers the answer (or the failure and the next retry).
    private func fetch(leaf: String, version: CertificateVersionRecord, now: Date) async {
        var outcome: Result<OCSPStaple, any Error>
        do {
            let bundle = try codec.bundle(version)
            guard let url = bundle.info.ocspURL else { throw OCSPError("the certificate names no OCSP responder (AIA)") }
            guard let issuer = bundle.issuerDER else { throw OCSPError("the stored chain holds no issuer certificate") }
            let answer = try await fetcher.fetch(url: url, leafDER: bundle.leafDER, issuerDER: issuer)
            switch answer.status {
            case .good:
                if let problem = answer.problem(at: now) { throw OCSPError("the response from \(url) is not usable: \(problem)") }
                outcome = .success(answer)
            case .revoked:
                outcome = .success(answer)
            case .unknown:
                throw OCSPError("\(url) does not know this certificate (status unknown)")
            }
        } catch {
            outcome = .failure(error)
        }
        let backoff = configuration.retryBackoff
        let limit = configuration.retryBackoffLimit
        let name = "\(version.certificateName) v\(version.version)"
        state.withLockedValue { state in
            var memory = state.certificates[leaf] ?? CertificateRefresh()
            memory.lastFetch = now
            switch outcome {
            case .success(let answer) where answer.status == .revoked:
                memory.revoked = answer
                memory.failures = 0
                memory.retryAt = nil
            case .success(let answer):
                memory.fetched = answer
                memory.revoked = nil
                memory.failures = 0
                memory.retryAt = nil
                memory.lastError = nil
            case .failure(let error):
                memory.failures += 1
                let delay = min(Double(backoff.components.seconds) * pow(2, Double(min(memory.failures - 1, 20))), Double(limit.components.seconds))
                memory.retryAt = now.addingTimeInterval(delay)
                memory.lastError = "\(error)"
            }
            state.certificates[leaf] = memory
        }
        switch outcome {
        case .success(let answer) where answer.status == .revoked:
            logger.error("OCSP: certificate \(name) is REVOKED (\(answer.summary)); every target serving it is flagged")
        case .success(let answer):
            logger.info("OCSP: fresh response for \(name): \(answer.summary)")
        case .failure(let error):
            let retryAt = state.withLockedValue { $0.certificates[leaf]?.retryAt }
            logger.warning("OCSP: cannot refresh the staple of \(name): \(error); the deployed staple stays in place while it is valid; retrying at \(retryAt.map(Self.format) ?? "-")")
        }
    }

    /// Queues a staple refresh deployment unless the target is busy or its last refresh failed recently.
    private func push(_ staple: OCSPStaple, to target: TargetRecord, current: CurrentDeployment, now: Date,
                      report: inout StapleRefreshReport) async -> Bool {
        var push = state.withLockedValue { $0.pushes[target.id] } ?? Push()
        if let id = push.deploymentID, let last = try? await store.deployment(id: id) {
            if !last.status.isFinal { return false }
            if last.status == .succeeded || last.status == .unchanged {
                push = Push()
            } else {
                push.failures += 1
                let delay = min(Double(configuration.retryBackoff.components.seconds) * pow(2, Double(min(push.failures - 1, 20))),
                                Double(configuration.retryBackoffLimit.components.seconds))
                push.retryAt = (last.finishedAt ?? now).addingTimeInterval(delay)
                push.deploymentID = nil
                logger.warning("staple refresh deployment \(id) of target \(target.name) ended \(last.status.rawValue); retrying after \(Self.format(push.retryAt!))")
            }
        }
        defer { state.withLockedValue { $0.pushes[target.id] = push } }
        if let retryAt = push.retryAt, now < retryAt { return false }
        do {
            if try await hasLiveDeployment(target.id) { return false }
            // A refresh is a deploy and waits for the target's window, unless the served staple would expire first.
            if case .closed(let until, let reason) = await windowVerdict(target, at: now) {
                let expires = current.staple?.nextUpdate
                if let until, let expires, expires > until {
                    if noteWaitingForWindow(.stapleRefresh, target, waiting: true) {
                        logger.info("staple refresh of target \(target.name) waits: \(reason); its staple is good until \(Self.format(expires))")
                    }
                    return false
                }
                await audit("staple.refresh.outside_window", target: target, outcome: "refreshing",
                            detail: "\(reason); the served staple expires at \(expires.map(Self.format) ?? "an unknown time"), before the window opens"
                                + (until.map { " at \(Self.format($0))" } ?? "") + ": refreshed anyway",
                            actor: Self.refreshActor)
            }
            _ = noteWaitingForWindow(.stapleRefresh, target, waiting: false)
            let record = try await enqueue(
                target, certificate: current.record.certificateName, version: current.record.certificateVersion,
                optionsJSON: StapleRefreshOrder(staple: staple).optionsJSON, actor: Self.refreshActor)
            push.deploymentID = record.id
            push.retryAt = nil
            report.queued.append(record.id)
            logger.info("staple refresh queued for target \(target.name): deployment \(record.id) (\(staple.summary))")
            return true
        } catch {
            logger.error("staple refresh: cannot queue a deployment for target \(target.name): \(error)")
            return false
        }
    }

    /// The staple state of a target from its deployed staple and what the responder said.
    /// A fresher response that cannot be deployed (`pushFailing`) does not help: the target still serves the old one.
    func stapleState(_ current: CurrentDeployment, memory: CertificateRefresh, pushFailing: Bool, now: Date) -> (state: TargetStapleState?, detail: String?) {
        if let revoked = memory.revoked {
            return (.revoked, "the OCSP responder says this certificate is revoked (\(revoked.summary)); replace it now")
        }
        guard let staple = current.staple else {
            return (nil, current.stapleFile ? "deployed without a staple" + (memory.lastError.map { ": \($0)" } ?? "") : nil)
        }
        let fresher = !pushFailing && (memory.fetched.map { $0.thisUpdate > staple.thisUpdate && $0.problem(at: now) == nil } ?? false)
        var failing = memory.lastError.map { "; the last refresh failed: \($0)" + (memory.retryAt.map { ", retrying at \(Self.format($0))" } ?? "") } ?? ""
        if pushFailing { failing += "; the last staple refresh deployment to this target failed (see its deployments)" }
        guard let nextUpdate = staple.nextUpdate else { return (.good, "staple \(staple.summary)" + failing) }
        if now >= nextUpdate, !fresher {
            return (.expired, "the staple expired at \(Self.format(nextUpdate))" + failing)
        }
        let margin = Double(configuration.stapleExpiringMargin.components.seconds)
        if now >= nextUpdate.addingTimeInterval(-margin), !fresher, memory.failures > 0 || pushFailing {
            return (.expiring, "the staple expires at \(Self.format(nextUpdate)) and no fresh one could be fetched" + failing)
        }
        return (.good, (fresher ? "a fresher staple is being deployed; " : "") + "staple \(staple.summary)" + failing)
    }

    /// Logs, counts and audits a target's staple turning bad (or good again), saying what happens at expiry.
    private func announce(_ observed: (state: TargetStapleState?, detail: String?), previous: String?, target: TargetRecord,
                          current: CurrentDeployment, version: CertificateVersionRecord?) async {
        guard let state = observed.state else { return }
        let detail = observed.detail ?? ""
        switch state {
        case .good:
            guard let previous, previous != TargetStapleState.good.rawValue else { return }
            logger.info("target \(target.name): staple is good again (was \(previous))")
            await audit("staple.recovered", target: target, outcome: state.rawValue, detail: detail, actor: Self.refreshActor)
        case .expiring, .expired:
            let consequence = Self.consequence(of: state, connectorID: target.connectorID, mustStaple: version?.mustStaple ?? false, registry: codec.registry)
            let message = "target \(target.name): \(state.rawValue): \(detail). \(consequence)"
            if state == .expired { logger.error("\(message)") } else { logger.warning("\(message)") }
            metrics.recordStapleWarning(state: state.rawValue)
            await audit("staple.\(state == .expired ? "expired" : "expiring")", target: target, outcome: state.rawValue,
                        detail: "\(detail). \(consequence)", actor: Self.refreshActor)
        case .revoked:
            logger.error("target \(target.name) serves a REVOKED certificate (\(current.record.certificateName) v\(current.record.certificateVersion)): \(detail)")
            metrics.recordStapleWarning(state: state.rawValue)
            await audit("certificate.revoked", target: target, outcome: state.rawValue,
                        detail: "\(current.record.certificateName) v\(current.record.certificateVersion): \(detail)", actor: Self.refreshActor)
        }
    }

    /// What the target's server does once the staple is past nextUpdate, from what its connector documents about
    /// staples (no per-connector code here) and whether the certificate is Must-Staple.
    static func consequence(of state: TargetStapleState, connectorID: String, mustStaple: Bool, registry: ConnectorRegistry) -> String {
        var parts = [state == .expired
            ? "Clients ignore a staple past its nextUpdate, as if none were stapled."
            : "The current staple stays in place and is served until it expires; after that clients ignore it."]
        if mustStaple {
            parts.append("The certificate is Must-Staple: clients that enforce it (Firefox) refuse the site without a valid staple.")
        }
        let notes = (registry.connector(id: connectorID)?.descriptor.vendorVersions ?? []).flatMap(\.quirks)
            .filter { $0.localizedCaseInsensitiveContains("staple") && ($0.contains("MUST_STAPLE") || $0.localizedCaseInsensitiveContains("reject")) }
        if !notes.isEmpty {
            parts.append("\(connectorID): " + notes.joined(separator: " "))
        } else {
            parts.append("\(connectorID) keeps serving the certificate.")
        }
        return parts.joined(separator: " ")
    }

    static func format(_ date: Date) -> String { date.formatted(.iso8601) }
}

/// Runs ``TargetWatch/refreshStaples(now:)`` every `refreshCheckInterval` until shutdown.
struct StapleRefreshService: Service {
    let watch: TargetWatch

    func run() async throws {
        let interval = watch.configuration.refreshCheckInterval
        watch.logger.info("staple refresher started", metadata: ["interval": "\(interval)"])
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            await watch.refreshStaples(now: watch.now)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
