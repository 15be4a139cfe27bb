import DispatcherConfig
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherServer
import DispatcherStore
import DispatcherWorker
import Foundation

/// The dashboard's HTML, rendered on the server: every page works without JavaScript, which
/// only turns times into the viewer's local time and asks before an action.
struct DashboardPages {
    let store: any DashboardStore
    /// Whose pages these are: every list and action below is scoped to the viewer.
    let viewer: Viewer
    var now = Date()

    init(store: any DashboardStore, viewer: Viewer) {
        self.store = store
        self.viewer = viewer
    }

    /// The endpoints this viewer sees (a tenant's read alone, not filtered from everyone's).
    func visibleEndpoints() throws -> [EndpointStatus] {
        try store.endpointStatuses(tenantID: viewer.tenantID)
    }

    // MARK: - Overview

    func overview(query: FormData) throws -> HTML {
        let stats = try store.stats(windowSeconds: 3_600)
        let activity = try store.activity(since: ActivityReport.hourlyTimelineStart(now: now), bucketSeconds: 3_600, now: now)
        let cards = DeliveryStatus.allCases.map { status -> HTML in
            let count = stats.byStatus[status.rawValue] ?? 0
            return """
                <a class="card status-\(status.rawValue)" href="/deliveries?status=\(status.rawValue)">\
                <span class="card-label">\(status.rawValue)</span><span class="card-value" data-count="\(status.rawValue)">\(Self.number(count))</span></a>
                """
        }
        let oldest: HTML = stats.oldestPending.map { "\(Self.age(now.timeIntervalSince($0))) <small>since \(Self.time($0))</small>" } ?? "none"
        let rate: HTML = stats.successRate.map { "\(Self.percent($0))" } ?? "–"
        let latency: HTML = stats.latencyP50Milliseconds.map { p50 in
            "p50 \(Self.milliseconds(p50)) · p99 \(Self.milliseconds(stats.latencyP99Milliseconds ?? p50))"
        } ?? "no attempts"
        let attention = stats.endpoints.filter { !$0.endpoint.enabled || $0.isCircuitOpen(at: now) || $0.consecutiveFailures > 0 }
        let attentionRows = attention.map { status -> HTML in
            "<tr><td><a href=\"/endpoints#endpoint-\(status.endpoint.id)\">\(status.endpoint.id)</a></td><td>\(status.endpoint.tenantID)</td><td>\(endpointState(status))</td><td>\(status.consecutiveFailures) failures in a row</td></tr>"
        }
        let attentionTable: HTML = attention.isEmpty
            ? "<p class=\"empty\">Every endpoint is enabled and healthy.</p>"
            : "<table><thead><tr><th>Endpoint</th><th>Tenant</th><th>State</th><th>Failures</th></tr></thead><tbody>\(attentionRows)</tbody></table>"
        let totals = activity.buckets.reduce(into: (0, 0)) { $0.0 += $1.succeeded; $0.1 += $1.failed }
        return layout(title: "Overview", active: "overview", body: """
            <h1>Overview</h1>
            <section class="cards">\(cards)</section>
            <section class="facts">
              <div><span class="fact-label">Oldest pending</span><span class="fact-value">\(oldest)</span></div>
              <div><span class="fact-label">Attempts, last hour</span><span class="fact-value">\(Self.number(stats.recentAttempts))</span></div>
              <div><span class="fact-label">Success rate, last hour</span><span class="fact-value">\(rate)</span></div>
              <div><span class="fact-label">Latency, last hour</span><span class="fact-value">\(latency)</span></div>
            </section>
            <section class="panel">
              <h2>Attempts over the last 24 hours <small>\(Self.number(totals.0)) succeeded · \(Self.number(totals.1)) failed</small></h2>
              \(DashboardChart.attempts(activity))
            </section>
            <section class="panel">
              <h2>Endpoints needing attention</h2>
              \(attentionTable)
            </section>
            """)
    }

    // MARK: - Deliveries

