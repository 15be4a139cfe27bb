import Foundation
import XCTest
@testable import DispatcherStore
import DispatcherConfig
import DispatcherIngest
import WebhookDispatcher

/// The HTTP ingest API through `curl`: keys, validation, idempotency, batches, reads, and
/// concurrent producers sharing commits.
final class IngestAPITests: DispatcherTestCase {
    var server: IngestServer!
    var base: String { "http://127.0.0.1:\(server.port)" }

    override func tearDown() {
        server?.stop()
        server = nil
        super.tearDown()
    }

    func startAPI(maxBatch: Int = 1_000) throws {
        server = try IngestServer(store: try openStore(), settings: APISettings(host: "127.0.0.1", port: 0, maxBatch: maxBatch))
    }

    struct Reply {
        var status: Int
        var json: [String: Any]
    }

    /// One request with curl; the body from `data` as given.
    func curl(_ method: String, _ path: String, key: String?, data: String? = nil, headers: [String] = []) throws -> Reply {
        try Self.curl(base: base, method, path, key: key, data: data, headers: headers)
    }

    static func curl(base: String, _ method: String, _ path: String, key: String?, data: String? = nil, headers: [String] = []) throws -> Reply {
        var arguments = ["curl", "-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}", base + path]
        if let key { arguments += ["-H", "Authorization: Bearer \(key)"] }
        for header in headers { arguments += ["-H", header] }
        if let data { arguments += ["--data-binary", data] }
        let text = try runTool(arguments).stdout
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let body = lines.dropLast().joined(separator: "\n")
        let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        return Reply(status: status, json: json)
    }

    func testEventsPostedWithAKeyAreCommittedAndDeliveredByteForByte() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        try addTenant("tenant-b", endpoints: [])
        let key = try APIKeys.create(name: "producer", tenants: nil, in: store).key
        let limited = try APIKeys.create(name: "b only", tenants: ["tenant-b"], in: store).key
        try startAPI()

        let body = #"{"tenant":"tenant-a","type":"order.shipped","data":{ "order" : "A-17", "n": 1.50 }}"#
        let accepted = try curl("POST", "/v1/events", key: key, data: body, headers: ["Idempotency-Key: 0192f3a8-1111-7222-8333-444455556666"])
        XCTAssertEqual(accepted.status, 202)
        XCTAssertEqual(accepted.json["id"] as? String, "0192f3a8-1111-7222-8333-444455556666")
        XCTAssertEqual(accepted.json["deliveries"] as? Int, 1)
        XCTAssertEqual(accepted.json["duplicate"] as? Bool, false)
        XCTAssertNotNil(try store.eventRecord(eventID: "0192f3a8-1111-7222-8333-444455556666"), "a 202 means committed")
        let again = try curl("POST", "/v1/events", key: key, data: body, headers: ["Idempotency-Key: 0192f3a8-1111-7222-8333-444455556666"])
        XCTAssertEqual(again.status, 202)
        XCTAssertEqual(again.json["duplicate"] as? Bool, true)

