import DispatcherModel
import DispatcherStore
import Foundation

/// Commits the events of concurrent requests together: each request waits until its events
/// are committed (so a 202 means committed), and every request that arrived while a commit ran
/// joins the next one. The API thus outruns one transaction per event without weakening the
/// promise.
///
/// `@unchecked Sendable`: `waiting`, `pendingEvents` and `stopped` are touched only with
/// `condition` locked; each `Ticket` is written once by the committing thread before it signals.
package final class GroupCommitter: @unchecked Sendable {
    /// One request's events and, once committed, their results.
    final class Ticket: @unchecked Sendable {
        let events: [NewEvent]
        var results: Result<[Result<EnqueueResult, DispatcherError>], any Error>?
        let done = DispatchSemaphore(value: 0)
        init(_ events: [NewEvent]) { self.events = events }
    }

    private let store: any EventOutbox
    private let condition = NSCondition()
    private var waiting: [Ticket] = []
    private var pendingEvents = 0
    private var stopped = false
    /// Events one commit takes at most.
    let maxEventsPerCommit: Int
    /// Events waiting at most; past it requests are turned away (429) rather than queued.
    let maxPendingEvents: Int

    package init(store: any EventOutbox, maxEventsPerCommit: Int = 1_000, maxPendingEvents: Int = 20_000) {
        self.store = store
        self.maxEventsPerCommit = max(1, maxEventsPerCommit)
        self.maxPendingEvents = max(1, maxPendingEvents)
        Thread.detachNewThread { [self] in run() }
    }

    /// Commits `events` (each on its own: a rejected one does not stop the others) and returns
    /// their results; nil when too many events are waiting already. Throws the storage error
    /// that failed their commit (nothing of it was written).
    package func commit(_ events: [NewEvent]) throws -> [Result<EnqueueResult, DispatcherError>]? {
        let ticket = Ticket(events)
        condition.lock()
        guard !stopped, pendingEvents + events.count <= maxPendingEvents || pendingEvents == 0 else {
            condition.unlock()
            return nil
        }
        waiting.append(ticket)
        pendingEvents += events.count
        condition.signal()
        condition.unlock()
        ticket.done.wait()
        return try ticket.results?.get() ?? []
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

            let outcome = Result { try store.enqueueEach(batch.flatMap(\.events)) }
            var offset = 0
            for ticket in batch {
                ticket.results = outcome.map { Array($0[offset..<(offset + ticket.events.count)]) }
                offset += ticket.events.count
                ticket.done.signal()
            }
        }
    }
}
