import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Foundation

/// What passes between the store loop and the transfer loop of one process: claimed deliveries out,
/// finished attempts back, and the count of deliveries each endpoint holds here (waiting,
/// running or not yet recorded), which a claim weighs with every process's leases against
/// `max_concurrency`. It holds only leased rows and unwritten results: the store keeps the truth.
///
/// An idle transfer loop waits on `condition` for jobs (a busy one is woken through `onChange`
/// in its epoll wait, `SocketMulti`); the store loop waits on `activity`, signalled when results arrive, so
/// several finishes coalesce into one wake-up.
///
/// `@unchecked Sendable`: every stored property is read and written only with `condition` locked.
final class JobBoard: @unchecked Sendable {
    private let condition = NSCondition()
    private let activity = DispatchSemaphore(value: 0)
    /// Claimed jobs in claim order; those before `waitingStart` were taken. Optional so that a
    /// job is moved out when taken (`next`) rather than copied, which would retain each of its
    /// strings and its body, to be released again when the taken part is dropped.
    private var waiting: [ClaimedDelivery?] = []
    private var waitingStart = 0
    private var results: [AttemptResult] = []
    private var heldByEndpoint: [String: Int] = [:]
    private var heldTotal = 0
    private var stopping = false
    private var closed = false

    /// Adds claimed jobs; returns those refused because the board is stopping (to be released).
    func add(_ jobs: [ClaimedDelivery]) -> [ClaimedDelivery] {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            return jobs
        }
        waiting.append(contentsOf: jobs)
        for job in jobs { heldByEndpoint[job.endpointID, default: 0] += 1 }
        heldTotal += jobs.count
        for _ in jobs { condition.signal() }
        let wake = jobs.isEmpty ? nil : onChange
        condition.unlock()
        wake?()
        return []
    }

    /// What `poll` found: a job, nothing yet, or the board stopping.
    enum Poll {
        case job(ClaimedDelivery)
        case empty
        case stopping
    }

    /// The next job if one waits; never blocks.
    func poll() -> Poll {
        condition.lock()
        defer { condition.unlock() }
        if stopping { return .stopping }
        guard let job = next() else { return .empty }
        return .job(job)
    }

    /// Called (on the adding or stopping thread) after jobs are added and when the board stops,
    /// for a taker that waits elsewhere than in `take`: the transfer loop, in its epoll wait.
    private var onChange: (@Sendable () -> Void)?

    func setOnChange(_ wake: (@Sendable () -> Void)?) {
        condition.lock()
        onChange = wake
        condition.unlock()
    }

    /// The next job, waiting for one; nil once the board stops.
    func take() -> ClaimedDelivery? {
        condition.lock()
        defer { condition.unlock() }
        while waitingStart == waiting.count && !stopping { condition.wait() }
        guard !stopping else { return nil }
        return next()
    }

    /// Slots the list holds, those of taken jobs not yet dropped included (for tests).
    var retainedJobs: Int {
        condition.lock()
        defer { condition.unlock() }
        return waiting.count
    }

    /// Removes and returns the first waiting job, if one waits; `condition` is locked.
    private func next() -> ClaimedDelivery? {
        guard waitingStart < waiting.count else { return nil }
        let job = waiting[waitingStart].take()
        waitingStart += 1
        if waitingStart == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingStart = 0
        } else if waitingStart >= 1_024 && waitingStart * 2 >= waiting.count {
            // Under steady load the list may never run empty: the taken half's empty slots go,
            // so it never grows with the number of deliveries.
            waiting.removeFirst(waitingStart)
            waitingStart = 0
        }
        return job
    }

    /// Removes and returns the waiting jobs leased before `cutoff`. Jobs wait in claim order,
    /// so they are the first ones. Their endpoints still count them as held until `finish`.
    func takeStale(leasedBefore cutoff: Int64) -> [ClaimedDelivery] {
        condition.lock()
        defer { condition.unlock() }
        var stale: [ClaimedDelivery] = []
        while waitingStart < waiting.count, let leasedAt = waiting[waitingStart]?.leasedAt, leasedAt < cutoff, let job = next() {
            stale.append(job)
        }
        return stale
    }

    /// Finished attempts, for the store loop to write.
    func submit(contentsOf finished: [AttemptResult]) {
        guard !finished.isEmpty else { return }
        condition.lock()
        results.append(contentsOf: finished)
        condition.unlock()
        activity.signal()
    }

    /// Up to `limit` submitted results, oldest first, without waiting; `closed` once no worker
    /// will submit again (after `closeResults`).
    func takeResults(limit: Int) -> (results: [AttemptResult], closed: Bool) {
        condition.lock()
        defer { condition.unlock() }
        guard results.count > limit else {
            // All of them, handed over whole: a prefix would copy each result and the removal
            // then destroy the originals.
            let taken = results
            results = []
            return (taken, closed)
        }
        let taken = Array(results.prefix(limit))
        results.removeFirst(taken.count)
        return (taken, closed)
    }

    var hasResults: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !results.isEmpty
    }

    /// True once every worker has stopped (see `closeResults`).
    var resultsClosed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed
    }

    /// Results whose write failed go back to the front, to be written first next time.
    func putBack(_ unwritten: [AttemptResult]) {
        condition.lock()
        results.insert(contentsOf: unwritten, at: 0)
        condition.unlock()
    }

    /// Every worker has stopped: no more results will come.
    func closeResults() {
        condition.lock()
        closed = true
        condition.unlock()
        activity.signal()
    }

    /// Jobs' results are recorded (or they were released): their endpoints have room again.
    func finish(endpointIDs: [String]) {
        guard !endpointIDs.isEmpty else { return }
        condition.lock()
        for endpointID in endpointIDs {
            heldByEndpoint[endpointID, default: 1] -= 1
            if heldByEndpoint[endpointID] == 0 { heldByEndpoint[endpointID] = nil }
        }
        heldTotal -= endpointIDs.count
        condition.unlock()
        activity.signal()
    }

    /// What this process holds, by endpoint, and of it the attempts that ended and wait in
    /// `results` to be recorded: their leases still count in the store, but their requests no
    /// longer hold the receiver (an interim attempt that keeps its lease is followed at once).
    var held: (total: Int, byEndpoint: [String: Int], awaitingRecord: [String: Int]) {
        condition.lock()
        defer { condition.unlock() }
        var awaitingRecord: [String: Int] = [:]
        for result in results where !result.keepsLease { awaitingRecord[result.endpointID, default: 0] += 1 }
        return (heldTotal, heldByEndpoint, awaitingRecord)
    }

    /// Waits until results arrive or jobs are released, `externalChange()` turns true (checked
    /// every `checkInterval`), the board stops, or `deadline` passes.
    func waitForActivity(until deadline: Date, checkInterval: Double, externalChange: () -> Bool) {
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return }
            if activity.wait(timeout: .now() + min(remaining, checkInterval)) == .success {
                while activity.wait(timeout: .now()) == .success {}
                return
            }
            if externalChange() { return }
        }
    }

    var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    /// Stops handing out jobs; returns the ones never started, for release.
    func stop() -> [ClaimedDelivery] {
        condition.lock()
        stopping = true
        let unstarted = waiting[waitingStart...].compactMap { $0 }
        waiting.removeAll()
        waitingStart = 0
        for job in unstarted {
            heldByEndpoint[job.endpointID, default: 1] -= 1
            heldTotal -= 1
        }
        condition.broadcast()
        let wake = onChange
        condition.unlock()
        activity.signal()
        wake?()
        return unstarted
    }
}
