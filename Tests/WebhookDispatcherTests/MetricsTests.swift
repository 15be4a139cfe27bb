import DispatcherConfig
import DispatcherDashboard
import DispatcherModel
import DispatcherServer
import DispatcherStore
import DispatcherWorker
import Foundation
import XCTest

/// `/metrics`: the exposition format itself, bounded labels, serve's listener with its guards,
/// Debian's `promtool` on the output, and a real Prometheus scraping a real `serve`.
final class MetricsTests: DispatcherTestCase {
    func testTheExpositionEscapesLabelValuesAndWritesCumulativeBuckets() {
        var text = PrometheusText()
        text.family("demo_total", .counter, "A help line with a \\ and a\nnewline.")
        text.sample("demo_total", [("tenant", "a\"b\\c\nd")], 3)
        var histogram = Histogram(bounds: [0.1, 1])
        for value in [0.05, 0.5, 0.7, 9] { histogram.observe(value) }
        text.histogram("demo_seconds", [("endpoint", "ep")], histogram)
        XCTAssertEqual(text.text, """
            # HELP demo_total A help line with a \\\\ and a\\nnewline.
            # TYPE demo_total counter
            demo_total{tenant="a\\"b\\\\c\\nd"} 3
            demo_seconds_bucket{endpoint="ep",le="0.1"} 1
            demo_seconds_bucket{endpoint="ep",le="1"} 3
            demo_seconds_bucket{endpoint="ep",le="+Inf"} 4
            demo_seconds_sum{endpoint="ep"} 10.25
            demo_seconds_count{endpoint="ep"} 4

            """)
    }

