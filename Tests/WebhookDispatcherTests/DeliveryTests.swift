import Foundation
import XCTest
@testable import DispatcherStore
@testable import DispatcherWorker
import WebhookDispatcher

/// The worker pool against a real receiver over real libcurl: what is sent, how responses are
/// judged, how retries run, and what the audit log keeps.
final class DeliveryTests: DispatcherTestCase {
    /// The store loop loads a claim's endpoints into the workers' cache before the transfer loop
    /// takes the jobs, so starting a request never waits for the store: once preloaded, an
    /// endpoint is answered from memory (even after the store lost it), and a job that names a
    /// newer revision than the one cached loads again.
    func testAClaimsEndpointsArePreloadedAndANewerRevisionIsLoadedAgain() throws {
        try addTenant(endpoints: [endpoint("ep-a", url: "https://example.com/a"), endpoint("ep-b", url: "https://example.com/b")])
        func job(_ endpointID: String, revision: Int) -> ClaimedDelivery {
            ClaimedDelivery(deliveryID: 1, eventID: "e", eventType: "t", tenantID: "tenant-a", endpointID: endpointID,
                            endpointRevision: revision, attemptNumber: 1, body: [], createdAt: Date())
        }
        let cache = EndpointCache(store: store)
        cache.preload([job("ep-a", revision: 1), job("ep-a", revision: 1), job("ep-unknown", revision: 1)])
        _ = try store.removeEndpoint(id: "ep-a")
        _ = try store.removeEndpoint(id: "ep-b")
        XCTAssertEqual(try cache.endpoint(id: "ep-a", revision: 1)?.url, "https://example.com/a", "answered from the preload")
        XCTAssertNil(try cache.endpoint(id: "ep-b", revision: 1), "not preloaded: read from the store, where it is gone")
        XCTAssertNil(try cache.endpoint(id: "ep-unknown", revision: 1))
        XCTAssertNil(try cache.endpoint(id: "ep-a", revision: 2), "a newer revision than the cached one is read again")
    }

