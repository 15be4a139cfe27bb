import Foundation
import XCTest
import WebhookDispatcher

/// The `dispatcher` executable, run as a child process the way people and scripts run it.
final class CommandLineTests: DispatcherTestCase {
    func testVersionHelpAndUsageErrors() throws {
        let version = try run(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.stdout, "dispatcher \(DispatcherVersion.current)\n")

        let help = try run(["log", "--help"])
        XCTAssertEqual(help.status, 0)
        for option in ["--tenant", "--endpoint", "--type", "--status", "--since", "--until", "--before", "--limit", "--json", "--db", "--config"] {
            XCTAssertTrue(help.stdout.contains(option), "log --help lacks \(option)")
        }
        for command in ["serve", "enqueue", "log", "show"] {
            XCTAssertEqual(try run([command, "--help"]).status, 0, command)
        }

        let unknownCommand = try run(["frobnicate"])
        XCTAssertEqual(unknownCommand.status, 2)
        XCTAssertTrue(unknownCommand.stderr.contains("unknown command 'frobnicate'"))

        let unknownOption = try run(["log", "--colour"])
        XCTAssertEqual(unknownOption.status, 2)
        XCTAssertTrue(unknownOption.stderr.contains("unknown option '--colour'"))
        XCTAssertTrue(unknownOption.stderr.contains("USAGE: dispatcher log"))

        XCTAssertEqual(try run(["log", "--since", "yesterday-ish", "--db", databaseLocation]).status, 2)
        XCTAssertEqual(try run(["log", "--limit", "0", "--db", databaseLocation]).status, 2)
        XCTAssertEqual(try run(["enqueue", "--type", "t", "--db", databaseLocation]).status, 2, "--tenant is required")
        XCTAssertEqual(try run(["serve"]).status, 2, "serve needs a config or a database")
    }

    func testEnqueuePrintsTheEventIDAndRejectsBadInput() throws {
        let config = try writeConfig(url: "http://127.0.0.1:9/unused")
        let ok = try run(["enqueue", "--config", config, "--tenant", "tenant-a", "--type", "order.created", "--data", #"{"a":1}"#])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let id = ok.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertNotNil(UUID(uuidString: id))
        XCTAssertEqual(try store.eventRecord(eventID: id)?.event.body, Array(#"{"a":1}"#.utf8))

        let fromStdin = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "t"], stdin: #"{"from":"stdin"}"#)
        XCTAssertEqual(fromStdin.status, 0, fromStdin.stderr)
        let stdinID = fromStdin.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try store.eventRecord(eventID: stdinID)?.event.body, Array(#"{"from":"stdin"}"#.utf8))

        let bodyFile = directory.file("body.json")
        try #"{"from":"file"}"#.write(toFile: bodyFile, atomically: true, encoding: .utf8)
        let fixedID = UUID().uuidString.lowercased()
        let fromFile = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "t", "--id", fixedID, "--data", "@" + bodyFile])
        XCTAssertEqual(fromFile.stdout, fixedID + "\n")
        let again = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "t", "--id", fixedID, "--data", "@" + bodyFile])
        XCTAssertEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("already stored"))

        let unknownTenant = try run(["enqueue", "--db", databaseLocation, "--tenant", "nobody", "--type", "t", "--data", "{}"])
        XCTAssertEqual(unknownTenant.status, 1)
        XCTAssertTrue(unknownTenant.stderr.contains("unknown tenant 'nobody'"))