    func deliveries(query: FormData) throws -> HTML {
        let filter: DashboardFilter
        do {
            filter = try DashboardFilter(query, now: now).scoped(to: viewer, store: store)
        } catch let error as DashboardError where error.status != 404 {
            return layout(title: "Deliveries", active: "deliveries", body: "<h1>Deliveries</h1>\(notice(error: error.message))\(try filterForm(nil))")
        }
        let deliveries = try store.deliveries(matching: filter.deliveryFilter)
        let rows = deliveries.map { delivery -> HTML in
            """
            <tr>
              <td><a href="/deliveries/\(delivery.id)">\(delivery.id)</a></td>
              <td>\(Self.time(delivery.createdAt))</td>
              <td>\(delivery.tenantID)</td>
              <td>\(delivery.endpointID)</td>
              <td><code>\(delivery.eventType)</code></td>
              <td>\(Self.badge(delivery.status))</td>
              <td class="number">\(delivery.attemptCount)</td>
              <td class="number">\(delivery.lastHTTPStatus.map(String.init) ?? "–")</td>
              <td>\(delivery.nextAttemptAt.map(Self.time) ?? "–")</td>
              <td class="error-text">\(delivery.lastError.map { String($0.prefix(120)) } ?? "")</td>
            </tr>
            """
        }
        var pager: [HTML] = []
        if filter.beforeID != nil { pager.append("<a class=\"button\" href=\"/deliveries?\(FormData.encode(filter.pairs))\">← Newest</a>") }
        if deliveries.count == DashboardFilter.pageSize, let last = deliveries.last {
            pager.append("<a class=\"button\" rel=\"next\" href=\"/deliveries?\(FormData.encode(filter.pairs + [("before", String(last.id))]))\">Older →</a>")
        }
        var replay: HTML = ""
        if viewer.canChange, let replayFilter = filter.replayFilter {
            let count = try store.replay(replayFilter, dryRun: true)
            if count > DashboardAction.portalReplayCap && !viewer.isOperator {
                replay = "<span class=\"muted\">\(Self.number(count)) \(replayFilter.status.rawValue) deliveries match; narrow the filter to replay up to \(Self.number(DashboardAction.portalReplayCap)) at a time.</span>"
            } else if count > 0 {
                let label = "Replay \(Self.number(count)) \(replayFilter.status.rawValue) \(count == 1 ? "delivery" : "deliveries") matching this filter"
                replay = """
                    <form method="post" action="/replay" class="inline" data-confirm="\(label)? They are queued again as new runs.">
                      \(csrfField)\(HTML.join(filter.pairs.compactMap { name, value in value.map { "<input type=\"hidden\" name=\"\(name)\" value=\"\($0)\">" } }))
                      <button type="submit" class="danger">\(label)</button>
                    </form>
                    """
            }
        }
        let table: HTML = deliveries.isEmpty
            ? "<p class=\"empty\">No deliveries match this filter.</p>"
            : """
              <table class="deliveries">
                <thead><tr><th>ID</th><th>Created</th><th>Tenant</th><th>Endpoint</th><th>Type</th><th>Status</th><th>Attempts</th><th>HTTP</th><th>Next attempt</th><th>Last error</th></tr></thead>
                <tbody>\(rows)</tbody>
              </table>
              """
        return layout(title: "Deliveries", active: "deliveries", body: """
            <h1>Deliveries</h1>
            \(notice(query))
            \(try filterForm(filter))
            <div class="toolbar">\(statusChips(filter))<span class="spacer"></span>\(replay)</div>
            \(table)
            <nav class="pager">\(pager)</nav>
            """)
    }

