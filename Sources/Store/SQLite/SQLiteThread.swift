import Foundation

/// The thread the SQLite connection lives on, as a Swift task executor.
///
/// A transaction runs here from `BEGIN` to `COMMIT` with this executor preferred, so its statements (blocking C
/// calls that take microseconds) run one after another on this thread with no thread switch between them, and a
/// wait for another process's write lock (`busy_timeout`) blocks this thread only, never the cooperative pool.
/// (Going through a thread pool per statement cost two to three thread wake-ups per statement: more than the SQL.)
final class SQLiteThread: TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: `jobs`, `stopped` and `running` are read and written only with `condition` locked.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false
    private var running = false
    private let name: String

    init(name: String) {
        self.name = name
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        if running {
            condition.signal()
            condition.unlock()
        } else {
            // The first job starts the thread, and so does a job that arrives after stop() (a call on a closed
            // store must still end, with an error, not wait forever).
            running = true
            condition.unlock()
            let thread = Thread { [self] in runLoop() }
            thread.name = name
            thread.start()
        }
    }

    /// Lets the thread finish the jobs it has and exit.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func runLoop() {
        let executor = asUnownedTaskExecutor()
        var batch: [UnownedJob] = []
        while true {
            condition.lock()
            while jobs.isEmpty, !stopped { condition.wait() }
            if jobs.isEmpty {
                running = false
                condition.unlock()
                return
            }
            swap(&batch, &jobs)
            condition.unlock()
            for job in batch { job.runSynchronously(on: executor) }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
