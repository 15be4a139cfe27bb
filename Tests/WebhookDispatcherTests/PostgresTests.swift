import Foundation
import XCTest
@testable import DispatcherStore
import WebhookDispatcher

/// What only the PostgreSQL store does: migrations under an advisory lock, claims that skip
/// each other's locked rows, `NOTIFY` wake-ups, libpq's errors. The rest of its behaviour is
/// the conformance pass (`DISPATCHER_TEST_STORE=postgres`, run by `scripts/test`), where the
/// store, worker and process tests run on PostgreSQL unchanged.
final class PostgresTests: DispatcherTestCase {
    override func setUpWithError() throws {
        guard TestDatabase.backend == .postgres else {
            throw XCTSkip("POSTGRES TESTS SKIPPED in the SQLite pass: scripts/test runs them with DISPATCHER_TEST_STORE=postgres")
        }
        try super.setUpWithError()
    }

    func testProcessesMigratingAtOnceApplyEachMigrationOnce() throws {
        let fresh = try PostgresTestServer.shared().makeSchemaDatabase()
        defer { fresh.drop() }
        let failures = Locked<[String]>([])
        let location = fresh.location
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            do { _ = try OutboxStore.postgres(url: location, connections: 1) } catch { failures.withLock { $0.append("\(error)") } }
        }
        XCTAssertEqual(failures.value, [])
        let store = try OutboxStore.postgres(url: fresh.location, connections: 1)
        let versions = try store.withConnection { try $0.query("SELECT version FROM schema_migrations ORDER BY version") { $0.int(0) } }
        XCTAssertEqual(versions, EmbeddedMigrations.postgres.map(\.version))
    }

    /// A worker's cycle (record the results, claim the next jobs, one transaction) sends the
    /// writes nobody reads with the next statement that reads: 7 round trips (15 when each
    /// write went alone).
    func testACyclesWritesTravelWithItsReads() throws {
        var wide = endpoint(url: "https://example.com/h")
        wide.maxConcurrency = 100
        try addTenant(endpoints: [wide])
        for _ in 0..<80 { try enqueue() }
        let first = try store.claimDueDeliveries(limit: 40, owner: "w", leaseSeconds: 60, inFlight: [:])
        XCTAssertEqual(first.count, 40)
        let results = first.map { result($0, verdict: .succeeded) }
        let (claimed, trips) = try store.withConnection { db in
            let connection = try XCTUnwrap(db as? PostgresConnection)
            let before = connection.roundTrips
            let claimed = try db.inTransaction {
                _ = try DeliveryQueries.record(results, in: db)
                return try DeliveryQueries.claim(limit: 40, owner: "w", leaseSeconds: 60, inFlight: [:], in: db)
            }
            return (claimed.count, connection.roundTrips - before)
        }
        XCTAssertEqual(claimed, 40)
        XCTAssertEqual(try store.withConnection { try $0.query("SELECT count(*) FROM deliveries WHERE status = 'succeeded'") { $0.int(0) } }, [40])
        XCTAssertLessThanOrEqual(trips, 7, "BEGIN, the results and the sweep with the first read; four reads; the claim's writes with the lease; COMMIT")
    }

    /// The worker's bookkeeping commits without waiting for the server's disk (as SQLite's
    /// `synchronous = NORMAL` never waits), in its own transactions only: the next transaction on
    /// the same connection (an enqueue) waits again, and `synchronous_delivery_commits` keeps
    /// the wait.
    func testOnlyTheWorkersOwnCommitsSkipWaitingForTheDisk() throws {
        // The test cluster does not wait for its disk at all; this database waits again.
        try setForThisDatabase("synchronous_commit = on")
        func setting(_ db: any SQLConnection) throws -> String {
            try db.query("SELECT current_setting('synchronous_commit')") { $0.string(0) }[0]
        }
        let worker = try OutboxStore.postgres(url: databaseLocation, connections: 1)
        XCTAssertEqual(try worker.withDeliveryTransaction(setting), "off")
        XCTAssertEqual(try worker.withConnection { db in try db.inTransaction { try setting(db) } }, "on")
        let durable = try OutboxStore.postgres(url: databaseLocation, options: StoreOptions(synchronousDeliveryCommits: true), connections: 1)
        XCTAssertEqual(try durable.withDeliveryTransaction(setting), "on")
        // And a worker's cycle still commits: leased, recorded, visible to another connection.
        try addTenant(endpoints: [endpoint(url: "https://example.com/h")])
        try enqueue()
        let cycle = try worker.recordAndClaim([], claimLimit: 1, owner: "w", leaseSeconds: 60, inFlight: [:], awaitingRecord: [:])
        XCTAssertEqual(cycle.claimed.count, 1)
        XCTAssertEqual(try store.withConnection { try $0.query("SELECT count(*) FROM deliveries WHERE status = 'delivering'") { $0.int(0) } }, [1])
    }

    /// A worker counts the leases live now by an index scan, which marks the dead entries that
    /// finished leases leave in the index of leases as it meets them, so that the next count skips
    /// them unread. A bitmap scan (the planner's choice otherwise) cannot mark them, and read
    /// each one's heap page on every count until a vacuum: 84 pages here against 31.
    func testCountingLeasesSkipsTheFinishedOnes() throws {
        var wide = endpoint(url: "https://example.com/h")
        wide.maxConcurrency = 1_000
        try addTenant(endpoints: [wide])
        try enqueueMany(3_000)
        let worker = try OutboxStore.postgres(url: databaseLocation, connections: 1)
        var results: [AttemptResult] = []
        for _ in 0..<10 {
            let cycle = try worker.recordAndClaim(results, claimLimit: 500, owner: "w", leaseSeconds: 60, inFlight: [:], awaitingRecord: [:])
            results = cycle.claimed.map { result($0, verdict: .succeeded) }
        }
        XCTAssertEqual(try store.withConnection { try $0.query("SELECT count(*) FROM deliveries WHERE status = 'succeeded'") { $0.int(0) } }, [3_000])
        let plan = try worker.withDeliveryTransaction { db in
            try db.query("EXPLAIN (FORMAT JSON) " + DeliveryQueries.inFlightEndpoints, [Clock.nowMilliseconds()]) { $0.string(0) }
        }
        let root = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(plan[0].utf8)) as? [[String: Any]])?.first?["Plan"] as? [String: Any])
        XCTAssertEqual(root["Node Type"] as? String, "Index Scan", "\(plan)")
        XCTAssertEqual(root["Index Name"] as? String, "deliveries_leased", "\(plan)")
    }

    /// A claim's probe of an endpoint starts past the deliveries earlier claims leased (whose
    /// entries stay in the index of due work until a vacuum), at the endpoint's next pending
    /// one; a delivery pending again from before that (a lease that ran out) lowers the start
    /// through its signal, and is claimed again first.
    func testAClaimsProbeStartsPastWhatEarlierClaimsLeased() throws {
        var wide = endpoint(url: "https://example.com/h")
        wide.maxConcurrency = 100
        try addTenant(endpoints: [wide])
        try enqueueMany(30)
        // Due a millisecond apart, in id order (one transaction enqueued them within one).
        try store.withConnection { try $0.execute("UPDATE deliveries SET next_attempt_at = next_attempt_at - 100000 + id") }
        let worker = try OutboxStore.postgres(url: databaseLocation, connections: 1)
        func scalar(_ sql: String) throws -> Int64 { try store.withConnection { try $0.query(sql) { $0.int64(0) } }[0] }
        let first = try worker.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 0.001, inFlight: [:])
        XCTAssertEqual(first.count, 10)
        let nextPending = try scalar("SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'")
        XCTAssertEqual(try scalar("SELECT pending_from FROM endpoint_work WHERE endpoint_id = 'ep-1'"), nextPending)
        XCTAssertLessThan(try scalar("SELECT max(next_attempt_at) FROM deliveries WHERE status = 'delivering'"), nextPending)
        // The leases run out within a millisecond or two; the next claim sweeps them back to
        // pending, due when they were, before the probe's start.
        let deadline = Date().addingTimeInterval(5)
        while Clock.nowMilliseconds() <= (first.map(\.leasedAt).max() ?? 0) + 2, Date() < deadline { usleep(1_000) }
        let again = try worker.claimDueDeliveries(limit: 10, owner: "w2", leaseSeconds: 60, inFlight: [:])
        XCTAssertEqual(Set(again.map(\.deliveryID)), Set(first.map(\.deliveryID)))
        let rest = try worker.claimDueDeliveries(limit: 100, owner: "w3", leaseSeconds: 60, inFlight: [:])
        XCTAssertEqual(rest.count, 20)
        XCTAssertEqual(try scalar("SELECT count(*) FROM deliveries WHERE status = 'pending'"), 0)
    }

    /// A producer's transaction that has enqueued for a tenant but not yet committed (the
    /// transactional outbox: its own writes first, then the commit) leaves that tenant's
    /// endpoints to the claims meanwhile. A foreign key from deliveries to endpoints held each
    /// endpoint's row `FOR KEY SHARE` until that commit, and a claim, which locks the endpoints it
    /// takes from `FOR UPDATE SKIP LOCKED`, skipped them, their deliveries due long before included.
    func testAProducersOpenTransactionLeavesItsEndpointsToClaims() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/h")])
        let due = try enqueue()
        let producer = try openStore()
        let worker = try OutboxStore.postgres(url: databaseLocation, connections: 1)
        let claimed = try producer.write { tx in
            try tx.enqueue(NewEvent(tenantID: "tenant-a", type: "checkin.outcome", json: #"{"later":true}"#))
            return try worker.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:])
        }
        XCTAssertEqual(claimed.map(\.eventID), [due.eventID])
        XCTAssertEqual(try worker.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]).count, 1,
                       "the producer's event, once committed")
    }

    /// JIT compiling cost a claim's probe ~10 ms once the statistics counted a large backlog;
    /// the store's connections do without it, whatever the server's default.
    func testTheStoresConnectionsDoNotCompileStatements() throws {
        try setForThisDatabase("jit = on")
        let fresh = try OutboxStore.postgres(url: databaseLocation, connections: 1)
        XCTAssertEqual(try fresh.withConnection { try $0.query("SHOW jit") { $0.string(0) } }, ["off"])
    }

    /// A deferred write's error is thrown by the statement it travels with, names its own SQL,
    /// and fails the whole transaction; what was deferred is seen by that statement, and a
    /// transaction that ends with deferred writes commits them.
    func testADeferredWritesErrorFailsItsTransactionAndNamesItsStatement() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/h")])
        func name(_ db: any SQLConnection) throws -> [String] {
            try db.query("SELECT name FROM tenants WHERE id = 'tenant-a'") { $0.string(0) }
        }
        try store.withConnection { db in
            let original = try name(db)
            XCTAssertThrowsError(try db.inTransaction {
                try db.executeDeferred("UPDATE tenants SET name = 'changed' WHERE id = 'tenant-a'", [])
                try db.executeDeferred("INSERT INTO tenants (id, name, created_at, updated_at) VALUES (NULL, 'x', 0, 0)", [])
                try db.executeDeferred("UPDATE tenants SET name = 'after' WHERE id = 'tenant-a'", [])
                _ = try name(db)
            }) { error in
                XCTAssertTrue("\(error)".contains("INSERT INTO tenants"), "\(error)")
            }
            XCTAssertEqual(try name(db), original, "rolled back")
            let seen = try db.inTransaction {
                try db.executeDeferred("UPDATE tenants SET name = 'renamed' WHERE id = 'tenant-a'", [])
                return try name(db)
            }
            XCTAssertEqual(seen, ["renamed"])
            try db.inTransaction { try db.executeDeferred("UPDATE tenants SET name = 'last' WHERE id = 'tenant-a'", []) }
            XCTAssertFalse(db.isInTransaction)
        }
        XCTAssertEqual(try store.withConnection { try name($0) }, ["last"])
    }

    func testConcurrentClaimsFromSeveralStoresAreDisjointAndCoverEveryDueDelivery() throws {
        var endpoints: [Endpoint] = []
        for index in 0..<4 {
            var endpoint = endpoint("ep-\(index)", url: "https://example.com/\(index)")
            endpoint.maxConcurrency = 500
            endpoints.append(endpoint)
        }
        try addTenant(endpoints: endpoints)
        try store.enqueue(contentsOf: (0..<300).map { NewEvent(tenantID: "tenant-a", type: "order.created", json: #"{"n":\#($0)}"#) })

        // Four workers, as four hosts: each its own store (own connections), claiming in small batches.
        let workers = try (0..<4).map { _ in try openStore() }
        let claimed = Locked<[String: [Int64]]>([:])
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: workers.count) { index in
            let owner = "worker-\(index)"
            do {
                while true {
                    let batch = try workers[index].claimDueDeliveries(limit: 25, owner: owner, leaseSeconds: 60, inFlight: [:])
                    if batch.isEmpty { break }
                    claimed.withLock { $0[owner, default: []] += batch.map(\.deliveryID) }
                }
            } catch {
                failures.withLock { $0.append("\(owner): \(error)") }
            }
        }
        XCTAssertEqual(failures.value, [])
        let all = claimed.value.values.flatMap { $0 }
        XCTAssertEqual(all.count, 1_200, "4 endpoints × 300 events")
        XCTAssertEqual(Set(all).count, all.count, "no delivery was claimed by two workers")
        let owners = try store.withConnection {
            try $0.query("SELECT lease_owner, count(*) FROM deliveries GROUP BY lease_owner ORDER BY lease_owner") { "\($0.string(0)) \($0.int(1))" }
        }
        XCTAssertEqual(owners, claimed.value.keys.sorted().map { "\($0) \(claimed.value[$0]!.count)" }, "each lease is the claimer's")
    }

    func testConcurrentClaimsNeverExceedAnEndpointsMaxConcurrency() throws {
        var narrow = endpoint("narrow", url: "https://example.com/n")
        narrow.maxConcurrency = 5
        try addTenant(endpoints: [narrow])
        try store.enqueue(contentsOf: (0..<100).map { NewEvent(tenantID: "tenant-a", type: "t", json: #"{"n":\#($0)}"#) })

        let workers = try (0..<4).map { _ in try openStore() }
        let claimed = Locked(0)
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: workers.count) { index in
            for _ in 0..<20 {  // each as a serve process whose claims find the room already taken
                do {
                    let batch = try workers[index].claimDueDeliveries(limit: 10, owner: "w\(index)", leaseSeconds: 60, inFlight: [:])
                    claimed.withLock { $0 += batch.count }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        XCTAssertEqual(failures.value, [])
        XCTAssertEqual(claimed.value, 5, "four concurrent claimers filled the endpoint's room once between them")
    }

    func testAnotherProcessesEnqueueWakesAListeningStore() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let worker = try openStore()
        let before = try worker.externalChangeToken()
        XCTAssertEqual(try worker.externalChangeToken(), before, "nothing happened, so no change")

        let producer = try openStore()
        try producer.enqueue(NewEvent(tenantID: "tenant-a", type: "t", json: "{}"))
        try waitUntil("the NOTIFY reaches the listening connection") { try worker.externalChangeToken() != before }

        // A rolled-back enqueue notifies nobody: NOTIFY is transactional.
        let after = try worker.externalChangeToken()
        struct Abort: Error {}
        _ = try? producer.write { tx in
            try tx.enqueue(NewEvent(tenantID: "tenant-a", type: "t", json: "{}"))
            throw Abort()
        }
        try producer.enqueue(NewEvent(tenantID: "tenant-a", type: "marker", json: "{}"))
        try waitUntil("the marker's NOTIFY arrives") { try worker.externalChangeToken() != after }
        XCTAssertEqual(try worker.externalChangeToken(), after + 1, "only the committed enqueue was announced")
    }

    /// With the worker's commits waiting for the disk (`synchronous_delivery_commits`), a crash
    /// of the database server right after a delivery changes nothing the receiver sees.
    func testAWorkerAndAProducerRideOutADatabaseCrash() throws {
        let (before, after, received) = try deliveriesAcrossADatabaseCrash(options: StoreOptions(synchronousDeliveryCommits: true))
        XCTAssertEqual(received, [before, after])
    }

    /// By default the worker's commits do not wait for the disk: the crash may forget the
    /// delivery's verdict, and it is made again (at least once). Nothing accepted is lost.
    func testByDefaultADatabaseCrashMayRepeatTheLastDeliveriesButLosesNone() throws {
        let (before, after, received) = try deliveriesAcrossADatabaseCrash(options: StoreOptions())
        XCTAssertEqual(received.filter { $0 == after }.count, 1)
        XCTAssertGreaterThanOrEqual(received.filter { $0 == before }.count, 1)
        XCTAssertEqual(Set(received), [before, after])
    }

    /// One event delivered, the server crashed and restarted, a second enqueued and delivered:
    /// both ids and the `webhook-id`s the receiver got, in order.
    private func deliveriesAcrossADatabaseCrash(options: StoreOptions) throws -> (before: String, after: String, received: [String]) {
        // A cluster of this test's own, since it crashes it.
        let cluster = try PostgresTestServer.dedicatedCluster()
        addTeardownBlock { try? PostgresTestServer.cluster("stop", cluster.directory) }
        store = try OutboxStore.postgres(url: cluster.url, options: options)
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try startService()
        let before = try enqueue()
        try waitForFinalDeliveries(of: before.eventID)

        try PostgresTestServer.cluster("crash", cluster.directory)
        XCTAssertThrowsError(try enqueue(), "nothing is accepted while the server is down") { error in
            XCTAssertTrue(error is PostgresError, "\(error)")
        }
        try PostgresTestServer.cluster("restart", cluster.directory)

        // The producer's next enqueue connects afresh; the worker's claims resume on their own.
        let after = try enqueue()
        try waitForFinalDeliveries(of: after.eventID, timeout: 30)
        try waitForFinalDeliveries(of: before.eventID, timeout: 30)
        return (before.eventID, after.eventID, receiver.requests.compactMap { $0.header("webhook-id") })
    }

    func testAServerThatIsNotThereIsAClearErrorWithoutThePassword() throws {
        // A port nothing listens on: a receiver's, once it has stopped.
        let closed = try TestReceiver()
        let port = closed.port
        closed.stop()

        let url = "postgresql://dispatcher:hunter2@127.0.0.1:\(port)/outbox?connect_timeout=5"
        XCTAssertThrowsError(try OutboxStore.postgres(url: url)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("127.0.0.1"), text)
            XCTAssertFalse(text.contains("hunter2"), text)
        }
        let output = try run(["stats", "--db", url])
        XCTAssertNotEqual(output.status, 0)
        XCTAssertFalse(output.stderr.contains("hunter2"), output.stderr)
        XCTAssertTrue(output.stderr.contains("dispatcher:***@127.0.0.1"), output.stderr)
    }

    func testTheLocationNamesTheServerButNotThePassword() {
        XCTAssertEqual(PostgresConnection.redacted("postgresql://app:s3cret@db.internal:5432/outbox?sslmode=require"),
                       "postgresql://app:***@db.internal:5432/outbox?sslmode=require")
        XCTAssertEqual(PostgresConnection.redacted("postgres://db.internal/outbox"), "postgres://db.internal/outbox")
        XCTAssertEqual(PostgresConnection.redacted("postgres://app@db.internal/outbox?password=s3cret&sslmode=verify-full"),
                       "postgres://app@db.internal/outbox?password=***&sslmode=verify-full")
        XCTAssertTrue(OutboxStore.isPostgresURL("postgres://x/y"))
        XCTAssertTrue(OutboxStore.isPostgresURL("postgresql://x/y"))
        XCTAssertFalse(OutboxStore.isPostgresURL("/var/lib/dispatcher/outbox.sqlite"))
    }

    /// A producer's PostgreSQL numbered natively keeps its own `?` (a jsonb operator) intact.
    func testNativeNumberedParametersAreLeftAsWritten() throws {
        try store.write { tx in
            try tx.execute("CREATE TABLE notes (id integer PRIMARY KEY, doc jsonb NOT NULL)")
            try tx.execute("INSERT INTO notes VALUES ($1, $2::jsonb), ($3, $4::jsonb)", [1, #"{"k":1}"#, 2, #"{"j":1}"#])
            XCTAssertEqual(try tx.rows("SELECT id FROM notes WHERE doc ? 'k' AND id >= $1", [1]), [[.integer(1)]])
            XCTAssertEqual(try tx.rows("SELECT count(*) FROM notes WHERE id = ? OR id = ?2", [1, 2]), [[.integer(2)]])
        }
        XCTAssertFalse(PostgresConnection.usesNativeParameters("SELECT '$1', ?"))
        XCTAssertTrue(PostgresConnection.usesNativeParameters("SELECT $12"))
    }

    /// A server setting for every new connection to this test's database (`ALTER DATABASE … SET`).
    private func setForThisDatabase(_ setting: String) throws {
        let name = try store.withConnection { try $0.query("SELECT current_database()") { $0.string(0) } }[0]
        try store.withConnection { try $0.execute("ALTER DATABASE \"\(name)\" SET \(setting)") }
    }
}