    /// Five endpoints, room for two labels: the first two keep theirs, the other three are one
    /// `(other)` series holding their sum, and no family has a series per endpoint beyond that.
    func testEndpointLabelsAreBoundedAndTheRestSummedIntoOther() throws {
        try addTenant(endpoints: (1...5).map { endpoint("ep-\($0)", url: "https://example.com/\($0)") })
        let exporter = MetricsExporter(store: store, maxEndpointLabels: 2, maxTenantLabels: 1, eventLagMilliseconds: 0)
        try addTenant("tenant-b", endpoints: [])
        // With no lag, an event stamped in the very millisecond a scrape counted up to would be
        // left for later: let the clock move on first.
        waitForTheNextMillisecond()
        for _ in 0..<2 { try enqueue() }
        try enqueue(tenant: "tenant-b")
        let text = exporter.render()
        XCTAssertEqual(Self.value(text, #"dispatcher_endpoint_backlog{endpoint="ep-1"}"#), 2)
        XCTAssertEqual(Self.value(text, #"dispatcher_endpoint_backlog{endpoint="ep-2"}"#), 2)
        XCTAssertEqual(Self.value(text, #"dispatcher_endpoint_backlog{endpoint="(other)"}"#), 6)
        XCTAssertFalse(text.contains(#"endpoint="ep-3""#), text)
        XCTAssertEqual(Self.value(text, #"dispatcher_endpoint_circuit_open{endpoint="(other)"}"#), 0)
        XCTAssertEqual(Self.value(text, #"dispatcher_deliveries{status="pending"}"#), 10)
        XCTAssertEqual(Self.value(text, #"dispatcher_deliveries{status="delivering"}"#), 0)
        XCTAssertGreaterThanOrEqual(Self.value(text, #"dispatcher_endpoint_oldest_pending_age_seconds{endpoint="ep-1"}"#) ?? -1, 0)
        // Tenants are bounded the same way: one label, then (other).
        XCTAssertEqual(Self.value(text, #"dispatcher_events_enqueued_total{tenant="tenant-a",type="checkin.outcome"}"#), 2)
        XCTAssertEqual(Self.value(text, #"dispatcher_events_enqueued_total{tenant="(other)",type="checkin.outcome"}"#), 1)
        XCTAssertEqual(Self.value(text, "dispatcher_store_up"), 1)
        XCTAssertGreaterThan(Self.value(text, "process_resident_memory_bytes") ?? 0, 1_000_000)
        XCTAssertGreaterThan(Self.value(text, "process_open_fds") ?? 0, 2)

        // Counted once: a second scrape adds nothing for the same events, and a new one adds one.
        waitForTheNextMillisecond()
        try enqueue()
        let again = exporter.render()
        XCTAssertEqual(Self.value(again, #"dispatcher_events_enqueued_total{tenant="tenant-a",type="checkin.outcome"}"#), 3)
        XCTAssertEqual(Self.value(again, #"dispatcher_events_enqueued_total{tenant="(other)",type="checkin.outcome"}"#), 1)
    }

    /// serve with `metrics` in its config: attempts by endpoint, outcome and error kind after
    /// real deliveries; the token, Host and path guards; and `promtool check metrics` on the body.
    func testServeExposesMetricsThatPromtoolAccepts() throws {
        let receiver = try makeReceiver { path, _ in path == "/bad" ? .respond(status: 500) : .respond(status: 200) }
        let token = "metrics-token-0123456789"
        let config = try writeConfig(url: receiver.url(), extra: #", "metrics": {"listen": "127.0.0.1:0", "token": "env:METRICS_TOKEN"}"#)
        let configuration = try DispatcherConfiguration.load(path: config)
        XCTAssertEqual(configuration.metrics?.token, "env:METRICS_TOKEN")
        try store.upsert(tenants: [Tenant(id: "tenant-a", name: "A")], endpoints: [
            endpoint("ep-bad", url: receiver.url("/bad"), retry: .oneRetry(delaySeconds: 0)),
        ])
        let logFile = directory.file("serve.log")
        _ = try startServe(config: config, logFile: logFile, environment: ["METRICS_TOKEN": token])
        let port = waitForAnnouncedPort(in: logFile, after: "metrics on http://127.0.0.1:")
        for _ in 0..<3 { try enqueue() }
        let base = "http://127.0.0.1:\(port)"

        var body = ""
        waitUntil("serve counts three succeeded attempts to ep-1 and two failed ones to ep-bad", timeout: 20) {
            guard let reply = try? Self.curl("\(base)/metrics", token: token), reply.status == 200 else { return false }
            body = reply.body
            return Self.value(body, #"dispatcher_attempts_total{endpoint="ep-1",outcome="succeeded",error_kind="none"}"#) == 3
                && Self.value(body, #"dispatcher_attempts_total{endpoint="ep-bad",outcome="failed",error_kind="http"}"#) == 6
        }
        XCTAssertEqual(Self.value(body, #"dispatcher_attempt_duration_seconds_count{endpoint="ep-1"}"#), 3, body)
        XCTAssertEqual(Self.value(body, #"dispatcher_deliveries_completed_total{status="succeeded"}"#), 3, body)
        XCTAssertEqual(Self.value(body, #"dispatcher_deliveries_completed_total{status="failed"}"#), 3, body)
        XCTAssertGreaterThan(Self.value(body, "dispatcher_store_cycle_seconds_count") ?? 0, 0, body)
        XCTAssertEqual(Self.value(body, #"dispatcher_token_fetches_total{outcome="succeeded"}"#), 0, body)
        XCTAssertGreaterThan(Self.value(body, "process_cpu_seconds_total") ?? 0, 0, body)

        let check = try Self.runTool(["promtool", "check", "metrics"], stdin: body)
        XCTAssertEqual(check.status, 0, "promtool: \(check.stdout)\(check.stderr)\n\(body)")

        XCTAssertEqual(try Self.curl("\(base)/metrics").status, 401)
        XCTAssertEqual(try Self.curl("\(base)/metrics", token: "wrong-token-0123456789").status, 401)
        XCTAssertEqual(try Self.curl("\(base)/metrics", token: token, host: "rebound.example.com").status, 421)
        XCTAssertEqual(try Self.curl("\(base)/other", token: token).status, 404)
        XCTAssertEqual(try Self.curl("\(base)/metrics", token: token, method: "POST").status, 405)
        // Nothing of the figures leaks through a refusal.
        XCTAssertFalse(try Self.curl("\(base)/metrics", token: token, host: "rebound.example.com").body.contains("dispatcher_"))
    }

    /// The dashboard serves the same figures behind its own token.
    func testTheDashboardServesMetricsBehindItsToken() throws {
        try addTenant(endpoints: [endpoint(url: "https://example.com/hook")])
        try enqueue()
        let token = "dashboard-token-0123456789"
        let dashboard = try Dashboard(store: store, settings: DashboardSettings(port: 0, token: token))
        defer { dashboard.stop() }
        let base = "http://127.0.0.1:\(dashboard.port)"
        XCTAssertEqual(try Self.curl("\(base)/metrics").status, 303, "without the token: to the login page")
        let reply = try Self.curl("\(base)/metrics", token: token)
        XCTAssertEqual(reply.status, 200)
        XCTAssertEqual(Self.value(reply.body, #"dispatcher_endpoint_backlog{endpoint="ep-1"}"#), 1, reply.body)
        XCTAssertEqual(Self.value(reply.body, #"dispatcher_deliveries{status="pending"}"#), 1, reply.body)
    }

    /// A real Prometheus (Debian's package) scrapes a real serve with the bearer token and
    /// answers a query for the attempts this test caused.
    func testPrometheusScrapesServeAndAnswersForTheAttemptsTheTestCaused() throws {
        try requireSQLite("one serve and one Prometheus are enough to prove the scrape")
        let receiver = try makeReceiver()
        let token = "metrics-token-0123456789"
        let config = try writeConfig(url: receiver.url(), extra: #", "metrics": {"listen": "127.0.0.1:0", "token": "\#(token)"}"#)
        let serveLog = directory.file("serve.log")
        _ = try startServe(config: config, logFile: serveLog)
        let metricsPort = waitForAnnouncedPort(in: serveLog, after: "metrics on http://127.0.0.1:")
        for _ in 0..<4 { try enqueue() }

        let prometheusPort = try freePort()
        let prometheusConfig = directory.file("prometheus.yml")
        try """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: dispatcher
                scrape_interval: 1s
                authorization:
                  credentials: \(token)
                static_configs:
                  - targets: ['127.0.0.1:\(metricsPort)']
            """.write(toFile: prometheusConfig, atomically: true, encoding: .utf8)
        let check = try Self.runTool(["promtool", "check", "config", prometheusConfig])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        try startDaemon(URL(fileURLWithPath: "/usr/bin/prometheus"), [
            "--config.file=\(prometheusConfig)", "--storage.tsdb.path=\(directory.file("tsdb"))",
            "--web.listen-address=127.0.0.1:\(prometheusPort)",
        ], logFile: directory.file("prometheus.log"))

        let query = #"sum(dispatcher_attempts_total{job="dispatcher",endpoint="ep-1",outcome="succeeded"})"#
        let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? query
        var answer = ""
        waitUntil("Prometheus has scraped the four succeeded attempts", timeout: 60) {
            guard let reply = try? Self.curl("http://127.0.0.1:\(prometheusPort)/api/v1/query?query=\(encoded)") else { return false }
            answer = reply.body
            return reply.status == 200 && reply.body.contains(#""value":["#) && reply.body.hasSuffix(#","4"]}]}}"#)
        }
        XCTAssertTrue(answer.contains(#""status":"success""#), answer)
        // The target is up: the token was accepted.
        let up = try Self.curl("http://127.0.0.1:\(prometheusPort)/api/v1/query?query=up")
        XCTAssertTrue(up.body.contains(#""job":"dispatcher""#) && up.body.contains(#","1"]"#), up.body)
    }

    func testMetricsSettingsNeedATokenOffLoopbackAndRefuseUnknownKeys() throws {
        XCTAssertThrowsError(try DispatcherConfiguration.parse(Data(#"{"metrics": {"listen": "0.0.0.0:9464"}}"#.utf8))) { error in
            XCTAssertTrue("\(error)".contains("needs metrics.token"), "\(error)")
        }
        XCTAssertThrowsError(try DispatcherConfiguration.parse(Data(#"{"metrics": {"token": "short"}}"#.utf8))) { error in
            XCTAssertTrue("\(error)".contains("metrics.token"), "\(error)")
        }
        XCTAssertThrowsError(try DispatcherConfiguration.parse(Data(#"{"metrics": {"lisen": "127.0.0.1:1"}}"#.utf8)))
        let parsed = try DispatcherConfiguration.parse(Data(#"{"metrics": {"max_endpoint_labels": 7}}"#.utf8))
        XCTAssertEqual(parsed.metrics?.listen, MetricsSettings.defaultListen)
        XCTAssertEqual(parsed.metrics?.maxEndpointLabels, 7)
        XCTAssertEqual(parsed.serviceConfiguration(logger: .silent).maxEndpointLabels, 7)
    }

    // MARK: - Helpers

    private func waitForTheNextMillisecond() {
        let now = Clock.nowMilliseconds()
        waitUntil("the clock passes \(now) ms") { Clock.nowMilliseconds() > now }
    }

    /// The value of the sample whose name and labels are exactly `series`.
    static func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    static func curl(_ url: String, token: String? = nil, host: String? = nil, method: String = "GET") throws -> (status: Int, body: String) {
        var arguments = ["curl", "-s", "-X", method, "-w", "\n%{http_code}", "--max-time", "10"]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        if let host { arguments += ["-H", "Host: \(host)"] }
        let run = try runTool(arguments + [url])
        let text = run.stdout
        let split = text.range(of: "\n", options: .backwards)
        let status = split.map { Int(text[$0.upperBound...]) ?? 0 } ?? 0
        return (status, split.map { String(text[..<$0.lowerBound]) } ?? text)
    }
}
