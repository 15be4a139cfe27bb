import DispatcherModel
import DispatcherStore
import Foundation
import Synchronization

/// Commits the events of concurrent requests together: a request is answered once its events
/// are committed (so a 202 means committed), and every request that arrived while a commit ran
/// joins the next one. The API thus outruns one transaction per event without weakening the
/// promise.
///
/// `@unchecked Sendable`: `waiting`, `pendingEvents` and `stopped` are touched only with
/// `condition` locked.
package final class GroupCommitter: @unchecked Sendable {
    package typealias Results = Result<[Result<EnqueueResult, DispatcherError>], any Error>

    /// One request's events and what to do with their results.
    private struct Ticket {
        let events: [NewEvent]
        let completion: @Sendable (Results) -> Void
    }

    private let store: OutboxStore
    private let condition = NSCondition()
    private var waiting: [Ticket] = []
    private var pendingEvents = 0
    private var stopped = false
    /// Events one commit takes at most.
    let maxEventsPerCommit: Int
    /// Events waiting at most; past it requests are turned away (429) rather than queued.
    let maxPendingEvents: Int

    package init(store: OutboxStore, maxEventsPerCommit: Int = 1_000, maxPendingEvents: Int = 20_000) {
        self.store = store
        self.maxEventsPerCommit = max(1, maxEventsPerCommit)
        self.maxPendingEvents = max(1, maxPendingEvents)
        NamedThread.start("ingest.commit") { [self] in run() }
    }

    /// Queues `events` (made by `NDJSONEvent.parse`, which checked their bodies) for the next commit (each on its own: a rejected one does not stop the
    /// others) and returns at once; `completion` gets their results, or the storage error that
    /// failed their commit (nothing of it was written), on the committing thread. Returns false,
    /// without queueing, when too many events are waiting already or the committer has stopped.
    package func submit(_ events: [NewEvent], completion: @escaping @Sendable (Results) -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped, pendingEvents + events.count <= maxPendingEvents || pendingEvents == 0 else { return false }
        waiting.append(Ticket(events: events, completion: completion))
        pendingEvents += events.count
        if waiting.count == 1 { condition.signal() }
        return true
    }

    /// `submit`, waiting for the results: nil when turned away.
    package func commit(_ events: [NewEvent]) throws -> [Result<EnqueueResult, DispatcherError>]? {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Results?>(nil)
        guard submit(events, completion: { results in
            outcome.withLock { $0 = results }
            done.signal()
        }) else { return nil }
        done.wait()
        return try outcome.withLock { $0 }?.get() ?? []
    }

    /// Commits what is waiting, then ends the committing thread.
    package func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while waiting.isEmpty && !stopped { condition.wait() }
            if waiting.isEmpty && stopped {
                condition.unlock()
                return
            }
            // The waiting tickets in order, as many as fit one commit (at least one).
            var taken = 0, count = 0
            while taken < waiting.count, taken == 0 || count + waiting[taken].events.count <= maxEventsPerCommit {
                count += waiting[taken].events.count
                taken += 1
            }
            let batch = Array(waiting[..<taken])
            waiting.removeFirst(taken)
            pendingEvents -= count
            condition.unlock()

            let outcome = Result { try store.enqueueEach(parsed: batch.flatMap(\.events)) }
            var offset = 0
            for ticket in batch {
                ticket.completion(outcome.map { Array($0[offset..<(offset + ticket.events.count)]) })
                offset += ticket.events.count
            }
        }
    }
}
