import DispatcherConfig
import DispatcherDelivery
import DispatcherModel
import DispatcherServer
import DispatcherStore
import DispatcherWorker
import Foundation

/// What the dashboard reads and changes: the log, endpoints, and the operator's actions.
package typealias DashboardStore = DeliveryLog & EndpointDirectory & OutboxAdministration & TenantTokenRegistry

/// The web dashboard: the delivery log, each delivery's detail, endpoint health and an
/// overview, served by the binary itself (no external assets) over our own `HTTPServer`.
///
/// ```swift
/// let dashboard = try Dashboard(store: store, settings: DashboardSettings(port: 0))
/// print("http://127.0.0.1:\(dashboard.port)/")
/// ```
package final class Dashboard: Sendable {
    private let server: HTTPServer
    private let app: DashboardApp
    package var port: Int { server.port }
    package var url: String { "http://\(DashboardSettings(host: server.host, port: server.port).listen)/" }
    /// The per-process token every POST carries (forms embed it; API clients read `/api/session`).
    package var csrfToken: String { app.csrfToken }
    /// The operator's view of the store, for pages rendered outside a request (tests).

    /// `metrics` renders `/metrics`: pass serve's exporter so the dashboard's figures include its
    /// delivery service's counters; by default the dashboard reports the store and itself.
    /// `tester` lets the endpoints page send a test event (the hosting process's delivery settings).
    /// `rules` are the config's URL and destination policy for endpoints people enter; `portal`
    /// turns on tenant sessions from signed links.
    package init(store: any DashboardStore, settings: DashboardSettings, metrics: MetricsExporter? = nil, tester: EndpointTester? = nil,
                 rules: EndpointRules = EndpointRules(), portal: PortalSettings? = nil) throws {
        let sessions = try portal.map { PortalSessions(key: try $0.resolvedKey(), settings: $0, csrfKey: Digest.randomBytes(32)) }
        // The portal's base_url is a name tenants reach the dashboard by: it is one of its hosts.
        var hostNames = settings.hostNames
        if let name = portal?.baseURL.flatMap({ URLComponents(string: $0)?.host?.lowercased() }) { hostNames.append(name) }
        let hosts = HostPolicy(listenHost: settings.host, isLoopback: settings.isLoopback, hostNames: hostNames)
        let app = DashboardApp(store: store, token: try settings.resolvedToken(), hosts: hosts,
                               metrics: metrics ?? MetricsExporter(store: store), tester: tester, rules: rules, portal: sessions)
        self.app = app
        server = try HTTPServer(host: settings.host, port: settings.port, maxBodyBytes: 64 * 1024,
                                maxConnections: Self.maxConnections, readTimeout: Self.readTimeout, gracePeriod: 2) { request in
            .respond(app.respond(to: request))
        }
    }

    package func stop() { server.stop() }

    /// A few people's browsers (six connections each) and scripts, not a flood of idle sockets.
    static let maxConnections = 512
    /// Browsers keep connections for reuse and reopen them at once; a trickling client is cut.
    static let readTimeout = 10.0
}

/// Routing, authentication and CSRF around the pages and the JSON API.
struct DashboardApp: Sendable {
    let store: any DashboardStore
    let token: String?
    let hosts: HostPolicy
    let metrics: MetricsExporter
    let tester: EndpointTester?
    let rules: EndpointRules
    let portal: PortalSessions?
    let logins = LoginThrottle()
    let csrfToken: String
    /// What the login cookie holds: derived from the token, so the token itself never sits in a cookie.
    let sessionValue: String?

    static let sessionCookie = "dispatcher_session"

    init(store: any DashboardStore, token: String?, hosts: HostPolicy, metrics: MetricsExporter, tester: EndpointTester? = nil,
         rules: EndpointRules = EndpointRules(), portal: PortalSessions? = nil) {
        self.store = store
        self.token = token
        self.hosts = hosts
        self.metrics = metrics
        self.tester = tester
        self.rules = rules
        self.portal = portal
        csrfToken = Hex.lowercase(Digest.randomBytes(32))
        sessionValue = token.map { Hex.lowercase(WebhookSigner.hmacSHA256(key: Array($0.utf8), message: Array("dispatcher-dashboard-session".utf8))) }
    }

    /// Every response, whatever the route, leaves with the security headers.
    func respond(to request: HTTPServerRequest) -> HTTPServerResponse {
        var response = route(request)
        response.headers += Self.securityHeaders
        return response
    }

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    static let securityHeaders = [
        HeaderField("Content-Security-Policy", contentSecurityPolicy),
        HeaderField("X-Content-Type-Options", "nosniff"),
        HeaderField("X-Frame-Options", "DENY"),
        HeaderField("Referrer-Policy", "no-referrer"),
        HeaderField("Cache-Control", "no-store"),
    ]

