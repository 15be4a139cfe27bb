import CCurl
import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Foundation

/// The worker pool as one thread: a libcurl multi handle runs up to `slots` requests at once,
/// each on an easy handle of its own (its kept-alive connections with it).
///
/// One thread waiting in epoll for every socket (`SocketMulti`) costs far less than a thread per
/// request waiting in its own `poll`: no wake-up and context switch per request, and one wait
/// per batch of ready sockets. Measured against worker threads in alternating runs of the
/// benchmark's throughput phase: +16% deliveries/s (README "Performance").
///
/// What may block stays off this thread: an OAuth token that is not cached is fetched, and that
/// attempt made, by the classic synchronous `AttemptRunner` on a helper queue (as is the retry
/// after a 401, and a proxied request whose destination has no recent DNS verdict), so a slow
/// token endpoint or name server holds back its own deliveries only. Everything else
/// (headers, signing, the success rule, the retry policy) is the same `AttemptRunner` code.
///
/// Not `Sendable`: `run()` owns every property; other threads only wake it (the multi's waker,
/// through the board's `onChange`).
final class TransferLoop {
    private let board: JobBoard
    private let endpoints: EndpointCache
    private let tokens: TokenCache
    private let leaseOwner: String
    /// Every transfer runs on it; freed when the loop is.
    private let multi: SocketMulti
    /// The TLS sessions the slots' clients share (they all run on this loop's thread).
    private let tlsSessions: UnsafeMutableRawPointer?
    /// One client per slot, made up front so a libcurl that cannot make them fails `start()`;
    /// `run()` takes them.
    private var clients: [HTTPClient]
    private let clientConfiguration: HTTPClientConfiguration
    private let logger: DispatcherLogger
    /// Jobs to hand back (their endpoint could not be loaded).
    private let release: @Sendable ([ClaimedDelivery]) -> Void
    /// Entered for each helper task, so stopping waits for them as for this loop.
    private let running: DispatchGroup
    private let helpers = DispatchQueue(label: "dispatcher.token-attempts", attributes: .concurrent)
    /// Results this loop's thread finished in this turn, handed to the store loop together (one
    /// lock and one wake-up, not one per request) before the loop waits; helpers hand theirs
    /// over at once (`submit`).
    private var finishedResults: [AttemptResult] = []

    private struct Active {
        let client: HTTPClient
        let transfer: HTTPClient.Transfer
        let prepared: AttemptRunner.Prepared
    }

    /// Slots on one multi handle: few enough that libcurl's walks of a cache's connections (each
    /// time a transfer comes off its handle, and each new request's search for an idle one to its
    /// host) stay short (`SocketMulti`). 64 over 256: 156 against 162 µs a delivery at 2,000 in
    /// flight (README "Performance").
    static let slotsPerShard = 64

