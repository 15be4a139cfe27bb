import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Foundation
import Synchronization

/// How a `DeliveryService` runs.
public struct DeliveryServiceConfiguration: Sendable {
    /// Concurrent HTTP requests: slots in the transfer loop, each a libcurl handle with its
    /// kept-alive connections.
    public var concurrentRequests: Int
    /// How often an idle pool claims anyway (retries coming due). Commits by other connections
    /// (producers) are noticed within `changeCheckInterval` whatever this is.
    public var pollInterval: Double
    /// How long a claim is held; a crashed worker's deliveries are retaken after it runs out.
    public var leaseSeconds: Double
    /// Response bodies are recorded up to this many bytes.
    public var responseBodyCap: Int
    /// Response headers are recorded up to this many, and this many bytes; the rest are
    /// counted in one `X-Dispatcher-Headers-Truncated` entry.
    public var responseHeaderCap = ResponseHeaderCap()
    public var destinationPolicy: DestinationPolicy
    /// Which URLs are attempted at all; `https` only by default.
    public var urlPolicy: URLPolicy
    /// An HTTP proxy for every endpoint that names none (`http://[user:password@]host:port` or
    /// `env:NAME`), so receivers can allowlist its address; nil for direct connections.
    public var proxy: String?
    /// Endpoints that get their own `endpoint` label in `/metrics`; the rest are summed into `(other)`.
    public var maxEndpointLabels = 100
    public var logger: DispatcherLogger

    public init(concurrentRequests: Int = 8, pollInterval: Double = 0.1, leaseSeconds: Double = 60,
                responseBodyCap: Int = 64 * 1024, destinationPolicy: DestinationPolicy = DestinationPolicy(),
                urlPolicy: URLPolicy = URLPolicy(), logger: DispatcherLogger = .standardError()) {
        self.concurrentRequests = concurrentRequests
        self.pollInterval = pollInterval
        self.leaseSeconds = leaseSeconds
        self.responseBodyCap = responseBodyCap
        self.destinationPolicy = destinationPolicy
        self.urlPolicy = urlPolicy
        self.logger = logger
    }

    /// The settings every HTTP client of the service gets.
    package var clientConfiguration: HTTPClientConfiguration {
        HTTPClientConfiguration(responseBodyCap: responseBodyCap, responseHeaderCap: responseHeaderCap,
                                destinationPolicy: destinationPolicy, urlPolicy: urlPolicy, proxy: proxy)
    }
}

/// The worker pool: claims due deliveries under a lease, POSTs them, records every attempt.
///
/// Embed it in a producer's process or run it as `dispatcher serve`:
///
/// ```swift
/// let service = DeliveryService(store: store, configuration: DeliveryServiceConfiguration(concurrentRequests: 8))
/// try service.start()
/// // ...
/// service.stop() // stops claiming, finishes in-flight attempts, releases the rest
/// ```
///
/// Threads: one store loop (the only one that records and claims) and one transfer loop that
/// runs up to `concurrentRequests` requests at once (`TransferLoop`), plus a helper for the attempts that
/// must first fetch an OAuth token.
public final class DeliveryService: Sendable {
    public let configuration: DeliveryServiceConfiguration
    /// Identifies this process's leases: host, pid and a random suffix.
    public let leaseOwner: String
    private let store: any DeliveryQueue & EndpointDirectory
    /// Deliveries claimed ahead of each worker (`OutboxStore.claimsAheadPerWorker`).
    private let claimsAheadPerWorker: Int
    private let board = JobBoard()
    private let endpoints: EndpointCache
    private let tokens: TokenCache
    /// What this service counts of its own work, for `/metrics` (`MetricsExporter`).
    package let metrics: ServiceMetrics
    private let state = Mutex<State>(.idle)
    private let transfersRunning = DispatchGroup()
    private let storeLoopRunning = DispatchGroup()
    private let stopped = DispatchSemaphore(value: 0)
    /// Why the service stopped by itself, for `run()` to throw.
    private let failure = Mutex<DispatcherError?>(nil)

    private enum State { case idle, running, stopping, stopped }

