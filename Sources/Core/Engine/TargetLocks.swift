/// One deploy at a time per target within this process. (Across server replicas the job store's
/// lease is the lock; this keeps two local callers — CLI runs in one process, tests — from racing.)
public actor TargetLocks {
    public static let shared = TargetLocks()

    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    public init() {}

    public func acquire(_ target: String) async {
        if !held.contains(target) {
            held.insert(target)
            return
        }
        await withCheckedContinuation { continuation in
            waiters[target, default: []].append(continuation)
        }
    }

    public func release(_ target: String) {
        if var queue = waiters[target], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[target] = queue.isEmpty ? nil : queue
            next.resume()  // ownership passes to the next waiter
        } else {
            held.remove(target)
        }
    }

    public func isHeld(_ target: String) -> Bool { held.contains(target) }
}