        try startService()
        waitUntil("the event arrives") { !receiver.requests.isEmpty }
        XCTAssertEqual(String(decoding: receiver.requests[0].body, as: UTF8.self), #"{ "order" : "A-17", "n": 1.50 }"#)
        XCTAssertEqual(receiver.requests.count, 1)

        XCTAssertEqual(try curl("POST", "/v1/events", key: nil, data: body).status, 401)
        XCTAssertEqual(try curl("POST", "/v1/events", key: key + "x", data: body).status, 401)
        XCTAssertEqual(try curl("POST", "/v1/events", key: limited, data: body).status, 403)
        XCTAssertEqual(try curl("POST", "/v1/events", key: key, data: #"{"tenant":"nobody","type":"a.b","data":{}}"#).status, 404)
        XCTAssertEqual(try curl("POST", "/v1/events", key: key, data: #"{"tenant":"tenant-a","type":"a.b","data":{"#).status, 400)
        XCTAssertEqual(try curl("POST", "/v1/events", key: key, data: #"{"tenant":"tenant-a","type":"checkin.outcome","data":{}}"#).status, 400,
                       "the seed families are checked as dispatcher enqueue checks them")
        let conflict = try curl("POST", "/v1/events", key: key, data: #"{"tenant":"tenant-a","type":"order.other","data":{}}"#,
                                headers: ["Idempotency-Key: 0192f3a8-1111-7222-8333-444455556666"])
        XCTAssertEqual(conflict.status, 409)
        XCTAssertNotNil(conflict.json["error"] as? String)

        let shown = try curl("GET", "/v1/events/0192f3a8-1111-7222-8333-444455556666", key: key)
        XCTAssertEqual(shown.status, 200)
        XCTAssertEqual((shown.json["event"] as? [String: Any])?["tenant_id"] as? String, "tenant-a")
        XCTAssertEqual(try curl("GET", "/v1/events/0192f3a8-1111-7222-8333-444455556666", key: limited).status, 404,
                       "another tenant's event does not exist for a limited key")
        let log = try curl("GET", "/v1/deliveries?tenant=tenant-a&limit=5", key: key)
        XCTAssertEqual((log.json["deliveries"] as? [[String: Any]])?.count, 1)
        XCTAssertEqual(try curl("GET", "/v1/deliveries?tenant=tenant-a", key: limited).status, 403)

        let keyID = try XCTUnwrap(try store.apiKeys().first { $0.name == "producer" }?.id)
        XCTAssertTrue(try store.revokeAPIKey(id: keyID))
        let revoked = try APIKeys(store: store).verify(key)
        XCTAssertNil(revoked, "a revoked key is refused (the running API within its 5 s cache)")
    }

    /// The request's own traceparent becomes the event's trace when the body names none.
    func testTheRequestsTraceContextIsTheEvents() throws {
        try addTenant(endpoints: [])
        let key = try APIKeys.create(name: "producer", tenants: nil, in: store).key
        try startAPI()
        let traced = try curl("POST", "/v1/events", key: key, data: #"{"tenant":"tenant-a","type":"order.shipped","data":{}}"#,
                              headers: ["traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate: rojo=00f067aa0ba902b7"])
        XCTAssertEqual(traced.status, 202)
        let stored = try store.eventRecord(eventID: try XCTUnwrap(traced.json["id"] as? String))?.event.traceContext
        XCTAssertEqual(stored?.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        XCTAssertEqual(stored?.tracestate, "rojo=00f067aa0ba902b7")
        XCTAssertEqual(try curl("POST", "/v1/events", key: key, data: #"{"tenant":"tenant-a","type":"order.shipped","data":{}}"#,
                                headers: ["traceparent: 00-nothex"]).status, 400)
    }

    func testBatchesTakeNDJSONOrAnArrayWithAResultPerItem() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let key = try APIKeys.create(name: "backfill", tenants: nil, in: store).key
        try startAPI(maxBatch: 3)
        let lines = [#"{"tenant":"tenant-a","type":"a.b","data":{"n":1}}"#, #"{"tenant":"nobody","type":"a.b","data":{}}"#, "{oops"]
        let ndjson = try curl("POST", "/v1/events/batch", key: key, data: lines.joined(separator: "\n"))
        XCTAssertEqual(ndjson.status, 200)
        XCTAssertEqual(ndjson.json["accepted"] as? Int, 1)
        XCTAssertEqual(ndjson.json["rejected"] as? Int, 2)
        let results = try XCTUnwrap(ndjson.json["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["index"] as? Int }, [0, 1, 2])
        XCTAssertEqual(results.map { $0["status"] as? Int }, [nil, 404, 400])

        let array = try curl("POST", "/v1/events/batch", key: key,
                             data: #"[{"tenant":"tenant-a","type":"a.b","data":{ "kept" : [1, 2] }}, {"tenant":"tenant-a","type":"a.c","data":{}}]"#)
        XCTAssertEqual(array.json["accepted"] as? Int, 2)
        let id = try XCTUnwrap((array.json["results"] as? [[String: Any]])?.first?["id"] as? String)
        XCTAssertEqual(try store.eventRecord(eventID: id)?.event.body, Array(#"{ "kept" : [1, 2] }"#.utf8), "byte for byte")
        XCTAssertEqual(try curl("POST", "/v1/events/batch", key: key, data: Array(repeating: lines[0], count: 4).joined(separator: "\n")).status, 413)
    }

    /// Fifty producers at once: every 202 is a committed event, and they shared commits.
    func testConcurrentProducersAreEachCommittedOnce() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        let key = try APIKeys.create(name: "many", tenants: nil, in: store).key
        try startAPI()
        let statuses = Locked<[Int]>([])
        let base = self.base
        DispatchQueue.concurrentPerform(iterations: 50) { index in
            let status = (try? Self.curl(base: base, "POST", "/v1/events", key: key, data: #"{"tenant":"tenant-a","type":"a.b","data":{"n":\#(index)}}"#).status) ?? 0
            statuses.withLock { $0.append(status) }
        }
        XCTAssertEqual(statuses.value, Array(repeating: 202, count: 50))
        XCTAssertEqual(try store.pendingCount(), 50)
    }

    func testTheAPIKeysCommandShowsAKeyOnceAndStoresOnlyItsHash() throws {
        try addTenant(endpoints: [])
        let created = try run(["api-keys", "create", "--name", "shop", "--tenant", "tenant-a", "--db", databaseLocation])
        XCTAssertEqual(created.status, 0, created.stderr)
        let key = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(key.hasPrefix("dk_"), key)
        let listed = try run(["api-keys", "list", "--db", databaseLocation])
        XCTAssertTrue(listed.stdout.contains("shop"), listed.stdout)
        XCTAssertFalse(listed.stdout.contains(key), "the key is never shown again")
        let stored = try store.withConnection { db in try db.rows("SELECT * FROM api_keys").map { "\($0)" }.joined() }
        XCTAssertFalse(stored.contains(String(key.split(separator: "_")[2])), "the database holds no key, only its hash")
        XCTAssertEqual(try run(["api-keys", "create", "--name", "x", "--tenant", "nobody", "--db", databaseLocation]).status, 1)
        let id = String(key.split(separator: "_")[1])
        XCTAssertEqual(try run(["api-keys", "revoke", id, "--db", databaseLocation]).status, 0)
        XCTAssertEqual(try run(["api-keys", "revoke", id, "--db", databaseLocation]).status, 1)
    }

    /// `serve` with an `api` block hosts the API beside the delivery service: a POST is
    /// delivered end to end. Its busy threads go by names an operator sees in `top -H`.
    func testServeHostsTheAPIFromTheConfig() throws {
        let receiver = try makeReceiver()
        let config = try writeConfig(url: receiver.url(), extra: #", "api": {"listen": "127.0.0.1:0", "max_batch": 50}"#)
        XCTAssertEqual(try DispatcherConfiguration.load(path: config).api, APISettings(host: "127.0.0.1", port: 0, maxBatch: 50))
        let logFile = directory.file("serve.log")
        let serve = try startServe(config: config, logFile: logFile)
        let port = waitForAnnouncedPort(in: logFile, after: "ingest API on http://127.0.0.1:")
        let key = try APIKeys.create(name: "serve", tenants: nil, in: store).key
        let reply = try Self.curl(base: "http://127.0.0.1:\(port)", "POST", "/v1/events", key: key,
                                  data: #"{"tenant":"tenant-a","type":"order.shipped","data":{"via":"serve"}}"#)
        XCTAssertEqual(reply.status, 202)
        waitUntil("the event is delivered") { receiver.requests.contains { String(decoding: $0.body, as: UTF8.self) == #"{"via":"serve"}"# } }

        let tasks = "/proc/\(serve.processIdentifier)/task"
        let threadNames = try FileManager.default.contentsOfDirectory(atPath: tasks).compactMap {
            try? String(contentsOfFile: "\(tasks)/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        for name in ["store.loop", "transfers", "http.loop", "ingest.commit"] {
            XCTAssertTrue(threadNames.contains(name), "no thread named \(name) in \(threadNames)")
        }
    }

    /// The README's Python example, run as written (standard library `urllib`).
    func testTheReadmesPythonExampleEnqueuesOverHTTP() throws {
        try addTenant("hmo-1", endpoints: [endpoint("hmo", tenant: "hmo-1", url: "https://example.com/hook")])
        let key = try APIKeys.create(name: "python", tenants: ["hmo-1"], in: store).key
        try startAPI()
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let start = try XCTUnwrap(readme.range(of: "```python\nimport json, urllib.request\n"))
        let end = try XCTUnwrap(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let example = "import json, urllib.request\n" + readme[start.upperBound..<end.lowerBound]
        let script = "key = \"\(key)\"\n" + example.replacingOccurrences(of: "http://127.0.0.1:8090", with: base)
        let run = try Self.runTool(["python3", "-c", script])
        XCTAssertEqual(run.status, 0, "\(run.stderr)\n\(script)")
        let printed = run.stdout
        XCTAssertTrue(printed.contains("'duplicate': False"), printed)
        XCTAssertNotNil(try store.eventRecord(eventID: "0192f3a8-1111-7222-8333-444455556666"))
    }
}

