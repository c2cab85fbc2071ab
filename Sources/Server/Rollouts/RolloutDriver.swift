import Foundation
import Logging
import ServiceLifecycle
import Store

/// Moves open rollouts on: after every deployment this replica finishes, after every rollout request or action,
/// and on the poll interval (for work other replicas did, and for windows that open and pauses that end). Every
/// replica runs one; the store hands each rollout to one of them at a time (its row lock), so they never both start
/// a wave. The decisions themselves are the store's (`advanceRollouts`); this loop only decides when to ask.
public final class RolloutDriver: Service, Sendable {
    let store: any Store
    let events: DeploymentEvents
    let metrics: ServerMetrics
    let wakeups: ChangeNotifier<Int>
    let pollInterval: Duration
    let logger: Logger
    let now: @Sendable () -> Date
    /// Recorded on the rollouts it drives (`drivenBy`): this replica's worker id and boot.
    let driverID: String
    /// Wakes the deployment workers when a wave releases children.
    let wakeWorkers: @Sendable () -> Void

    init(store: any Store, events: DeploymentEvents, metrics: ServerMetrics, wakeups: ChangeNotifier<Int>, pollInterval: Duration, driverID: String,
         logger: Logger, now: @escaping @Sendable () -> Date = { Date() }, wakeWorkers: @escaping @Sendable () -> Void) {
        self.store = store
        self.events = events
        self.metrics = metrics
        self.wakeups = wakeups
        self.pollInterval = pollInterval
        self.driverID = driverID
        self.logger = logger
        self.now = now
        self.wakeWorkers = wakeWorkers
    }

    /// Advance soon (a child finished, a rollout was created or acted on).
    public func wake() { wakeups.notify(0) }

    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                let generation = wakeups.generation(of: 0)
                let wakeAt = await advance(only: nil)
                var timeout = pollInterval
                if let wakeAt {
                    let untilThen = Duration.milliseconds(max(0, Int(wakeAt.timeIntervalSince(now()) * 1000)))
                    timeout = min(timeout, untilThen)
                }
                await wakeups.wait(for: 0, after: generation, timeout: timeout)
            }
        } onGracefulShutdown: {
            self.wakeups.notify(0)  // out of the wait, so the loop sees the shutdown now
        }
    }

    /// One pass: returns the earliest time a rollout asked to be looked at again.
    @discardableResult
    func advance(only: UUID?) async -> Date? {
        let advances: [RolloutAdvance]
        do {
            advances = try await store.advanceRollouts(driver: driverID, only: only, now: now())
        } catch {
            logger.error("cannot advance rollouts: \(error)")
            return nil
        }
        var released = false
        for advance in advances {
            for event in advance.events {
                if ["halted", "waiting_approval", "succeeded", "failed"].contains(event.outcome) {
                    // An operator wants to hear of these (an alert on halted, a page on failed).
                    logger.notice("rollout \(advance.rollout.id) \(event.outcome): \(event.detail)")
                    metrics.recordRolloutTransition(event.outcome)
                } else {
                    logger.info("rollout \(advance.rollout.id): \(event.outcome): \(event.detail)")
                }
            }
            events.notify(advance.rollout.id)
            for child in advance.changedChildren { events.notify(child) }
            if !advance.changedChildren.isEmpty { released = true }
        }
        if released { wakeWorkers() }
        return advances.compactMap(\.wakeAt).min()
    }
}
