import CLinux
import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Foundation

/// The periodic jobs of a long-running `serve`: the stats summary line, a progress line while a
/// large backlog (a replay, a backfill) drains, pruning by `retention_days`, dropping
/// signing secrets whose rotation grace period ended, and handing free heap pages back to the
/// kernel.
///
/// `@unchecked Sendable`: the timer is a Dispatch source (safe to cancel from any thread), and
/// `state` is touched only by the timer's handler, which runs on one serial queue.
package final class Housekeeping: @unchecked Sendable {
    package struct Settings: Sendable {
        package var statsIntervalSeconds: Double
        package var retentionDays: Double?
        /// While more than this many deliveries are pending, a progress line every few seconds.
        package var progressBacklog: Int = 1_000
        package var progressIntervalSeconds: Double = 5
        /// How often the heap's free pages go back to the kernel (`returnFreeMemory`).
        package var trimIntervalSeconds: Double = 10

        package init(statsIntervalSeconds: Double = 60, retentionDays: Double? = nil) {
            self.statsIntervalSeconds = statsIntervalSeconds
            self.retentionDays = retentionDays
        }
    }

    private let store: any OutboxAdministration & DeliveryQueue
    private let settings: Settings
    private let logger: DispatcherLogger
    private let timer: DispatchSourceTimer
    private let state = State()

    /// When each job last ran; only the timer's serial queue reads or writes it.
    private final class State {
        var lastStats = Date()
        var lastPrune = Date.distantPast
        var lastTrim = Date()
        var lastPending: (count: Int, at: Date)?
    }

    package init(store: any OutboxAdministration & DeliveryQueue, settings: Settings, logger: DispatcherLogger) {
        self.store = store
        self.settings = settings
        self.logger = logger
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "dispatcher.housekeeping"))
    }

    package func start() {
        let tick = min(settings.progressIntervalSeconds, settings.statsIntervalSeconds > 0 ? settings.statsIntervalSeconds : .infinity)
        timer.schedule(deadline: .now() + tick, repeating: tick)
        timer.setEventHandler { [self] in
            let now = Date()
            // First, so a store that fails below does not hold it back.
            if now.timeIntervalSince(state.lastTrim) >= settings.trimIntervalSeconds - 0.001 {
                state.lastTrim = now
                Self.returnFreeMemory()
            }
            do {
                if let days = settings.retentionDays, now.timeIntervalSince(state.lastPrune) >= 3_600 {
                    state.lastPrune = now
                    let pruned = try store.prune(olderThan: now.addingTimeInterval(-days * 86_400), dryRun: false)
                    if pruned.deliveries + pruned.events > 0 {
                        logger.log(.info, "retention: deleted \(pruned.deliveries) deliveries, \(pruned.attempts) attempts, \(pruned.events) events older than \(days) days")
                    }
                }
                let dropped = try store.dropExpiredSigningSecrets(now: now)
                if dropped > 0 {
                    logger.log(.info, "signing: the grace period of a rotated-out secret ended on \(dropped) endpoint(s); they sign with the new one only")
                }
                // The stats only when a line is due; the progress check needs one count, which
                // the stats line's queue counts hold when it ran.
                var counted: Int?
                if settings.statsIntervalSeconds > 0 && now.timeIntervalSince(state.lastStats) >= settings.statsIntervalSeconds - 0.001 {
                    state.lastStats = now
                    let stats = try store.queueStats(windowSeconds: max(settings.statsIntervalSeconds, 60))
                    logger.log(.info, "stats: " + stats.summaryLine)
                    counted = stats.byStatus[DeliveryStatus.pending.rawValue]
                }
                let pending = try counted ?? store.pendingCount()
                if pending > settings.progressBacklog {
                    var line = "progress: \(pending) pending"
                    if let last = state.lastPending, now > last.at {
                        let rate = Double(last.count - pending) / now.timeIntervalSince(last.at)
                        line += String(format: ", draining at %.0f/s", rate)
                        if rate > 0 { line += ", about \(Int(Double(pending) / rate))s left" }
                    }
                    logger.log(.info, line)
                    state.lastPending = (pending, now)
                } else {
                    state.lastPending = nil
                }
            } catch {
                logger.log(.error, "housekeeping failed: \(error)")
            }
        }
        timer.resume()
    }

    package func stop() { timer.cancel() }

    /// Hands the free pages of every malloc arena back to the kernel. glibc's `free` returns
    /// memory only from the top of an arena, so what a burst used (a run of retries coming due
    /// together, a scrape) stays counted in serve's RSS after it is freed, and the RSS of a
    /// steady load crept up for minutes while the bytes in use stayed flat (README
    /// "Performance", the soak). 0.8 ms when timed at once a minute.
    static func returnFreeMemory() { _ = dispatcher_malloc_trim() }
}
