import CSQLite
import DispatcherModel
import Foundation

/// Copies the WAL back into the database file on a thread of its own, so no commit waits for a
/// checkpoint. SQLite's automatic checkpoint runs inside the commit that crosses its threshold:
/// at 10,000 pages it copied about 40 MB and synced both files while the committing thread
/// waited, about 50 ms every half second under load (measured: the ingest API's p99 of the
/// 202 was 55 ms, 1.9 ms with checkpoints off).
///
/// It checkpoints every 10,000 pages (about 40 MB of WAL) at the latest rather than SQLite's
/// 1,000: the same hot index pages are rewritten by every commit, and a checkpoint copies each
/// page once however often it changed (measured when it was introduced: batched enqueue +30%,
/// deliveries +4%).
///
/// The writing connection reports the WAL's size after each commit (`sqlite3_wal_hook`, which
/// replaces SQLite's automatic checkpoints on that connection). Past `backgroundPages` this
/// thread is asked for a passive checkpoint on a connection of its own, which copies while
/// writers go on. Past `urgentPages` (the thread is behind, or readers kept the WAL from
/// starting over) it is asked after every commit. Only past `inlinePages` does the commit
/// checkpoint itself, as SQLite would have (after this thread's copy in progress, if any), so the
/// WAL stays bounded whatever happens.
///
/// The WAL starts over only when a transaction begins with every frame copied and no reader
/// on an older snapshot. Under a producer committing 2,000 times a second that took commits
/// checkpointing themselves past 10,000 pages: the store loop did so about four times a second
/// in a soak, each time syncing the WAL and the database file (1.5 s of its 150 s in `fdatasync`,
/// some calls 30–100 ms, while no delivery was claimed). Asking this thread at once instead
/// takes those syncs off the committing thread (47 in 150 s, 20 ms in all: the WAL header's, as
/// it starts over) for a `-wal` of 78 MB instead of 56; p99.9 of enqueue → first attempt 120 →
/// 58 ms, the ingest API's p99 17–23 → 4 ms, at about 3–5 % of throughput (the thread copies
/// without pause in that zone). Letting a commit past 10,000 checkpoint itself only every 2,500
/// pages instead (tried) let the WAL reach 1 GB in three minutes: what starts it over is a
/// checkpoint right after a commit. README, "The stats line's reads, and the store loop's own
/// checkpoints".
///
/// `@unchecked Sendable`: `requested`, `checkpointedUpTo`, `stopped`, `started` and
/// `checkpointing` are touched only with `condition` locked.
final class BackgroundCheckpointer: @unchecked Sendable {
    /// The thread's nice value: copying the WAL can wait, the threads that answer requests and
    /// run deliveries cannot (RocksDB lowers its compaction threads' priority for the same
    /// reason). The ingest API's committing thread, which every request waits for, shares two
    /// cores with the loop, the client and this thread; at 10 the API answered more in 10 of 11
    /// alternating pairs of 5-second runs (5 % on the median pair, up to 23 %), the WAL peaked
    /// as high either way (78 MB), and `serve`'s deliveries were unchanged (3 pairs each way).
    static let nice: Int32 = 10
    static let backgroundPages: Int32 = 2_500
    static let urgentPages: Int32 = 10_000
    static let inlinePages: Int32 = 20_000

    private let path: String
    private let busyTimeoutMilliseconds: Int32
    private let condition = NSCondition()
    private var requested = false
    /// The WAL's size when the last background checkpoint was asked for.
    private var checkpointedUpTo: Int32 = 0
    private var stopped = false
    private var started = false
    /// This thread is copying: a commit past `inlinePages` waits for it to end.
    private var checkpointing = false

    init(path: String, busyTimeoutMilliseconds: Int32) {
        self.path = path
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
    }

    /// Reports `database`'s WAL size to this checkpointer after each of its commits. The
    /// checkpointer must outlive the hook: `detach` before it goes.
    func attach(to database: Database) {
        sqlite3_wal_hook(database.handle, { context, handle, name, pages in
            guard let context else { return SQLITE_OK }
            let checkpointer = Unmanaged<BackgroundCheckpointer>.fromOpaque(context).takeUnretainedValue()
            if pages >= BackgroundCheckpointer.inlinePages {
                checkpointer.checkpointInline(handle, name)
            } else {
                checkpointer.walGrew(to: pages)
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    func detach(from database: Database) {
        sqlite3_wal_hook(database.handle, nil, nil)
    }

    /// Asks for a checkpoint once `backgroundPages` more have been written to the WAL since
    /// the last one began (not on every commit below `urgentPages`: copying hot pages over and
    /// over costs more than it spares), and after every commit past `urgentPages`. Cheap when
    /// one is asked for already.
    func walGrew(to pages: Int32) {
        condition.lock()
        defer { condition.unlock() }
        if pages < checkpointedUpTo { checkpointedUpTo = 0 }  // the WAL started over
        guard !stopped, !requested, pages >= Self.urgentPages || pages >= checkpointedUpTo + Self.backgroundPages else { return }
        checkpointedUpTo = pages
        requested = true
        if !started {
            started = true
            NamedThread.start("checkpointer", nice: Self.nice) { [self] in run() }
        }
        condition.signal()
    }

    /// The commit's own checkpoint past `inlinePages`. Busy means another checkpoint holds the
    /// lock; when it is this thread's, the commit waits for it to end and checkpoints the rest,
    /// or the WAL would grow for as long as that copy takes (on a slow disk, up to 6,000 pages past
    /// the bound: the WAL test under concurrent `dd oflag=dsync` writers, and once in CI). Another
    /// process's checkpoint is left to the next commit.
    fileprivate func checkpointInline(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?) {
        guard sqlite3_wal_checkpoint_v2(handle, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil) == SQLITE_BUSY else { return }
        condition.lock()
        while checkpointing { condition.wait() }
        condition.unlock()
        _ = sqlite3_wal_checkpoint_v2(handle, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
    }

    /// Ends the thread (after the checkpoint in progress, if any).
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        // Its own connection: a passive checkpoint on it copies while the writer's goes on.
        let database = try? Database(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        while true {
            condition.lock()
            while !requested && !stopped { condition.wait() }
            if stopped {
                condition.unlock()
                return
            }
            requested = false
            checkpointing = true
            condition.unlock()
            // A failure (busy, a vanished file) leaves the WAL to the writer's own checkpoint.
            if let database { _ = sqlite3_wal_checkpoint_v2(database.handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil) }
            condition.lock()
            checkpointing = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
