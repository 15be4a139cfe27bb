import Foundation
import Synchronization

/// How a `DeliveryService` runs.
public struct DeliveryServiceConfiguration: Sendable {
    /// Concurrent HTTP requests: one worker and one libcurl handle (with its kept-alive
    /// connections) each.
    public var workers: Int
    /// How often an idle pool claims anyway (retries coming due). Commits by other connections
    /// (producers) are noticed within `changeCheckInterval` whatever this is.
    public var pollInterval: Double
    /// How long a claim is held; a crashed worker's deliveries are retaken after it runs out.
    public var leaseSeconds: Double
    /// Response bodies are recorded up to this many bytes.
    public var responseBodyCap: Int
    public var destinationPolicy: DestinationPolicy
    /// Which URLs are attempted at all; `https` only by default.
    public var urlPolicy: URLPolicy
    public var logger: DispatcherLogger

    public init(workers: Int = 8, pollInterval: Double = 0.1, leaseSeconds: Double = 60,
                responseBodyCap: Int = 64 * 1024, destinationPolicy: DestinationPolicy = DestinationPolicy(),
                urlPolicy: URLPolicy = URLPolicy(), logger: DispatcherLogger = .standardError()) {
        self.workers = workers
        self.pollInterval = pollInterval
        self.leaseSeconds = leaseSeconds
        self.responseBodyCap = responseBodyCap
        self.destinationPolicy = destinationPolicy
        self.urlPolicy = urlPolicy
        self.logger = logger
    }

    /// The settings each worker's HTTP client gets.
    var clientConfiguration: HTTPClientConfiguration {
        HTTPClientConfiguration(responseBodyCap: responseBodyCap, destinationPolicy: destinationPolicy, urlPolicy: urlPolicy)
    }
}

/// The worker pool: claims due deliveries under a lease, POSTs them, records every attempt.
///
/// Embed it in a producer's process or run it as `dispatcher serve`:
///
/// ```swift
/// let service = DeliveryService(store: store, configuration: DeliveryServiceConfiguration(workers: 8))
/// service.start()
/// // ...
/// service.stop() // stops claiming, finishes in-flight attempts, releases the rest
/// ```
///
/// Threads: one claimer queue, one recorder queue and `workers` serial queues, each worker
/// owning one `HTTPClient` that no other queue touches.
public final class DeliveryService: Sendable {
    public let configuration: DeliveryServiceConfiguration
    /// Identifies this process's leases: host, pid and a random suffix.
    public let leaseOwner: String
    private let store: OutboxStore
    private let board = JobBoard()
    private let recorder: ResultRecorder
    private let endpoints: EndpointCache
    private let tokens = TokenCache()
    private let state = Mutex<State>(.idle)
    private let running = DispatchGroup()
    private let stopped = DispatchSemaphore(value: 0)

    private enum State { case idle, running, stopping, stopped }