    func testDeliversTheExactBodyWithTheWebhookHeaders() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url(), headers: ["X-Clinic": "a", "X-Api-Key": "s3cret-value"])])
        try startService()
        let body = "{\"status\":\"succeeded\", \"n\": 1.50,\n\"s\":\"\\u00e9\"}"
        let event = try enqueue(body)
        let record = try waitForFinalDeliveries(of: event.eventID)

        let request = try XCTUnwrap(receiver.requests.first)
        XCTAssertEqual(receiver.requests.count, 1)
        XCTAssertEqual(request.method, "POST")
        XCTAssertEqual(request.body, Array(body.utf8))
        XCTAssertEqual(request.header("Content-Type"), "application/json")
        XCTAssertEqual(request.header("webhook-id"), event.eventID)
        XCTAssertEqual(request.header("User-Agent"), "dispatcher/\(DispatcherVersion.current)")
        let timestamp = try XCTUnwrap(request.header("webhook-timestamp").flatMap(Double.init))
        XCTAssertEqual(timestamp, Date().timeIntervalSince1970, accuracy: 30)
        XCTAssertEqual(request.header("X-Clinic"), "a")
        XCTAssertEqual(request.header("X-Api-Key"), "s3cret-value")
        XCTAssertNil(request.header("Expect"))

        XCTAssertEqual(record.deliveries.first?.delivery.status, .succeeded)
        let attempt = try XCTUnwrap(record.deliveries.first?.attempts.first)
        XCTAssertEqual(attempt.requestHeaders.first { $0.name == "X-Api-Key" }?.value, "***", "secrets are redacted in the audit log")
        XCTAssertEqual(attempt.requestHeaders.first { $0.name == "X-Clinic" }?.value, "a")
    }

    func testAWorkerKeepsItsConnectionAliveBetweenDeliveries() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try startService(concurrentRequests: 1)
        var last: EnqueueResult?
        for _ in 0..<5 {
            last = try enqueue()
            try waitForFinalDeliveries(of: last!.eventID)
        }
        XCTAssertEqual(receiver.requests.count, 5)
        XCTAssertEqual(receiver.connectionsAccepted, 1)
    }

    func testFanOutDeliversToEveryMatchingEndpoint() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [
            endpoint("one", url: receiver.url("/one")),
            endpoint("two", url: receiver.url("/two"), events: ["checkin.*"]),
            endpoint("three", url: receiver.url("/three"), events: ["visit.*"]),
        ])
        try startService()
        let event = try enqueue(type: "checkin.outcome")
        let record = try waitForFinalDeliveries(of: event.eventID)
        XCTAssertEqual(record.deliveries.map(\.delivery.status), [.succeeded, .succeeded])
        XCTAssertEqual(Set(receiver.requests.map(\.path)), ["/one", "/two"])
    }

    func testOneRetryMakesExactlyTwoAttemptsOn503() throws {
        let receiver = try makeReceiver { _, _ in .respond(status: 503, body: #"{"error":"busy"}"#) }
        try addTenant(endpoints: [endpoint(url: receiver.url(), retry: .oneRetry(delaySeconds: 0.05))])
        try startService()
        let event = try enqueue()
        let record = try waitForFinalDeliveries(of: event.eventID)
        let delivery = try XCTUnwrap(record.deliveries.first)
        XCTAssertEqual(delivery.delivery.status, .failed)
        XCTAssertEqual(delivery.attempts.map(\.number), [1, 2])
        XCTAssertEqual(delivery.attempts.map(\.responseStatus), [503, 503])
        guard case .retryScheduled = delivery.attempts[0].verdict else { return XCTFail("first verdict \(delivery.attempts[0].verdict)") }
        XCTAssertEqual(delivery.attempts[1].verdict, .failed)
        XCTAssertEqual(receiver.requests.count, 2)
        // The retry is the same request: same body, same event id.
        XCTAssertEqual(receiver.requests[0].body, receiver.requests[1].body)
        XCTAssertEqual(receiver.requests[0].header("webhook-id"), receiver.requests[1].header("webhook-id"))
    }

    func testOneRetryMakesOneAttemptOn204() throws {
        let receiver = try makeReceiver { _, _ in .respond(status: 204, contentType: nil, body: "") }
        try addTenant(endpoints: [endpoint(url: receiver.url(), retry: .oneRetry(delaySeconds: 0), success: .json200Or204)])
        try startService()
        let record = try waitForFinalDeliveries(of: enqueue().eventID)
        XCTAssertEqual(record.deliveries.first?.delivery.status, .succeeded)
        XCTAssertEqual(record.deliveries.first?.attempts.count, 1)
        XCTAssertEqual(receiver.requests.count, 1)
    }

    func testOneRetryRetriesOnceAfterAFailureThenSucceeds() throws {
        let receiver = try makeReceiver { _, index in index == 0 ? .respond(status: 500) : .respond(status: 200) }
        try addTenant(endpoints: [endpoint(url: receiver.url(), retry: .oneRetry(delaySeconds: 0))])
        try startService()
        let record = try waitForFinalDeliveries(of: enqueue().eventID)
        XCTAssertEqual(record.deliveries.first?.delivery.status, .succeeded)
        XCTAssertEqual(record.deliveries.first?.attempts.map(\.responseStatus), [500, 200])
    }

    func testJSON200Or204TreatsPlainText200AsFailure() throws {
        let receiver = try makeReceiver { path, _ in
            path == "/text" ? .respond(status: 200, contentType: "text/plain", body: "ok") : .respond(status: 200, contentType: "application/json; charset=utf-8")
        }
        try addTenant(endpoints: [
            endpoint("text", url: receiver.url("/text"), retry: .oneRetry(delaySeconds: 0), success: .json200Or204),
            endpoint("json", url: receiver.url("/json"), retry: .oneRetry(delaySeconds: 0), success: .json200Or204),
        ])
        try startService()
        let record = try waitForFinalDeliveries(of: enqueue().eventID)
        let byEndpoint = Dictionary(uniqueKeysWithValues: record.deliveries.map { ($0.delivery.endpointID, $0) })
        XCTAssertEqual(byEndpoint["text"]?.delivery.status, .failed)
        XCTAssertEqual(byEndpoint["text"]?.attempts.count, 2)
        XCTAssertEqual(byEndpoint["text"]?.attempts.first?.errorKind, .http)
        XCTAssertTrue(byEndpoint["text"]?.attempts.first?.errorMessage?.contains("text/plain") ?? false)
        XCTAssertEqual(byEndpoint["json"]?.delivery.status, .succeeded)
        XCTAssertEqual(byEndpoint["json"]?.attempts.count, 1)
    }

    func testExponentialMakesMaxAttemptsThenFails() throws {
        let receiver = try makeReceiver { _, _ in .respond(status: 500) }
        let policy = RetryPolicy.exponential(.init(initialSeconds: 0.02, factor: 2, maxSeconds: 0.1, maxAttempts: 4))
        try addTenant(endpoints: [endpoint(url: receiver.url(), retry: policy)])
        try startService()
        let record = try waitForFinalDeliveries(of: enqueue().eventID)
        let delivery = try XCTUnwrap(record.deliveries.first)
        XCTAssertEqual(delivery.delivery.status, .failed)
        XCTAssertEqual(delivery.delivery.attemptCount, 4)
        XCTAssertEqual(delivery.attempts.map(\.number), [1, 2, 3, 4])
        XCTAssertEqual(receiver.requests.count, 4)
        XCTAssertEqual(delivery.delivery.lastHTTPStatus, 500)
    }

    func testAReceiverTimeoutIsRecordedAsTimeout() throws {
        let receiver = try makeReceiver { _, _ in .delay(seconds: 10, then: .init(status: 200)) }
        try addTenant(endpoints: [endpoint(url: receiver.url(), timeout: 0.3)])
        try startService()
        let record = try waitForFinalDeliveries(of: enqueue().eventID)
        let attempt = try XCTUnwrap(record.deliveries.first?.attempts.first)
        XCTAssertEqual(attempt.errorKind, .timeout)
        XCTAssertNil(attempt.responseStatus)
        XCTAssertLessThan(attempt.durationMicroseconds, 3_000_000)
        XCTAssertEqual(record.deliveries.first?.delivery.status, .failed)
    }

    func testAClosedConnectionAndARefusedOneAreRecordedWithTheirKinds() throws {
        let receiver = try makeReceiver { _, _ in .close }
        // A port that was just free: nothing listens there.
        let closedPort = try TestReceiver()
        let deadURL = closedPort.url()
        closedPort.stop()
        try addTenant(endpoints: [endpoint("drops", url: receiver.url()), endpoint("refuses", url: deadURL)])
        try startService()
        let record = try waitForFinalDeliveries(of: enqueue().eventID)
        let kinds = Dictionary(uniqueKeysWithValues: record.deliveries.map { ($0.delivery.endpointID, $0.attempts.first?.errorKind) })
        XCTAssertEqual(kinds["drops"], .network)
        XCTAssertEqual(kinds["refuses"], .connect)
    }

    func testTheAuditLogHoldsStatusHeadersAndBodyOfEachAttempt() throws {
        let receiver = try makeReceiver { _, index in
            index == 0
                ? .respond(status: 503, contentType: "text/plain", body: "try later", headers: [HeaderField("Retry-After", "1"), HeaderField("Set-Cookie", "session=abc")])
                : .respond(status: 200, body: #"{"success":true}"#)
        }
        try addTenant(endpoints: [endpoint(url: receiver.url(), retry: .oneRetry(delaySeconds: 0))])
        try startService()
        let record = try waitForFinalDeliveries(of: enqueue().eventID)
        let attempts = try XCTUnwrap(record.deliveries.first?.attempts)
        XCTAssertEqual(attempts.count, 2)

        XCTAssertEqual(attempts[0].responseStatus, 503)
        XCTAssertEqual(attempts[0].responseBody, Array("try later".utf8))
        XCTAssertEqual(attempts[0].responseHeaders?.first { $0.name == "Retry-After" }?.value, "1")
        XCTAssertEqual(attempts[0].responseHeaders?.first { $0.name == "Set-Cookie" }?.value, "***")
        XCTAssertEqual(attempts[0].errorKind, .http)
        XCTAssertEqual(attempts[0].url, receiver.url())
        XCTAssertTrue(attempts[0].requestHeaders.contains(HeaderField("webhook-id", record.event.id)))
        XCTAssertGreaterThan(attempts[0].durationMicroseconds, 0)

        XCTAssertEqual(attempts[1].responseStatus, 200)
        XCTAssertEqual(attempts[1].responseBody, Array(#"{"success":true}"#.utf8))
        XCTAssertEqual(attempts[1].responseHeaders?.first { $0.name == "Content-Type" }?.value, "application/json")
        XCTAssertNil(attempts[1].errorKind)
        XCTAssertEqual(attempts[1].verdict, .succeeded)
        XCTAssertFalse(attempts[1].responseTruncated)
    }

    func testLargeResponseBodiesAreCappedAndMarkedTruncated() throws {
        let big = String(repeating: "x", count: 200_000)
        let receiver = try makeReceiver { _, _ in .respond(status: 200, contentType: "text/plain", body: big) }
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try startService(responseBodyCap: 1_000)
        let attempt = try XCTUnwrap(waitForFinalDeliveries(of: enqueue().eventID).deliveries.first?.attempts.first)
        XCTAssertEqual(attempt.responseStatus, 200)
        XCTAssertEqual(attempt.responseBody?.count, 1_000)
        XCTAssertTrue(attempt.responseTruncated)
        XCTAssertEqual(attempt.verdict, .succeeded)
    }

    func testRedirectsAreNotFollowed() throws {
        let receiver = try makeReceiver { path, _ in
            path == "/hook" ? .respond(status: 302, contentType: nil, body: "", headers: [HeaderField("Location", "/elsewhere")]) : .ok
        }
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try startService()
        let attempt = try XCTUnwrap(waitForFinalDeliveries(of: enqueue().eventID).deliveries.first?.attempts.first)
        XCTAssertEqual(attempt.responseStatus, 302)
        XCTAssertEqual(attempt.errorKind, .http)
        XCTAssertEqual(attempt.responseHeaders?.first { $0.name == "Location" }?.value, "/elsewhere")
        XCTAssertEqual(receiver.requests(on: "/elsewhere").count, 0)
    }

    func testLoopbackIsRefusedByDefaultWithoutConnecting() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try startService(policy: DestinationPolicy())
        let attempt = try XCTUnwrap(waitForFinalDeliveries(of: enqueue().eventID).deliveries.first?.attempts.first)
        XCTAssertEqual(attempt.errorKind, .blocked)
        XCTAssertTrue(attempt.errorMessage?.contains("loopback") ?? false, attempt.errorMessage ?? "")
        XCTAssertEqual(receiver.requests.count, 0)
    }

    func testAnExpiredLeaseIsReclaimedAndDeliveredOnceMore() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        let event = try enqueue()
        // A worker claimed it and crashed: its lease has run out by the time anyone looks.
        let crashed = try store.claimDueDeliveries(limit: 10, owner: "crashed-worker", leaseSeconds: -1, inFlight: [:])
        XCTAssertEqual(crashed.count, 1)

        try startService()
        let record = try waitForFinalDeliveries(of: event.eventID)
        XCTAssertEqual(record.deliveries.first?.delivery.status, .succeeded)
        XCTAssertEqual(record.deliveries.first?.attempts.map(\.number), [1])
        XCTAssertEqual(receiver.requests.count, 1)
    }

    func testALiveLeaseOfAnotherWorkerIsLeftAlone() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        let held = try enqueue()
        _ = try store.claimDueDeliveries(limit: 10, owner: "busy-worker", leaseSeconds: 60, inFlight: [:])
        try startService()
        let later = try enqueue()
        try waitForFinalDeliveries(of: later.eventID)
        XCTAssertEqual(receiver.requests.map { $0.header("webhook-id") }, [later.eventID])
        XCTAssertEqual(try store.eventRecord(eventID: held.eventID)?.deliveries.first?.delivery.status, .delivering)
    }

    func testManyEventsAreEachDeliveredExactlyOnce() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint("a", url: receiver.url("/a")), endpoint("b", url: receiver.url("/b"))])
        try startService(concurrentRequests: 8)
        let ids = try (0..<200).map { try enqueue(#"{"n":\#($0)}"#).eventID }
        try waitUntil("400 deliveries succeeded") {
            try store.deliveries(matching: DeliveryFilter(status: .succeeded, limit: 1_000)).count == 400
        }
        let received = receiver.requests.map { "\($0.path) \($0.header("webhook-id") ?? "")" }
        XCTAssertEqual(received.count, 400)
        XCTAssertEqual(Set(received), Set(ids.flatMap { ["/a \($0)", "/b \($0)"] }))
    }

    /// More slots than one multi handle takes (`TransferLoop.slotsPerShard`): consecutive
    /// transfers go on different handles, whose sockets and timers share one epoll wait.
    func testSlotsOnSeveralMultiHandlesDeliverEachEventOnceAndTimeOut() throws {
        let gate = Gate()
        defer { gate.open() }
        let receiver = try makeReceiver { path, _ in path == "/hang" ? .wait(for: gate, then: .init(status: 200)) : .delay(seconds: 0.01, then: .init(status: 200)) }
        try addTenant(endpoints: ["a", "b", "c"].map { endpoint($0, url: receiver.url("/" + $0), events: ["checkin.outcome"]) }
                      + [endpoint("hang", url: receiver.url("/hang"), events: ["test.hang"], timeout: 0.3)])
        try startService(concurrentRequests: TransferLoop.slotsPerShard * 2 + 88)
        let ids = try (0..<150).map { try enqueue(#"{"n":\#($0)}"#).eventID }
        let hung = try (0..<3).map { try enqueue(#"{"n":\#($0)}"#, type: "test.hang").eventID }
        try waitUntil("450 deliveries succeeded and 3 timed out", timeout: 20) {
            try store.deliveries(matching: DeliveryFilter(status: .succeeded, limit: 1_000)).count == 450
                && store.deliveries(matching: DeliveryFilter(status: .failed, limit: 1_000)).count == 3
        }
        let received = receiver.requests.filter { $0.path != "/hang" }.map { "\($0.path) \($0.header("webhook-id") ?? "")" }
        XCTAssertEqual(received.count, 450)
        XCTAssertEqual(Set(received), Set(ids.flatMap { ["/a \($0)", "/b \($0)", "/c \($0)"] }))
        let kinds = try hung.map { try XCTUnwrap(store.eventRecord(eventID: $0)).deliveries.first?.attempts.first?.errorKind }
        XCTAssertEqual(kinds, [.timeout, .timeout, .timeout])
    }

    /// Jobs claimed ahead wait for a slot; one that waited through half its lease is handed back
    /// and claimed afresh, not started on a lease that runs out meanwhile (the delivery would
    /// then be claimable again, and attempted twice).
    func testAJobThatWaitedHalfItsLeaseIsClaimedAfreshNotAttemptedTwice() throws {
        // One slot and three jobs claimed ahead of it: the last waits up to three answers (1.8 s),
        // past the 2 s lease with its own answer, while an attempt started within half the lease
        // ends before the lease does.
        let receiver = try makeReceiver { _, _ in .delay(seconds: 0.6, then: .init(status: 200)) }
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try startService(concurrentRequests: 1, leaseSeconds: 2)
        let ids = try (0..<8).map { try enqueue(#"{"n":\#($0)}"#).eventID }
        try waitUntil("8 deliveries succeeded and nothing else is held", timeout: 20) {
            try store.deliveries(matching: DeliveryFilter(status: .succeeded, limit: 100)).count == 8
                && receiver.requests.count >= 8
        }
        // Not a wait for a condition but a window for one that must not come: a second attempt
        // of a delivery would follow its first within two answers' time.
        Thread.sleep(forTimeInterval: 1.2)
        let received = receiver.requests.compactMap { $0.header("webhook-id") }
        XCTAssertEqual(received.sorted(), ids.sorted(), "each delivery attempted once")
    }

    func testStopFinishesInFlightAttemptsAndHandsBackTheRest() throws {
        let receiver = try makeReceiver { _, _ in .delay(seconds: 0.3, then: .init(status: 200)) }
        var slow = endpoint(url: receiver.url())
        slow.maxConcurrency = 1
        try addTenant(endpoints: [slow])
        for _ in 0..<5 { try enqueue() }
        let service = try startService(concurrentRequests: 2)
        waitUntil("the first request arrived") { !receiver.requests.isEmpty }
        service.stop()

        let deliveries = try store.deliveries(matching: DeliveryFilter())
        XCTAssertEqual(deliveries.filter { $0.status == .delivering }.count, 0, "no lease is left behind")
        XCTAssertEqual(deliveries.filter { $0.status == .succeeded }.count, receiver.requests.count)
        XCTAssertEqual(deliveries.filter { $0.status == .pending }.count, 5 - receiver.requests.count)
    }

    func testANewEventIsPickedUpWithinThePollInterval() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try startService()
        // Another connection, as a producer process would have.
        let producer = try openStore()
        let event = try producer.enqueue(NewEvent(tenantID: "tenant-a", type: "t", json: "{}"))
        try waitForFinalDeliveries(of: event.eventID, timeout: 5)
        XCTAssertEqual(receiver.requests.count, 1)
    }

    func testAnAttemptWhoseWriteFailsIsKeptAndRecordedOnceTheDatabaseIsBack() throws {
        try requireSQLite("another connection holds SQLite's write lock")
        let answer = DispatchSemaphore(value: 0)
        let receiver = try makeReceiver { _, _ in
            _ = answer.wait(timeout: .now() + 10)
            return .respond(status: 200)
        }
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        let event = try enqueue()
        let messages = Locked<[String]>([])
        let impatient = try openStore(options: StoreOptions(busyTimeoutMilliseconds: 20))
        let service = DeliveryService(store: impatient, configuration: DeliveryServiceConfiguration(
            concurrentRequests: 2, pollInterval: 0.02, destinationPolicy: DestinationPolicy(allowPrivateAddresses: true),
            urlPolicy: URLPolicy(requireHTTPS: false),
            logger: DispatcherLogger { _, message in messages.withLock { $0.append(message) } }))
        try service.start()
        defer { service.stop() }
        waitUntil("the attempt is in flight") { receiver.requests.count == 1 }

        // Another process takes the write lock before the receiver answers: recording fails.
        let blocker = try Database(path: databaseLocation)
        try blocker.execute("BEGIN IMMEDIATE")
        answer.signal()
        waitUntil("a write failed and was logged") { messages.withLock { $0.contains { $0.contains("recording 1 attempt(s) and claiming failed") } } }
        XCTAssertEqual(try store.eventRecord(eventID: event.eventID)?.deliveries.first?.attempts.count, 0, "nothing recorded while locked")
        try blocker.execute("COMMIT")

        let record = try waitForFinalDeliveries(of: event.eventID)
        XCTAssertEqual(record.deliveries.first?.delivery.status, .succeeded)
        XCTAssertEqual(record.deliveries.first?.attempts.count, 1, "the kept result was written once, not attempted again")
        XCTAssertEqual(receiver.requests.count, 1)
        XCTAssertTrue(messages.withLock { $0.contains { $0.contains("work again after") } })
    }

    /// Under steady load the board's list of claimed jobs never runs empty; the jobs taken from
    /// it (and their bodies) must still go, or memory grows with every delivery.
    func testTheJobBoardDropsTakenJobsWhenItNeverRunsEmpty() {
        let board = JobBoard()
        var next: Int64 = 0
        func claims(_ count: Int) -> [ClaimedDelivery] {
            (0..<count).map { _ in
                next += 1
                return ClaimedDelivery(deliveryID: next, eventID: "e\(next)", eventType: "t", tenantID: "a", endpointID: "ep",
                                       endpointRevision: 1, attemptNumber: 1, body: Array(repeating: 0x20, count: 1_024), createdAt: Date())
            }
        }
        XCTAssertEqual(board.add(claims(100)).count, 0)
        var taken: [Int64] = []
        for _ in 0..<1_000 {
            XCTAssertEqual(board.add(claims(10)).count, 0)
            for _ in 0..<10 { if case .job(let job) = board.poll() { taken.append(job.deliveryID) } }
        }
        XCTAssertEqual(taken, Array(1...10_000), "jobs come out in claim order")
        XCTAssertLessThanOrEqual(board.retainedJobs, 2_200, "10,100 added, 100 waiting: the taken ones were dropped")
    }

    /// The jobs that waited too long leave from the front, in claim order, and only those: the
    /// rest are still handed out, and none twice.
    func testTheJobBoardHandsBackOnlyTheJobsLeasedBeforeTheCutoff() {
        let board = JobBoard()
        let jobs = (1...6).map { n in
            var job = ClaimedDelivery(deliveryID: Int64(n), eventID: "e\(n)", eventType: "t", tenantID: "a", endpointID: "ep",
                                      endpointRevision: 1, attemptNumber: 1, body: [], createdAt: Date())
            job.leasedAt = n <= 4 ? 1_000 : 2_000
            return job
        }
        XCTAssertEqual(board.add(jobs).count, 0)
        if case .job(let first) = board.poll() { XCTAssertEqual(first.deliveryID, 1) } else { XCTFail("a job waits") }
        XCTAssertEqual(board.takeStale(leasedBefore: 1_500).map(\.deliveryID), [2, 3, 4], "the taken one is not handed back")
        XCTAssertEqual(board.takeStale(leasedBefore: 1_500).map(\.deliveryID), [])
        var rest: [Int64] = []
        while case .job(let job) = board.poll() { rest.append(job.deliveryID) }
        XCTAssertEqual(rest, [5, 6])
        XCTAssertEqual(board.takeStale(leasedBefore: 3_000).map(\.deliveryID), [], "nothing waits")
    }

    func testFailedClaimsBackOffToFiveSeconds() {
        XCTAssertEqual(DeliveryService.claimDelay(poll: 0.1, failures: 0), 0.1)
        XCTAssertEqual(DeliveryService.claimDelay(poll: 0.1, failures: 1), 0.2, accuracy: 1e-9)
        XCTAssertEqual(DeliveryService.claimDelay(poll: 0.1, failures: 3), 0.8, accuracy: 1e-9)
        XCTAssertEqual(DeliveryService.claimDelay(poll: 0.1, failures: 10), 5)
        XCTAssertEqual(DeliveryService.claimDelay(poll: 0.1, failures: 1_000_000), 5)
    }

    /// `serve --exit-when-idle` stops the service from another thread as soon as the store is
    /// empty, which may come before `run()` has started it: `run()` must return, not deliver forever.
    func testAStopThatComesBeforeTheStartEndsRun() throws {
        let service = DeliveryService(store: store, configuration: DeliveryServiceConfiguration(logger: .silent))
        service.stop()
        let returned = DispatchSemaphore(value: 0)
        let failure = Locked<String?>(nil)
        DispatchQueue.global().async {
            do { try service.run() } catch { failure.withLock { $0 = "\(error)" } }
            returned.signal()
        }
        XCTAssertEqual(returned.wait(timeout: .now() + 10), .success, "run() after stop() did not return")
        XCTAssertNil(failure.value)
        service.stop()
    }
}

