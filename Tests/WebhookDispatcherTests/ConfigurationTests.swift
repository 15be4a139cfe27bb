import Foundation
import XCTest
import WebhookDispatcher
@testable import DispatcherModel

/// The config file: defaults, and errors that name the key path.
final class ConfigurationTests: XCTestCase {
    func parse(_ json: String) throws -> DispatcherConfiguration {
        try DispatcherConfiguration.parse(Data(json.utf8), baseDirectory: "/srv/dispatcher")
    }

    func assertRejected(_ json: String, path: String, mentioning text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(json), file: file, line: line) { error in
            guard case .invalidConfiguration(let actualPath, let message)? = error as? DispatcherError else {
                return XCTFail("unexpected \(error)", file: file, line: line)
            }
            XCTAssertEqual(actualPath, path, file: file, line: line)
            XCTAssertTrue(message.contains(text), "'\(message)' does not mention '\(text)'", file: file, line: line)
        }
    }

    func testTheExampleConfigIsValid() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config.example.json").standardized.path
        let configuration = try DispatcherConfiguration.load(path: path)
        XCTAssertEqual(configuration.tenants.map(\.id), ["clinic-a", "onboarding-client"])
        XCTAssertEqual(configuration.endpoints.first { $0.id == "onboarding-client-local" }?.retry, .oneRetry(delaySeconds: 5))
        XCTAssertEqual(configuration.endpoints.first { $0.id == "onboarding-client-local" }?.success, .json200Or204)
        XCTAssertTrue(configuration.database.hasSuffix("/dispatcher.sqlite"))
    }

    func testDefaults() throws {
        let configuration = try parse(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://example.com/h"}]}]}"#)
        XCTAssertEqual(configuration.database, "/srv/dispatcher/dispatcher.sqlite")
        XCTAssertEqual(configuration.concurrentRequests, 8)
        XCTAssertEqual(configuration.pollIntervalMilliseconds, 100)
        XCTAssertEqual(configuration.leaseSeconds, 60)
        XCTAssertEqual(configuration.maxPayloadBytes, 262_144)
        XCTAssertTrue(configuration.urlPolicy.requireHTTPS)
        XCTAssertFalse(configuration.destinationPolicy.allowPrivateAddresses)
        let endpoint = try XCTUnwrap(configuration.endpoints.first)
        XCTAssertEqual(endpoint.tenantID, "t")
        XCTAssertEqual(endpoint.timeoutSeconds, 10)
        XCTAssertEqual(endpoint.maxConcurrency, 4)
        XCTAssertEqual(endpoint.retry, .default)
        XCTAssertEqual(endpoint.success, .any2xx)
        XCTAssertEqual(endpoint.eventFilters, [])
        XCTAssertFalse(configuration.storeOptions.synchronousDeliveryCommits)
        let waiting = try parse(#"{"synchronous_delivery_commits": true, "tenants": []}"#)
        XCTAssertTrue(waiting.storeOptions.synchronousDeliveryCommits)
    }

    func testUnknownKeysAreRejectedWithTheirPath() {
        assertRejected(#"{"wrokers": 4}"#, path: "wrokers", mentioning: "unknown key")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "retries": {}}]}]}"#,
                       path: "tenants[0].endpoints[0].retries", mentioning: "unknown key")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "retry": {"policy": "one_retry", "delay": 1}}]}]}"#,
                       path: "tenants[0].endpoints[0].retry.delay", mentioning: "unknown key")
    }

    /// A small object's keys are found by a scan, a large one's (sixteen or more) by an index:
    /// either way a duplicate key's last value stands, every key read counts, and a key nobody
    /// read is named with what was allowed.
    func testSmallAndLargeObjectsReadAlike() throws {
        let twenty = (0..<20).map { #""X-H\#($0)": "v\#($0)""# }.joined(separator: ", ")
        func config(headers: String, extra: String = "") -> String {
            #"{"workers": 4, "workers": 6, "tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://example.com/h", "headers": {\#(headers)}\#(extra)}]}]}"#
        }
        let configuration = try parse(config(headers: twenty + #", "X-H3": "last""#))
        XCTAssertEqual(configuration.concurrentRequests, 6)
        let headers = try XCTUnwrap(configuration.endpoints.first).headers
        XCTAssertEqual(headers.count, 20)
        XCTAssertEqual(headers["X-H3"], "last")
        XCTAssertEqual(headers["X-H19"], "v19")
        let small = try XCTUnwrap(parse(config(headers: #""A": "1", "A": "2""#)).endpoints.first).headers
        XCTAssertEqual(small, ["A": "2"])

        let sixteen = (0..<16).map { #""k\#($0)": 1"# }.joined(separator: ", ")
        let large = JSONValue(parsing: Array(#"{\#(sixteen), "k3": 2}"#.utf8))
        let reader = try JSONReader(large, path: "o")
        for key in (0..<16).map({ "k\($0)" }) where key != "k7" { _ = try reader.number(key) }
        XCTAssertEqual(try reader.number("k3"), 2)
        XCTAssertThrowsError(try reader.rejectUnknownKeys()) { error in
            guard case .invalidConfiguration(let path, let message)? = error as? DispatcherError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "o.k7")
            XCTAssertTrue(message.contains("allowed here: k0, k1, k10"), message)
        }
        _ = try reader.number("k7")
        XCTAssertNoThrow(try reader.rejectUnknownKeys())
        assertRejected(config(headers: "", extra: #", "timeout_seconds": 5, "timeout_secs": 5, "timeout_seconds": 6"#),
                       path: "tenants[0].endpoints[0].timeout_secs", mentioning: "allowed here: ")
    }

    func testWrongTypesAndValuesNameTheKey() {
        assertRejected(#"{"workers": "8"}"#, path: "workers", mentioning: "expected a number")
        assertRejected(#"{"workers": 0}"#, path: "workers", mentioning: "between 1 and 20000")
        assertRejected(#"{"workers": 2.5}"#, path: "workers", mentioning: "whole number")
        // One reader for every JSON input: a boolean is never a number, in any of them.
        assertRejected(#"{"workers": true}"#, path: "workers", mentioning: "expected a number, got true")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "retry": {"policy": "schedule", "delays_seconds": [5, false]}}]}]}"#,
                       path: "tenants[0].endpoints[0].retry.delays_seconds[1]", mentioning: "number of seconds")
        assertRejected(#"{"require_https": "yes"}"#, path: "require_https", mentioning: "true or false")
        assertRejected(#"{"synchronous_delivery_commits": 1}"#, path: "synchronous_delivery_commits", mentioning: "true or false")
        assertRejected(#"{"tenants": {}}"#, path: "tenants", mentioning: "expected an array")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "success": "200"}]}]}"#,
                       path: "tenants[0].endpoints[0].success", mentioning: "json_200_or_204")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "retry": {"policy": "forever"}}]}]}"#,
                       path: "tenants[0].endpoints[0].retry.policy", mentioning: "one_retry, exponential")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "events": ["bad pattern"]}]}]}"#,
                       path: "tenants[0].endpoints[0].events[0]", mentioning: "not an event type")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "headers": {"Host": "x"}}]}]}"#,
                       path: "tenants[0].endpoints[0].headers.Host", mentioning: "set by the dispatcher")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "timeout_seconds": 90}]}]}"#,
                       path: "tenants[0].endpoints[0].timeout_seconds", mentioning: "lease_seconds")
        assertRejected(#"{"tenants": [{"id": "t"}], "operations": {"tenant": "ops"}}"#, path: "operations.tenant", mentioning: "not one of the config's tenants")
        assertRejected(#"{"log_format": "xml"}"#, path: "log_format", mentioning: "text or json")
        assertRejected(#"{"proxy": "proxy.example:3128"}"#, path: "proxy", mentioning: "http://host:port")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "body_format": "xml"}]}]}"#,
                       path: "tenants[0].endpoints[0].body_format", mentioning: "json, slack")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/h", "rate_limit_per_second": 0}]}]}"#,
                       path: "tenants[0].endpoints[0].rate_limit_per_second", mentioning: "between")
        assertRejected(#"{"require_https": false, "tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "http://x.example/h", "http2": true}]}]}"#,
                       path: "tenants[0].endpoints[0].http2", mentioning: "https")
        XCTAssertEqual(try parse(#"{"tenants": [{"id": "ops"}], "operations": {"tenant": "ops"}}"#).storeOptions.operationsTenant, "ops")
    }

    func testBadURLsAreRejected() {
        let cases = [
            ("not a url", "absolute URL"),
            ("ftp://example.com/x", "not http or https"),
            ("http://example.com/x", "not https"),
            ("https://user:pass@example.com/x", "credentials"),
        ]
        for (url, text) in cases {
            assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "\#(url)"}]}]}"#,
                           path: "tenants[0].endpoints[0].url", mentioning: text)
        }
        XCTAssertNoThrow(try parse(#"{"require_https": false, "tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "http://127.0.0.1:9/x"}]}]}"#))
    }

    func testDuplicatesAreRejected() {
        assertRejected(#"{"tenants": [{"id": "t"}, {"id": "t"}]}"#, path: "tenants[1].id", mentioning: "defined twice")
        assertRejected(#"{"tenants": [{"id": "t", "endpoints": [{"id": "e", "url": "https://x.example/a"}]}, {"id": "u", "endpoints": [{"id": "e", "url": "https://x.example/b"}]}]}"#,
                       path: "tenants[1].endpoints[0].id", mentioning: "defined twice")
    }

    func testMalformedJSONIsAClearError() {
        assertRejected(#"{"workers": 4,"#, path: "", mentioning: "not valid JSON")
        assertRejected(#"[]"#, path: "", mentioning: "expected an object")
    }

    func testAllowedNetworksAreCIDRBlocks() throws {
        let configuration = try parse(#"{"allowed_networks": ["127.0.0.0/8", "::1/128"]}"#)
        XCTAssertTrue(configuration.destinationPolicy.allowedNetworks[0].contains(IPAddress("127.1.2.3")!))
        XCTAssertNil(configuration.destinationPolicy.refusal(for: IPAddress("::1")!))
        XCTAssertNotNil(configuration.destinationPolicy.refusal(for: IPAddress("10.0.0.1")!))
        assertRejected(#"{"allowed_networks": ["127.0.0.0/33"]}"#, path: "allowed_networks[0]", mentioning: "CIDR")
    }

    /// The public way in and out of the one endpoint validator: `configJSON` reads back through
    /// `fromConfig` as the same endpoint, and a bad value is refused with the config's message.
    func testAnEndpointRoundTripsThroughItsConfigJSON() throws {
        var endpoint = Endpoint(id: "e", tenantID: "t", url: "https://x.example/h", eventFilters: ["visit.*"],
                                headers: ["X-Key": "env:KEY"], retry: .schedule(.init(delaysSeconds: [1, 60])), success: .json200Or204)
        endpoint.ordered = true
        endpoint.signingSecrets = ["whsec_" + Data(repeating: 7, count: 24).base64EncodedString()]
        XCTAssertEqual(try Endpoint.fromConfig(endpoint.configJSON, tenantID: "t"), endpoint)
        XCTAssertThrowsError(try Endpoint.fromConfig(.object([("id", .string("e")), ("url", .string("ftp://x"))]), tenantID: "t")) {
            guard case .invalidConfiguration(let path, _)? = $0 as? DispatcherError else { return XCTFail("\($0)") }
            XCTAssertEqual(path, "url")
        }
    }
}

