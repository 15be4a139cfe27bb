import Foundation

/// Writes finished attempts to the store in batches: whatever accumulated while the previous
/// batch was being committed goes in the next transaction, so SQLite commits stay few however
/// many workers finish at once.
///
/// `@unchecked Sendable`: `pending` and `stopped` are guarded by `condition`.
final class ResultRecorder: @unchecked Sendable {
    private let store: OutboxStore
    private let board: JobBoard
    private let logger: DispatcherLogger
    private let condition = NSCondition()
    private var pending: [AttemptResult] = []
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)
    /// Upper bound on one transaction's size.
    static let maxBatch = 500

    init(store: OutboxStore, board: JobBoard, logger: DispatcherLogger) {
        self.store = store
        self.board = board
        self.logger = logger
    }

    func start() {
        DispatchQueue(label: "dispatcher.recorder").async { self.loop(); self.done.signal() }
    }

    func submit(_ result: AttemptResult) {
        condition.lock()
        pending.append(result)
        condition.signal()
        condition.unlock()
    }

    /// Records everything submitted so far, then returns.
    func stopAndFlush() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
        done.wait()
    }

    private func loop() {
        while true {
            condition.lock()
            while pending.isEmpty && !stopped { condition.wait() }
            if pending.isEmpty && stopped {
                condition.unlock()
                return
            }
            let batch = Array(pending.prefix(Self.maxBatch))
            pending.removeFirst(batch.count)
            let stopping = stopped
            condition.unlock()
            write(batch, giveUpAfterFailures: stopping ? 3 : Int.max)
        }
    }

    /// Retries a failing write (a locked or full disk) rather than dropping results; if it must
    /// give up (at stop), the leases expire and the deliveries are attempted again.
    private func write(_ batch: [AttemptResult], giveUpAfterFailures limit: Int) {
        var failures = 0
        while true {
            do {
                for endpoint in try store.record(batch) {
                    logger.log(.warning, "endpoint \(endpoint.endpointID) disabled: \(endpoint.reason)")
                }
                break
            } catch {
                failures += 1
                logger.log(.error, "recording \(batch.count) attempt(s) failed (try \(failures)): \(error)")
                if failures >= limit {
                    logger.log(.error, "giving up on \(batch.count) attempt record(s); their deliveries will be retried when the lease expires")
                    break
                }
                Thread.sleep(forTimeInterval: min(5, 0.05 * Double(failures)))
            }
        }
        board.finish(endpointIDs: batch.filter { !$0.keepsLease }.map(\.endpointID))
    }
}