    private func filterForm(_ filter: DashboardFilter?) throws -> HTML {
        let tenants = try store.tenants().filter { viewer.sees(tenant: $0.id) }
        let endpoints = try visibleEndpoints().map(\.endpoint)
        func options(_ values: [String], selected: String?, any: String) -> HTML {
            HTML.join(["<option value=\"\">\(any)</option>"] + values.map { value in
                "<option value=\"\(value)\"\(value == selected ? HTML(" selected") : "")>\(value)</option>"
            })
        }
        return """
            <form method="get" action="/deliveries" class="filters" id="filters">
              \(viewer.isOperator ? "<label>Tenant <select name=\"tenant\">\(options(tenants.map(\.id), selected: filter?.tenantID, any: "any tenant"))</select></label>" as HTML : "")
              <label>Endpoint <select name="endpoint">\(options(endpoints.map(\.id), selected: filter?.endpointID, any: "any endpoint"))</select></label>
              <label>Type <input name="type" placeholder="visit.*" value="\(filter?.typePattern ?? "")"></label>
              <label>Status <select name="status">\(options(DeliveryStatus.allCases.map(\.rawValue), selected: filter?.status?.rawValue, any: "any status"))</select></label>
              <label>Since <input name="since" placeholder="2h, 7d or 2026-11-22T10:00Z" value="\(filter?.sinceText ?? "")"></label>
              <label>Until <input name="until" placeholder="1h or 2026-11-22" value="\(filter?.untilText ?? "")"></label>
              <button type="submit">Apply</button>
              <a href="/deliveries" class="button plain">Clear</a>
            </form>
            """
    }

    private func statusChips(_ filter: DashboardFilter) -> HTML {
        var base = filter
        base.status = nil
        let all: HTML = "<a class=\"chip\(filter.status == nil ? HTML(" active") : "")\" href=\"/deliveries?\(FormData.encode(base.pairs))\">all</a>"
        return HTML.join([all] + DeliveryStatus.allCases.map { status -> HTML in
            let active: HTML = filter.status == status ? " active" : ""
            return "<a class=\"chip status-\(status.rawValue)\(active)\" data-status=\"\(status.rawValue)\" href=\"/deliveries?\(FormData.encode(base.pairs + [("status", status.rawValue)]))\">\(status.rawValue)</a>"
        })
    }

    // MARK: - One delivery

    func delivery(id: Int64, query: FormData) throws -> HTML {
        guard let record = try store.eventRecord(deliveryID: id), let entry = record.deliveries.first, viewer.sees(tenant: record.event.tenantID) else {
            throw viewer.isOperator ? DashboardError(status: 404, message: "There is no delivery \(id); it may have been pruned.") : viewer.notFound("delivery")
        }
        let delivery = entry.delivery
        let event = record.event
        let body: HTML = JSONPrettyPrinter.prettyPrinted(event.body).map { "<pre class=\"body json\">\($0)</pre>" }
            ?? "<pre class=\"body\">\(String(decoding: event.body, as: UTF8.self))</pre>"
        let attempts = entry.attempts.reversed().map(attemptSection)
        let redeliver: HTML = !viewer.canChange ? "" : delivery.status == .delivering ? "<span class=\"muted\">An attempt is in flight.</span>" : """
            <form method="post" action="/deliveries/\(delivery.id)/redeliver" class="inline" data-confirm="Redeliver delivery \(delivery.id) to \(delivery.endpointID)? It is queued again as a new run of attempts.">
              \(csrfField)<button type="submit">Redeliver</button>
            </form>
            """
        return layout(title: "Delivery \(delivery.id)", active: "deliveries", body: """
            <p class="crumbs"><a href="/deliveries">Deliveries</a> / \(delivery.id)</p>
            \(notice(query))
            <div class="title-row"><h1>Delivery \(delivery.id) \(Self.badge(delivery.status))</h1>\(redeliver)</div>
            <dl class="summary">
              <dt>Event</dt><dd><code>\(event.id)</code></dd>
              <dt>Type</dt><dd><code>\(event.type)</code></dd>
              <dt>Tenant</dt><dd><a href="/deliveries?tenant=\(FormData.escape(delivery.tenantID))">\(delivery.tenantID)</a></dd>
              <dt>Endpoint</dt><dd><a href="/endpoints/\(FormData.escape(delivery.endpointID))">\(delivery.endpointID)</a></dd>
              <dt>Created</dt><dd>\(Self.time(delivery.createdAt))</dd>
              <dt>Updated</dt><dd>\(Self.time(delivery.updatedAt))</dd>
              <dt>Attempts</dt><dd>\(delivery.attemptCount)</dd>
              <dt>Next attempt</dt><dd>\(delivery.nextAttemptAt.map(Self.time) ?? "–")</dd>
              <dt>Last error</dt><dd class="error-text">\(delivery.lastError ?? "–")</dd>
            </dl>
            <section class="panel"><h2>Event body <small>\(Self.number(event.body.count)) bytes, as sent</small></h2>\(body)</section>
            <h2>Attempts <small>newest first</small></h2>
            \(attempts.isEmpty ? "<p class=\"empty\">No attempt yet.</p>" : HTML.join(attempts))
            """)
    }

