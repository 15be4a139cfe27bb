import Synchronization
import CSQLite
import Foundation
import XCTest
@testable import DispatcherStore
import WebhookDispatcher

/// The producer's side: enqueue, validation, idempotency, fan-out, the transactional outbox.
final class OutboxTests: DispatcherTestCase {
    func testEnqueueStoresTheBodyBytesExactly() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let body = "{ \"b\" : 1,\n  \"a\": [1.50, \"\\u00e9\", null] }"
        let result = try enqueue(body)
        XCTAssertFalse(result.isDuplicate)
        XCTAssertEqual(result.deliveryCount, 1)
        let record = try XCTUnwrap(store.eventRecord(eventID: result.eventID))
        XCTAssertEqual(record.event.body, Array(body.utf8))
        XCTAssertEqual(record.deliveries.map(\.delivery.status), [.pending])
    }

    func testGivenEventIDIsStoredLowercase() throws {
        try addTenant(endpoints: [])
        let id = UUID()
        let result = try store.enqueue(NewEvent(tenantID: "tenant-a", type: "visit.ended", json: "{}", id: id))
        XCTAssertEqual(result.eventID, id.uuidString.lowercased())
    }

    func testEnqueuingTheSameIDTwiceStoresItOnceAndSaysSo() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let event = NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"a":1}"#, id: UUID())
        let first = try store.enqueue(event)
        let second = try store.enqueue(event)
        XCTAssertFalse(first.isDuplicate)
        XCTAssertTrue(second.isDuplicate)
        XCTAssertEqual(second.eventID, first.eventID)
        XCTAssertEqual(second.deliveryCount, 1)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter()).count, 1)
    }

    func testReusingAnIDForADifferentEventIsAnError() throws {
        try addTenant(endpoints: [])
        let id = UUID()
        try store.enqueue(NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"a":1}"#, id: id))
        XCTAssertThrowsError(try store.enqueue(NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"a":2}"#, id: id))) {
            XCTAssertEqual($0 as? DispatcherError, .conflictingEvent(id: id.uuidString.lowercased()))
        }
    }

    func testInvalidEventsAreRejectedWithTypedErrorsAndNothingIsStored() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let cases: [(NewEvent, (DispatcherError) -> Bool)] = [
            (NewEvent(tenantID: "nobody", type: "checkin.outcome", json: "{}"), { $0 == .unknownTenant("nobody") }),
            (NewEvent(tenantID: "tenant-a", type: "", json: "{}"), { $0 == .invalidEventType("") }),
            (NewEvent(tenantID: "tenant-a", type: "has space", json: "{}"), { $0 == .invalidEventType("has space") }),
            (NewEvent(tenantID: "tenant-a", type: "t", json: "{not json"), { if case .invalidJSON = $0 { return true }; return false }),
            (NewEvent(tenantID: "tenant-a", type: "t", json: "[1,2]"), { if case .invalidJSON = $0 { return true }; return false }),
            (NewEvent(tenantID: "tenant-a", type: "t", json: ""), { if case .invalidJSON = $0 { return true }; return false }),
            (NewEvent(tenantID: "tenant-a", type: "t", body: [0x7B, 0xFF, 0x7D]), { if case .invalidJSON = $0 { return true }; return false }),
            (NewEvent(tenantID: "tenant-a", type: "t", json: String(repeating: "[", count: 100_000)), { if case .invalidJSON = $0 { return true }; return false }),
        ]
        for (event, matches) in cases {
            XCTAssertThrowsError(try store.enqueue(event), "\(event)") { error in
                guard let error = error as? DispatcherError else { return XCTFail("untyped error \(error)") }
                XCTAssertTrue(matches(error), "unexpected \(error)")
                XCTAssertFalse(error.description.isEmpty)
            }
        }
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter()).count, 0)
        XCTAssertEqual(try store.withConnection { try $0.query("SELECT count(*) FROM events") { $0.int(0) } }, [0])
    }

    func testBodyOverTheConfiguredLimitIsRejected() throws {
        let small = try openStore(options: StoreOptions(maxPayloadBytes: 100))
        try small.upsert(tenants: [Tenant(id: "t", name: "t")], endpoints: [])
        let big = "{\"x\":\"" + String(repeating: "a", count: 100) + "\"}"
        XCTAssertThrowsError(try small.enqueue(NewEvent(tenantID: "t", type: "t", json: big))) {
            XCTAssertEqual($0 as? DispatcherError, .payloadTooLarge(bytes: big.utf8.count, limit: 100))
        }
        XCTAssertNoThrow(try small.enqueue(NewEvent(tenantID: "t", type: "t", json: #"{"x":1}"#)))
    }

    func testDefaultPayloadLimitIs256KiB() throws {
        try addTenant(endpoints: [])
        let atLimit = "{\"x\":\"" + String(repeating: "a", count: 256 * 1024 - 8) + "\"}"
        XCTAssertEqual(atLimit.utf8.count, 256 * 1024)
        XCTAssertNoThrow(try enqueue(atLimit))
        XCTAssertThrowsError(try enqueue(atLimit + " "))
    }

    func testFanOutCreatesOneDeliveryPerMatchingEnabledEndpoint() throws {
        var disabled = endpoint("disabled", url: "https://example.com/d")
        disabled.enabled = false
        try addTenant(endpoints: [
            endpoint("all", url: "https://example.com/all"),
            endpoint("checkins", url: "https://example.com/c", events: ["checkin.*"]),
            endpoint("visits", url: "https://example.com/v", events: ["visit.*"]),
            endpoint("exact", url: "https://example.com/e", events: ["visit.ended", "checkin.outcome"]),
            disabled,
        ])
        try addTenant("tenant-b", endpoints: [endpoint("other-tenant", tenant: "tenant-b", url: "https://example.com/o")])

        func endpoints(of result: EnqueueResult) throws -> [String] {
            try XCTUnwrap(store.eventRecord(eventID: result.eventID)).deliveries.map(\.delivery.endpointID).sorted()
        }
        XCTAssertEqual(try endpoints(of: enqueue(type: "checkin.outcome")), ["all", "checkins", "exact"])
        XCTAssertEqual(try endpoints(of: enqueue(type: "visit.note.signed_and_sent")), ["all", "visits"])
        XCTAssertEqual(try endpoints(of: enqueue(type: "visit.ended")), ["all", "exact", "visits"])
        XCTAssertEqual(try endpoints(of: enqueue(type: "verification.created")), ["all"])
    }

    func testEndpointFilterMatchesTheSameInSwiftAndSQL() throws {
        let patterns = ["checkin.*", "visit.*", "*", "visit.*.processed", "verification.created", "*.updated"]
        let types = ["checkin.outcome", "visit.invoice.processed", "visit.ended", "verification.created", "visit.updated", "x"]
        for pattern in patterns {
            try addTenant(endpoints: [endpoint("p", url: "https://example.com/p", events: [pattern])])
            for type in types {
                let sqlMatch = try enqueue(type: type).deliveryCount == 1
                XCTAssertEqual(sqlMatch, Endpoint(id: "p", tenantID: "t", url: "", eventFilters: [pattern]).accepts(eventType: type),
                               "\(pattern) vs \(type)")
            }
        }
    }

    func testEnqueueInsideAProducerTransactionCommitsTogether() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        try store.write { tx in try tx.execute("CREATE TABLE visits (id INTEGER PRIMARY KEY, status TEXT)") }

        let eventID = try store.write { tx -> String in
            try tx.execute("INSERT INTO visits (id, status) VALUES (?, ?)", [28540, "ended"])
            return try tx.enqueue(NewEvent(tenantID: "tenant-a", type: "visit.ended", json: #"{"id":"28540"}"#)).eventID
        }
        XCTAssertNotNil(try store.eventRecord(eventID: eventID))
        XCTAssertEqual(try store.write { try $0.rows("SELECT count(*) FROM visits") }, [[.integer(1)]])
    }

    func testRolledBackProducerTransactionNeverDeliversItsEvent() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try store.write { tx in try tx.execute("CREATE TABLE visits (id INTEGER PRIMARY KEY, status TEXT)") }
        struct ProducerFailure: Error {}

        let eventID = UUID()
        XCTAssertThrowsError(try store.write { tx in
            try tx.execute("INSERT INTO visits (id, status) VALUES (?, ?)", [1, "ended"])
            try tx.enqueue(NewEvent(tenantID: "tenant-a", type: "visit.ended", json: #"{"id":"1"}"#, id: eventID))
            throw ProducerFailure()
        }) { XCTAssertTrue($0 is ProducerFailure) }

        XCTAssertNil(try store.eventRecord(eventID: eventID.uuidString))
        XCTAssertEqual(try store.write { try $0.rows("SELECT count(*) FROM visits") }, [[.integer(0)]])

        // A later event on the same store is delivered; the rolled-back one never is.
        try startService()
        let later = try enqueue(type: "visit.ended")
        try waitForFinalDeliveries(of: later.eventID)
        XCTAssertEqual(receiver.requests.map { $0.header("webhook-id") }, [later.eventID])
    }

    func testAProducerWithItsOwnConnectionToTheFileSeesTheOutboxTables() throws {
        // A second store on the same file is another connection, like another process.
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let other = try openStore()
        let result = try other.enqueue(NewEvent(tenantID: "tenant-a", type: "t", json: "{}"))
        XCTAssertEqual(try store.eventRecord(eventID: result.eventID)?.deliveries.count, 1)
    }

    func testBulkEnqueueIsAllOrNothing() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let results = try store.enqueue(contentsOf: (0..<100).map { NewEvent(tenantID: "tenant-a", type: "t", json: #"{"n":\#($0)}"#) })
        XCTAssertEqual(results.count, 100)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(limit: 1_000)).count, 100)
        let mixed = [NewEvent(tenantID: "tenant-a", type: "t", json: "{}"), NewEvent(tenantID: "nobody", type: "t", json: "{}")]
        XCTAssertThrowsError(try store.enqueue(contentsOf: mixed)) { XCTAssertEqual($0 as? DispatcherError, .unknownTenant("nobody")) }
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(limit: 1_000)).count, 100, "nothing of the failed batch was stored")
    }

    /// A batch (one statement on PostgreSQL) answers every event as enqueuing it alone would:
    /// the same results, errors and delivery rows, in the same order. The alone path runs in a
    /// transaction that is rolled back, the batch path for real, on the same data.
    func testABatchAnswersEachEventAsEnqueuingItAloneWould() throws {
        try store.upsert(tenants: [Tenant(id: "tenant-a", name: "A"), Tenant(id: "tenant-b", name: "B")], endpoints: [
            endpoint("every", tenant: "tenant-a", url: "https://example.com/every"),
            endpoint("visits", tenant: "tenant-a", url: "https://example.com/visits", events: ["visit.*"]),
            endpoint("off", tenant: "tenant-a", url: "https://example.com/off"),
        ])
        try store.setEndpointEnabled(id: "off", enabled: false)
        let stored = UUID(), reused = UUID()
        try store.enqueue(NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"first":true}"#, id: stored))
        let trace = try TraceContext(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "k=v")
        var batch: [NewEvent] = [
            NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"n":1}"#),
            NewEvent(tenantID: "tenant-a", type: "visit.ended", json: #"{"n":2,"s":"ünïcode \\ \"q\""}"#, id: reused, orderingKey: "visit-7"),
            NewEvent(tenantID: "nobody", type: "checkin.outcome", json: #"{"n":3}"#),
            NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"first":true}"#, id: stored),
            NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"other":true}"#, id: stored),
            NewEvent(tenantID: "tenant-a", type: "visit.ended", json: #"{"n":2,"s":"ünïcode \\ \"q\""}"#, id: reused, orderingKey: "visit-7"),
            NewEvent(tenantID: "tenant-a", type: "visit.ended", json: #"{"n":"changed"}"#, id: reused),
            NewEvent(tenantID: "tenant-a", type: "bad type!", json: #"{"n":4}"#),
            NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: "[1]"),
            NewEvent(tenantID: "tenant-b", type: "visit.started", json: #"{"n":5}"#),
        ]
        batch[0].traceContext = trace
        // Ids the store makes are new each time: give every event one, as a caller that retries would.
        for index in batch.indices where batch[index].id == nil { batch[index].id = UUID() }

        let results = try assertABatchAnswersAsAloneWould(batch)
        XCTAssertEqual(results.filter { $0.hasPrefix("ok") }.count, 5, "\(results)")
    }

    /// Batches of more than one statement's rows (32 on SQLite), with events skipped in every
    /// chunk: an unknown tenant, an id stored before.
    func testABatchOfManyChunksAnswersEachEventAsEnqueuingItAloneWould() throws {
        try store.upsert(tenants: [Tenant(id: "tenant-a", name: "A")], endpoints: [
            endpoint("every", tenant: "tenant-a", url: "https://example.com/every"),
            endpoint("visits", tenant: "tenant-a", url: "https://example.com/visits", events: ["visit.*"]),
        ])
        let stored = (0..<3).map { _ in UUID() }
        for id in stored { try store.enqueue(NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"stored":true}"#, id: id)) }
        let batch: [NewEvent] = (0..<75).map { n in
            if n % 25 == 24 { return NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"stored":true}"#, id: stored[n / 25]) }
            return NewEvent(tenantID: n % 10 == 3 ? "nobody" : "tenant-a", type: n % 2 == 0 ? "visit.ended" : "checkin.outcome",
                            json: #"{"n":\#(n)}"#, id: UUID())
        }
        let results = try assertABatchAnswersAsAloneWould(batch)
        XCTAssertEqual(results.filter { $0.contains("duplicate=true") }.count, 3, "\(results)")
        XCTAssertEqual(results.filter { $0.hasPrefix("error") }.count, 8, "\(results)")
        XCTAssertEqual(results.filter { $0.contains("duplicate=false deliveries=2") }.count, 36, "\(results)")
    }

    /// Enqueues `batch` each on its own in a transaction rolled back, then as a batch for real,
    /// on the same data; asserts the same results and delivery rows, delivery ids in order.
    /// Returns the results.
    @discardableResult
    private func assertABatchAnswersAsAloneWould(_ batch: [NewEvent], file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        struct Rollback: Error {}
        func snapshot(_ tx: OutboxTransaction) throws -> [[SQLValue]] {
            try tx.rows("""
                SELECT d.id, d.event_id, d.endpoint_id, d.tenant_id, d.event_type, d.status, d.ordering_key, d.ordered,
                       e.body, e.traceparent, e.tracestate, e.ordering_key
                  FROM deliveries d JOIN events e ON e.id = d.event_id ORDER BY d.id
                """)
        }
        func describe(_ result: Result<EnqueueResult, DispatcherError>) -> String {
            switch result {
            case .success(let r): return "ok \(r.eventID) duplicate=\(r.isDuplicate) deliveries=\(r.deliveryCount)"
            case .failure(let error): return "error \(error)"
            }
        }
        var alone: [String] = [], aloneRows: [[SQLValue]] = []
        XCTAssertThrowsError(try store.write { tx in
            for event in batch {
                do { alone.append(describe(.success(try tx.enqueue(event)))) } catch let error as DispatcherError { alone.append(describe(.failure(error))) }
            }
            aloneRows = try snapshot(tx)
            throw Rollback()
        })
        let together = try store.enqueueEach(batch).map(describe)
        XCTAssertEqual(together, alone, file: file, line: line)
        let rows = try store.write { tx in try snapshot(tx) }
        // Delivery ids are the sequence's: compare everything but them, and their order.
        XCTAssertEqual(rows.map { Array($0.dropFirst()) }, aloneRows.map { Array($0.dropFirst()) }, file: file, line: line)
        let ids: [Int64] = rows.map { row -> Int64 in
            if case .integer(let id) = row[0] { return id }
            return 0
        }
        XCTAssertEqual(ids, ids.sorted(), file: file, line: line)
        XCTAssertFalse(ids.contains(0), file: file, line: line)
        return together
    }

    func testNDJSONLinesKeepTheirDataBytesExactly() throws {
        let line = #"{"tenant":"t","data": {"b" : 2, "a":[1, 2.50]} , "type":"x.y","ordering_key":"k1"}"#
        let event = try NDJSONEvent.parse(Array(line.utf8))
        XCTAssertEqual(String(decoding: event.body, as: UTF8.self), #"{"b" : 2, "a":[1, 2.50]}"#)
        XCTAssertEqual(event.tenantID, "t")
        XCTAssertEqual(event.type, "x.y")
        XCTAssertEqual(event.orderingKey, "k1")
        XCTAssertThrowsError(try NDJSONEvent.parse(Array(#"{"tenant":"t","type":"x","data":[1]}"#.utf8)))
        XCTAssertThrowsError(try NDJSONEvent.parse(Array(#"{"tenant":"t","type":"x","data":{},"extra":1}"#.utf8)))
        XCTAssertThrowsError(try NDJSONEvent.parse(Array(#"{"tenant":"t","type":"x","id":"nope","data":{}}"#.utf8)))
    }

    /// A producer's own SQLite connection (here a raw `sqlite3 *`, as GRDB's `sqliteConnection`
    /// hands out): its row and its event commit together, or roll back together.
    func testEnqueueOnTheProducersOwnConnectionCommitsAndRollsBackWithItsTransaction() throws {
        try requireSQLite("a SQLite connection the producer opened")
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        var opened: OpaquePointer?
        XCTAssertEqual(sqlite3_open_v2(databaseLocation, &opened, SQLITE_OPEN_READWRITE, nil), SQLITE_OK)
        let connection = try XCTUnwrap(opened)
        defer { sqlite3_close_v2(connection) }
        func exec(_ sql: String) { XCTAssertEqual(sqlite3_exec(connection, sql, nil, nil, nil), SQLITE_OK, sql) }
        exec("CREATE TABLE visits (id INTEGER PRIMARY KEY, status TEXT NOT NULL)")

        exec("BEGIN IMMEDIATE")
        exec("INSERT INTO visits VALUES (1, 'ended')")
        let kept = try store.enqueue(NewEvent(tenantID: "tenant-a", type: "visit.ended", json: #"{"id":"1"}"#), on: connection)
        XCTAssertThrowsError(try store.enqueue(NewEvent(tenantID: "nobody", type: "visit.ended", json: "{}"), on: connection)) {
            XCTAssertEqual($0 as? DispatcherError, .unknownTenant("nobody"))
        }
        exec("COMMIT")

        exec("BEGIN IMMEDIATE")
        exec("INSERT INTO visits VALUES (2, 'ended')")
        let dropped = try store.enqueue(NewEvent(tenantID: "tenant-a", type: "visit.ended", json: #"{"id":"2"}"#), on: connection)
        exec("ROLLBACK")

        XCTAssertEqual(kept.deliveryCount, 1)
        XCTAssertNotNil(try store.eventRecord(eventID: kept.eventID))
        XCTAssertNil(try store.eventRecord(eventID: dropped.eventID))
        XCTAssertEqual(try store.withConnection { try $0.query("SELECT id FROM visits") { $0.int(0) } }, [1])
        XCTAssertEqual(try store.pendingCount(), 1)
    }

    func testEnqueueOnAConnectionToAnotherDatabaseIsRefused() throws {
        try requireSQLite("a SQLite connection the producer opened")
        try addTenant(endpoints: [])
        var opened: OpaquePointer?
        XCTAssertEqual(sqlite3_open_v2(directory.file("other.sqlite"), &opened, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil), SQLITE_OK)
        let connection = try XCTUnwrap(opened)
        defer { sqlite3_close_v2(connection) }
        XCTAssertThrowsError(try store.enqueue(NewEvent(tenantID: "tenant-a", type: "visit.ended", json: "{}"), on: connection)) {
            XCTAssertTrue("\($0)".contains("not to this store's database"), "\($0)")
        }
    }

    func testAWrongNumberOfBindingsInTheProducersSQLThrows() throws {
        // (On PostgreSQL the failed statement also aborts its transaction, so the next write is a new one.)
        XCTAssertThrowsError(try store.write { tx in try tx.execute("SELECT ?, ?", [1]) })
        XCTAssertEqual(try store.write { tx in try tx.rows("SELECT ?", [7]) }, [[.integer(7)]])
    }

    /// A producer that writes values into its SQL text makes a new statement each call; the
    /// cache of prepared statements must not keep them all.
    func testThePreparedStatementCacheIsBounded() throws {
        try requireSQLite("the SQLite connection's statement cache")
        let limit = Database.statementCacheLimit
        try store.write { tx in
            for value in 0..<(limit + 50) { try tx.execute("SELECT \(value)") }
        }
        let cached = try store.withConnection { ($0 as? Database)?.cachedStatementCount }
        XCTAssertLessThanOrEqual(try XCTUnwrap(cached), limit)
        // Still usable after starting over.
        XCTAssertEqual(try store.write { tx in try tx.rows("SELECT 1 + 1") }, [[.integer(2)]])
    }

    /// Ids the dispatcher makes are time-ordered (UUID version 7): they start with the time
    /// they were made, in milliseconds, so later ids sort after earlier ones.
    func testGeneratedEventIDsAreTimeOrderedVersion7() throws {
        try addTenant(endpoints: [])
        func milliseconds(of id: String) -> UInt64? { UInt64(id.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16) }
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let id = try store.enqueue(NewEvent(tenantID: "tenant-a", type: "visit.ended", json: "{}")).eventID
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        XCTAssertEqual(Array(id)[14], "7", id)
        XCTAssertTrue("89ab".contains(Array(id)[19]), id)
        XCTAssertTrue((before...after).contains(try XCTUnwrap(milliseconds(of: id))), id)
        let early = UUID.timeOrdered(at: Date(timeIntervalSince1970: 1_700_000_000)).uuidString.lowercased()
        let later = UUID.timeOrdered(at: Date(timeIntervalSince1970: 1_700_000_000.002)).uuidString.lowercased()
        XCTAssertTrue(early.hasPrefix("018bcfe5-6800-7"), early)
        XCTAssertLessThan(early, later)
        // Their random bits come from a buffer refilled every 256 ids: never the same twice,
        // across refills, and from threads at once.
        let made = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let ids = (0..<300).map { _ in UUID.timeOrdered(at: Date(timeIntervalSince1970: 1_700_000_000)).lowercasedString }
            made.withLock { $0 += ids }
        }
        let ids = made.withLock { $0 }
        XCTAssertEqual(Set(ids).count, 1_200)
        XCTAssertEqual(Set(ids.map { $0.dropFirst(24) }).count, 1_200, "the last 48 random bits alone differ")
        XCTAssertTrue(ids.allSatisfy { Array($0)[14] == "7" && "89ab".contains(Array($0)[19]) })
    }
}

