import Foundation
import XCTest
@testable import DispatcherStore
import WebhookDispatcher
import DispatcherWorker

/// The operator's commands, through the real executable: endpoints management, test pings,
/// redeliver, replay, cancel, stats, prune, retention and the development receiver.
final class OperationsTests: DispatcherTestCase {
    func testMessagesBelowTheMinimumLevelAreDropped() {
        for (minimum, expected) in [(DispatcherLogger.Level.debug, ["d", "i", "w", "e"]), (.info, ["i", "w", "e"]),
                                    (.warning, ["w", "e"]), (.error, ["e"])] {
            let written = Locked<[String]>([])
            let logger = DispatcherLogger(minimumLevel: minimum) { _, message in written.withLock { $0.append(message) } }
            for (level, message) in [(DispatcherLogger.Level.debug, "d"), (.info, "i"), (.warning, "w"), (.error, "e")] {
                logger.log(level, message)
            }
            XCTAssertEqual(written.value, expected, "minimum \(minimum)")
        }
    }

    /// `log_format: json`: every line of serve's log is one JSON object (read by Python's
    /// json module) with time, level and message, and an attempt's line carries its fields;
    /// secrets stay out as in the text log.
    func testServeWritesJSONLogLinesWithTheAttemptsFields() throws {
        let receiver = try makeReceiver { _, _ in .respond(status: 500) }
        let config = try writeConfig(url: receiver.url("/fails"), extra: #", "log_format": "json""#,
                                     endpointExtra: #", "headers": {"Authorization": "Bearer sekrit-token-123"}"#)
        let logFile = directory.file("serve.log")
        let serve = try startServe(config: config, logFile: logFile, verbose: true)
        waitUntil("serve is delivering") { (try? String(contentsOfFile: logFile, encoding: .utf8))?.contains("transfer slots") == true }
        let event = try enqueue()
        try waitForFinalDeliveries(of: event.eventID)
        waitUntil("the failure is logged") { (try? String(contentsOfFile: logFile, encoding: .utf8))?.contains("failed after") == true }
        XCTAssertEqual(try stopProcess(serve, signal: SIGTERM), 0)
        let script = #"""
            import json, sys
            lines = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
            assert all(isinstance(l, dict) and {"time", "level", "message"} <= l.keys() for l in lines), lines
            failed = [l for l in lines if l["level"] == "warning" and "failed after" in l["message"]]
            attempts = [l for l in lines if l["level"] == "debug" and "attempt" in l]
            print(json.dumps({"failed": failed[0], "attempts": len(attempts)}, sort_keys=True))
            """#
        let parsed = try Self.runTool(["python3", "-c", script, logFile])
        XCTAssertEqual(parsed.status, 0, parsed.stderr)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any])
        let failed = try XCTUnwrap(result["failed"] as? [String: Any])
        XCTAssertEqual(failed["event"] as? String, event.eventID)
        XCTAssertEqual(failed["endpoint"] as? String, "ep-1")
        XCTAssertEqual(failed["attempt"] as? Int, 2)
        XCTAssertEqual(failed["status"] as? Int, 500)
        XCTAssertEqual(failed["verdict"] as? String, "failed")
        XCTAssertNotNil(failed["delivery"] as? Int)
        XCTAssertNotNil(failed["duration_ms"] as? Double)
        XCTAssertEqual(result["attempts"] as? Int, 2, "--verbose logs each attempt")
        XCTAssertFalse(try String(contentsOfFile: logFile, encoding: .utf8).contains("sekrit-token-123"))
        let refused = try run(["serve", "--config", config, "--log-format", "xml"])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("--log-format must be text or json"), refused.stderr)
    }

    func sql(_ text: String, _ bindings: [SQLBindable] = []) throws {
        try store.withConnection { try $0.execute(text, bindings) }
    }

    func testEndpointsAddUpdateListAndRemoveWithConfigValidation() throws {
        let config = try writeConfig(url: "http://127.0.0.1:9/first")
        let added = try run(["endpoints", "add", "--config", config, "--tenant", "tenant-b", "--id", "b-main",
                             "--url", "http://127.0.0.1:9/b", "--events", "checkin.*,visit.ended", "--header", "X-Clinic: b",
                             "--header", "Authorization: Bearer add-secret-1", "--timeout", "3", "--max-concurrency", "2",
                             "--retry", #"{"policy":"one_retry","delay_seconds":1}"#, "--success", "json_200_or_204",
                             "--signing-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        XCTAssertEqual(added.status, 0, added.stderr)
        let endpoint = try XCTUnwrap(store.endpoint(id: "b-main"))
        XCTAssertEqual(endpoint.tenantID, "tenant-b")
        XCTAssertEqual(endpoint.eventFilters, ["checkin.*", "visit.ended"])
        XCTAssertEqual(endpoint.headers, ["X-Clinic": "b", "Authorization": "Bearer add-secret-1"])
        XCTAssertEqual(endpoint.timeoutSeconds, 3)
        XCTAssertEqual(endpoint.maxConcurrency, 2)
        XCTAssertEqual(endpoint.retry, .oneRetry(delaySeconds: 1))
        XCTAssertEqual(endpoint.success, .json200Or204)
        XCTAssertEqual(endpoint.signingSecrets, ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])

        // The same validation as the config file, and nothing half-written.
        let cases: [([String], String)] = [
            (["--url", "ftp://x.example/h"], "url"),
            (["--retry", #"{"policy":"forever"}"#], "retry.policy"),
            (["--events", "bad pattern"], "events[0]"),
            (["--header", "Host: x"], "headers.Host"),
            (["--timeout", "900"], "timeout_seconds"),
        ]
        for (options, keyPath) in cases {
            let result = try run(["endpoints", "update", "b-main", "--config", config] + options)
            XCTAssertEqual(result.status, 1, "\(options)")
            XCTAssertTrue(result.stderr.contains("at \(keyPath)"), "\(options): \(result.stderr)")
        }
        XCTAssertEqual(try store.endpoint(id: "b-main"), endpoint, "failed updates wrote nothing")
        let https = try run(["endpoints", "add", "--db", databaseLocation, "--tenant", "t", "--id", "plain", "--url", "http://x.example/h"])
        XCTAssertEqual(https.status, 1, "without a config, https only")
        XCTAssertEqual(try run(["endpoints", "add", "--db", databaseLocation, "--tenant", "t", "--id", "x"]).status, 2, "--url is required")
        XCTAssertEqual(try run(["endpoints", "update", "nope", "--db", databaseLocation, "--url", "https://x.example"]).status, 1)
        XCTAssertEqual(try run(["endpoints", "update", "b-main", "--db", databaseLocation, "--id", "other"]).status, 2)

        let updated = try run(["endpoints", "update", "b-main", "--config", config, "--url", "http://127.0.0.1:9/b2", "--events", "*",
                               "--remove-header", "X-Clinic"])
        XCTAssertEqual(updated.status, 0, updated.stderr)
        XCTAssertEqual(try store.endpoint(id: "b-main")?.url, "http://127.0.0.1:9/b2")
        XCTAssertEqual(try store.endpoint(id: "b-main")?.eventFilters, [])
        XCTAssertEqual(try store.endpoint(id: "b-main")?.headers, ["Authorization": "Bearer add-secret-1"])

        let listed = try run(["endpoints", "list", "--json", "--db", databaseLocation])
        let rows = listed.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(rows.compactMap { $0["id"] as? String }, ["b-main"])
        XCTAssertEqual((rows.first?["headers"] as? [String: String])?["Authorization"], "***")
        XCTAssertFalse(listed.stdout.contains("add-secret-1"))
        XCTAssertFalse(listed.stdout.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))

        // Removing cancels what was pending and keeps the history.
        try enqueue(tenant: "tenant-b")
        let removed = try run(["endpoints", "remove", "b-main", "--db", databaseLocation])
        XCTAssertEqual(removed.status, 0, removed.stderr)
        XCTAssertTrue(removed.stdout.contains("cancelled 1 pending"), removed.stdout)
        XCTAssertNil(try store.endpoint(id: "b-main"))
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(endpointID: "b-main")).map(\.status), [.cancelled])
        XCTAssertEqual(try enqueue(tenant: "tenant-b").deliveryCount, 0, "a removed endpoint gets no new deliveries")
        XCTAssertEqual(try run(["endpoints", "remove", "b-main", "--db", databaseLocation]).status, 1)
    }

    func testEndpointsTestSendsAPingAndPrintsTheRecordedAttempt() throws {
        let receiver = try makeReceiver { path, _ in path == "/down" ? .respond(status: 500, body: #"{"oops":1}"#) : .respond(status: 200, body: #"{"pong":true}"#) }
        let config = try writeConfig(url: receiver.url())
        try store.upsert(tenants: [Tenant(id: "tenant-a", name: "a")], endpoints: [endpoint("down", url: receiver.url("/down"))])
        try store.upsert(tenants: [], endpoints: try DispatcherConfiguration.load(path: config).endpoints)

        let ping = try run(["endpoints", "test", "ep-1", "--config", config])
        XCTAssertEqual(ping.status, 0, ping.stderr)
        XCTAssertTrue(ping.stdout.contains("HTTP 200"), ping.stdout)
        XCTAssertTrue(ping.stdout.contains(#"{"pong":true}"#), ping.stdout)
        let request = try XCTUnwrap(receiver.requests(on: "/hook").first)
        let body = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
        XCTAssertEqual(body["type"] as? String, "dispatcher.ping")
        XCTAssertEqual(body["endpoint_id"] as? String, "ep-1")
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(typePattern: "dispatcher.ping")).first?.status, .succeeded)

        let failing = try run(["endpoints", "test", "down", "--config", config, "--json"])
        XCTAssertEqual(failing.status, 1)
        XCTAssertTrue(failing.stdout.contains(#""response_status":500"#), failing.stdout)
        XCTAssertEqual(receiver.requests(on: "/down").count, 1, "a ping is not retried")
        XCTAssertEqual(try run(["endpoints", "test", "missing", "--config", config]).status, 1)
    }

    func testRedeliverStartsANewRunAndKeepsTheHistory() throws {
        let healthy = Locked(false)
        let receiver = try makeReceiver { _, _ in healthy.value ? .ok : .respond(status: 500) }
        try addTenant(endpoints: [endpoint(url: receiver.url(), retry: .oneRetry(delaySeconds: 0))])
        try startService()
        let event = try enqueue()
        let failed = try XCTUnwrap(waitForFinalDeliveries(of: event.eventID).deliveries.first)
        XCTAssertEqual(failed.delivery.status, .failed)
        XCTAssertEqual(failed.attempts.count, 2)

        healthy.value = true
        let result = try run(["redeliver", String(failed.delivery.id), "--db", databaseLocation])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "re-queued 1 deliveries\n")
        let again = try XCTUnwrap(waitForFinalDeliveries(of: event.eventID).deliveries.first)
        XCTAssertEqual(again.delivery.id, failed.delivery.id)
        XCTAssertEqual(again.delivery.status, .succeeded)
        XCTAssertEqual(again.attempts.map(\.number), [1, 2, 3], "history kept, numbering continues")
        XCTAssertEqual(Set(receiver.requests.map { $0.header("webhook-id") }), [event.eventID], "same event id")

        // By event id; a succeeded delivery may be sent again too.
        XCTAssertEqual(try run(["redeliver", event.eventID, "--db", databaseLocation, "--json"]).stdout, #"{"requeued":1}"# + "\n")
        try waitUntil("the fourth attempt") { try store.eventRecord(eventID: event.eventID)?.deliveries.first?.attempts.count == 4 }
        XCTAssertEqual(try run(["redeliver", "424242", "--db", databaseLocation]).status, 1)
        XCTAssertEqual(try run(["redeliver", "not-an-id", "--db", databaseLocation]).status, 2)
        XCTAssertEqual(try run(["redeliver", "--db", databaseLocation]).status, 2)
    }

    func testReplayRequeuesEveryMatchingDeliveryInOneStatement() throws {
        try addTenant(endpoints: [endpoint("a", url: "https://a.example/h"), endpoint("b", url: "https://b.example/h")])
        let producer = try openStore()
        try producer.write { tx in
            for index in 0..<10_000 { try tx.enqueue(NewEvent(tenantID: "tenant-a", type: index % 2 == 0 ? "visit.ended" : "checkin.outcome",
                                                               json: #"{"n":\#(index)}"#)) }
        }
        try sql("UPDATE deliveries SET status = 'failed', attempt_count = 3, next_attempt_at = NULL")

        let dry = try run(["replay", "--status", "failed", "--endpoint", "a", "--type", "visit.*", "--dry-run", "--db", databaseLocation])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertEqual(dry.stdout, "would re-queue 5000 failed deliveries\n")
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(status: .pending)).count, 0, "a dry run changes nothing")

        let replay = try run(["replay", "--db", databaseLocation, "--json"])
        XCTAssertEqual(replay.stdout, #"{"dry_run":false,"requeued":20000}"# + "\n")
        let pending = try store.deliveries(matching: DeliveryFilter(status: .pending, limit: 100_000))
        XCTAssertEqual(pending.count, 20_000)
        XCTAssertTrue(pending.allSatisfy { $0.attemptCount == 3 }, "history kept")
        XCTAssertEqual(try run(["replay", "--status", "pending", "--db", databaseLocation]).status, 2)
        XCTAssertEqual(try run(["replay", "--since", "later", "--db", databaseLocation]).status, 2)
    }

    func testCancelOnlyTouchesPendingDeliveriesAndRecordsWhy() throws {
        try addTenant(endpoints: [endpoint(url: "https://a.example/h")])
        let first = try enqueue(), second = try enqueue()
        let id = try XCTUnwrap(store.deliveries(matching: DeliveryFilter(eventID: first.eventID)).first?.id)
        let result = try run(["cancel", String(id), second.eventID, "--db", databaseLocation])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "cancelled 2 deliveries\n")
        let cancelled = try store.deliveries(matching: DeliveryFilter(status: .cancelled))
        XCTAssertEqual(cancelled.count, 2)
        XCTAssertTrue(cancelled.allSatisfy { $0.lastError?.hasPrefix("cancelled by an operator at ") == true })
        XCTAssertEqual(try run(["cancel", String(id), "--db", databaseLocation]).status, 1, "no longer pending")
    }

    func testStatsReportsCountsRatesAndLatency() throws {
        let receiver = try makeReceiver { _, index in index % 4 == 3 ? .respond(status: 500) : .ok }
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try addTenant("tenant-b", endpoints: [endpoint("idle", tenant: "tenant-b", url: "https://b.example/h")])
        var broken = endpoint("broken", tenant: "tenant-b", url: "https://c.example/h")
        broken.enabled = false
        try addTenant("tenant-b", endpoints: [broken])
        let service = try startService()
        let ids = try (0..<8).map { _ in try enqueue().eventID }
        for id in ids { try waitForFinalDeliveries(of: id) }
        service.stop() // the pending delivery below must stay pending (and never leave this machine)
        try enqueue(tenant: "tenant-b")

        let result = try run(["stats", "--json", "--db", databaseLocation])
        XCTAssertEqual(result.status, 0, result.stderr)
        let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let byStatus = try XCTUnwrap(stats["by_status"] as? [String: Int])
        XCTAssertEqual(byStatus["succeeded"], 6)
        XCTAssertEqual(byStatus["failed"], 2)
        XCTAssertEqual(byStatus["pending"], 1)
        XCTAssertEqual((stats["by_tenant"] as? [String: [String: Int]])?["tenant-b"]?["pending"], 1)
        XCTAssertEqual((stats["by_endpoint"] as? [String: [String: Int]])?["ep-1"]?["succeeded"], 6)
        XCTAssertEqual(stats["attempts"] as? Int, 8)
        XCTAssertEqual(stats["success_rate"] as? Double, 0.75)
        XCTAssertNotNil(stats["latency_p50_ms"] as? Double)
        XCTAssertNotNil(stats["latency_p99_ms"] as? Double)
        XCTAssertNotNil(stats["oldest_pending_age_seconds"] as? Double)
        XCTAssertEqual(stats["endpoints_disabled"] as? [String], ["broken"])
        let table = try run(["stats", "--db", databaseLocation])
        XCTAssertTrue(table.stdout.hasPrefix("pending=1 delivering=0 succeeded=6 failed=2 cancelled=0 | last 1h: 8 attempts, 75.0% ok"), table.stdout)
        XCTAssertFalse(table.stdout.contains("\u{1B}"), "no colour when not on a terminal")
    }

    func testStatsTakeTheOldestPendingFromTheQueueAndPercentilesFromTheWindow() throws {
        try addTenant(endpoints: [endpoint(url: "https://a.example/h")])
        let finished = try enqueue(), older = try enqueue(), newer = try enqueue()
        let now = Clock.nowMilliseconds()
        try sql("UPDATE deliveries SET status = 'succeeded', created_at = ? WHERE event_id = ?", [now - 90_000, finished.eventID])
        try sql("UPDATE deliveries SET created_at = ? WHERE event_id = ?", [now - 60_000, older.eventID])
        try sql("UPDATE deliveries SET created_at = ? WHERE event_id = ?", [now - 30_000, newer.eventID])
        // 1,000 attempts in the window taking 1.037, 2.037 … 1,000.037 ms, one in four a retry;
        // one slow attempt before it.
        try sql("""
            INSERT INTO attempts (delivery_id, number, started_at, duration_us, url, request_headers, verdict)
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
            SELECT d.id, n.i, ?, n.i * 1000 + 37, 'https://a.example/h', '[]', CASE WHEN n.i % 4 = 0 THEN 'retry' ELSE 'succeeded' END
              FROM n, deliveries d WHERE d.event_id = ?
            """, [now - 1_000, finished.eventID])
        try sql("""
            INSERT INTO attempts (delivery_id, number, started_at, duration_us, url, request_headers, verdict)
            SELECT id, 1001, ?, 60000000, 'https://a.example/h', '[]', 'failed' FROM deliveries WHERE event_id = ?
            """, [now - 7_200_000, finished.eventID])

        for stats in [try store.stats(windowSeconds: 3_600), try store.queueStats(windowSeconds: 3_600)] {
            XCTAssertEqual(stats.byStatus["pending"], 2)
            XCTAssertEqual(stats.oldestPending.map(Clock.milliseconds), now - 60_000, "the oldest pending, not the older finished one")
            XCTAssertEqual(stats.recentAttempts, 1_000)
            XCTAssertEqual(stats.recentSucceeded, 750)
            XCTAssertEqual(try XCTUnwrap(stats.latencyP50Milliseconds), 500, accuracy: 500 * 0.045)
            XCTAssertEqual(try XCTUnwrap(stats.latencyP99Milliseconds), 990, accuracy: 990 * 0.045)
        }
        try sql("UPDATE deliveries SET status = 'cancelled' WHERE status = 'pending'")
        XCTAssertNil(try store.queueStats(windowSeconds: 3_600).oldestPending)
    }

    /// serve's stats line reads only the endpoints it names (disabled, or with a circuit open
    /// now), not every endpoint's row and config; and names at most ten of each, counting the rest.
    func testServesStatsLineReadsAndNamesOnlyTheEndpointsNeedingAttention() throws {
        let count = DeliveryStats.namedEndpointsPerList + 3
        try addTenant(endpoints: (0..<(count + 2)).map { endpoint(String(format: "ep-%02d", $0), url: "https://a.example/h") })
        let now = Clock.nowMilliseconds()
        // ep-00 … ep-12 open, ep-13 closed again (its cool-down over), ep-14 healthy; ep-03 also disabled.
        try sql("UPDATE endpoints SET circuit_open_until = ?, consecutive_failures = 5 WHERE id < ?", [now + 60_000, String(format: "ep-%02d", count)])
        try sql("UPDATE endpoints SET circuit_open_until = ? WHERE id = ?", [now - 1, String(format: "ep-%02d", count)])
        try sql("UPDATE endpoints SET enabled = 0 WHERE id = 'ep-03'")

        let queue = try store.queueStats(windowSeconds: 60)
        XCTAssertEqual(queue.endpoints.map(\.endpoint.id), (0..<count).map { String(format: "ep-%02d", $0) })
        XCTAssertEqual(try store.stats(windowSeconds: 60).endpoints.count, count + 2, "dispatcher stats still reads them all")
        let line = queue.summaryLine
        let named = (0..<DeliveryStats.namedEndpointsPerList).map { String(format: "ep-%02d", $0) }.joined(separator: ",")
        XCTAssertTrue(line.contains(" | circuit open: \(named) and 3 more | disabled: ep-03"), line)
        XCTAssertFalse(line.contains("ep-10") || line.contains("ep-13") || line.contains("ep-14"), line)
    }

    func testPruneDeletesOnlyOldFinishedWork() throws {
        try addTenant(endpoints: [endpoint(url: "https://a.example/h")])
        let old = try enqueue(), oldPending = try enqueue(), recent = try enqueue()
        let longAgo = Clock.nowMilliseconds() - 40 * 86_400_000
        try sql("UPDATE deliveries SET status = 'succeeded', updated_at = ? WHERE event_id = ?", [longAgo, old.eventID])
        try sql("UPDATE events SET created_at = ?", [longAgo])
        try sql("UPDATE deliveries SET updated_at = ? WHERE event_id = ?", [longAgo, oldPending.eventID])
        try sql("""
            INSERT INTO attempts (delivery_id, number, started_at, duration_us, url, request_headers, verdict)
            SELECT id, 1, ?, 1, 'https://a.example/h', '[]', 'succeeded' FROM deliveries WHERE event_id = ?
            """, [longAgo, old.eventID])

        let dry = try run(["prune", "--older-than", "30d", "--dry-run", "--db", databaseLocation])
        XCTAssertEqual(dry.stdout, "would delete 1 deliveries, 1 attempts, 1 events\n")
        XCTAssertNotNil(try store.eventRecord(eventID: old.eventID))
        let pruned = try run(["prune", "--older-than", "30d", "--json", "--db", databaseLocation])
        XCTAssertEqual(pruned.stdout, #"{"attempts":1,"deliveries":1,"dry_run":false,"events":1}"# + "\n")
        XCTAssertNil(try store.eventRecord(eventID: old.eventID))
        XCTAssertNotNil(try store.eventRecord(eventID: oldPending.eventID), "pending work is never pruned")
        XCTAssertNotNil(try store.eventRecord(eventID: recent.eventID))
        XCTAssertEqual(try run(["prune", "--db", databaseLocation]).status, 2)
        XCTAssertEqual(try run(["prune", "--older-than", "2026-01-01", "--db", databaseLocation]).status, 2)
    }

    func testServePrintsStatsAndPrunesByRetentionDays() throws {
        let receiver = try makeReceiver()
        let config = try writeConfig(url: receiver.url(), extra: #", "stats_interval_seconds": 0.5, "retention_days": 30"#)
        let configuration = try DispatcherConfiguration.load(path: config)
        try store.upsert(tenants: configuration.tenants, endpoints: configuration.endpoints)
        let old = try enqueue(type: "order.created")
        try sql("UPDATE deliveries SET status = 'succeeded', updated_at = 0")
        try sql("UPDATE events SET created_at = 0")
        // A backlog that stays (its endpoint is disabled by hand, which survives serve's config sync).
        var parked = endpoint("parked", tenant: "tenant-b", url: "https://parked.example/h")
        parked.enabled = false
        try addTenant("tenant-b", endpoints: [parked])
        try store.setEndpointEnabled(id: "parked", enabled: true)
        try store.enqueue(contentsOf: (0..<1_200).map { NewEvent(tenantID: "tenant-b", type: "t", json: #"{"n":\#($0)}"#) })
        try store.setEndpointEnabled(id: "parked", enabled: false)
        let log = directory.file("serve.log")
        let serve = try startServe(config: config, logFile: log)
        try waitUntil("retention pruned the old delivery") { try store.eventRecord(eventID: old.eventID) == nil }
        // The queue and the window only: the finished deliveries' counts would read all history.
        waitUntil("a stats line is logged") {
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("stats: pending=1200 delivering=0 | last 60s: ") == true
        }
        waitUntil("a progress line is logged") { (try? String(contentsOfFile: log, encoding: .utf8))?.contains("progress: 1200 pending") == true }
        XCTAssertEqual(try stopProcess(serve, signal: SIGTERM), 0)
        XCTAssertTrue(try String(contentsOfFile: log, encoding: .utf8).contains("retention: deleted 1 deliveries"))
    }

    func testHousekeepingHandsFreedHeapPagesBackToTheKernel() throws {
        /// This process's resident anonymous memory (the heap), from the kernel.
        func residentAnonymousBytes() throws -> Int { try XCTUnwrap(processStatus("RssAnon")) * 1024 }
        // 48 MiB in small blocks (below malloc's mmap threshold), written so they are resident,
        // then freed but for every 32nd: each hole of 31 KiB lies between live blocks, so `free`
        // can hand none of it back (not from an arena's top, nor a whole heap), while most of
        // each hole is whole pages a trim can.
        let blocks = (0..<48 * 1024).map { _ in UnsafeMutableRawPointer.allocate(byteCount: 1024, alignment: 8) }
        let kept = stride(from: 0, to: blocks.count, by: 32).map { blocks[$0] }
        defer { for block in kept { block.deallocate() } }
        for block in blocks { block.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 1024) }
        let heldWhileUsed = try residentAnonymousBytes()
        for (index, block) in blocks.enumerated() where index % 32 != 0 { block.deallocate() }
        let heldAfterFree = try residentAnonymousBytes()
        XCTAssertGreaterThan(heldAfterFree, heldWhileUsed - 16 << 20, "free alone keeps most of the freed pages resident")

        var settings = Housekeeping.Settings(statsIntervalSeconds: 0)
        settings.progressIntervalSeconds = 0.05
        settings.trimIntervalSeconds = 0.05
        let housekeeping = Housekeeping(store: store, settings: settings, logger: .silent)
        housekeeping.start()
        defer { housekeeping.stop() }
        try waitUntil("housekeeping hands at least 32 of the 48 freed MiB back") { try residentAnonymousBytes() < heldAfterFree - 32 << 20 }
    }

    func testTheDevelopmentReceiverPrintsRequestsAndChecksSignatures() throws {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let output = directory.file("receive.out")
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["receive", "--port", "0", "--secret", secret]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        defer { kill(process.processIdentifier, SIGINT); process.waitUntilExit() }
        let banner = String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
        let port = try XCTUnwrap(banner.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) }, banner)

        var signed = endpoint("signed", url: "http://127.0.0.1:\(port)/good")
        signed.signingSecrets = [secret]
        var wrong = endpoint("wrong", url: "http://127.0.0.1:\(port)/bad")
        wrong.signingSecrets = ["whsec_" + Data(repeating: 1, count: 32).base64EncodedString()]
        try addTenant(endpoints: [signed, wrong])
        try startService()
        try waitForFinalDeliveries(of: enqueue(#"{"hello":"receiver"}"#).eventID)
        waitUntil("both requests are printed") {
            (try? String(contentsOfFile: output, encoding: .utf8))?.components(separatedBy: "\n  signature: ").count == 3
        }
        let printed = try String(contentsOfFile: output, encoding: .utf8)
        let good = try XCTUnwrap(printed.components(separatedBy: "POST ").first { $0.hasPrefix("/good") })
        let bad = try XCTUnwrap(printed.components(separatedBy: "POST ").first { $0.hasPrefix("/bad") })
        XCTAssertTrue(good.contains("signature: valid"), good)
        XCTAssertTrue(bad.contains("signature: INVALID"), bad)
        XCTAssertTrue(good.contains(#""hello" : "receiver""#), good)
    }
}
