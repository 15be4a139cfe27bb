import Foundation
import Glibc
import XCTest
@testable import DispatcherDashboard
import DispatcherEvents
@testable import DispatcherModel
import DispatcherServer
import WebhookDispatcher

/// The dashboard through its real server: the JSON API, actions and their CSRF token, the
/// token gate, escaping, and every page in headless Chromium.
final class DashboardTests: DispatcherTestCase {
    /// A body that would run script or break out of an attribute if it were ever pasted as markup.
    static let hostileBody = #"{"note":"<script>window.__xss=1</script>","quote":"\"'><img src=x onerror=\"window.__xss=2\">"}"#

    struct Seed {
        var hostileDeliveryID: Int64
        var failedDeliveryID: Int64
        var hostileEventID: String
    }

    /// Two tenants: clinic-a's endpoint answers 200 (with a hostile response body), clinic-b's
    /// answers 503 and fails after two attempts. 60 deliveries succeed, 5 fail.
    func seed() throws -> Seed {
        let receiver = try makeReceiver { path, _ in
            path == "/a"
                ? .respond(status: 200, body: #"{"ok":true,"echo":"<script>window.__xss=3</script>"}"#, headers: [HeaderField("X-Receiver", "<b>bold</b>")])
                : .respond(status: 503, body: "overloaded")
        }
        try store.upsert(tenants: [Tenant(id: "clinic-a", name: "Clinic A"), Tenant(id: "clinic-b", name: "Clinic B")], endpoints: [
            endpoint("clinic-a-hooks", tenant: "clinic-a", url: receiver.url("/a")),
            endpoint("clinic-b-hooks", tenant: "clinic-b", url: receiver.url("/b"),
                     retry: .exponential(.init(initialSeconds: 0.01, factor: 1, maxSeconds: 0.01, maxAttempts: 2))),
        ])
        let hostile = try store.enqueue(NewEvent(tenantID: "clinic-a", type: "visit.ended", json: Self.hostileBody))
        for index in 0..<59 {
            try store.enqueue(NewEvent(tenantID: "clinic-a", type: index % 2 == 0 ? "checkin.outcome" : "visit.started", json: #"{"n":\#(index)}"#))
        }
        var failed: [EnqueueResult] = []
        for index in 0..<5 { failed.append(try store.enqueue(NewEvent(tenantID: "clinic-b", type: "verification.completed", json: #"{"n":\#(index)}"#))) }
        let service = try startService()
        waitUntil("all 65 deliveries are final", timeout: 20) {
            (try? store.hasUnfinishedDeliveries()) == false
        }
        service.stop()
        // Spread clinic-a's attempts over the day: deliveries 1-60 go 0, 2, 4 ... 22 hours back
        // by id % 12, so 5 stay in the last hour and the chart has twelve bars.
        try store.write { tx in
            try tx.execute("""
                UPDATE attempts SET started_at = started_at - (delivery_id % 12) * 7200000
                 WHERE delivery_id IN (SELECT id FROM deliveries WHERE endpoint_id = 'clinic-a-hooks')
                """)
        }
        let hostileDelivery = try XCTUnwrap(store.eventRecord(eventID: hostile.eventID)?.deliveries.first?.delivery)
        let failedDelivery = try XCTUnwrap(store.eventRecord(eventID: failed[0].eventID)?.deliveries.first?.delivery)
        XCTAssertEqual(hostileDelivery.status, .succeeded)
        XCTAssertEqual(failedDelivery.status, .failed)
        return Seed(hostileDeliveryID: hostileDelivery.id, failedDeliveryID: failedDelivery.id, hostileEventID: hostile.eventID)
    }

    func startDashboard(token: String? = nil) throws -> Dashboard {
        let dashboard = try Dashboard(store: try openStore(), settings: DashboardSettings(port: 0, token: token))
        addTeardownBlock { dashboard.stop() }
        return dashboard
    }

    // MARK: - JSON API

    func testTheAPIPagesTheLogByKeysetAndShowsEachDelivery() throws {
        let seed = try seed()
        let dashboard = try startDashboard()
        let client = LoopbackHTTP(port: dashboard.port)

        let first = try client.json("/api/deliveries")
        let page1 = try XCTUnwrap(first["deliveries"] as? [[String: Any]])
        XCTAssertEqual(page1.count, 50)
        let cursor = try XCTUnwrap(first["next_before"] as? Int)
        let second = try client.json("/api/deliveries?before=\(cursor)")
        let page2 = try XCTUnwrap(second["deliveries"] as? [[String: Any]])
        XCTAssertEqual(page2.count, 15)
        XCTAssertTrue(second["next_before"] is NSNull)
        let ids = (page1 + page2).compactMap { $0["id"] as? Int }
        XCTAssertEqual(ids, ids.sorted(by: >), "newest first")
        XCTAssertEqual(Set(ids).count, 65, "pages neither overlap nor skip")

        let failed = try XCTUnwrap(client.json("/api/deliveries?status=failed&tenant=clinic-b")["deliveries"] as? [[String: Any]])
        XCTAssertEqual(failed.count, 5)
        XCTAssertTrue(failed.allSatisfy { $0["status"] as? String == "failed" && $0["last_http_status"] as? Int == 503 })
        XCTAssertEqual((try client.json("/api/deliveries?type=visit.*")["deliveries"] as? [[String: Any]])?.count, 30)

        let detail = try client.json("/api/deliveries/\(seed.failedDeliveryID)")
        let delivery = try XCTUnwrap((detail["deliveries"] as? [[String: Any]])?.first)
        let attempts = try XCTUnwrap(delivery["attempt_log"] as? [[String: Any]])
        XCTAssertEqual(attempts.map { $0["response_status"] as? Int }, [503, 503])
        XCTAssertEqual(attempts.map { $0["verdict"] as? String }, ["retry", "failed"])

        let endpoints = try XCTUnwrap(client.json("/api/endpoints")["endpoints"] as? [[String: Any]])
        let health = Dictionary(uniqueKeysWithValues: endpoints.map { ($0["id"] as! String, $0["health"] as! [String: Any]) })
        let lastHourA = try XCTUnwrap(health["clinic-a-hooks"]?["last_hour"] as? [String: Any])
        XCTAssertEqual(lastHourA["attempts"] as? Int, 5)
        XCTAssertEqual(lastHourA["success_rate"] as? Double, 1)
        XCTAssertNotNil(lastHourA["latency_p99_ms"] as? Double)
        XCTAssertEqual((health["clinic-a-hooks"]?["last_day"] as? [String: Any])?["attempts"] as? Int, 60)
        let lastDayB = try XCTUnwrap(health["clinic-b-hooks"]?["last_day"] as? [String: Any])
        XCTAssertEqual(lastDayB["attempts"] as? Int, 10)
        XCTAssertEqual(lastDayB["success_rate"] as? Double, 0)
        XCTAssertEqual((health["clinic-b-hooks"]?["last_error"] as? [String: Any])?["summary"] as? String, "HTTP 503 is not 2xx")

        let overview = try client.json("/api/overview")
        XCTAssertEqual((overview["by_status"] as? [String: Int])?["succeeded"], 60)
        let timeline = try XCTUnwrap(overview["timeline"] as? [[String: Any]])
        XCTAssertEqual(timeline.count, 24)
        XCTAssertEqual(timeline.last?["succeeded"] as? Int, 5)
        XCTAssertEqual(timeline.last?["failed"] as? Int, 10)
        XCTAssertEqual(timeline.map { $0["succeeded"] as? Int ?? -1 }.reduce(0, +), 60)
        XCTAssertEqual(timeline.filter { ($0["succeeded"] as? Int ?? 0) > 0 }.count, 12, "one bar every two hours")

        XCTAssertEqual(try client.request("GET", "/api/deliveries/999999").status, 404)
        XCTAssertEqual(try client.request("GET", "/api/deliveries?status=lost").status, 400)
    }

    func testActionsNeedTheCSRFTokenAndChangeTheStore() throws {
        let seed = try seed()
        let dashboard = try startDashboard()
        let client = LoopbackHTTP(port: dashboard.port)
        let csrf = try XCTUnwrap(client.json("/api/session")["csrf_token"] as? String)
        XCTAssertEqual(csrf, dashboard.csrfToken)

        XCTAssertEqual(try client.request("POST", "/api/deliveries/\(seed.failedDeliveryID)/redeliver").status, 403)
        XCTAssertEqual(try client.request("POST", "/api/deliveries/\(seed.failedDeliveryID)/redeliver", headers: ["X-CSRF-Token": (csrf.hasPrefix("0") ? "1" : "0") + csrf.dropFirst()]).status, 403)
        XCTAssertEqual(try store.eventRecord(deliveryID: seed.failedDeliveryID)?.deliveries.first?.delivery.status, .failed, "a refused post changes nothing")

        let redelivered = try client.request("POST", "/api/deliveries/\(seed.failedDeliveryID)/redeliver", headers: ["X-CSRF-Token": csrf])
        XCTAssertEqual(redelivered.status, 200)
        XCTAssertEqual(redelivered.text, #"{"redelivered":1}"#)
        XCTAssertEqual(try store.eventRecord(deliveryID: seed.failedDeliveryID)?.deliveries.first?.delivery.status, .pending)

        let replayed = try client.request("POST", "/api/replay?status=failed&tenant=clinic-b", headers: ["X-CSRF-Token": csrf])
        XCTAssertEqual(replayed.text, #"{"replayed":4}"#)
        XCTAssertEqual(try store.deliveries(matching: DeliveryFilter(status: .failed)).count, 0)

        // A form post (the page's buttons) carries the token as a field and lands back on the page.
        let form = try client.request("POST", "/endpoints/clinic-b-hooks/disable", body: "csrf=\(csrf)",
                                      headers: ["Content-Type": "application/x-www-form-urlencoded"])
        XCTAssertEqual(form.status, 303)
        XCTAssertEqual(form.header("Location"), "/endpoints/clinic-b-hooks?notice=disabled")
        XCTAssertEqual(try store.endpoint(id: "clinic-b-hooks")?.enabled, false)
        XCTAssertEqual(try client.request("POST", "/api/endpoints/nope/enable", headers: ["X-CSRF-Token": csrf]).status, 404)
        XCTAssertEqual(try client.request("DELETE", "/api/endpoints").status, 405)
    }

    // MARK: - Security

    /// A page on evil.example whose name rebinds to 127.0.0.1 reaches the dashboard with its
    /// own name as Host: it gets neither the CSRF token nor an action.
    func testARebindingHostIsRefusedAndCrossOriginChangesAreRefused() throws {
        _ = try seed()
        let dashboard = try startDashboard()
        let client = LoopbackHTTP(port: dashboard.port)
        let port = dashboard.port
        let rebound = try client.request("GET", "/api/session", headers: ["Host": "evil.example:\(port)"])
        XCTAssertEqual(rebound.status, 421)
        XCTAssertFalse(rebound.text.contains(dashboard.csrfToken))
        XCTAssertEqual(try client.request("GET", "/assets/dashboard.css", headers: ["Host": "evil.example"]).status, 421)
        XCTAssertEqual(try client.request("GET", "/api/session", headers: ["Host": "localhost:\(port)"]).status, 200)
        XCTAssertEqual(try client.request("GET", "/api/session", headers: ["Host": "[::1]:\(port)"]).status, 200)

        let endpointID = try XCTUnwrap(try store.endpointStatuses().first?.endpoint.id)
        let disable = "/api/endpoints/\(endpointID)/disable"
        let forged = try client.request("POST", disable, headers: ["Host": "evil.example:\(port)", "X-CSRF-Token": dashboard.csrfToken])
        XCTAssertEqual(forged.status, 421)
        let crossOrigin = try client.request("POST", disable, headers: ["Origin": "http://evil.example:\(port)", "X-CSRF-Token": dashboard.csrfToken])
        XCTAssertEqual(crossOrigin.status, 403)
        XCTAssertEqual(try store.endpoint(id: endpointID)?.enabled, true, "no forged request changed anything")
        let fetchedCrossSite = try client.request("POST", disable, headers: ["Sec-Fetch-Site": "cross-site", "Origin": "null", "X-CSRF-Token": dashboard.csrfToken])
        XCTAssertEqual(fetchedCrossSite.status, 403)
        XCTAssertEqual(try client.request("POST", disable, headers: ["Origin": "null", "X-CSRF-Token": dashboard.csrfToken]).status, 403)
        XCTAssertEqual(try store.endpoint(id: endpointID)?.enabled, true, "no forged request changed anything")
        let sameOrigin = try client.request("POST", disable, headers: ["Origin": "http://127.0.0.1:\(port)", "X-CSRF-Token": dashboard.csrfToken])
        XCTAssertEqual(sameOrigin.status, 200, sameOrigin.text)
        XCTAssertEqual(try store.endpoint(id: endpointID)?.enabled, false)
    }

    func testConfiguredHostNamesAreAnsweredAndBadOnesRefused() throws {
        let settings = try DispatcherConfiguration.parse(Data(#"{"dashboard": {"listen": "127.0.0.1:0", "hosts": ["Dispatcher.Example.com"]}}"#.utf8)).dashboard
        let policy = HostPolicy(settings: try XCTUnwrap(settings))
        XCTAssertTrue(policy.allows(host: "dispatcher.example.com"))
        XCTAssertTrue(policy.allows(host: "DISPATCHER.example.com:443"))
        XCTAssertFalse(policy.allows(host: "dispatcher.example.com.evil.example"))
        XCTAssertFalse(policy.allows(host: nil))
        XCTAssertFalse(policy.allows(origin: "null"))
        XCTAssertThrowsError(try DispatcherConfiguration.parse(Data(#"{"dashboard": {"hosts": ["a b"]}}"#.utf8)))
        let open = HostPolicy(settings: DashboardSettings(host: "0.0.0.0", port: 1, token: "a-long-enough-token"))
        XCTAssertTrue(open.allows(host: "192.0.2.7:1"), "any address of a host listening on all of them")
        XCTAssertFalse(open.allows(host: "rebound.example:1"))
    }

    /// Token guessing is slowed per client, at the login form and with a bearer header alike.
    func testLoginGuessesAreSlowedPerClient() throws {
        let token = "the-right-token-0123456789"
        let dashboard = try startDashboard(token: token)
        let client = LoopbackHTTP(port: dashboard.port)
        let form = ["Content-Type": "application/x-www-form-urlencoded"]
        for guess in 0..<LoginThrottle.freeFailures {
            XCTAssertEqual(try client.request("POST", "/login", body: "token=guess-\(guess)", headers: form).status, 401)
        }
        let blocked = try client.request("POST", "/login", body: "token=\(token)", headers: form)
        XCTAssertEqual(blocked.status, 429, "even the right token waits once the guesses ran out")
        XCTAssertNotNil(blocked.header("Retry-After"))
        XCTAssertEqual(try client.request("GET", "/api/overview", headers: ["Authorization": "Bearer guess"]).status, 429)

        let throttle = LoginThrottle()
        let start = Date()
        for _ in 0..<LoginThrottle.freeFailures { throttle.recordFailure(for: "a", now: start) }
        XCTAssertEqual(throttle.wait(for: "a", now: start), 1)
        throttle.recordFailure(for: "a", now: start)
        XCTAssertEqual(throttle.wait(for: "a", now: start), 2, "each further failure doubles the wait")
        XCTAssertNil(throttle.wait(for: "b", now: start), "another client is not held back")
        XCTAssertNil(throttle.wait(for: "a", now: start.addingTimeInterval(3)))
        throttle.recordSuccess(for: "a")
        throttle.recordFailure(for: "a", now: start)
        XCTAssertNil(throttle.wait(for: "a", now: start), "a success starts the count again")
    }

    /// Idle and trickling connections are closed after the read timeout, and connections past
    /// the cap are refused at once, so sockets cannot pin the server's threads.
    func testIdleConnectionsAreClosedAndConnectionsAreCapped() throws {
        let server = try HTTPServer(host: "127.0.0.1", port: 0, maxConnections: 3, readTimeout: 0.5) { _ in .respond(.json(200, "{}")) }
        defer { server.stop() }
        let idle = try (0..<3).map { _ in try LoopbackSocket(port: server.port) }
        waitUntil("three connections are accepted") { server.connectionsAccepted == 3 }
        let refused = try LoopbackSocket(port: server.port)
        XCTAssertTrue(refused.readAll(timeout: 5).hasPrefix("HTTP/1.1 503"), "a fourth connection is refused")
        let trickling = idle[0]
        trickling.send("GET / HTTP/1.1\r\nHo")
        for socket in idle {
            XCTAssertEqual(socket.readAll(timeout: 5), "", "closed by the server within its read timeout")
        }
        // Room again once they are gone.
        waitUntil("a new connection is served") {
            (try? LoopbackHTTP(port: server.port).request("GET", "/").status) == 200
        }
    }

    func testEveryResponseCarriesTheCSPAndEveryTextIsEscaped() throws {
        let seed = try seed()
        let dashboard = try startDashboard()
        let client = LoopbackHTTP(port: dashboard.port)
        for path in ["/", "/deliveries", "/deliveries/\(seed.hostileDeliveryID)", "/endpoints", "/api/overview", "/assets/dashboard.css", "/nowhere"] {
            let response = try client.request("GET", path)
            XCTAssertEqual(response.header("Content-Security-Policy"), DashboardApp.contentSecurityPolicy, path)
            XCTAssertEqual(response.header("X-Content-Type-Options"), "nosniff", path)
        }
        let page = try client.request("GET", "/deliveries/\(seed.hostileDeliveryID)")
        XCTAssertEqual(page.status, 200)
        XCTAssertFalse(page.text.contains("<script>window"), "no producer or receiver text becomes markup")
        XCTAssertFalse(page.text.contains("<img src=x"))
        XCTAssertFalse(page.text.contains("<b>bold</b>"))
        XCTAssertTrue(page.text.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"))
        XCTAssertTrue(page.text.contains("&lt;script&gt;window.__xss=3&lt;/script&gt;"), "the response body is shown, escaped")
        XCTAssertTrue(page.text.contains("&lt;b&gt;bold&lt;/b&gt;"), "response headers are shown, escaped")
        XCTAssertTrue(page.text.contains("\\&quot;&#39;&gt;&lt;img"), "quotes cannot close an attribute")
        // Only our own script tag is on the page.
        XCTAssertEqual(page.text.components(separatedBy: "<script").count - 1, 1)
    }

    func testOffLoopbackNeedsATokenAndTheTokenGatesEveryRequest() throws {
        XCTAssertThrowsError(try DashboardSettings(listen: "0.0.0.0:8089", token: nil))
        XCTAssertThrowsError(try DashboardSettings(listen: "0.0.0.0:8089", token: "short"))
        XCTAssertThrowsError(try DashboardSettings(listen: "localhost:8089", token: nil), "an IP literal, not a name")
        XCTAssertNoThrow(try DashboardSettings(listen: "[::1]:8089", token: nil))
        XCTAssertEqual(try DashboardSettings(listen: "0.0.0.0:9", token: "a-long-enough-token").port, 9)

        _ = try seed()
        let token = "s3cret-dashboard-token-0123456789"
        let dashboard = try startDashboard(token: token)
        let client = LoopbackHTTP(port: dashboard.port)
        let anonymous = try client.request("GET", "/api/overview")
        XCTAssertEqual(anonymous.status, 401)
        XCTAssertEqual(anonymous.header("WWW-Authenticate"), "Bearer")
        XCTAssertEqual(try client.request("GET", "/api/overview", headers: ["Authorization": "Bearer wrong-token-wrong-token"]).status, 401)
        XCTAssertEqual(try client.request("GET", "/api/overview", headers: ["Authorization": "Bearer \(token)"]).status, 200)
        let page = try client.request("GET", "/deliveries")
        XCTAssertEqual(page.status, 303)
        XCTAssertEqual(page.header("Location"), "/login")
        XCTAssertEqual(try client.request("GET", "/login").status, 200)
        XCTAssertEqual(try client.request("GET", "/assets/dashboard.js").status, 200, "the login page needs its assets")

        XCTAssertEqual(try client.request("POST", "/login", body: "token=nope").status, 401)
        let login = try client.request("POST", "/login", body: "token=\(FormData.escape(token))")
        XCTAssertEqual(login.status, 303)
        let cookie = try XCTUnwrap(login.header("Set-Cookie"))
        XCTAssertTrue(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), cookie)
        XCTAssertFalse(cookie.contains(token), "the cookie holds a value derived from the token, not the token")
        let session = String(cookie.prefix { $0 != ";" })
        XCTAssertEqual(try client.request("GET", "/deliveries", headers: ["Cookie": session]).status, 200)
        XCTAssertEqual(try client.request("GET", "/deliveries", headers: ["Cookie": "dispatcher_session=forged"]).status, 303)
    }

    // MARK: - The binary

    func testDashboardCommandServesAndRefusesAnOpenListenerWithoutAToken() throws {
        _ = try seed()
        let refused = try run(["dashboard", "--db", databaseLocation, "--listen", "0.0.0.0:0"])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("needs dashboard.token"), refused.stderr)

        let (process, _, err) = try launch(["dashboard", "--db", databaseLocation, "--listen", "127.0.0.1:0"])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        let line = try XCTUnwrap(readLine(from: err, containing: "dashboard on"))
        let port = try XCTUnwrap(dashboardPort(in: line))
        let page = try LoopbackHTTP(port: port).request("GET", "/deliveries?status=failed")
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(page.text.components(separatedBy: "<span class=\"badge status-failed\">failed</span>").count - 1, 5)
        XCTAssertEqual(try stopProcess(process, signal: SIGTERM), 0)
    }

    func testServeHostsTheDashboardFromTheConfig() throws {
        let receiver = try makeReceiver()
        let config = try writeConfig(url: receiver.url(), extra: #", "dashboard": {"listen": "127.0.0.1:0"}"#)
        let log = directory.file("serve.log")
        let serve = try startServe(config: config, logFile: log)
        let port = waitForAnnouncedPort(in: log, after: "dashboard on http://127.0.0.1:")
        let overview = try LoopbackHTTP(port: port).json("/api/endpoints")
        XCTAssertEqual((overview["endpoints"] as? [[String: Any]])?.first?["id"] as? String, "ep-1")
        XCTAssertEqual(try stopProcess(serve, signal: SIGTERM), 0)
    }

    /// The port in a "dashboard on http://127.0.0.1:PORT" line (which may go on to name the store).
    private func dashboardPort(in line: some StringProtocol) -> Int? {
        guard let url = line.split(separator: " ").first(where: { $0.hasPrefix("http://") }) else { return nil }
        return url.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) }
    }

    private func readLine(from pipe: Pipe, containing needle: String, timeout: Double = 15) -> String? {
        let text = Locked("")
        let found = DispatchSemaphore(value: 0)
        let handle = pipe.fileHandleForReading
        DispatchQueue.global().async {
            while true {
                let data = handle.availableData
                if data.isEmpty { return }
                let current = text.withLock { $0 += String(decoding: data, as: UTF8.self); return $0 }
                if current.contains(needle) { found.signal(); return }
            }
        }
        guard found.wait(timeout: .now() + timeout) == .success else { return nil }
        return text.value.split(separator: "\n").first { $0.contains(needle) }.map(String.init)
    }

    // MARK: - In a real browser

    func testEveryPageInHeadlessChromium() throws {
        let seed = try seed()
        let browser = try HeadlessBrowser.launch()
        defer { browser.close() }
        let dashboard = try startDashboard()
        let base = "http://127.0.0.1:\(dashboard.port)"
        let page = try browser.newPage()
        let screenshots = Self.screenshotDirectory

        try page.open(base + "/")
        XCTAssertEqual(try page.evaluate("document.querySelector('[data-count=succeeded]').textContent") as? String, "60")
        XCTAssertEqual(try page.evaluate("document.querySelector('[data-count=failed]').textContent") as? String, "5")
        XCTAssertEqual(try page.evaluate("document.querySelectorAll('svg.chart rect').length") as? Int, 13, "twelve green bars, one red")
        XCTAssertEqual(try page.evaluate("document.querySelectorAll('time[data-local=true]').length > 0") as? Bool, true, "times are shown in local time")
        try page.screenshot(to: screenshots + "/overview.png")

        try page.open(base + "/deliveries")
        XCTAssertEqual(try page.evaluate("document.querySelectorAll('table.deliveries tbody tr').length") as? Int, 50)
        try page.click("a.chip[data-status=failed]")
        try page.waitForLoad { $0.contains("status=failed") }
        XCTAssertEqual(try page.evaluate("document.querySelectorAll('table.deliveries tbody tr').length") as? Int, 5)
        XCTAssertEqual(try page.evaluate("[...document.querySelectorAll('table.deliveries tbody .badge')].every(b => b.textContent === 'failed')") as? Bool, true)
        // The filter form: pick a tenant, submit.
        _ = try page.evaluate("document.querySelector('select[name=tenant]').value = 'clinic-a'")
        try page.click("#filters button[type=submit]")
        try page.waitForLoad { $0.contains("tenant=clinic-a") }
        XCTAssertEqual(try page.evaluate("document.querySelector('p.empty')?.textContent") as? String, "No deliveries match this filter.")
        try page.open(base + "/deliveries?status=failed")
        try page.screenshot(to: screenshots + "/deliveries.png")

        try page.open(base + "/deliveries/\(seed.hostileDeliveryID)")
        XCTAssertEqual(try page.evaluate("typeof window.__xss") as? String, "undefined", "no hostile text ran")
        let body = try XCTUnwrap(page.evaluate("document.querySelector('pre.body').textContent") as? String)
        XCTAssertTrue(body.contains("<script>window.__xss=1</script>"), body)
        XCTAssertEqual(try page.evaluate("document.querySelectorAll('section.attempt').length") as? Int, 1)
        XCTAssertEqual(try page.evaluate("document.querySelector('code').textContent") as? String, seed.hostileEventID)
        try page.screenshot(to: screenshots + "/delivery.png")
        // Redeliver: the page asks first (the browser accepts), then the delivery is queued again.
        try page.click("form[action$=redeliver] button")
        try page.waitForLoad { $0.hasSuffix("notice=redelivered") }
        XCTAssertTrue(browser.dialogs.contains { $0.hasPrefix("Redeliver delivery \(seed.hostileDeliveryID)") }, "\(browser.dialogs)")
        XCTAssertEqual(try store.eventRecord(deliveryID: seed.hostileDeliveryID)?.deliveries.first?.delivery.status, .pending)

        try page.open(base + "/endpoints")
        XCTAssertEqual(try page.evaluate("document.querySelectorAll('table.endpoints tbody tr').length") as? Int, 2)
        let rowB = try XCTUnwrap(page.evaluate("document.getElementById('endpoint-clinic-b-hooks').textContent") as? String)
        XCTAssertTrue(rowB.contains("0.0% of 10") && rowB.contains("HTTP 503 is not 2xx"), rowB)
        let rowA = try XCTUnwrap(page.evaluate("document.getElementById('endpoint-clinic-a-hooks').textContent") as? String)
        XCTAssertTrue(rowA.contains("100.0% of 5") && rowA.contains("100.0% of 60"), rowA)
        try page.screenshot(to: screenshots + "/endpoints.png")
        // The event catalog: every type a row, the examples folded away until opened.
        try page.open(base + "/catalog")
        XCTAssertEqual(try page.evaluate("document.querySelectorAll('tr[id^=type-]').length") as? Int, EventCatalog.entries.count)
        XCTAssertEqual(try page.evaluate("document.querySelector('#verify-snippet').textContent.includes('def verify(')") as? Bool, true)
        try page.screenshot(to: screenshots + "/catalog.png")
        for name in ["overview", "deliveries", "delivery", "endpoints", "catalog"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: "\(screenshots)/\(name).png")[.size] as? Int) ?? 0
            XCTAssertGreaterThan(size, 10_000, "\(name).png holds a rendered page")
        }
    }

    // MARK: - Pieces

    func testLatencyPercentilesAreWithinTheirBucketWidth() {
        var histogram = LatencyHistogram()
        for microseconds in 1...10_000 { histogram.record(microseconds: Int64(microseconds * 100)) }
        let p50 = try! XCTUnwrap(histogram.percentileMilliseconds(0.5)), p99 = try! XCTUnwrap(histogram.percentileMilliseconds(0.99))
        XCTAssertEqual(p50, 500, accuracy: 500 * 0.045)
        XCTAssertEqual(p99, 990, accuracy: 990 * 0.045)
        XCTAssertNil(LatencyHistogram().percentileMilliseconds(0.5))
    }

    func testPrettyPrintingKeepsKeyOrderAndStrings() {
        let body = #"{"z":1,"a":{"s":"{[,:]} \"q\"","e":[],"o":{}},"l":[1,2]}"#
        XCTAssertEqual(JSONPrettyPrinter.prettyPrinted(Array(body.utf8)), """
            {
              "z": 1,
              "a": {
                "s": "{[,:]} \\"q\\"",
                "e": [],
                "o": {}
              },
              "l": [
                1,
                2
              ]
            }
            """)
        XCTAssertNil(JSONPrettyPrinter.prettyPrinted(Array("not json".utf8)))
    }

    func testFormDecodingAndRouting() {
        let form = FormData("tenant=clinic+a&type=visit.%2A&empty=&tenant=second")
        XCTAssertEqual(form["tenant"], "clinic a")
        XCTAssertEqual(form["type"], "visit.*")
        XCTAssertNil(form["empty"], "an untouched field is absent")
        XCTAssertEqual(FormData.encode([("since", "2026-11-22T10:00:00Z"), ("status", nil)]), "since=2026-11-22T10%3A00%3A00Z")
        XCTAssertEqual(Route(["deliveries", "42", "redeliver"]).capture("deliveries/*/redeliver"), "42")
        XCTAssertFalse(Route(["deliveries"]).matches("deliveries/*"))
    }

    /// `.build/screenshots/` of the package, found from the test bundle's path.
    static var screenshotDirectory: String {
        var url = URL(fileURLWithPath: CommandLine.arguments[0])
        while url.path != "/" && url.lastPathComponent != ".build" { url.deleteLastPathComponent() }
        return (url.path == "/" ? NSTemporaryDirectory() : url.path) + "/screenshots"
    }
}

/// A minimal HTTP/1.1 client over a loopback socket: redirects are not followed and every
/// header is visible, which is what these tests look at.
struct LoopbackHTTP {
    let port: Int

    struct Response {
        var status: Int
        var headers: [HeaderField]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first { $0.hasName(name) }?.value }
    }

    func request(_ method: String, _ target: String, body: String = "", headers: [String: String] = [:]) throws -> Response {
        let connection = try LoopbackSocket(port: port)
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(headers["Host"] ?? "127.0.0.1:\(port)")\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers where name != "Host" { head += "\(name): \(value)\r\n" }
        connection.send(head + "\r\n" + body)
        let received = connection.readBytes(timeout: 15)
        guard let split = received.firstRange(of: Array("\r\n\r\n".utf8)) else { throw BrowserError("no response head") }
        let lines = String(decoding: received[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        let fields = lines.dropFirst().compactMap { line -> HeaderField? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return HeaderField(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Response(status: status, headers: fields, body: Array(received[split.upperBound...]))
    }

    func json(_ target: String) throws -> [String: Any] {
        let response = try request("GET", target)
        guard response.status == 200 else { throw BrowserError("GET \(target): \(response.status) \(response.text)") }
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }
}

/// A raw TCP connection to 127.0.0.1, for tests about connections rather than requests.
final class LoopbackSocket {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw BrowserError("socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(descriptor); throw BrowserError("connect failed") }
    }

    deinit { close(descriptor) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Everything until the server closes the connection, waiting at most `timeout` seconds
    /// for each read; "" when it closed without sending.
    func readAll(timeout: Double) -> String {
        let (received, closed) = read(timeout: timeout)
        return closed ? String(decoding: received, as: UTF8.self) : "timed out"
    }

    /// What arrived until the server closed the connection or a read waited `timeout` seconds.
    func readBytes(timeout: Double) -> [UInt8] { read(timeout: timeout).bytes }

    /// One response on a connection kept alive: its head and its `Content-Length` of body, or
    /// what arrived before a read waited `timeout` seconds or the server closed.
    func readResponse(timeout: Double) -> String {
        setReadTimeout(timeout)
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while true {
            let text = String(decoding: received, as: UTF8.self)
            if let headEnd = text.range(of: "\r\n\r\n") {
                let length = text[..<headEnd.lowerBound].split(separator: "\r\n")
                    .first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if text.utf8.distance(from: text.utf8.startIndex, to: headEnd.upperBound) + length <= received.count { return text }
            }
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return text }
            received += chunk[0..<count]
        }
    }

    private func setReadTimeout(_ seconds: Double) {
        var limit = timeval(tv_sec: Int(seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    private func read(timeout: Double) -> (bytes: [UInt8], closed: Bool) {
        setReadTimeout(timeout)
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return (received, count == 0) }
            received += chunk[0..<count]
        }
    }
}

