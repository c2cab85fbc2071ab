import Foundation
import Logging
import VaporCSQLite

/// Copies the write-ahead log back into the database file on a connection and thread of its own, so a commit never
/// waits for a checkpoint.
///
/// SQLite's default checkpoints inside the `COMMIT` that takes the log past 1,000 pages: that commit (and every
/// transaction queued behind it on the one writer thread) waits for pages to be copied and the file to be synced.
/// Under the target-creation benchmark that was most of the create p99.
/// The writer's connection sets a WAL hook instead (``SQLiteHandle/onWALCommit(_:)``) that only asks this one
/// to run a `PASSIVE` checkpoint, which never blocks the writer or readers. If the log still grows past
/// ``inlineLimit`` pages (this thread cannot keep up), the writer checkpoints inline as SQLite would have.
final class SQLiteCheckpointer: @unchecked Sendable {
    // @unchecked Sendable: `pending`, `stopped`, `exited` and `framesCopied` are read and written only with
    // `condition` locked; `handle` is used only by the checkpoint thread, and by stop() after that thread has exited.

    /// Log size (pages) that asks for a checkpoint: 16 MiB at 4 KiB pages. Four times SQLite's default, since the
    /// copy no longer holds anyone up and fewer, larger checkpoints copy each often-written page fewer times.
    static let threshold: Int32 = 4_000
    /// Past this many pages in the log (about 256 MB at 4 KiB pages) the committing writer checkpoints inline.
    static let inlineLimit: Int32 = 64_000

    private let handle: SQLiteHandle
    private let logger: Logger
    private let condition = NSCondition()
    private var pending = false
    private var stopped = false
    private var exited = false
    private var framesCopied = 0

    /// Opens a second connection to `path` (already in WAL mode) and starts the checkpoint thread.
    init(path: String, logger: Logger) throws {
        handle = try SQLiteHandle(path: path)
        self.logger = logger
        let thread = Thread { [self] in runLoop() }
        thread.name = "certdeploy-sqlite-checkpoint"
        thread.start()
    }

    /// Called from the writer's WAL hook after each commit with the log's size in pages.
    /// Returns true when the writer should checkpoint inline (the log is past ``inlineLimit``).
    func logGrew(toPages pages: Int32) -> Bool {
        guard pages >= Self.threshold else { return false }
        condition.lock()
        if !pending, !stopped {
            pending = true
            condition.signal()
        }
        condition.unlock()
        return pages >= Self.inlineLimit
    }

    /// How many log frames this thread's checkpoints have copied into the database file (tests).
    var copiedFrames: Int {
        condition.lock()
        defer { condition.unlock() }
        return framesCopied
    }

    /// Stops the thread (after a checkpoint it is running) and closes its connection.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        while !exited { condition.wait() }
        condition.unlock()
        handle.close()
    }

    private func runLoop() {
        // Copying pages back can wait: at nice 10 this thread yields the CPU to request handling when both want it.
        // (On Linux the nice value is per thread, and `who` 0 is the calling thread.)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        // A connection that has not read the database has not opened its log, and its checkpoint would copy nothing.
        var opened = false
        while true {
            condition.lock()
            while !pending, !stopped { condition.wait() }
            if stopped {
                exited = true
                condition.broadcast()
                condition.unlock()
                return
            }
            pending = false
            condition.unlock()

            if !opened {
                opened = (try? handle.query("SELECT count(*) FROM sqlite_master", [])) != nil
            }
            let result = handle.checkpointPassive()
            condition.lock()
            framesCopied += Int(max(0, result.checkpointedFrames))
            condition.unlock()
            // BUSY: another connection (another process) is checkpointing; the next commit asks again.
            if result.status != SQLITE_OK, result.status & 0xff != SQLITE_BUSY {
                logger.warning("SQLite checkpoint failed", metadata: ["status": "\(result.status)", "error": "\(result.message)"])
            }
        }
    }
}
