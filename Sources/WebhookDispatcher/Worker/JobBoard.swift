import Foundation

/// The claimed deliveries of one process between the claimer and the workers, and the count
/// of deliveries each endpoint has held here (waiting, running or not yet recorded), which a
/// claim weighs with every process's leases against `max_concurrency`. It holds only leased
/// rows: the store keeps the truth.
///
/// Workers wait on `condition` for jobs and are woken one per job; the claimer waits on `room`,
/// signalled as jobs finish, so a finished job never wakes every idle worker.
///
/// `@unchecked Sendable`: every stored property is read and written only with `condition` locked.
final class JobBoard: @unchecked Sendable {
    private let condition = NSCondition()
    private let room = DispatchSemaphore(value: 0)
    private var waiting: [ClaimedDelivery] = []
    private var waitingStart = 0
    private var heldByEndpoint: [String: Int] = [:]
    private var heldTotal = 0
    private var stopping = false

    /// Adds claimed jobs; returns those refused because the board is stopping (to be released).
    func add(_ jobs: [ClaimedDelivery]) -> [ClaimedDelivery] {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return jobs }
        waiting.append(contentsOf: jobs)
        for job in jobs { heldByEndpoint[job.endpointID, default: 0] += 1 }
        heldTotal += jobs.count
        for _ in jobs { condition.signal() }
        return []
    }

    /// The next job, waiting for one; nil once the board stops.
    func take() -> ClaimedDelivery? {
        condition.lock()
        defer { condition.unlock() }
        while waitingStart == waiting.count && !stopping { condition.wait() }
        guard !stopping else { return nil }
        let job = waiting[waitingStart]
        waitingStart += 1
        if waitingStart == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingStart = 0
        }
        return job
    }

    /// Jobs' results are recorded (or they were released): their endpoints have room again.
    /// One wake-up for the claimer per call, however many jobs.
    func finish(endpointIDs: [String]) {
        guard !endpointIDs.isEmpty else { return }
        condition.lock()
        for endpointID in endpointIDs {
            heldByEndpoint[endpointID, default: 1] -= 1
            if heldByEndpoint[endpointID] == 0 { heldByEndpoint[endpointID] = nil }
        }
        heldTotal -= endpointIDs.count
        condition.unlock()
        room.signal()
    }

    var held: (total: Int, byEndpoint: [String: Int]) {
        condition.lock()
        defer { condition.unlock() }
        return (heldTotal, heldByEndpoint)
    }

    /// Waits until jobs finish (room opens), `externalChange()` turns true (checked every
    /// `checkInterval`), the board stops, or `deadline` passes. Several finishes coalesce into
    /// one wake-up.
    func waitForActivity(until deadline: Date, checkInterval: Double, externalChange: () -> Bool) {
        while !isStopping {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return }
            if room.wait(timeout: .now() + min(remaining, checkInterval)) == .success {
                while room.wait(timeout: .now()) == .success {}
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
        let unstarted = Array(waiting[waitingStart...])
        waiting.removeAll()
        waitingStart = 0
        for job in unstarted {
            heldByEndpoint[job.endpointID, default: 1] -= 1
            heldTotal -= 1
        }
        condition.broadcast()
        condition.unlock()
        room.signal()
        return unstarted
    }
}