    private func attemptSection(_ attempt: Attempt) -> HTML {
        let verdict: HTML
        switch attempt.verdict {
        case .succeeded: verdict = "<span class=\"badge status-succeeded\">succeeded</span>"
        case .failed: verdict = "<span class=\"badge status-failed\">failed</span>"
        case .retryScheduled(let at): verdict = "<span class=\"badge status-pending\">retry</span> <span class=\"muted\">next at \(Self.time(at))</span>"
        }
        let error: HTML = attempt.errorKind.map { kind in
            "<p class=\"error-text\"><strong>\(kind.rawValue)</strong>: \(attempt.errorMessage ?? "")</p>"
        } ?? ""
        let responseBody: HTML
        if let bytes = attempt.responseBody {
            let truncated: HTML = attempt.responseTruncated ? " <small>(truncated)</small>" : ""
            if let text = String(validating: bytes, as: UTF8.self) {
                let shown = JSONPrettyPrinter.prettyPrinted(bytes) ?? text
                responseBody = "<h4>Response body\(truncated)</h4><pre class=\"body\">\(shown.isEmpty ? "(empty)" : shown)</pre>"
            } else {
                responseBody = "<h4>Response body\(truncated)</h4><p class=\"muted\">\(bytes.count) bytes of binary data (base64 in <code>/api/deliveries/ID</code>).</p>"
            }
        } else {
            responseBody = ""
        }
        return """
            <section class="attempt panel" id="attempt-\(attempt.number)">
              <h3>Attempt \(attempt.number) \(verdict)
                <small>\(attempt.responseStatus.map { "HTTP \($0)" } ?? "no response") · \(Self.milliseconds(Double(attempt.durationMicroseconds) / 1000)) · \(Self.time(attempt.startedAt))</small></h3>
              \(error)
              <p class="url"><code>POST \(attempt.url)</code></p>
              <div class="columns">
                <div><h4>Request headers</h4>\(Self.headerTable(attempt.requestHeaders))</div>
                <div><h4>Response headers</h4>\(attempt.responseHeaders.map(Self.headerTable) ?? "<p class=\"muted\">none</p>")</div>
              </div>
              \(responseBody)
            </section>
            """
    }

    static func headerTable(_ headers: [HeaderField]) -> HTML {
        guard !headers.isEmpty else { return "<p class=\"muted\">none</p>" }
        return "<table class=\"headers\"><tbody>\(headers.map { "<tr><th>\($0.name)</th><td>\($0.value)</td></tr>" as HTML })</tbody></table>"
    }

    // MARK: - Endpoints

