import DispatcherConfig
import DispatcherWorker
import DispatcherDashboard
import DispatcherEvents
import DispatcherModel
import Foundation
import XCTest

/// The event catalog (#19, item 4): every documented type with a valid example, on a page and
/// in JSON, and a signature snippet that verifies what the dispatcher really sends.
final class EventCatalogTests: DispatcherTestCase {
    func testEveryExampleIsValidForItsType() throws {
        XCTAssertEqual(Set(EventCatalog.entries.map(\.type)).count, EventCatalog.entries.count, "each type once")
        for entry in EventCatalog.entries {
            if let family = EventFamily(type: entry.type) {
                XCTAssertEqual(family.rawValue, entry.family, entry.type)
                let example = try XCTUnwrap(entry.example, "\(entry.type): the seed families' types all have an example")
                XCTAssertNoThrow(try EventFamily.validate(body: Array(example.utf8), type: entry.type), entry.type)
            } else if let example = entry.example {
                XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(example.utf8)) as? [String: Any], entry.type)
            }
        }
        // The verification seed's table lists 36 keys; the visit family 5 kinds.
        XCTAssertEqual(EventCatalog.entries.filter { $0.family == "verification" }.count, 36)
        XCTAssertEqual(EventCatalog.entries.filter { $0.family == "visit" }.count, VisitEventKind.allCases.count)
    }

    /// The page lists every type and its example; the snippet it shows, run by Python as a
    /// receiver would, accepts a request the dispatcher signed and refuses a changed body.
    func testThePageListsEveryTypeAndItsSnippetVerifiesARealDelivery() throws {
        let secret = "whsec_" + Data((0..<32).map { UInt8($0) }).base64EncodedString()
        let receiver = try makeReceiver()
        var signed = endpoint(url: receiver.url())
        signed.signingSecrets = [secret]
        try addTenant(endpoints: [signed])
        try startService()
        let body = EventCatalog.entry(type: "visit.ended")?.example ?? "{}"
        try enqueue(body, type: "visit.ended")
        waitUntil("the event is delivered") { !receiver.requests.isEmpty }
        let request = try XCTUnwrap(receiver.requests.first)

        let dashboard = try Dashboard(store: store, settings: DashboardSettings(port: 0))
        defer { dashboard.stop() }
        let page = try LoopbackHTTP(port: dashboard.port).request("GET", "/catalog")
        XCTAssertEqual(page.status, 200)
        for entry in EventCatalog.entries { XCTAssertTrue(page.text.contains("<code>\(entry.type)</code>"), entry.type) }
        XCTAssertTrue(page.text.contains("&quot;clinic_code&quot;: &quot;xxx&quot;"), "examples are pretty-printed and escaped")

        let start = try XCTUnwrap(page.text.range(of: "<pre class=\"body\" id=\"verify-snippet\">"))
        let end = try XCTUnwrap(page.text.range(of: "</pre>", range: start.upperBound..<page.text.endIndex))
        let snippet = String(page.text[start.upperBound..<end.lowerBound])
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        let headers = Dictionary(request.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
        let check = snippet + """

            import json, sys
            headers = json.loads(sys.argv[1]); body = bytes.fromhex(sys.argv[2])
            print(verify(sys.argv[3], headers, body), verify(sys.argv[3], headers, body + b" "))
            """
        let headerJSON = String(decoding: try JSONSerialization.data(withJSONObject: headers), as: UTF8.self)
        let run = try Self.runTool(["python3", "-c", check, headerJSON, Hex.lowercase(request.body), secret])
        XCTAssertEqual(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "True False", run.stderr + "\n" + check)

        let json = try LoopbackHTTP(port: dashboard.port).json("/api/catalog")
        let types = try XCTUnwrap(json["types"] as? [[String: Any]])
        XCTAssertEqual(types.count, EventCatalog.entries.count)
        let checkin = try XCTUnwrap(types.first { $0["type"] as? String == "checkin.outcome" })
        XCTAssertEqual((checkin["example"] as? [String: Any])?["event"] as? String, "checkin.outcome")
    }
}