    init(board: JobBoard, endpoints: EndpointCache, tokens: TokenCache, leaseOwner: String, slots: Int,
         clientConfiguration: HTTPClientConfiguration, logger: DispatcherLogger, running: DispatchGroup,
         release: @escaping @Sendable ([ClaimedDelivery]) -> Void) throws(HTTPClientError) {
        multi = try SocketMulti(shards: (max(1, slots) + Self.slotsPerShard - 1) / Self.slotsPerShard)
        clients = try (0..<max(1, slots)).map { _ throws(HTTPClientError) in try HTTPClient(configuration: clientConfiguration) }
        // Without a share each client would resume only its own sessions.
        tlsSessions = curl_share_init()
        if let tlsSessions, dispatcher_curl_share_data(tlsSessions, CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK {
            for client in clients { client.tlsSessions = tlsSessions }
        }
        self.board = board
        self.endpoints = endpoints
        self.tokens = tokens
        self.leaseOwner = leaseOwner
        self.clientConfiguration = clientConfiguration
        self.logger = logger
        self.running = running
        self.release = release
    }

    deinit {
        // The clients went with `run()`; the multi handles' cached connections go before the
        // share their TLS sessions are in.
        multi.closeHandles()
        if let tlsSessions { curl_share_cleanup(tlsSessions) }
    }

    /// Runs until the board stops and the requests in flight have finished.
    func run() {
        let waker = multi.waker
        board.setOnChange { waker.wake() }
        defer { board.setOnChange(nil) }

        // Each slot's client always goes on the same multi handle, where its connections are.
        var idle = clients.enumerated().map { (client: $1, shard: $0 % multi.shardCount) }
        clients = []
        var active: [UnsafeMutableRawPointer: (transfer: Active, shard: Int)] = [:]
        var stopping = false
        while true {
            // Fill the free slots; with nothing in flight, wait for a job as a worker would.
            fill: while !stopping, let (client, shard) = idle.last {
                let job: ClaimedDelivery
                if active.isEmpty {
                    flushResults()
                    guard let next = board.take() else { stopping = true; break fill }
                    job = next
                } else {
                    switch board.poll() {
                    case .job(let next): job = next
                    case .empty: break fill
                    case .stopping: stopping = true; break fill
                    }
                }
                guard let transfer = start(job, on: client) else { continue }
                guard multi.add(client.handle, shard: shard) else {
                    complete(transfer.prepared, exchange: client.finish(transfer.transfer, code: CURLE_FAILED_INIT), client: client)
                    continue
                }
                idle.removeLast()
                active[client.handle] = (transfer, shard)
            }
            flushResults()
            if active.isEmpty {
                if stopping { return }
                continue
            }

            // Until a socket is ready, a transfer's timer runs out, jobs arrive or the board
            // stops: then libcurl runs what is ready. Freed slots take the jobs already waiting
            // before the loop waits again (the board wakes it only when jobs are added).
            switch multi.run(waitingUpTo: 1000) {
            case .success(let finished):
                for (handle, code) in finished {
                    guard let (done, shard) = active.removeValue(forKey: handle) else { continue }
                    multi.remove(handle, shard: shard)
                    complete(done.prepared, exchange: done.client.finish(done.transfer, code: code), client: done.client)
                    idle.append((done.client, shard))
                }
                flushResults()
            case .failure(let failure):
                // The multi handle itself failed (memory, a bad handle): no transfer can go on,
                // so each ends as an error attempt, recorded, rather than waiting forever.
                logger.log(.error, "libcurl multi handle failed: \(failure); \(active.count) requests end as errors")
                for (handle, (done, shard)) in active {
                    multi.remove(handle, shard: shard)
                    complete(done.prepared, exchange: done.client.finish(done.transfer, code: CURLE_FAILED_INIT), client: done.client)
                    idle.append((done.client, shard))
                }
                active.removeAll()
            }
        }
    }

    /// Sets `job`'s request up on `client`; nil when the job was settled without a transfer
    /// here (no endpoint, a request that cannot be built or is refused, or a token to fetch).
    private func start(_ job: ClaimedDelivery, on client: HTTPClient) -> Active? {
        let endpoint: Endpoint?
        do {
            endpoint = try endpoints.endpoint(id: job.endpointID, revision: job.endpointRevision)
        } catch {
            logger.log(.error, "loading endpoint \(job.endpointID) failed: \(error); delivery \(job.deliveryID) handed back")
            release([job])
            board.finish(endpointIDs: [job.endpointID])
            return nil
        }
        let runner = AttemptRunner(client: client, leaseOwner: leaseOwner, tokens: tokens)
        guard let endpoint else {
            finishedResults.append(Self.logged(runner.endpointMissing(job), of: job, logger: logger))
            return nil
        }
        var token: Result<String?, AttemptRunner.Unsendable> = .success(nil)
        if case .oauth2ClientCredentials(let credentials) = endpoint.auth {
            guard let cached = tokens.cachedToken(for: credentials) else {
                onHelper(job) { $0.attempts(job, endpoint: endpoint) }
                return nil
            }
            token = .success(cached)
        }
        let prepared = runner.prepare(job, endpoint: endpoint, number: job.attemptNumber, startedAt: Date(), token: token)
        guard case .success(let request) = prepared.request else {
            complete(prepared, exchange: nil, client: client)
            return nil
        }
        // Through a proxy the destination is judged by resolving its host, which blocks: off
        // this thread unless a recent verdict is kept.
        if request.proxy != nil, !ProxiedDestinations.shared.isKnown(request.url, policy: client.destinationPolicy) {
            onHelper(job) { $0.attempts(job, endpoint: endpoint) }
            return nil
        }
        switch client.begin(request) {
        case .refused(let exchange):
            complete(prepared, exchange: exchange, client: client)
            return nil
        case .ready(let transfer):
            return Active(client: client, transfer: transfer, prepared: prepared)
        }
    }

    /// Judges a finished request and hands its result to the store loop; a 401 to a cached
    /// token is answered at once with a fresh one, on a helper.
    private func complete(_ prepared: AttemptRunner.Prepared, exchange: HTTPExchange?, client: HTTPClient) {
        let runner = AttemptRunner(client: client, leaseOwner: leaseOwner, tokens: tokens)
        let finished = runner.finish(prepared, exchange: exchange)
        let job = prepared.delivery, endpoint = prepared.endpoint
        guard let interim = runner.interimAfterRejectedToken(finished, endpoint: endpoint) else {
            finishedResults.append(Self.logged(finished.result, of: job, logger: logger))
            return
        }
        // The interim attempt goes now, before the helper's retry can finish: it counts under
        // the lease that the retry's result then releases.
        finishedResults.append(Self.logged(interim, of: job, logger: logger))
        flushResults()
        onHelper(job) { [$0.retryWithFreshToken(job, endpoint: endpoint)] }
    }

    /// Runs attempts that may block (a token fetch first) with a client of their own, off the loop.
    private func onHelper(_ job: ClaimedDelivery, _ attempts: @escaping @Sendable (AttemptRunner) -> [AttemptResult]) {
        let board = board, logger = logger, tokens = tokens, leaseOwner = leaseOwner, release = release
        let clientConfiguration = clientConfiguration, running = running
        running.enter()
        helpers.async {
            defer { running.leave() }
            let client: HTTPClient
            do {
                client = try HTTPClient(configuration: clientConfiguration)
            } catch {
                logger.log(.error, "delivery \(job.deliveryID): \(error); handed back")
                release([job])
                board.finish(endpointIDs: [job.endpointID])
                return
            }
            let runner = AttemptRunner(client: client, leaseOwner: leaseOwner, tokens: tokens)
            Self.submit(attempts(runner), of: job, to: board, logger: logger)
        }
    }

    private func flushResults() {
        guard !finishedResults.isEmpty else { return }
        board.submit(contentsOf: finishedResults)
        finishedResults.removeAll(keepingCapacity: true)
    }

    /// Logs each attempt and hands it to the store loop.
    private static func submit(_ results: [AttemptResult], of job: ClaimedDelivery, to board: JobBoard, logger: DispatcherLogger) {
        board.submit(contentsOf: results.map { logged($0, of: job, logger: logger) })
    }

    /// Logs an attempt; returns it. One at a time: an array per attempt was an allocation per request.
    private static func logged(_ result: AttemptResult, of job: ClaimedDelivery, logger: DispatcherLogger) -> AttemptResult {
        let attempt = result.attempt
        logger.log(.debug, "delivery \(job.deliveryID) to \(job.endpointID) attempt \(attempt.number): \(attempt.responseStatus.map { "HTTP \($0)" } ?? attempt.errorKind?.rawValue ?? "")",
                   .attempt(attempt, of: job))
        if case .failed = attempt.verdict {
            logger.log(.warning, "delivery \(job.deliveryID) of event \(job.eventID) to \(job.endpointID) failed after \(attempt.number) attempt(s): \(attempt.errorMessage ?? "")",
                       .attempt(attempt, of: job))
        }
        return result
    }
}