    private func route(_ request: HTTPServerRequest) -> HTTPServerResponse {
        // Before anything else, assets and login included: a rebinding page learns nothing.
        guard hosts.allows(host: request.header("Host")) else {
            return .text(421, "misdirected request: this dashboard does not answer to Host '\(request.header("Host") ?? "")'; add the name to dashboard.hosts\n")
        }
        if request.method != "GET" && request.method != "HEAD" && !isSameOrigin(request) {
            return .text(403, "cross-origin request refused\n")
        }
        let path = request.path
        let segments = path.split(separator: "/").map(String.init)
        let isAPI = segments.first == "api"
        let query = FormData(query: request.target)

        // Assets and the login form are open; everything else needs the token when one is set.
        if request.method == "GET", segments.count == 2, segments[0] == "assets" { return DashboardAssets.response(for: segments[1]) }
        if segments == ["login"] { return login(request) }
        if segments.first == "v1" { return tenantAPI(request, segments: segments) }
        if segments == ["portal", "open"] { return openPortal(request, query: query) }
        if segments == ["portal", "signed-out"] {
            return .text(200, "You are signed out of the portal. Open a new link to sign in again.\n")
        }
        // A bearer token is a login too: guesses count against the same client.
        let presentsToken = token != nil && request.bearerToken != nil
        if presentsToken, let wait = logins.wait(for: request.remoteAddress) {
            var response = Self.jsonError(429, "too many wrong tokens; try again in \(wait) s")
            response.headers.append(HeaderField("Retry-After", String(wait)))
            return response
        }

        let viewer: Viewer
        do {
            // A portal session is checked first: an expired one must not fall back to the
            // operator's view on a dashboard without a token.
            if request.bearerToken == nil, let portal, let tenantViewer = try portal.viewer(of: request) {
                viewer = tenantViewer
            } else if isAuthorized(request) {
                viewer = .operator(csrfToken: csrfToken)
            } else {
                if presentsToken { logins.recordFailure(for: request.remoteAddress) }
                if isAPI {
                    var response = Self.jsonError(401, "unauthorized: send Authorization: Bearer <dashboard token>")
                    response.headers.append(HeaderField("WWW-Authenticate", "Bearer"))
                    return response
                }
                return Self.redirect("/login")
            }
        } catch let error as DashboardError {
            var response = isAPI ? Self.jsonError(error.status, error.message) : .text(error.status, error.message + "\n")
            response.headers.append(HeaderField("Set-Cookie", PortalSessions.clearedCookie))
            return response
        } catch {
            return Self.jsonError(500, "\(error)")
        }
        let pages = DashboardPages(store: store, viewer: viewer)
        let api = DashboardAPI(store: store, viewer: viewer)

        do {
            let method = request.method
            let route = Route(segments)
            if method == "POST" { return try post(request, segments: segments, isAPI: isAPI, viewer: viewer, pages: pages) }
            guard method == "GET" else {
                return isAPI ? Self.jsonError(405, "method not allowed") : .text(405, "method not allowed\n")
            }
            if route.matches("") { return viewer.isOperator ? html(try pages.overview(query: query)) : html(try pages.endpoints(query: query)) }
            if route.matches("deliveries") { return html(try pages.deliveries(query: query)) }
            if let id = route.capture("deliveries/*") { return html(try pages.delivery(id: try Self.deliveryID(id), query: query)) }
            if route.matches("endpoints") { return html(try pages.endpoints(query: query)) }
            if route.matches("endpoints/new") {
                try viewer.checkCanChange()
                return html(try pages.endpointForm(EndpointForm(endpoint: nil), existing: nil))
            }
            if let id = route.capture("endpoints/*/edit") {
                try viewer.checkCanChange()
                let status = try viewer.endpoint(id, in: store)
                try DashboardAction.checkStoreManaged(status)
                return html(try pages.endpointForm(EndpointForm(endpoint: status.endpoint), existing: status.endpoint))
            }
            if let id = route.capture("endpoints/*") { return html(try pages.endpoint(id: id, query: query)) }
            if route.matches("tokens") { return html(try pages.tokens(query: query)) }
            if route.matches("catalog") { return html(pages.catalog()) }
            if route.matches("api/catalog") { return Self.json(api.catalog()) }
            if route.matches("api/session") {
                return Self.json(["csrf_token": viewer.csrfToken, "tenant": viewer.tenantID ?? NSNull(), "role": viewer.role.rawValue])
            }
            if route.matches("api/deliveries") { return Self.json(try api.deliveries(query: query)) }
            if let id = route.capture("api/deliveries/*") { return Self.json(try api.delivery(id: try Self.deliveryID(id))) }
            if route.matches("api/endpoints") { return Self.json(try api.endpoints()) }
            if let id = route.capture("api/endpoints/*") { return Self.json(try api.endpoint(id: id)) }
            if route.matches("api/tokens") { return Self.json(try api.tokens()) }
            // The operator's alone: every tenant's figures.
            if viewer.isOperator {
                if route.matches("metrics") { return .text(200, metrics.render(), contentType: PrometheusText.contentType) }
                if route.matches("api/overview") { return Self.json(try api.overview()) }
            }
            return isAPI ? Self.jsonError(404, "no such API route") : html(pages.notFound(viewer.isOperator ? path : ""), status: 404)
        } catch let error as DashboardError {
            return isAPI ? Self.jsonError(error.status, error.message) : html(pages.error(error), status: error.status)
        } catch {
            let problem = DashboardError(status: 500, message: "\(error)")
            return isAPI ? Self.jsonError(500, problem.message) : html(pages.error(problem), status: 500)
        }
    }