/// Sending a test event from the endpoints page (#19, item 3).
final class DashboardTestSendTests: DispatcherTestCase {
    func testSendTestGoesThroughTheRequestPathAndLandsOnItsRecordedAttempt() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url(), headers: ["Authorization": "Bearer receiver-secret-123"])])
        let delivery = DeliveryServiceConfiguration(destinationPolicy: DestinationPolicy(allowPrivateAddresses: true),
                                                    urlPolicy: URLPolicy(requireHTTPS: false), logger: .silent)
        let dashboard = try Dashboard(store: store, settings: DashboardSettings(port: 0),
                                      tester: EndpointTester(store: store, configuration: delivery))
        defer { dashboard.stop() }
        let http = LoopbackHTTP(port: dashboard.port)
        XCTAssertTrue(try http.request("GET", "/endpoints").text.contains("action=\"/endpoints/ep-1/test\""))
        XCTAssertEqual(try http.request("POST", "/endpoints/ep-1/test", body: "csrf=wrong").status, 403, "CSRF as for every action")
        XCTAssertTrue(receiver.requests.isEmpty)

        let sent = try http.request("POST", "/endpoints/ep-1/test", body: "csrf=\(dashboard.csrfToken)",
                                    headers: ["Content-Type": "application/x-www-form-urlencoded"])
        XCTAssertEqual(sent.status, 303)
        let location = try XCTUnwrap(sent.header("Location"))
        XCTAssertTrue(location.hasPrefix("/deliveries/") && location.hasSuffix("?notice=tested"), location)
        XCTAssertEqual(receiver.requests.count, 1)
        XCTAssertTrue(String(decoding: receiver.requests[0].body, as: UTF8.self).contains(#""type":"dispatcher.ping""#))
        let page = try http.request("GET", location).text
        XCTAssertTrue(page.contains("Test event sent") && page.contains("dispatcher.ping"), page)
        XCTAssertTrue(page.contains("***") && !page.contains("receiver-secret-123"), "the credential is redacted as in the audit log")

        // The JSON route answers with the record; an unknown endpoint is a 404.
        let api = try http.request("POST", "/api/endpoints/ep-1/test", headers: ["X-CSRF-Token": dashboard.csrfToken])
        XCTAssertEqual(api.status, 200)
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(api.body)) as? [String: Any])
        let attempts = (record["deliveries"] as? [[String: Any]])?.first?["attempt_log"] as? [[String: Any]]
        XCTAssertEqual(attempts?.first?["response_status"] as? Int, 200, api.text)
        XCTAssertEqual(try http.request("POST", "/api/endpoints/nope/test", headers: ["X-CSRF-Token": dashboard.csrfToken]).status, 404)

        // A documented example instead of the ping: its bytes as the catalog gives them, typed as such.
        let example = try XCTUnwrap(EventCatalog.entry(type: "visit.ended")?.example)
        XCTAssertTrue(try http.request("GET", "/endpoints").text.contains("<option value=\"visit.ended\">"))
        let typed = try http.request("POST", "/endpoints/ep-1/test", body: "csrf=\(dashboard.csrfToken)&type=visit.ended",
                                     headers: ["Content-Type": "application/x-www-form-urlencoded"])
        XCTAssertEqual(typed.status, 303)
        XCTAssertEqual(receiver.requests.count, 3)
        XCTAssertEqual(String(decoding: receiver.requests[2].body, as: UTF8.self), example)
        XCTAssertEqual(receiver.requests[2].header("webhook-id").map { $0.isEmpty }, false)
        let unknown = try http.request("POST", "/api/endpoints/ep-1/test?type=no.such.type", headers: ["X-CSRF-Token": dashboard.csrfToken])
        XCTAssertEqual(unknown.status, 400)
        XCTAssertEqual(receiver.requests.count, 3, "nothing sent for a type without an example")
    }

    /// The destination guard of the hosting process applies: with the defaults (https only, no
    /// loopback) nothing reaches the receiver, and the refusal is what the page shows.
    func testATestSendObeysTheDestinationGuard() throws {
        let receiver = try makeReceiver()
        try addTenant(endpoints: [endpoint(url: receiver.url())])
        let dashboard = try Dashboard(store: store, settings: DashboardSettings(port: 0),
                                      tester: EndpointTester(store: store, configuration: DeliveryServiceConfiguration(logger: .silent)))
        defer { dashboard.stop() }
        let api = try LoopbackHTTP(port: dashboard.port).request("POST", "/api/endpoints/ep-1/test", headers: ["X-CSRF-Token": dashboard.csrfToken])
        XCTAssertEqual(api.status, 200)
        XCTAssertTrue(api.text.contains(#""error_kind":"blocked""#), api.text)
        XCTAssertTrue(receiver.requests.isEmpty)
    }
}