        let badJSON = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "t", "--data", "{oops"])
        XCTAssertEqual(badJSON.status, 1)
        XCTAssertTrue(badJSON.stderr.contains("invalid JSON"))

        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter()).count, 3, "rejected events stored nothing")
    }

    func testEnqueueChecksBodiesOfTheSeedEventTypes() throws {
        try addTenant(endpoints: [])
        let malformed = EventBuilderTests.checkinSucceeded.replacingOccurrences(of: #""hmo_id": 1"#, with: #""hmo_id": "1""#)
        let rejected = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "checkin.outcome", "--data", malformed])
        XCTAssertEqual(rejected.status, 1)
        XCTAssertTrue(rejected.stderr.contains("invalid checkin.outcome event: data.hmo_id must be a JSON integer"), rejected.stderr)

        let valid = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "checkin.outcome", "--data", EventBuilderTests.checkinSucceeded])
        XCTAssertEqual(valid.status, 0, valid.stderr)
        XCTAssertEqual(valid.stdout, "0f3a12b8-0f3f-4d5c-8df0-8c2a5b1f1c44\n", "the outbox id is the body's data.event_id")

        let custom = #"{"key": "verification.selfie.created", "data": {"id": "01234567-89ab-cdef-0123-456789abcdef"}}"#
        let withoutFlag = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "verification.selfie.created", "--data", custom])
        XCTAssertEqual(withoutFlag.status, 1)
        XCTAssertTrue(withoutFlag.stderr.contains("not a documented verification event key"), withoutFlag.stderr)
        let withFlag = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "verification.selfie.created",
                                "--allow-custom-type", "--data", custom])
        XCTAssertEqual(withFlag.status, 0, withFlag.stderr)

        let otherType = try run(["enqueue", "--db", databaseLocation, "--tenant", "tenant-a", "--type", "order.shipped", "--data", #"{"free":"form"}"#])
        XCTAssertEqual(otherType.status, 0, otherType.stderr)
    }

    func testEnqueueNDJSONStoresGoodLinesAndReportsBadOnesByNumber() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let duplicateID = UUID().uuidString.lowercased()
        var lines = (0..<2_500).map { #"{"tenant":"tenant-a","type":"order.created","data":{"n":\#($0)}}"# }
        lines[10] = "not json"
        lines[1_500] = #"{"tenant":"nobody","type":"order.created","data":{}}"#
        lines[2_000] = #"{"tenant":"tenant-a","type":"checkin.outcome","data":{"event":"checkin.outcome"}}"#
        lines[100] = #"{"tenant":"tenant-a","type":"order.created","id":"\#(duplicateID)","data":{"first":true}}"#
        lines[101] = lines[100]
        lines.insert("", at: 50)
        let result = try run(["enqueue", "--ndjson", "--batch-size", "1000", "--db", databaseLocation], stdin: lines.joined(separator: "\n") + "\n")
        XCTAssertEqual(result.status, 1, "some lines were rejected")
        XCTAssertEqual(result.stdout, "accepted 2496, duplicates 1, rejected 3 (lines 11, 1502, 2002)\n")
        XCTAssertTrue(result.stderr.contains("line 1502: unknown tenant 'nobody'"), result.stderr)
        XCTAssertTrue(result.stderr.contains("line 2002: invalid checkin.outcome event"), result.stderr)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(limit: 10_000)).count, 2_496, "bad lines did not spoil their batches")
        XCTAssertEqual(try store.eventRecord(eventID: duplicateID)?.event.body, Array(#"{"first":true}"#.utf8))

        XCTAssertEqual(try run(["enqueue", "--ndjson", "--tenant", "tenant-a", "--db", databaseLocation], stdin: "").status, 2)
        XCTAssertEqual(try run(["enqueue", "--batch-size", "5", "--tenant", "tenant-a", "--type", "t", "--db", databaseLocation], stdin: "{}").status, 2)
        let clean = try run(["enqueue", "--ndjson", "--db", databaseLocation], stdin: #"{"tenant":"tenant-a","type":"t","data":{}}"# + "\n")
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertEqual(clean.stdout, "accepted 1, duplicates 0, rejected 0\n")
    }

    func testLogJSONAndShowJSONRoundTrip() throws {
        let receiver = try makeReceiver { _, index in index == 0 ? .respond(status: 503, body: #"{"retry":true}"#) : .respond(status: 200, body: #"{"ok":true}"#) }
        let config = try writeConfig(url: receiver.url())
        let body = #"{"event":"order.created","data":{"n":1}}"#
        let enqueued = try run(["enqueue", "--config", config, "--tenant", "tenant-a", "--type", "order.created", "--data", body])
        let eventID = enqueued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try startService()
        try waitForFinalDeliveries(of: eventID)

        let log = try run(["log", "--config", config, "--json"])
        XCTAssertEqual(log.status, 0, log.stderr)
        let lines = log.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 1)
        let row = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        let delivery = try XCTUnwrap(store.deliveries(matching: DeliveryFilter()).first)
        XCTAssertEqual(row["id"] as? Int, Int(delivery.id))
        XCTAssertEqual(row["event_id"] as? String, eventID)
        XCTAssertEqual(row["tenant_id"] as? String, "tenant-a")
        XCTAssertEqual(row["endpoint_id"] as? String, "ep-1")
        XCTAssertEqual(row["event_type"] as? String, "order.created")
        XCTAssertEqual(row["status"] as? String, "succeeded")
        XCTAssertEqual(row["attempts"] as? Int, 2)
        XCTAssertEqual(row["last_http_status"] as? Int, 200)
        XCTAssertTrue(row["next_attempt_at"] is NSNull)
        XCTAssertEqual(row["updated_at"] as? String, Clock.iso8601(delivery.updatedAt))

        let filtered = try run(["log", "--db", databaseLocation, "--json", "--status", "failed"])
        XCTAssertEqual(filtered.stdout, "")

        for id in [eventID, String(eventID.prefix(8)), String(delivery.id)] {
            let show = try run(["show", "--db", databaseLocation, "--json", id])
            XCTAssertEqual(show.status, 0, show.stderr)
            let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
            let event = try XCTUnwrap(record["event"] as? [String: Any])
            XCTAssertEqual(event["id"] as? String, eventID)
            XCTAssertEqual(event["body"] as? String, body, "the body round-trips byte for byte")
            let deliveries = try XCTUnwrap(record["deliveries"] as? [[String: Any]])
            let attempts = try XCTUnwrap(deliveries.first?["attempt_log"] as? [[String: Any]])
            XCTAssertEqual(attempts.map { $0["response_status"] as? Int }, [503, 200])
            XCTAssertEqual(attempts.map { $0["response_body"] as? String }, [#"{"retry":true}"#, #"{"ok":true}"#])
            XCTAssertEqual(attempts.map { $0["verdict"] as? String }, ["retry", "succeeded"])
            XCTAssertEqual(attempts.first?["error_kind"] as? String, "http")
        }

        let human = try run(["show", "--db", databaseLocation, eventID])
        XCTAssertTrue(human.stdout.contains("Attempt 2"))
        XCTAssertTrue(human.stdout.contains("HTTP 503"))
        let table = try run(["log", "--db", databaseLocation])
        XCTAssertTrue(table.stdout.hasPrefix("ID "))
        XCTAssertTrue(table.stdout.contains("succeeded"))

        // Paging back by id, and a time window that ends before the delivery was made.
        XCTAssertEqual(try run(["log", "--db", databaseLocation, "--json", "--before", String(delivery.id + 1)]).stdout.split(separator: "\n").count, 1)
        XCTAssertEqual(try run(["log", "--db", databaseLocation, "--json", "--before", String(delivery.id)]).stdout, "")
        XCTAssertEqual(try run(["log", "--db", databaseLocation, "--json", "--until", "1h"]).stdout, "")
        XCTAssertEqual(try run(["log", "--db", databaseLocation, "--json", "--since", "1h", "--until", "2999-01-01T00:00:00Z"]).stdout.split(separator: "\n").count, 1)
        XCTAssertEqual(try run(["log", "--db", databaseLocation, "--before", "0"]).status, 2)

        let missing = try run(["show", "--db", databaseLocation, "999999"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("not found"))
    }

    func testShowTakesAnAllDigitEventIDPrefixThatIsNoDeliveryID() throws {
        try store.upsert(tenants: [Tenant(id: "tenant-a", name: "a")], endpoints: [])
        let id = try XCTUnwrap(UUID(uuidString: "12345678-aaaa-4bbb-8ccc-000000000001"))
        try store.enqueue(NewEvent(tenantID: "tenant-a", type: "order.created", json: #"{"n":1}"#, id: id))
        let show = try run(["show", "--db", databaseLocation, "--json", "12345678"])
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertTrue(show.stdout.contains(#""id":"12345678-aaaa-4bbb-8ccc-000000000001""#), show.stdout)
        XCTAssertEqual(try run(["show", "--db", databaseLocation, "87654321"]).status, 1, "neither a delivery nor an event")
    }

    func testServeDeliversAndExitsZeroOnSIGTERM() throws {
        let receiver = try makeReceiver()
        let config = try writeConfig(url: receiver.url())
        let (serve, _, err) = try launch(["serve", "--config", config])
        defer { if serve.isRunning { serve.terminate() } }

        let enqueued = try run(["enqueue", "--config", config, "--tenant", "tenant-a", "--type", "t", "--data", #"{"x":1}"#])
        let eventID = enqueued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try waitForFinalDeliveries(of: eventID)
        XCTAssertEqual(receiver.requests.map { $0.header("webhook-id") }, [eventID])

        kill(serve.processIdentifier, SIGTERM)
        waitUntil("serve exits after SIGTERM") { !serve.isRunning }
        serve.waitUntilExit()
        XCTAssertEqual(serve.terminationStatus, 0)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(log.contains("received SIGTERM"), log)
    }

    func testMalformedConfigIsAClearErrorAndNothingRuns() throws {
        let path = directory.file("bad.json")
        try #"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://example.com/h", "timeout_seconds": "soon"}]}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let result = try run(["serve", "--config", path])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("tenants[0].endpoints[0].timeout_seconds"), result.stderr)
        XCTAssertTrue(result.stderr.contains("expected a number"), result.stderr)

        let missing = try run(["serve", "--config", directory.file("nope.json")])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("cannot read"), missing.stderr)
    }
}