    /// Mutations: a form post (redirects back with a notice) or an API call (JSON). Both
    /// must carry the viewer's CSRF token, in the `csrf` field or the `X-CSRF-Token` header.
    private func post(_ request: HTTPServerRequest, segments: [String], isAPI: Bool, viewer: Viewer, pages: DashboardPages) throws -> HTTPServerResponse {
        let form = FormData(String(decoding: request.body, as: UTF8.self))
        let presented = request.header("X-CSRF-Token") ?? form["csrf"] ?? ""
        guard Digest.constantTimeEquals(presented, viewer.csrfToken) else {
            throw DashboardError(status: 403, message: "missing or stale CSRF token: reload the page and try again")
        }
        if segments == ["portal", "exit"] {
            var response = Self.redirect(viewer.isOperator ? "/" : "/portal/signed-out")
            response.headers.append(HeaderField("Set-Cookie", PortalSessions.clearedCookie))
            return response
        }
        let actionSegments = isAPI ? Array(segments.dropFirst()) : segments
        // An API call's fields come in the query or, as a form's do, in the body.
        let fields = isAPI ? FormData(query: request.target).merging(form) : form
        let action = try DashboardAction(segments: actionSegments, form: fields)
        // Links point at `portal.base_url`, or at this dashboard as the operator reached it (Host was checked).
        let baseURL = portal?.settings.baseURL ?? "http://\(request.header("Host") ?? "127.0.0.1")"
        let outcome = try action.perform(DashboardAction.Context(store: store, viewer: viewer, tester: tester, rules: rules, portal: portal, baseURL: baseURL))
        if isAPI { return Self.json(outcome.json, status: outcome.status) }
        if let page = outcome.page { return html(page, status: outcome.status) }
        return Self.redirect(outcome.redirect)
    }

    /// `GET /portal/open?token=…`: a valid link starts a tenant session; anything else is 401.
    private func openPortal(_ request: HTTPServerRequest, query: FormData) -> HTTPServerResponse {
        guard let portal else { return .text(404, "the portal is not enabled on this dashboard (config portal)\n") }
        guard let link = query["token"], let grant = portal.key.verify(link, kind: .link) else {
            var response = HTTPServerResponse.text(401, "this portal link is not valid: it has expired, was revoked, or was changed; ask for a new one\n")
            response.headers.append(HeaderField("Set-Cookie", PortalSessions.clearedCookie))
            return response
        }
        var response = html(DashboardPages.portalOpened(tenant: grant.tenantID))
        response.headers.append(HeaderField("Set-Cookie", portal.sessionCookie(for: grant)))
        return response
    }

    /// `GET /v1/tenant/events/ID` with a tenant read token: the event as sent and its delivery
    /// status, for the tenant's own system to check before it trusts a webhook.
    private func tenantAPI(_ request: HTTPServerRequest, segments: [String]) -> HTTPServerResponse {
        guard request.method == "GET", segments.count == 4, segments[1] == "tenant", segments[2] == "events" else {
            return Self.jsonError(404, "no such API route")
        }
        if let wait = logins.wait(for: request.remoteAddress) {
            var response = Self.jsonError(429, "too many wrong tokens; try again in \(wait) s")
            response.headers.append(HeaderField("Retry-After", String(wait)))
            return response
        }
        do {
            guard let presented = request.bearerToken, let tenant = try TenantTokens.tenant(of: presented, in: store) else {
                if request.bearerToken != nil { logins.recordFailure(for: request.remoteAddress) }
                var response = Self.jsonError(401, "unauthorized: send Authorization: Bearer <tenant read token>")
                response.headers.append(HeaderField("WWW-Authenticate", "Bearer"))
                return response
            }
            // Another tenant's event is as absent as one that never was.
            guard let record = try store.eventRecord(eventID: segments[3]), record.event.tenantID == tenant else {
                return Self.jsonError(404, "no such event")
            }
            var object = JSONRepresentation.eventRecord(record)
            object["deliveries"] = record.deliveries.map { JSONRepresentation.delivery($0.delivery) }
            return Self.json(object)
        } catch {
            return Self.jsonError(500, "\(error)")
        }
    }

