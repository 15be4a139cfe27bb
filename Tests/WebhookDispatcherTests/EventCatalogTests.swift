import DispatcherConfig
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
