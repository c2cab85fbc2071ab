import Foundation
import NIOConcurrencyHelpers

/// Wakes whoever watches a deployment (the SSE streams) when this replica changes it. Watchers also poll the store
/// on a timer, so a deployment run by another replica streams too, just with the poll's delay.
public typealias DeploymentEvents = ChangeNotifier<UUID>

/// Per-key change generations with waiters: `wait(for:after:timeout:)` returns as soon as the key's generation moves
/// past the one the caller saw (so a change between reading and waiting is never missed), or at the timeout.
public final class ChangeNotifier<Key: Hashable & Sendable>: Sendable {

    private let waiters = NIOLockedValueBox<[Key: [UUID: CheckedContinuation<Void, Never>]]>([:])
    /// Incremented per deployment on every change: a watcher that saw generation g returns at once when it moved on.
    private let generations = NIOLockedValueBox<[Key: UInt64]>([:])

    public init() {}

    /// Something about `deployment` changed.
    public func notify(_ deployment: Key) {
        let woken = waiters.withLockedValue { waiters -> [CheckedContinuation<Void, Never>] in
            generations.withLockedValue { $0[deployment, default: 0] += 1 }
            return Array((waiters.removeValue(forKey: deployment) ?? [:]).values)
        }
        for continuation in woken { continuation.resume() }
    }

    /// The current generation of `deployment`, to pass to `wait`.
    public func generation(of deployment: Key) -> UInt64 {
        generations.withLockedValue { $0[deployment, default: 0] }
    }

    /// Returns when `deployment` changes after `generation`, or after `timeout`, whichever comes first.
    public func wait(for deployment: Key, after generation: UInt64, timeout: Duration) async {
        let token = UUID()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = self.waiters.withLockedValue { waiters -> Bool in
                        if self.generation(of: deployment) != generation { return true }
                        waiters[deployment, default: [:]][token] = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.cancelWait(deployment, token: token)
            }
            await group.next()
            group.cancelAll()
            self.cancelWait(deployment, token: token)
        }
    }

    private func cancelWait(_ deployment: Key, token: UUID) {
        let continuation = waiters.withLockedValue { waiters -> CheckedContinuation<Void, Never>? in
            let continuation = waiters[deployment]?.removeValue(forKey: token)
            if waiters[deployment]?.isEmpty == true { waiters.removeValue(forKey: deployment) }
            return continuation
        }
        continuation?.resume()
    }

    /// Forgets a finished deployment's generation counter.
    public func forget(_ deployment: Key) {
        generations.withLockedValue { _ = $0.removeValue(forKey: deployment) }
    }
}