    func endpoints(query: FormData) throws -> HTML {
        let statuses = try visibleEndpoints()
        let activity = try store.activity(since: now.addingTimeInterval(-86_400), bucketSeconds: 86_400, now: now)
        func window(_ window: AttemptWindow) -> HTML {
            guard window.attempts > 0 else { return "<span class=\"muted\">no attempts</span>" }
            let p50 = window.latency.percentileMilliseconds(0.5) ?? 0, p99 = window.latency.percentileMilliseconds(0.99) ?? 0
            return "\(Self.percent(window.successRate ?? 0)) of \(Self.number(window.attempts))<br><small>p50 \(Self.milliseconds(p50)) · p99 \(Self.milliseconds(p99))</small>"
        }
        let rows = statuses.map { status -> HTML in
            let endpoint = status.endpoint
            let health = activity.endpoints[endpoint.id] ?? EndpointActivity()
            let lastError: HTML = health.lastFailure.map { "\(Self.time($0.at))<br><span class=\"error-text\">\(String($0.summary.prefix(160)))</span>" } ?? "–"
            let managed: HTML = status.isManagedByConfig ? " <span class=\"badge\" title=\"Managed by the config file\">config</span>" : ""
            return """
                <tr id="endpoint-\(endpoint.id)">
                  <td><a href="/endpoints/\(FormData.escape(endpoint.id))"><strong>\(endpoint.id)</strong></a>\(managed)<br><small>\(endpoint.tenantID)</small></td>
                  <td class="url"><code>\(endpoint.url)</code><br><small>\(endpoint.eventFilters.isEmpty ? "every event" : endpoint.eventFilters.joined(separator: ", "))</small></td>
                  <td>\(endpointState(status))</td>
                  <td>\(window(health.lastHour))</td>
                  <td>\(window(health.lastDay))</td>
                  <td>\(lastError)</td>
                  <td>\(viewer.canChange ? endpointActions(status) : "")</td>
                </tr>
                """
        }
        let table: HTML = statuses.isEmpty
            ? (viewer.isOperator
                ? "<p class=\"empty\">No endpoints yet: add one here, in the config or with <code>dispatcher endpoints add</code>.</p>"
                : "<p class=\"empty\">No endpoints yet.</p>")
            : """
              <table class="endpoints">
                <thead><tr><th>Endpoint</th><th>URL and events</th><th>State</th><th>Last hour</th><th>Last day</th><th>Last error</th><th></th></tr></thead>
                <tbody>\(rows)</tbody>
              </table>
              """
        let create: HTML = viewer.canChange ? "<a class=\"button\" href=\"/endpoints/new\">New endpoint</a>" : ""
        return layout(title: "Endpoints", active: "endpoints", body: """
            <div class="title-row"><h1>Endpoints</h1>\(create)</div>
            \(notice(query))
            \(table)
            \(viewer.isOperator ? try portalLinkForm() : "")
            """)
    }

    /// Send test and enable/disable, beside each endpoint and on its page.
    func endpointActions(_ status: EndpointStatus) -> HTML {
        let endpoint = status.endpoint
        let test: HTML = """
            <form method="post" action="/endpoints/\(FormData.escape(endpoint.id))/test" class="test-send" data-confirm="Send a test event to \(endpoint.id) now? It goes through the normal request path and is recorded.">\(csrfField)<select name="type" aria-label="Test event">\(Self.testEventOptions)</select><button type="submit">Send test</button></form>
            """
        let toggle: HTML = (endpoint.enabled
            ? "<form method=\"post\" action=\"/endpoints/\(FormData.escape(endpoint.id))/disable\" data-confirm=\"Disable \(endpoint.id)? Its deliveries wait until it is enabled again.\">\(csrfField)<button type=\"submit\" class=\"danger\">Disable</button></form>"
            : "<form method=\"post\" action=\"/endpoints/\(FormData.escape(endpoint.id))/enable\" data-confirm=\"Enable \(endpoint.id)? Its waiting deliveries are attempted at once.\">\(csrfField)<button type=\"submit\">Enable</button></form>")
        return "\(test)\(toggle)"
    }

    /// An endpoint's state as the list, the overview and its own page show it.
    func endpointState(_ status: EndpointStatus) -> HTML {
        if !status.endpoint.enabled {
            return "<span class=\"badge status-failed\">disabled</span><br><small>\(status.disabledReason ?? "by an operator")</small>"
        }
        switch JSONRepresentation.circuitState(status, now: now) {
        case "open":
            return "<span class=\"badge status-failed\">circuit open</span><br><small>until \(status.circuitOpenUntil.map(Self.time) ?? "–")</small>"
        case "half_open":
            return "<span class=\"badge status-pending\">circuit half-open</span>"
        default:
            return status.consecutiveFailures > 0
                ? "<span class=\"badge status-pending\">failing</span><br><small>since \(status.failingSince.map(Self.time) ?? "–")</small>"
                : "<span class=\"badge status-succeeded\">healthy</span>"
        }
    }

