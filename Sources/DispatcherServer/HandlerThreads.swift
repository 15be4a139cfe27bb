import DispatcherModel
import Foundation

/// Threads that run request handlers: one per request in progress, kept for a while when idle
/// so the next request finds one ready. Handlers block (a database read, a commit, a scripted
/// delay), so they get threads of their own rather than Dispatch's shared pool, which other
/// work in the process may have filled with waiting tasks.
///
/// `@unchecked Sendable`: `jobs`, `idle` and `threads` are touched only with `condition` locked.
final class HandlerThreads: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var idle = 0
    private var threads = 0
    /// How long an idle thread waits for work before it ends.
    private let keepAlive: TimeInterval = 30

    func run(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        if idle >= jobs.count {
            condition.signal()
        } else {
            threads += 1
            NamedThread.start("http.handler") { [self] in work() }
        }
        condition.unlock()
    }

    private func work() {
        condition.lock()
        while true {
            if jobs.isEmpty {
                idle += 1
                let woken = condition.wait(until: Date().addingTimeInterval(keepAlive))
                idle -= 1
                if !woken && jobs.isEmpty {
                    threads -= 1
                    condition.unlock()
                    return
                }
                continue
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
            condition.lock()
        }
    }
}