    /// The sign-in page has no viewer yet; it renders without navigation.
    private var loginPages: DashboardPages { DashboardPages(store: store, viewer: .operator(csrfToken: "")) }

    private func login(_ request: HTTPServerRequest) -> HTTPServerResponse {
        guard let token, let sessionValue else { return Self.redirect("/") }
        if request.method == "POST" {
            if let wait = logins.wait(for: request.remoteAddress) {
                var response = HTTPServerResponse.text(429, "too many wrong tokens from \(request.remoteAddress); try again in \(wait) s\n")
                response.headers.append(HeaderField("Retry-After", String(wait)))
                return response
            }
            let form = FormData(String(decoding: request.body, as: UTF8.self))
            if Digest.constantTimeEquals(form["token"] ?? "", token) {
                logins.recordSuccess(for: request.remoteAddress)
                var response = Self.redirect("/")
                response.headers.append(HeaderField("Set-Cookie", "\(Self.sessionCookie)=\(sessionValue); Path=/; HttpOnly; SameSite=Strict"))
                return response
            }
            logins.recordFailure(for: request.remoteAddress)
            return html(loginPages.login(failed: true), status: 401)
        }
        return html(loginPages.login(failed: false))
    }

    /// A change must come from the dashboard's own pages or from a client that is no browser.
    /// Browsers say where a request comes from in `Sec-Fetch-Site`, which pages cannot forge;
    /// it is trusted first because our `Referrer-Policy: no-referrer` makes their `Origin`
    /// `null` on form posts. Without it, an `Origin` must name this dashboard.
    private func isSameOrigin(_ request: HTTPServerRequest) -> Bool {
        if let site = request.header("Sec-Fetch-Site")?.lowercased() { return site == "same-origin" || site == "none" }
        guard let origin = request.header("Origin") else { return true }
        return hosts.allows(origin: origin)
    }

    private func isAuthorized(_ request: HTTPServerRequest) -> Bool {
        guard let token, let sessionValue else { return true }
        if let presented = request.bearerToken { return Digest.constantTimeEquals(presented, token) }
        return request.cookies(Self.sessionCookie).contains { Digest.constantTimeEquals($0, sessionValue) }
    }

    // MARK: - Responses

    private func html(_ page: HTML, status: Int = 200) -> HTTPServerResponse {
        .text(status, page.rendered, contentType: "text/html; charset=utf-8")
    }

    static func json(_ object: [String: Any], status: Int = 200) -> HTTPServerResponse {
        .json(status, JSONRepresentation.line(object))
    }

    static func jsonError(_ status: Int, _ message: String) -> HTTPServerResponse {
        json(["error": message], status: status)
    }

    static func redirect(_ location: String) -> HTTPServerResponse {
        HTTPServerResponse(status: 303, headers: [HeaderField("Location", location)])
    }

    static func deliveryID(_ text: String) throws -> Int64 {
        guard let id = Int64(text), id > 0 else { throw DashboardError(status: 404, message: "'\(text)' is not a delivery id") }
        return id
    }
}

/// A request path split into segments, matched against patterns where `*` is one segment.
struct Route {
    let segments: [String]

    init(_ segments: [String]) { self.segments = segments }

    func matches(_ pattern: String) -> Bool { captures(pattern) != nil }

    /// The segment under the pattern's one `*`.
    func capture(_ pattern: String) -> String? { captures(pattern)?.first }

    func captures(_ pattern: String) -> [String]? {
        let parts = pattern.split(separator: "/").map(String.init)
        guard parts.count == segments.count else { return nil }
        var captured: [String] = []
        for (part, segment) in zip(parts, segments) {
            if part == "*" { captured.append(segment) } else if part != segment { return nil }
        }
        return captured
    }
}

/// A request the dashboard refuses, with the status to answer and why.
struct DashboardError: Error {
    var status: Int
    var message: String
}