    public init(store: OutboxStore, configuration: DeliveryServiceConfiguration = DeliveryServiceConfiguration()) {
        self.store = store
        self.configuration = configuration
        self.recorder = ResultRecorder(store: store, board: board, logger: configuration.logger)
        self.endpoints = EndpointCache(store: store)
        let host = ProcessInfo.processInfo.hostName
        self.leaseOwner = "\(host):\(getpid()):\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Starts the claimer, the recorder and the workers, and returns at once.
    public func start() {
        let shouldStart = state.withLock { state -> Bool in
            guard case .idle = state else { return false }
            state = .running
            return true
        }
        guard shouldStart else { return }
        recorder.start()
        let clientConfiguration = configuration.clientConfiguration
        for index in 0..<max(1, configuration.workers) {
            running.enter()
            DispatchQueue(label: "dispatcher.worker.\(index)").async {
                self.work(client: HTTPClient(configuration: clientConfiguration))
                self.running.leave()
            }
        }
        running.enter()
        DispatchQueue(label: "dispatcher.claimer").async {
            self.claimLoop()
            self.running.leave()
        }
        configuration.logger.log(.info, "delivering with \(configuration.workers) workers as \(leaseOwner)")
    }

    /// Stops gracefully and returns when done: no new claims, attempts in flight finish and
    /// are recorded, claimed deliveries not yet started are handed back due now.
    public func stop() {
        let shouldStop = state.withLock { state -> Bool in
            guard case .running = state else { return false }
            state = .stopping
            return true
        }
        guard shouldStop else {
            if state.withLock({ $0 }) == .stopping { stopped.wait(); stopped.signal() }
            return
        }
        let unstarted = board.stop()
        release(unstarted)
        running.wait()
        recorder.stopAndFlush()
        state.withLock { $0 = .stopped }
        configuration.logger.log(.info, "stopped; \(unstarted.count) unstarted deliveries handed back")
        stopped.signal()
    }

    /// Starts, then blocks until `stop()` has finished (from a signal handler, say).
    public func run() {
        start()
        stopped.wait()
        stopped.signal()
    }

    // MARK: - Loops

    /// Claims so that every worker has a job and a few waiting (results not yet recorded still
    /// count), in batches. After a claim it waits for the next recorded batch while anything is
    /// in flight (that frees room, per endpoint too); when idle, it waits for the poll interval
    /// but wakes within a few milliseconds when another connection commits (a producer's
    /// enqueue), so new events leave quickly without busy polling.
    private func claimLoop() {
        let capacity = max(1, configuration.workers) * 4
        var lastChange = (try? store.externalChangeToken()) ?? 0
        func externalChange() -> Bool {
            guard let token = try? store.externalChangeToken(), token != lastChange else { return false }
            lastChange = token
            return true
        }
        var failures = 0
        while !board.isStopping {
            let held = board.held
            let room = capacity - held.total
            if room > 0 {
                do {
                    let jobs = try store.claimDueDeliveries(
                        limit: room, owner: leaseOwner, leaseSeconds: configuration.leaseSeconds, inFlight: held.byEndpoint)
                    if failures > 0 { configuration.logger.log(.info, "claiming works again after \(failures) failed claim(s)") }
                    failures = 0
                    release(board.add(jobs))
                } catch {
                    failures += 1
                    // A database that is down: logged at the 1st, 2nd, 4th, 8th... failure, not every poll.
                    if failures & (failures - 1) == 0 {
                        configuration.logger.log(.error, "claiming deliveries failed (\(failures) in a row): \(error)")
                    }
                }
            }
            board.waitForActivity(until: Date().addingTimeInterval(Self.claimDelay(poll: configuration.pollInterval, failures: failures)),
                                  checkInterval: Self.changeCheckInterval, externalChange: externalChange)
        }
    }

    /// The poll interval, doubled for each failed claim in a row up to `maxClaimBackoff`: an
    /// unreachable database is retried without a storm of connection attempts.
    static func claimDelay(poll: Double, failures: Int) -> Double {
        guard failures > 0 else { return poll }
        return min(maxClaimBackoff, poll * pow(2, Double(min(failures, 16))))
    }

    static let maxClaimBackoff = 5.0

    /// How often an idle claimer asks the store whether another connection committed.
    static let changeCheckInterval = 0.005

    private func work(client: HTTPClient) {
        let runner = AttemptRunner(client: client, leaseOwner: leaseOwner, tokens: tokens)
        while let job = board.take() {
            let endpoint: Endpoint?
            do {
                endpoint = try endpoints.endpoint(id: job.endpointID, revision: job.endpointRevision)
            } catch {
                configuration.logger.log(.error, "loading endpoint \(job.endpointID) failed: \(error); delivery \(job.deliveryID) handed back")
                release([job])
                board.finish(endpointIDs: [job.endpointID])
                continue
            }
            let results = endpoint.map { runner.attempts(job, endpoint: $0) } ?? [runner.endpointMissing(job)]
            for result in results {
                let attempt = result.attempt
                configuration.logger.log(.debug, "delivery \(job.deliveryID) to \(job.endpointID) attempt \(attempt.number): \(attempt.responseStatus.map { "HTTP \($0)" } ?? attempt.errorKind?.rawValue ?? "")")
                if case .failed = attempt.verdict {
                    configuration.logger.log(.warning, "delivery \(job.deliveryID) of event \(job.eventID) to \(job.endpointID) failed after \(attempt.number) attempt(s): \(attempt.errorMessage ?? "")")
                }
                recorder.submit(result)
            }
        }
    }

    private func release(_ jobs: [ClaimedDelivery]) {
        guard !jobs.isEmpty else { return }
        do {
            try store.releaseLeases(deliveryIDs: jobs.map(\.deliveryID), owner: leaseOwner)
        } catch {
            configuration.logger.log(.error, "handing back \(jobs.count) deliveries failed (their leases will expire): \(error)")
        }
    }
}