    public init(store: OutboxStore, configuration: DeliveryServiceConfiguration = DeliveryServiceConfiguration()) {
        self.store = store
        self.claimsAheadPerWorker = store.claimsAheadPerWorker
        self.configuration = configuration
        self.endpoints = EndpointCache(store: store)
        let tokens = TokenCache()
        self.tokens = tokens
        self.metrics = ServiceMetrics(endpointLabels: BoundedLabels(limit: configuration.maxEndpointLabels), tokens: tokens)
        let host = ProcessInfo.processInfo.hostName
        self.leaseOwner = "\(host):\(getpid()):\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Starts the store loop and the transfer loop, and returns at once. Throws, having started
    /// nothing, when libcurl cannot make the transfer loop's handles or lacks a feature the
    /// delivery rules rely on (see `HTTPClient.init`).
    public func start() throws {
        // All of it under the state lock: a `stop()` racing the start sees either a service
        // that never started or one whose loops are already counted in the groups it waits on.
        let started = try state.withLock { state throws(DispatcherError) -> Bool in
            guard case .idle = state else { return false }
            let transfers: TransferLoop
            do {
                transfers = try TransferLoop(
                    board: board, endpoints: endpoints, tokens: tokens, leaseOwner: leaseOwner, slots: configuration.concurrentRequests,
                    clientConfiguration: configuration.clientConfiguration, logger: configuration.logger, running: transfersRunning,
                    release: { self.release($0) })
            } catch {
                throw DispatcherError.cannotStart("\(error)")
            }
            transfersRunning.enter()
            let handoff = Handoff(transfers)
            NamedThread.start("transfers") {
                handoff.value.run()
                self.transfersRunning.leave()
            }
            storeLoopRunning.enter()
            NamedThread.start("store.loop") {
                self.storeLoop()
                self.storeLoopRunning.leave()
            }
            state = .running
            return true
        }
        if started {
            configuration.logger.log(.info, "delivering with \(configuration.concurrentRequests) transfer slots as \(leaseOwner)")
        }
    }

    /// Stops gracefully and returns when done: no new claims, attempts in flight finish and
    /// are recorded, claimed deliveries not yet started are handed back due now.
    public func stop() {
        // A stop that comes before the start (a signal, or `--exit-when-idle` finding nothing to
        // do, racing `run()`) stops the service for good: the start that follows does nothing
        // and `run()` returns, instead of delivering with no one left to stop it.
        let previous = state.withLock { state -> State in
            let previous = state
            switch state {
            case .idle: state = .stopped
            case .running: state = .stopping
            case .stopping, .stopped: break
            }
            return previous
        }
        switch previous {
        case .running: break
        case .idle:
            configuration.logger.log(.info, "stopped before starting")
            stopped.signal()
            return
        case .stopping:
            stopped.wait()
            stopped.signal()
            return
        case .stopped:
            return
        }
        let unstarted = board.stop()
        release(unstarted)
        transfersRunning.wait()
        board.closeResults()
        storeLoopRunning.wait()
        state.withLock { $0 = .stopped }
        configuration.logger.log(.info, "stopped; \(unstarted.count) unstarted deliveries handed back")
        stopped.signal()
    }

    /// Starts, then blocks until `stop()` has finished (from a signal handler, say). Throws
    /// `storeUnusable` when the service stopped itself because the store failed for good.
    public func run() throws {
        try start()
        stopped.wait()
        stopped.signal()
        if let failure = failure.withLock({ $0 }) { throw failure }
    }

    // MARK: - Loops

    /// The one thread that writes: each cycle records the results transfers finished since the
    /// last one and, in the same transaction, claims so that every worker has a job and a few
    /// waiting (results not yet recorded still count against that, though no longer against an
    /// endpoint's `max_concurrency`). One commit per cycle, not one for the
    /// results and one for the claim: the rows just finished and just leased sit on the same
    /// pages, and nothing contends for the store's connection.
    ///
    /// With nothing to record it waits for results, the poll interval (retries coming due),
    /// or, checked every few milliseconds, a commit by another connection (a producer's
    /// enqueue), so new events leave quickly without busy polling. A failed cycle keeps its
    /// results and writes them, without claiming, after a back-off: a claim that keeps failing
    /// never holds results back, and a database that is down is not hammered.
    private func storeLoop() {
        let workers = max(1, configuration.concurrentRequests)
        let capacity = workers + min(workers * claimsAheadPerWorker, Self.maxClaimedAhead)
        var lastChange = (try? store.externalChangeToken()) ?? 0
        func externalChange() -> Bool {
            guard let token = try? store.externalChangeToken(), token != lastChange else { return false }
            lastChange = token
            return true
        }
        /// Until results arrive, the poll interval passes (retries coming due) or another
        /// connection commits.
        func waitForWork() {
            board.waitForActivity(until: Date().addingTimeInterval(configuration.pollInterval),
                                  checkInterval: Self.changeCheckInterval, externalChange: externalChange)
        }
        var failures = 0
        var handedBack = 0
        var retryAt = Date.distantPast
        var nextHealthCheck = Date()
        while true {
            if failures > 0 && Date() < retryAt {
                // Backing off; once stopping, only briefly: the last results are tried a few times.
                board.waitForActivity(until: board.resultsClosed ? min(retryAt, Date().addingTimeInterval(0.1)) : retryAt,
                                      checkInterval: Self.changeCheckInterval) { false }
                if !board.resultsClosed { continue }
            }
            // A job that waited for a slot through half its lease goes back to the store instead
            // of starting: its attempt could outlast the lease, and the delivery, claimable again
            // once the lease runs out, be attempted twice (by another process, or by this one).
            let stale = board.takeStale(leasedBefore: Clock.nowMilliseconds() - Int64(configuration.leaseSeconds * 500))
            if !stale.isEmpty {
                release(stale)
                board.finish(endpointIDs: stale.map(\.endpointID))
                handedBack += 1
                // Logged at the 1st, 2nd, 4th, 8th... time, not every cycle of an overload.
                if handedBack & (handedBack - 1) == 0 {
                    configuration.logger.log(.warning, "handed back \(stale.count) claimed deliveries that waited half their lease (\(configuration.leaseSeconds) s) for a slot (\(handedBack) time(s) so far): the receivers are slower than the workers and lease allow")
                }
            }
            let (results, closed) = board.takeResults(limit: Self.maxResultsPerCycle)
            if results.isEmpty && closed { return }
            // The endpoints whose deliveries these results release (an interim 401 keeps its lease).
            let finishing = results.compactMap { $0.keepsLease ? nil : $0.endpointID }
            if closed && failures >= Self.writeAttemptsAtStop {
                configuration.logger.log(.error, "giving up on \(results.count) attempt record(s); their deliveries will be retried when the lease expires")
                board.finish(endpointIDs: finishing)
                continue
            }
            var held = board.held
            held.total -= finishing.count
            for endpointID in finishing { held.byEndpoint[endpointID, default: 1] -= 1 }
            let claimLimit = board.isStopping || (failures > 0 && !results.isEmpty) ? 0 : capacity - held.total
            if results.isEmpty && claimLimit <= 0 {
                waitForWork()
                continue
            }
            do {
                if Date() >= nextHealthCheck {
                    try store.checkHealth()
                    nextHealthCheck = Date().addingTimeInterval(1)
                }
                let cycleStart = DispatchTime.now()
                let cycle = try store.recordAndClaim(results, claimLimit: max(0, claimLimit), owner: leaseOwner,
                                                     leaseSeconds: configuration.leaseSeconds, inFlight: held.byEndpoint,
                                                     awaitingRecord: held.awaitingRecord)
                metrics.recordCycle(results, cycleSeconds: Double(DispatchTime.now().uptimeNanoseconds - cycleStart.uptimeNanoseconds) / 1e9,
                                    commitSeconds: cycle.commitSeconds)
                if failures > 0 { configuration.logger.log(.info, "recording and claiming work again after \(failures) failure(s)") }
                failures = 0
                for endpoint in cycle.disabled {
                    configuration.logger.log(.warning, "endpoint \(endpoint.endpointID) disabled: \(endpoint.reason)",
                                             [("endpoint", .string(endpoint.endpointID)), ("reason", .string(endpoint.reason))])
                }
                board.finish(endpointIDs: finishing)
                endpoints.preload(cycle.claimed)
                release(board.add(cycle.claimed))
            } catch {
                failures += 1
                board.putBack(results)
                // Logged at the 1st, 2nd, 4th, 8th... failure in a row, not every poll.
                if failures & (failures - 1) == 0 {
                    configuration.logger.log(.error, "recording \(results.count) attempt(s) and claiming failed (\(failures) in a row): \(error)")
                }
                retryAt = Date().addingTimeInterval(Self.claimDelay(poll: configuration.pollInterval, failures: failures))
                // Corrupt, not a database, read-only or deleted: the back-off has had its
                // chances; stop and say so rather than retry forever.
                if let sqlite = error as? SQLiteError, sqlite.cannotHeal, failures >= Self.attemptsOnUnhealableErrors, !board.isStopping {
                    configuration.logger.log(.error, "giving up after \(failures) failures that retrying does not mend: \(sqlite)")
                    failure.withLock { $0 = .storeUnusable(sqlite.description) }
                    DispatchQueue.global().async { self.stop() }
                }
                continue
            }
            // Straight on while results wait.
            if !board.hasResults { waitForWork() }
        }
    }

    /// Failed cycles in a row, with an error that cannot heal, before the service stops
    /// (about six seconds of back-off).
    static let attemptsOnUnhealableErrors = 6

    /// Deliveries claimed beyond the workers' own, so a freed slot finds its next job waiting: three
    /// per worker (sixteen on PostgreSQL), but no more than this in all, since each holds its event's
    /// body (with 10,000 workers, 30,000 of them were about 60 MB).
    static let maxClaimedAhead = 2_048

    /// Upper bound on the results one transaction records.
    static let maxResultsPerCycle = 500

    /// Once stopping, a write of the last results is tried this many times before their leases
    /// are left to expire (the deliveries are then attempted again).
    static let writeAttemptsAtStop = 3

    /// The poll interval, doubled for each failed cycle in a row up to `maxClaimBackoff`: an
    /// unreachable database is retried without a storm of connection attempts.
    static func claimDelay(poll: Double, failures: Int) -> Double {
        guard failures > 0 else { return poll }
        return min(maxClaimBackoff, poll * pow(2, Double(min(failures, 16))))
    }

    static let maxClaimBackoff = 5.0

    /// How often an idle store loop asks the store whether another connection committed.
    static let changeCheckInterval = 0.005

    private func release(_ jobs: [ClaimedDelivery]) {
        guard !jobs.isEmpty else { return }
        do {
            try store.releaseLeases(deliveryIDs: jobs.map(\.deliveryID), owner: leaseOwner)
        } catch {
            configuration.logger.log(.error, "handing back \(jobs.count) deliveries failed (their leases will expire): \(error)")
        }
    }
}

/// Moves a value that is not `Sendable` to the one thread that owns it from then on.
///
/// `@unchecked Sendable`: the sender gives the value up; only the receiving closure touches it.
private struct Handoff<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
