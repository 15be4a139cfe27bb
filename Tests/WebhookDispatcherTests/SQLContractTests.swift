import Foundation
import XCTest
@testable import DispatcherStore
import WebhookDispatcher

/// Producers in any language: `INSERT INTO dispatcher_outbox` (SQLite) and
/// `dispatcher_enqueue(...)` (PostgreSQL) inside the producer's own transaction, driven from
/// clients nobody here wrote (Python's `sqlite3`, `psql`), and held to the Swift `enqueue`.
final class SQLContractTests: DispatcherTestCase {
    /// Runs a tool to completion and returns its stdout; it must succeed.
    func runTool(_ arguments: [String], stdin: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let output = try Self.runTool(arguments, stdin: stdin, file: file, line: line)
        XCTAssertEqual(output.status, 0, "\(arguments.prefix(2)): \(output.stderr)", file: file, line: line)
        return output.stdout
    }

    /// Runs `python3 -c script` with the database path as its argument; returns stdout.
    func python(_ script: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try runTool(["python3", "-c", script, databaseLocation], file: file, line: line)
    }

    func testPythonsSQLite3EnqueuesInItsOwnTransactionAndEventsArriveByteForByte() throws {
        try requireSQLite("Python's sqlite3 module")
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        let output = try python(#"""
        import sqlite3, sys
        db = sqlite3.connect(sys.argv[1], isolation_level=None)
        db.execute("CREATE TABLE visits (id INTEGER PRIMARY KEY, status TEXT NOT NULL)")
        db.execute("BEGIN")
        db.execute("INSERT INTO visits VALUES (1, 'ended')")
        db.execute("INSERT INTO dispatcher_outbox (tenant_id, type, body, id) VALUES (?, ?, ?, ?)",
                   ("tenant-a", "visit.ended", '{ "id" : "28540",\n "note": "caf\u00e9" }', "0192f3a8-1111-7222-8333-444455556666"))
        db.execute("INSERT INTO dispatcher_outbox (tenant_id, type, body) VALUES (?, ?, ?)", ("tenant-a", "visit.updated", b'{"id":"28541"}'))
        db.execute("INSERT INTO dispatcher_outbox (tenant_id, type, body, id) VALUES (?, ?, ?, ?)",
                   ("tenant-a", "visit.ended", '{ "id" : "28540",\n "note": "caf\u00e9" }', "0192F3A8-1111-7222-8333-444455556666"))
        for bad in [("nobody", "visit.ended", "{}"), ("tenant-a", "visit.ended", "[1]"), ("tenant-a", "visit.ended", "{"), ("tenant-a", "no spaces", "{}")]:
            try:
                db.execute("INSERT INTO dispatcher_outbox (tenant_id, type, body) VALUES (?, ?, ?)", bad)
                print("accepted", bad)
            except sqlite3.IntegrityError as error:
                print("refused:", error)
        db.execute("COMMIT")
        db.execute("BEGIN")
        db.execute("INSERT INTO visits VALUES (2, 'ended')")
        db.execute("INSERT INTO dispatcher_outbox (tenant_id, type, body) VALUES (?, ?, ?)", ("tenant-a", "visit.ended", '{"id":"rolled back"}'))
        db.execute("ROLLBACK")
        print("visits", db.execute("SELECT count(*) FROM visits").fetchone()[0])
        """#)
        XCTAssertFalse(output.contains("accepted"), output)
        XCTAssertTrue(output.contains("refused: dispatcher: unknown tenant"), output)
        XCTAssertTrue(output.contains("refused: dispatcher: invalid JSON body"), output)
        XCTAssertTrue(output.contains("refused: dispatcher: invalid event type"), output)
        XCTAssertTrue(output.contains("visits 1"), output)

        try startService()
        waitUntil("both events arrive") { receiver.requests.count >= 2 }
        let bodies = Set(receiver.requests.map { String(decoding: $0.body, as: UTF8.self) })
        XCTAssertEqual(bodies, ["{ \"id\" : \"28540\",\n \"note\": \"café\" }", #"{"id":"28541"}"#], "byte for byte, once each")
        XCTAssertEqual(receiver.requests.first { $0.header("webhook-id") == "0192f3a8-1111-7222-8333-444455556666" }.map { _ in true }, true)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(limit: 10)).count, 2, "the duplicate and the rolled-back event made no delivery")
    }

    func testPsqlEnqueuesInItsOwnTransactionOnPostgres() throws {
        guard TestDatabase.backend == .postgres else { throw XCTSkip("PostgreSQL only: psql and dispatcher_enqueue") }
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let script = """
            CREATE TABLE visits (id INTEGER PRIMARY KEY, status TEXT NOT NULL);
            BEGIN;
            INSERT INTO visits VALUES (1, 'ended');
            SELECT event_id, deliveries, duplicate FROM dispatcher_enqueue('tenant-a', 'visit.ended', '{"id":"28540"}', '0192f3a8-1111-7222-8333-444455556666');
            SELECT deliveries, duplicate FROM dispatcher_enqueue('tenant-a', 'visit.ended', '{"id":"28540"}', '0192F3A8-1111-7222-8333-444455556666');
            COMMIT;
            BEGIN;
            INSERT INTO visits VALUES (2, 'ended');
            SELECT dispatcher_enqueue('tenant-a', 'visit.ended', '{"id":"rolled back"}');
            ROLLBACK;
            """
        let output = try runTool(["psql", databaseLocation, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"], stdin: script)
        XCTAssertTrue(output.contains("0192f3a8-1111-7222-8333-444455556666|1|f"), output)
        XCTAssertTrue(output.contains("1|t"), output)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(limit: 10)).count, 1)
        XCTAssertEqual(try store.withConnection { try $0.query("SELECT count(*) FROM visits") { $0.int(0) } }, [1])

        let refused = try Self.runTool(["psql", databaseLocation, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "SELECT dispatcher_enqueue('nobody', 'a.b', '{}')"])
        XCTAssertNotEqual(refused.status, 0)
        let message = refused.stderr
        XCTAssertTrue(message.contains("dispatcher: unknown tenant 'nobody'"), message)
    }

    /// The SQL contract takes a trace context too (Python's sqlite3, or psql), checks it as the
    /// library does, and each attempt continues the trace.
    func testTheSQLContractTakesATraceContext() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url("/traced"))])
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        if TestDatabase.backend == .sqlite {
            let output = try python(#"""
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1], isolation_level=None)
            db.execute("INSERT INTO dispatcher_outbox (tenant_id, type, body, traceparent, tracestate) VALUES (?, ?, ?, ?, ?)",
                       ("tenant-a", "order.created", "{}", "\#(traceparent)", "congo=t61rcWkgMzE"))
            for bad in [("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", None), ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None),
                        (None, "congo=t61rcWkgMzE"), ("\#(traceparent)", "a=b\n")]:
                try:
                    db.execute("INSERT INTO dispatcher_outbox (tenant_id, type, body, traceparent, tracestate) VALUES ('tenant-a', 'a.b', '{}', ?, ?)", bad)
                    print("accepted", bad)
                except sqlite3.IntegrityError as error:
                    print("refused:", error)
            """#)
            XCTAssertFalse(output.contains("accepted"), output)
            XCTAssertEqual(output.components(separatedBy: "refused: dispatcher: invalid trace").count, 5, output)
        } else {
            let output = try runTool(["psql", databaseLocation, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c",
                                      "SELECT deliveries FROM dispatcher_enqueue('tenant-a', 'order.created', '{}', p_traceparent => '\(traceparent)', p_tracestate => 'congo=t61rcWkgMzE')"])
            XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "1")
            let refused = try Self.runTool(["psql", databaseLocation, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                                            "SELECT dispatcher_enqueue('tenant-a', 'a.b', '{}', p_traceparent => '00-nothex')"])
            XCTAssertTrue(refused.stderr.contains("dispatcher: invalid traceparent"), refused.stderr)
        }
        try startService()
        waitUntil("the traced event arrives") { !receiver.requests(on: "/traced").isEmpty }
        let sent = try XCTUnwrap(receiver.requests(on: "/traced").first)
        XCTAssertTrue(sent.header("traceparent")?.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-") ?? false, "\(sent.headers)")
        XCTAssertEqual(sent.header("tracestate"), "congo=t61rcWkgMzE")
    }

    /// The same events through the Swift `enqueue` and through the SQL contract give the same
    /// verdicts, duplicate flags and deliveries (endpoint, ordering key, ordered flag).
    func testTheSQLContractAndSwiftEnqueueAgree() throws {
        var ordered = endpoint("ordered", url: "https://example.com/o", events: ["visit.*"])
        ordered.ordered = true
        let endpoints = [endpoint("all", url: "https://example.com/a"), ordered,
                         endpoint("checkins", url: "https://example.com/c", events: ["checkin.*", "order.x"])]
        try addTenant(endpoints: endpoints)
        // A second database for the SQL path: the same endpoints, none of the Swift path's events.
        let other = TestDatabase.backend == .sqlite
            ? TestDatabase(location: directory.file("sql-path.sqlite"), drop: {}) : try PostgresTestServer.shared().makeSchemaDatabase()
        defer { other.drop() }
        let sqlStore = try OutboxStore.open(other.location)
        try sqlStore.upsert(tenants: [Tenant(id: "tenant-a", name: "tenant-a")], endpoints: endpoints)

        let fixed = "0192f3a8-1111-7222-8333-444455556666"
        let cases: [(tenant: String, type: String, body: String, id: String?, key: String?)] = [
            ("tenant-a", "visit.ended", #"{"id":"1"}"#, nil, nil),
            ("tenant-a", "visit.ended", #"{"id":"2"}"#, nil, "patient-7"),
            ("tenant-a", "order.x", #"{"n": 1.50, "s": "\u00e9"}"#, fixed, nil),
            ("tenant-a", "order.x", #"{"n": 1.50, "s": "\u00e9"}"#, fixed, nil),   // a retry: duplicate
            ("tenant-a", "order.y", #"{"n": 2}"#, fixed, nil),                     // a taken id: refused
            ("tenant-a", "checkin.outcome", "{}", nil, nil),
            ("tenant-a", "nothing.matches.here", "{}", nil, nil),
            ("nobody", "visit.ended", "{}", nil, nil),
            ("tenant-a", "visit.ended", "[]", nil, nil),
            ("tenant-a", "visit.ended", "{", nil, nil),
            ("tenant-a", "bad type", "{}", nil, nil),
        ]
        func viaSwift(_ c: (tenant: String, type: String, body: String, id: String?, key: String?)) -> String {
            do {
                let result = try store.enqueue(NewEvent(tenantID: c.tenant, type: c.type, json: c.body, id: c.id.flatMap(UUID.init(uuidString:)), orderingKey: c.key))
                return "ok duplicate=\(result.isDuplicate) deliveries=\(result.deliveryCount) \(try deliveries(of: result.eventID, in: store))"
            } catch { return "refused" }
        }
        func viaSQL(_ c: (tenant: String, type: String, body: String, id: String?, key: String?)) -> String {
            do {
                let eventID: String
                var duplicate = false
                if TestDatabase.backend == .postgres {
                    let row = try sqlStore.write { tx in
                        try tx.rows("SELECT event_id, duplicate FROM dispatcher_enqueue(?, ?, ?, ?, ?)", [c.tenant, c.type, c.body, c.id, c.key])
                    }
                    guard case .text(let id)? = row.first?.first else { return "no row" }
                    eventID = id
                    duplicate = row.first?.last == .integer(1) || row.first?.last == .text("t")
                } else {
                    duplicate = try c.id.map { try sqlStore.eventRecord(eventID: $0.lowercased()) != nil } ?? false
                    try sqlStore.write { tx in
                        try tx.execute("INSERT INTO dispatcher_outbox (tenant_id, type, body, id, ordering_key) VALUES (?, ?, ?, ?, ?)",
                                       [c.tenant, c.type, c.body, c.id, c.key])
                    }
                    eventID = try sqlStore.withConnection { try $0.query("SELECT id FROM events ORDER BY created_at DESC, rowid DESC LIMIT 1") { $0.string(0) } }.first ?? ""
                }
                let id = c.id?.lowercased() ?? eventID
                let made = try sqlStore.eventRecord(eventID: id)?.deliveries.count ?? 0
                return "ok duplicate=\(duplicate) deliveries=\(made) \(try deliveries(of: id, in: sqlStore))"
            } catch { return "refused" }
        }
        for c in cases {
            XCTAssertEqual(viaSQL(c), viaSwift(c), "\(c)")
        }
    }

    private func deliveries(of eventID: String, in store: OutboxStore) throws -> String {
        let record = try store.eventRecord(eventID: eventID)
        return (record?.deliveries ?? []).map { "\($0.delivery.endpointID)" }.sorted().joined(separator: ",")
            + " keys=" + (try store.withConnection { db in
                try db.query("SELECT endpoint_id || ':' || ordering_key || ':' || ordered FROM deliveries WHERE event_id = ? ORDER BY endpoint_id", [eventID]) { $0.string(0) }
            }).joined(separator: ",")
    }
}