    // MARK: - Login and errors

    /// Every event type with its meaning and documented example, and how a receiver checks a
    /// signature: what a customer's developer reads before writing their handler.
    func catalog() -> HTML {
        let sections = Self.catalogFamilies.map { family, title -> HTML in
            let rows = EventCatalog.entries.filter { $0.family == family }.map { entry -> HTML in
                let example: HTML = entry.example.flatMap { JSONPrettyPrinter.prettyPrinted(Array($0.utf8)) }.map {
                    "<details><summary>Example</summary><pre class=\"body json\">\($0)</pre></details>"
                } ?? ""
                return "<tr id=\"type-\(entry.type)\"><td><code>\(entry.type)</code></td><td>\(entry.summary)\(example)</td></tr>"
            }
            return """
                <section class="panel"><h2>\(title)</h2>
                <table><thead><tr><th>Type</th><th>Meaning</th></tr></thead><tbody>\(rows)</tbody></table></section>
                """
        }
        return layout(title: "Event catalog", active: "catalog", body: """
            <h1>Event catalog</h1>
            <p class="muted">Every type an endpoint may receive; an endpoint's <code>events</code> filter takes these names or globs such as <code>visit.*</code>.</p>
            \(sections)
            <section class="panel" id="signatures"><h2>Verifying a signature</h2>
            <p>Each request carries <code>webhook-id</code>, <code>webhook-timestamp</code> and <code>webhook-signature</code>
            (Standard Webhooks): <code>v1,</code> then the base64 HMAC-SHA256 of <code>id.timestamp.body</code>, keyed with the
            base64 part of your <code>whsec_</code> secret. While a secret is being rotated the header holds two signatures,
            space-separated; accept the request if either matches. Check the raw body, before any JSON parsing, and refuse old
            timestamps. In Python, standard library only:</p>
            <pre class="body" id="verify-snippet">\(Self.verificationSnippet)</pre>
            </section>
            """)
    }

    /// `dispatcher.ping` first, then every type the catalog has an example of.
    static let testEventOptions: HTML = HTML.join(["<option value=\"\">dispatcher.ping</option>"] + EventCatalog.entries.filter {
        $0.example != nil && $0.type != EventType.ping
    }.map { "<option value=\"\($0.type)\">\($0.type) (example)</option>" })

    static let catalogFamilies = [
        ("checkin", "Check-in"), ("visit", "Telehealth visits"), ("onboarding", "Identity onboarding"),
        ("verification", "KYC verification"), ("operations", "Operational events (the operations tenant)"), ("dispatcher", "The dispatcher"),
    ]

    /// The Python a receiver verifies with (a test runs it against the dispatcher's own signatures).
    static let verificationSnippet = """
        import base64, hashlib, hmac, time

        def verify(secret, headers, body, tolerance=300):
            # secret: "whsec_..."; headers: a dict with lower-case names; body: the raw bytes.
            if abs(time.time() - int(headers["webhook-timestamp"])) > tolerance:
                return False
            key = base64.b64decode(secret.removeprefix("whsec_"))
            signed = f'{headers["webhook-id"]}.{headers["webhook-timestamp"]}.'.encode() + body
            expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            return any(hmac.compare_digest(expected, given) for given in headers["webhook-signature"].split())
        """

    func login(failed: Bool) -> HTML {
        layout(title: "Sign in", active: "", navigation: false, body: """
            <form method="post" action="/login" class="login panel">
              <h1>dispatcher</h1>
              <p>This dashboard needs its access token (<code>dashboard.token</code> in the config).</p>
              \(failed ? "<p class=\"notice error\">That token is not right.</p>" : "")
              <label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
              <button type="submit">Sign in</button>
            </form>
            """)
    }

    func notFound(_ path: String) -> HTML {
        layout(title: "Not found", active: "", body: "<h1>Not found</h1><p>There is no page at <code>\(path)</code>.</p>")
    }

