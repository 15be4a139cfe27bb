import Foundation
import Synchronization
import XCTest
@testable import DispatcherStore
import WebhookDispatcher

/// Migrations, leases and the log queries of the store (SQLite, or PostgreSQL in the conformance pass).
final class StoreTests: DispatcherTestCase {
    func testMigrationsAreAppliedOnceAndRecorded() throws {
        _ = try openStore()
        _ = try openStore()
        let versions = try store.withConnection { try $0.query("SELECT version, name FROM schema_migrations") { "\($0.int(0)) \($0.string(1))" } }
        let expected = TestDatabase.backend == .sqlite ? EmbeddedMigrations.sqlite : EmbeddedMigrations.postgres
        XCTAssertEqual(versions, expected.map { "\($0.version) \($0.name)" })
        XCTAssertEqual(versions.first, "1 0001_init")
    }

    /// Checkpoints run on a thread of their own, before the WAL reaches the size at which a
    /// commit would checkpoint itself, and the WAL stays bounded under steady writes.
    func testTheWALIsCheckpointedInTheBackgroundAndStaysBounded() throws {
        try requireSQLite("checkpoints are SQLite's")
        let path = databaseLocation
        func size(_ file: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int) ?? 0 }
        try store.write { tx in try tx.execute("CREATE TABLE filler (data BLOB)", []) }
        // About 5,500 pages of 4 KiB: past the background step, short of the inline threshold.
        for _ in 0..<220 {
            try store.write { tx in try tx.execute("INSERT INTO filler (data) VALUES (randomblob(100000))", []) }
        }
        // No commit crossed the inline threshold: only the background thread copies pages, at
        // least the 2,500 of its first step.
        waitUntil("background checkpoints copy the WAL into the database file") { size(path) > 8_000_000 }
        // That thread runs at a lower priority than the ones requests wait for.
        let tasks = "/proc/self/task"
        let niceOfThreads = try FileManager.default.contentsOfDirectory(atPath: tasks).compactMap { task -> (String, Int)? in
            guard let stat = try? String(contentsOfFile: "\(tasks)/\(task)/stat", encoding: .utf8),
                  let nameEnd = stat.lastIndex(of: ")"), let nameStart = stat.firstIndex(of: "(") else { return nil }
            // After the name: state is field 3, nice field 19.
            let fields = stat[stat.index(after: nameEnd)...].split(separator: " ")
            guard fields.count > 16, let nice = Int(fields[16]) else { return nil }
            return (String(stat[stat.index(after: nameStart)..<nameEnd]), nice)
        }
        XCTAssertEqual(Set(niceOfThreads.filter { $0.0 == "checkpointer" }.map(\.1)), [Int(BackgroundCheckpointer.nice)], "\(niceOfThreads)")
        XCTAssertEqual(BackgroundCheckpointer.nice, 10)
        // 100 MB more, past the inline threshold had the WAL not started over. A lone writer
        // commits again before the background thread has copied its last frames, so what starts
        // the WAL over here is a commit checkpointing itself at the inline threshold, after the
        // background thread's copy in progress (without that wait, on a disk slowed by other
        // writers, the WAL passed the bound in two runs of four: 89 and 108 MB).
        for _ in 0..<1_000 {
            try store.write { tx in try tx.execute("INSERT INTO filler (data) VALUES (randomblob(100000))", []) }
        }
        XCTAssertLessThan(size(path + "-wal"), Int(BackgroundCheckpointer.inlinePages + 1_000) * 4_120)
    }

    /// A writer that finds SQLite's write lock taken polls it until its busy timeout (every 100 µs:
    /// SQLite's own handler sleeps 1, 2, 5, 10… ms, which the soak's p99 paid), then fails with
    /// BUSY, not before; and it gets the lock once the holder lets go.
    func testAWriterWaitsForTheWriteLockUpToItsBusyTimeout() throws {
        try requireSQLite("SQLite's write lock")
        let path = directory.file("busy.sqlite")
        let holder = try Database(path: path)
        try holder.execute("CREATE TABLE t (x)")
        try holder.execute("BEGIN IMMEDIATE")
        let impatient = try Database(path: path, busyTimeoutMilliseconds: 300)
        let started = DispatchTime.now().uptimeNanoseconds
        XCTAssertThrowsError(try impatient.execute("BEGIN IMMEDIATE")) { error in
            XCTAssertTrue((error as? SQLiteError)?.isBusy == true, "\(error)")
        }
        let waited = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        XCTAssertGreaterThanOrEqual(waited, 0.3, "gave up before its timeout")
        XCTAssertLessThan(waited, 5, "waited far past its timeout")

        // Another connection waits for the lock; the holder commits, and it gets it.
        let outcome = Locked<String?>(nil)
        let opened = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            defer { finished.signal() }
            do {
                let patient = try Database(path: path, busyTimeoutMilliseconds: 10_000)
                opened.signal()
                try patient.execute("BEGIN IMMEDIATE")
                try patient.execute("INSERT INTO t VALUES (1)")
                try patient.execute("COMMIT")
                outcome.withLock { $0 = "committed" }
            } catch {
                opened.signal()
                outcome.withLock { $0 = "\(error)" }
            }
        }
        XCTAssertEqual(opened.wait(timeout: .now() + 10), .success)
        try holder.execute("COMMIT")
        XCTAssertEqual(finished.wait(timeout: .now() + 15), .success)
        XCTAssertEqual(outcome.value, "committed")
    }

    /// Tenant `t` and its endpoint `e`, in the columns migration 0001 has: rows an upgrade must keep.
    private static let tenantAndEndpointOfTheFirstSchema = """
        INSERT INTO tenants (id, name, created_at, updated_at) VALUES ('t', 't', 0, 0);
        INSERT INTO endpoints (id, tenant_id, url, timeout_ms, connect_timeout_ms, max_concurrency, retry, success_rule, created_at, updated_at)
        VALUES ('e', 't', 'https://example.com/h', 10000, 5000, 4, '{"policy":"one_retry","delay_seconds":5}', '2xx', 0, 0);
        """

    func testADatabaseFromAnEarlierVersionIsUpgradedWithItsData() throws {
        try requireSQLite("the only store with released earlier schema versions")
        let path = directory.file("old.sqlite")
        let old = try Database(path: path)
        XCTAssertEqual(try Migrator(migrations: Array(EmbeddedMigrations.sqlite.prefix(1))).migrate(old), [1])
        try old.execute(Self.tenantAndEndpointOfTheFirstSchema)
        let upgraded = try OutboxStore.sqlite(path: path)
        let endpoint = try XCTUnwrap(upgraded.endpoint(id: "e"))
        XCTAssertEqual(endpoint.secretHeaders, [])
        XCTAssertEqual(endpoint.retry, .oneRetry(delaySeconds: 5))
    }

    func testUnfinishedDeliveriesOfOrderedEndpointsAreFlaggedOrderedOnUpgrade() throws {
        try requireSQLite("the only store with released earlier schema versions")
        let path = directory.file("old.sqlite")
        let old = try Database(path: path)
        XCTAssertEqual(try Migrator(migrations: Array(EmbeddedMigrations.sqlite.prefix(5))).migrate(old), [1, 2, 3, 4, 5])
        try old.execute("""
            INSERT INTO tenants (id, name, created_at, updated_at) VALUES ('t', 't', 0, 0);
            INSERT INTO endpoints (id, tenant_id, url, timeout_ms, connect_timeout_ms, max_concurrency, retry, success_rule, ordered, created_at, updated_at)
            VALUES ('in-order', 't', 'https://example.com/a', 10000, 5000, 4, '{"policy":"one_retry","delay_seconds":5}', '2xx', 1, 0, 0),
                   ('any-order', 't', 'https://example.com/b', 10000, 5000, 4, '{"policy":"one_retry","delay_seconds":5}', '2xx', 0, 0, 0);
            INSERT INTO events (id, tenant_id, type, body, created_at) VALUES ('ev', 't', 'visit.ended', '{}', 0);
            INSERT INTO deliveries (event_id, endpoint_id, tenant_id, event_type, status, created_at, updated_at)
            VALUES ('ev', 'in-order', 't', 'visit.ended', 'pending', 0, 0), ('ev', 'any-order', 't', 'visit.ended', 'pending', 0, 0);
            INSERT INTO events (id, tenant_id, type, body, created_at) VALUES ('done', 't', 'visit.ended', '{}', 0);
            INSERT INTO deliveries (event_id, endpoint_id, tenant_id, event_type, status, created_at, updated_at)
            VALUES ('done', 'in-order', 't', 'visit.ended', 'succeeded', 0, 0);
            """)
        let upgraded = try OutboxStore.sqlite(path: path)
        let flags = try upgraded.withConnection {
            try $0.query("SELECT event_id, endpoint_id, ordered FROM deliveries ORDER BY id") { "\($0.string(0)) \($0.string(1)) \($0.int(2))" }
        }
        XCTAssertEqual(flags, ["ev in-order 1", "ev any-order 0", "done in-order 0"])
    }

    /// SQLite evaluates a constraint's `IN` list of three or more values through a temporary
    /// b-tree built for every row written; the delivery path's writes must compare in turn
    /// (migration 0015) and still refuse what the constraints refuse. Checked on a database
    /// upgraded under a connection opened before, which must see the new schema too.
    func testDeliveryWritesBuildNoTemporaryTablePerRow() throws {
        try requireSQLite("SQLite's evaluation of constraints")
        let path = directory.file("upgraded.sqlite")
        var old: Database? = try Database(path: path)
        XCTAssertEqual(try Migrator(migrations: Array(EmbeddedMigrations.sqlite.prefix(14))).migrate(XCTUnwrap(old)).count, 14)
        try old?.execute(Self.tenantAndEndpointOfTheFirstSchema)
        try old?.execute("""
            INSERT INTO events (id, tenant_id, type, body, created_at) VALUES ('ev', 't', 'visit.ended', '{}', 0), ('old', 't', 'visit.ended', '{}', 0);
            INSERT INTO deliveries (event_id, endpoint_id, tenant_id, event_type, status, created_at, updated_at)
            VALUES ('ev', 'e', 't', 'visit.ended', 'pending', 0, 0), ('old', 'e', 't', 'visit.ended', 'succeeded', 0, 0);
            """)
        let upgraded = try OutboxStore.sqlite(path: path)
        // A connection reads the schema again when it next runs a statement (EXPLAIN runs none).
        XCTAssertEqual(try old?.query("SELECT count(*) FROM deliveries", []) { $0.int(0) }, [2])
        for db in [try XCTUnwrap(old), try Database(path: path)] {
            func temporaryTables(_ sql: String) throws -> Int {
                try db.query("EXPLAIN " + sql, []) { $0.string(1) }.filter { $0 == "OpenEphemeral" }.count
            }
            XCTAssertEqual(try temporaryTables("""
                INSERT INTO deliveries (event_id, endpoint_id, tenant_id, event_type, status, created_at, updated_at)
                VALUES ('ev', 'e', 't', 'x', 'pending', 0, 0)
                """), 0)
            XCTAssertEqual(try temporaryTables("UPDATE deliveries SET status = 'succeeded', updated_at = 1 WHERE id = 1"), 0)
            XCTAssertEqual(try temporaryTables("""
                INSERT INTO attempts (delivery_id, number, started_at, duration_us, url, request_headers, verdict)
                VALUES (1, 1, 0, 0, 'u', '[]', 'retry')
                """), 0)
        }
        // (Closed before writing: a connection that explained a write and then fails one in
        // autocommit keeps SQLite's write lock, in SQLite 3.40 at least.)
        old = nil

        // The constraints refuse what they refused, and the stored rows are intact.
        let db = try Database(path: path)
        XCTAssertThrowsError(try db.execute("UPDATE deliveries SET status = 'lost' WHERE id = 1")) { error in
            XCTAssertTrue("\(error)".contains("CHECK constraint failed"), "\(error)")
        }
        XCTAssertThrowsError(try db.execute("""
            INSERT INTO attempts (delivery_id, number, started_at, duration_us, url, request_headers, verdict)
            VALUES (1, 1, 0, 0, 'u', '[]', 'maybe')
            """)) { error in XCTAssertTrue("\(error)".contains("CHECK constraint failed"), "\(error)") }
        try db.execute("UPDATE deliveries SET status = 'delivering' WHERE id = 1")
        XCTAssertEqual(try db.query("PRAGMA integrity_check", []) { $0.string(0) }, ["ok"])
        // Retention still finds finished deliveries through their index.
        let plan = try db.query("EXPLAIN QUERY PLAN " + OperationsQueries.countPrunableDeliveries, [Int64(1)]) { $0.string(3) }
        XCTAssertTrue(plan.contains { $0.contains("deliveries_finished_by_updated") }, "\(plan)")
        XCTAssertEqual(try upgraded.prune(olderThan: Date(timeIntervalSince1970: 1), dryRun: false).deliveries, 1)
    }

    func testEmbeddedMigrationsAreTheFilesInMigrations() throws {
        // The plugin generates them at build time; this proves the build used the current files.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../migrations").standardized
        for (folder, embedded) in [(root, EmbeddedMigrations.sqlite), (root.appendingPathComponent("postgres"), EmbeddedMigrations.postgres)] {
            let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
            XCTAssertFalse(files.isEmpty, folder.path)
            XCTAssertEqual(embedded.map { $0.name + ".sql" }, files)
            for (migration, file) in zip(embedded, files) {
                XCTAssertEqual(migration.sql, try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8))
            }
        }
    }

    func testDatabaseFileIsCreatedPrivate() throws {
        try requireSQLite("a database file and its journal mode")
        let attributes = try FileManager.default.attributesOfItem(atPath: databaseLocation)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        XCTAssertEqual(try store.withConnection { try $0.query("PRAGMA journal_mode") { $0.string(0) } }, ["wal"])
    }

    func testALiveLeaseIsNotClaimedTwiceButAnExpiredOneIs() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let event = try enqueue()

        let first = try store.claimDueDeliveries(limit: 10, owner: "worker-a", leaseSeconds: 60, inFlight: [:])
        XCTAssertEqual(first.map(\.eventID), [event.eventID])
        XCTAssertEqual(first.first?.attemptNumber, 1)
        XCTAssertEqual(first.first?.body, Array(#"{"hello":"world"}"#.utf8))
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "worker-b", leaseSeconds: 60, inFlight: [:]), [])

        // Worker b's lease already ran out when it was taken: a crashed worker's claim.
        try store.withConnection { try $0.execute("UPDATE deliveries SET lease_owner = 'crashed', lease_expires_at = 0", []) }
        let reclaimed = try store.claimDueDeliveries(limit: 10, owner: "worker-c", leaseSeconds: 60, inFlight: [:])
        XCTAssertEqual(reclaimed.map(\.deliveryID), first.map(\.deliveryID))
        XCTAssertEqual(reclaimed.first?.attemptNumber, 1, "no attempt was recorded, so the number is unchanged")
    }

    /// One endpoint, `narrow`, that takes `maxConcurrency` deliveries at once, with `due` of them waiting.
    func addNarrowEndpoint(maxConcurrency: Int, due: Int) throws {
        var narrow = endpoint("narrow", url: "https://example.com/n")
        narrow.maxConcurrency = maxConcurrency
        try addTenant(endpoints: [narrow])
        for _ in 0..<due { try enqueue() }
    }

    func testClaimRespectsEachEndpointsFreeConcurrency() throws {
        try addNarrowEndpoint(maxConcurrency: 2, due: 5)
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]).count, 2)
        try store.withConnection { try $0.execute("UPDATE deliveries SET status = 'pending', lease_owner = NULL", []) }
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: ["narrow": 1]).count, 1)
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: ["narrow": 2]).count, 0)
    }

    /// A claim takes the process's own counts for the store's only when every live lease is its
    /// own and it counts them all; otherwise it reads the leases back.
    func testAClaimTrustsItsOwnCountsOnlyWhenTheyAreEveryLease() throws {
        try addNarrowEndpoint(maxConcurrency: 2, due: 6)
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]).count, 2)
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]).count, 0,
                       "its two leases count though it says it holds none")
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: ["narrow": 2]).count, 0)
        try store.withConnection { try $0.execute("UPDATE deliveries SET lease_owner = 'b' WHERE id = (SELECT min(id) FROM deliveries WHERE status = 'delivering')", []) }
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: ["narrow": 1]).count, 0,
                       "another process's lease counts")
        try store.withConnection { try $0.execute("UPDATE deliveries SET status = 'succeeded' WHERE lease_owner = 'b'", []) }
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: ["narrow": 1]).count, 1)
    }

    /// An attempt that ended and waits for the next cycle to record it keeps its lease, but not
    /// its place at the receiver: a cycle claims as if it were recorded (in this process, and
    /// another process still counts it).
    func testAttemptsAwaitingTheirRecordNoLongerHoldTheEndpoint() throws {
        try addNarrowEndpoint(maxConcurrency: 2, due: 6)
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]).count, 2)
        func cycle(awaitingRecord: Int) throws -> Int {
            try store.recordAndClaim([], claimLimit: 10, owner: "w", leaseSeconds: 60, inFlight: ["narrow": 2],
                                     awaitingRecord: awaitingRecord == 0 ? [:] : ["narrow": awaitingRecord]).claimed.count
        }
        XCTAssertEqual(try cycle(awaitingRecord: 0), 0, "both requests in flight")
        XCTAssertEqual(try cycle(awaitingRecord: 1), 1, "one of them ended")
        // Now three leases, one of them ended: the other process sees all three.
        XCTAssertEqual(try openStore().claimDueDeliveries(limit: 10, owner: "b", leaseSeconds: 60, inFlight: [:]), [])
    }

    func testMaxConcurrencyHoldsAcrossProcesses() throws {
        try addNarrowEndpoint(maxConcurrency: 3, due: 10)
        let other = try openStore()  // another serve process's connection
        let first = try store.claimDueDeliveries(limit: 10, owner: "a", leaseSeconds: 60, inFlight: [:])
        XCTAssertEqual(first.count, 3)
        XCTAssertEqual(try other.claimDueDeliveries(limit: 10, owner: "b", leaseSeconds: 60, inFlight: [:]), [],
                       "the endpoint's three are in flight in another process")

        try store.record([result(first[0], owner: "a", verdict: .succeeded)])
        XCTAssertEqual(try other.claimDueDeliveries(limit: 10, owner: "b", leaseSeconds: 60, inFlight: [:]).count, 1)

        // A crashed process's leases stop counting when they expire.
        try store.withConnection { try $0.execute("UPDATE deliveries SET lease_expires_at = 0 WHERE lease_owner = 'a'", []) }
        XCTAssertEqual(try other.claimDueDeliveries(limit: 10, owner: "b", leaseSeconds: 60, inFlight: ["narrow": 1]).count, 2)
    }

    /// Within one recorded batch, each endpoint's health follows its own results in order: a
    /// success resets its count, and only the failures after its last success count.
    func testABatchCountsEachEndpointsFailuresAfterItsLastSuccess() throws {
        try addTenant(endpoints: ["a", "b", "c"].map { endpoint($0, url: "https://example.com/\($0)") })
        for _ in 0..<3 { try enqueue() }
        try store.withConnection { try $0.execute("UPDATE endpoints SET consecutive_failures = 5 WHERE id = 'b'", []) }
        var claimed: [ClaimedDelivery] = []
        for _ in 0..<5 where claimed.count < 9 {  // a claim shares its limit among the endpoints
            claimed += try store.claimDueDeliveries(limit: 9 - claimed.count, owner: "w", leaseSeconds: 60, inFlight: [:])
        }
        let byEndpoint = Dictionary(grouping: claimed, by: \.endpointID)
        XCTAssertEqual(byEndpoint.mapValues(\.count), ["a": 3, "b": 3, "c": 3])
        func next(_ endpoint: String, _ index: Int, succeeded: Bool) throws -> AttemptResult {
            result(try XCTUnwrap(byEndpoint[endpoint].flatMap { $0.indices.contains(index) ? $0[index] : nil }), verdict: succeeded ? .succeeded : .failed)
        }
        // The endpoints' results interleaved, as workers finish them.
        try store.record([
            next("a", 0, succeeded: false), next("b", 0, succeeded: true), next("c", 0, succeeded: false),
            next("b", 1, succeeded: false), next("a", 1, succeeded: true), next("c", 1, succeeded: false),
            next("b", 2, succeeded: false), next("c", 2, succeeded: false), next("a", 2, succeeded: true),
        ])
        let failures = Dictionary(uniqueKeysWithValues: try store.endpointStatuses().map { ($0.endpoint.id, $0.consecutiveFailures) })
        XCTAssertEqual(failures, ["a": 0, "b": 2, "c": 3], "a's failure came before its successes; b's five before its success")
    }

    func testClaimSkipsDisabledEndpointsAndFutureRetries() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        try enqueue()
        try store.withConnection { try $0.execute("UPDATE deliveries SET next_attempt_at = ?", [Clock.nowMilliseconds() + 60_000]) }
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]), [])
        try store.withConnection { try $0.execute("UPDATE deliveries SET next_attempt_at = 0", []) }
        try store.withConnection { try $0.execute("UPDATE endpoints SET enabled = 0", []) }
        XCTAssertEqual(try store.claimDueDeliveries(limit: 10, owner: "w", leaseSeconds: 60, inFlight: [:]), [])
    }

    func testARecordFromAWorkerThatLostItsLeaseIsLoggedButDoesNotDecideTheState() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        try enqueue()
        let claim = try XCTUnwrap(store.claimDueDeliveries(limit: 1, owner: "slow", leaseSeconds: 60, inFlight: [:]).first)
        try store.withConnection { try $0.execute("UPDATE deliveries SET lease_owner = 'other'", []) }
        try store.record([result(claim, owner: "slow", verdict: .succeeded)])
        let record = try XCTUnwrap(store.eventRecord(deliveryID: claim.deliveryID))
        XCTAssertEqual(record.deliveries.first?.attempts.count, 1)
        XCTAssertEqual(record.deliveries.first?.delivery.status, .delivering)
    }

    func testLogFiltersAndOrdersNewestFirst() throws {
        try addTenant(endpoints: [endpoint("a1", url: "https://example.com/1")])
        try addTenant("tenant-b", endpoints: [endpoint("b1", tenant: "tenant-b", url: "https://example.com/2")])
        let first = try enqueue(type: "checkin.outcome")
        let second = try enqueue(type: "visit.ended")
        let third = try enqueue(type: "visit.ended", tenant: "tenant-b")

        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter()).map(\.eventID), [third, second, first].map(\.eventID))
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(tenantID: "tenant-b")).map(\.eventID), [third.eventID])
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(endpointID: "a1")).count, 2)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(typePattern: "visit.*")).count, 2)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(status: .pending)).count, 3)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(status: .failed)).count, 0)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(since: Date().addingTimeInterval(60))).count, 0)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(limit: 1)).map(\.eventID), [third.eventID])
        // Time-ordered ids made in the same minute share their first 8 characters: a prefix
        // names one event once it reaches the random part.
        XCTAssertEqual(try store.eventIDs(withPrefix: String(first.eventID.prefix(30)), limit: 2), [first.eventID])
    }

    func testUpsertingTheSameEndpointKeepsItsRevisionAndAChangeBumpsIt() throws {
        let original = endpoint(url: "https://example.com/hook")
        try addTenant(endpoints: [original])
        try addTenant(endpoints: [original])
        XCTAssertEqual(try store.endpointRevision(id: original.id), 1)
        var changed = original
        changed.url = "https://example.com/other"
        try addTenant(endpoints: [changed])
        XCTAssertEqual(try store.endpointRevision(id: original.id), 2)
        XCTAssertEqual(try store.endpoint(id: original.id), changed)
    }

    /// Many endpoints in one query (the workers' cache loads a claim's endpoints so): unknown
    /// and removed ones are left out.
    func testEndpointsAreReadManyAtOnceWithoutRemovedOrUnknownOnes() throws {
        let endpoints = (0..<3).map { endpoint("ep-\($0)", url: "https://example.com/\($0)") }
        try addTenant(endpoints: endpoints)
        _ = try store.removeEndpoint(id: "ep-1")
        let read = try store.endpoints(ids: ["ep-0", "ep-1", "ep-2", "no-such-endpoint"])
        XCTAssertEqual(read.sorted { $0.id < $1.id }, [endpoints[0], endpoints[2]])
        XCTAssertEqual(try store.endpoints(ids: []), [])
    }

    /// The reads a long-running `serve` repeats whose pages grow with the outbox (the pending
    /// count every few seconds, the stats line, `/metrics`) have a connection of their own: they
    /// neither wait for the store loop's transaction nor keep the pages they visit in memory.
    func testOutboxWideReadsNeitherWaitForTheWriterNorKeepTheirPages() throws {
        try requireSQLite("PostgreSQL's pool has separate connections already; the page cache is SQLite's")
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let events = (0..<30_000).map { NewEvent(tenantID: "tenant-a", type: "order.created", body: Array("{\"n\":\($0)}".utf8)) }
        _ = try store.enqueue(contentsOf: events)
        let store = try XCTUnwrap(self.store)

        // A write transaction holds the store's connection while the count is asked for.
        let inTransaction = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), written = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? store.write { _ in
                inTransaction.signal()
                release.wait()
            }
            written.signal()
        }
        inTransaction.wait()
        let counted = DispatchSemaphore(value: 0), count = Mutex<Int?>(nil)
        DispatchQueue.global().async {
            let pending = try? store.pendingCount()
            count.withLock { $0 = pending }
            counted.signal()
        }
        let answered = counted.wait(timeout: .now() + 10) == .success
        release.signal()
        written.wait()
        if !answered { counted.wait() }
        XCTAssertTrue(answered, "the count waited for the write transaction")
        XCTAssertEqual(count.withLock { $0 }, 30_000)

        let bound = Database.readerPageCachePages * 4_600
        func readerCacheBytes() throws -> Int { try store.withReadConnection { try XCTUnwrap($0 as? Database).pageCacheBytes } }
        XCTAssertLessThanOrEqual(try readerCacheBytes(), bound)
        _ = try store.stats(windowSeconds: 60)
        XCTAssertLessThanOrEqual(try readerCacheBytes(), bound)
        // The same count on the writer's connection keeps its pages (so the bound above means something).
        let writerCacheBytes = try store.withConnection { db in
            _ = try db.query(LogQueries.pendingCount) { $0.int(0) }
            return try XCTUnwrap(db as? Database).pageCacheBytes
        }
        XCTAssertGreaterThan(writerCacheBytes, 2 * bound)
    }

    func testAnEndpointCannotMoveToAnotherTenant() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        XCTAssertThrowsError(try addTenant("tenant-b", endpoints: [endpoint(tenant: "tenant-b", url: "https://example.com/hook")]))
    }

    func testBatchesAreWrittenInChunksOfAFewStatementShapes() {
        XCTAssertEqual(DeliveryQueries.chunked([Int](), .sqlite).map(\.count), [])
        XCTAssertEqual(DeliveryQueries.chunked(Array(0..<1), .sqlite).map(\.count), [1])
        XCTAssertEqual(DeliveryQueries.chunked(Array(0..<45), .sqlite).map(\.count), [32, 8, 4, 1])
        XCTAssertEqual(DeliveryQueries.chunked(Array(0..<100), .sqlite).map(\.count), [32, 32, 32, 4])
        XCTAssertEqual(DeliveryQueries.chunked(Array(0..<45), .sqlite).flatMap { $0 }, Array(0..<45), "in order, each row once")
        XCTAssertEqual(DeliveryQueries.chunked(Array(0..<45), .postgres).map(\.count), [32, 13], "PostgreSQL: as few statements as it can")
    }
}