    func error(_ error: DashboardError) -> HTML {
        layout(title: "Error", active: "", body: "<h1>\(error.status == 404 ? "Not found" : "Something went wrong")</h1>\(notice(error: error.message))")
    }

    // MARK: - Pieces

    var csrfField: HTML { "<input type=\"hidden\" name=\"csrf\" value=\"\(viewer.csrfToken)\">" }

    /// The message an action left in the redirect's query; a fixed set, never echoed text.
    func notice(_ query: FormData) -> HTML {
        switch query["notice"] {
        case "redelivered": return "<p class=\"notice\">Queued again: the delivery gets a new run of attempts.</p>"
        case "replayed": return "<p class=\"notice\">Replayed \(Int(query["count"] ?? "") ?? 0) deliveries.</p>"
        case "enabled": return "<p class=\"notice\">Enabled.</p>"
        case "disabled": return "<p class=\"notice\">Disabled: its deliveries wait.</p>"
        case "saved": return "<p class=\"notice\">Saved.</p>"
        case "removed": return "<p class=\"notice\">Removed: its pending deliveries were cancelled.</p>"
        case "revoked": return "<p class=\"notice\">Revoked.</p>"
        case "tested": return "<p class=\"notice\">Test event sent: the recorded attempt is below.</p>"
        default: return ""
        }
    }

    func notice(error message: String) -> HTML { "<p class=\"notice error\">\(message)</p>" }

    func layout(title: String, active: String, navigation: Bool = true, body: HTML) -> HTML {
        var links = [("deliveries", "/deliveries", "Deliveries"), ("endpoints", "/endpoints", "Endpoints"), ("catalog", "/catalog", "Event catalog")]
        if viewer.isOperator { links.insert(("overview", "/", "Overview"), at: 0) }
        if !viewer.isOperator && viewer.canChange { links.append(("tokens", "/tokens", "Read tokens")) }
        // In the portal the header says whose it is, and how to leave.
        let who: HTML = viewer.tenantID.map { tenant in
            """
            <span class="portal-who">\(tenant) · \(viewer.role.rawValue)</span>\
            <form method="post" action="/portal/exit" class="inline">\(csrfField)<button type="submit" class="plain">Sign out</button></form>
            """
        } ?? ""
        let nav: HTML = navigation ? """
            <header><a class="brand" href="/">dispatcher</a><nav>\(links.map { key, href, label -> HTML in
                "<a href=\"\(href)\"\(key == active ? HTML(" class=\"active\" aria-current=\"page\"") : "")>\(label)</a>"
            })</nav>\(who)<span class="generated">\(Self.time(now))</span></header>
            """ : ""
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(title) · dispatcher</title>
            <link rel="stylesheet" href="/assets/dashboard.css">
            <script src="/assets/dashboard.js" defer></script>
            </head>
            <body>
            \(nav)
            <main>
            \(body)
            </main>
            </body>
            </html>
            """
    }

    /// A time in UTC; the page's script rewrites it into the viewer's local time and keeps UTC on hover.
    static func time(_ date: Date) -> HTML {
        let iso = Clock.iso8601(date)
        let utc = date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon).dateTimeSeparator(.space))
        return "<time datetime=\"\(iso)\" title=\"\(utc) UTC\">\(utc) UTC</time>"
    }

    static func badge(_ status: DeliveryStatus) -> HTML {
        "<span class=\"badge status-\(status.rawValue)\">\(status.rawValue)</span>"
    }

    static func number(_ value: Int) -> String { value.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US"))) }
    static func percent(_ fraction: Double) -> String { String(format: "%.1f%%", fraction * 100) }
    static func milliseconds(_ value: Double) -> String { value < 10 ? String(format: "%.1f ms", value) : String(format: "%.0f ms", value) }

    static func age(_ seconds: Double) -> String {
        switch seconds {
        case ..<90: return "\(Int(seconds)) s"
        case ..<5_400: return "\(Int(seconds / 60)) min"
        case ..<172_800: return String(format: "%.1f h", seconds / 3_600)
        default: return String(format: "%.1f days", seconds / 86_400)
        }
    }
}
