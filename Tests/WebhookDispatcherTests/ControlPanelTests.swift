import Foundation
import XCTest
@testable import DispatcherDashboard
@testable import DispatcherModel
import DispatcherServer
@testable import DispatcherStore
import WebhookDispatcher

/// The control panel (#19): endpoints changed in the browser, signing secrets, change history,
/// config-managed endpoints, the tenant portal and its isolation, tenant read tokens.
final class ControlPanelTests: DispatcherTestCase {
    static let portalKey = String(repeating: "k", count: 40)
    /// Test receivers listen on 127.0.0.1, which the default destination guard refuses.
    static let loopbackRules = EndpointRules(urlPolicy: URLPolicy(requireHTTPS: false), destinationPolicy: DestinationPolicy(allowPrivateAddresses: true))

    struct Seed {
        var receiver: TestReceiver
        var acmeEventID: String
        var acmeDeliveryID: Int64
        var globexEventID: String
        var globexDeliveryID: Int64
    }

    /// Two tenants, one endpoint and one delivered event each.
    func seed() throws -> Seed {
        let receiver = try makeReceiver()
        try store.upsert(tenants: [Tenant(id: "acme", name: "Acme Clinics"), Tenant(id: "globex", name: "Globex Health")], endpoints: [
            endpoint("acme-hooks", tenant: "acme", url: receiver.url("/acme")),
            endpoint("globex-hooks", tenant: "globex", url: receiver.url("/globex-private-path")),
        ])
        let acme = try store.enqueue(NewEvent(tenantID: "acme", type: "checkin.outcome", json: #"{"who":"acme"}"#))
        let globex = try store.enqueue(NewEvent(tenantID: "globex", type: "verification.completed", json: #"{"who":"globex"}"#))
        let service = try startService()
        waitUntil("both deliveries are final", timeout: 20) { (try? store.hasUnfinishedDeliveries()) == false }
        service.stop()
        func deliveryID(_ event: String) throws -> Int64 { try XCTUnwrap(store.eventRecord(eventID: event)?.deliveries.first?.delivery.id) }
        return Seed(receiver: receiver, acmeEventID: acme.eventID, acmeDeliveryID: try deliveryID(acme.eventID),
                    globexEventID: globex.eventID, globexDeliveryID: try deliveryID(globex.eventID))
    }

    func startPanel(key: String = portalKey, rules: EndpointRules = loopbackRules, baseURL: String? = nil, token: String? = nil) throws -> Dashboard {
        let dashboard = try Dashboard(store: try openStore(), settings: DashboardSettings(port: 0, token: token), rules: rules,
                                      portal: PortalSettings(key: key, baseURL: baseURL))
        addTeardownBlock { dashboard.stop() }
        return dashboard
    }

    /// A tenant session from a link: the cookie and the session's CSRF token.
    struct Session {
        var client: LoopbackHTTP
        var cookie: String
        var csrf: String

        func get(_ target: String) throws -> LoopbackHTTP.Response { try client.request("GET", target, headers: ["Cookie": cookie]) }

        func post(_ target: String, _ body: String = "") throws -> LoopbackHTTP.Response {
            try client.request("POST", target, body: body, headers: ["Cookie": cookie, "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded"])
        }
    }

    func openSession(_ dashboard: Dashboard, tenant: String, role: PortalRole = .admin, file: StaticString = #filePath, line: UInt = #line) throws -> Session {
        let link = try PortalKey(secret: Self.portalKey).link(tenant: tenant, role: role, baseURL: "http://127.0.0.1:\(dashboard.port)")
        let client = LoopbackHTTP(port: dashboard.port)
        let opened = try client.request("GET", String(link.dropFirst("http://127.0.0.1:\(dashboard.port)".count)))
        XCTAssertEqual(opened.status, 200, opened.text, file: file, line: line)
        let setCookie = try XCTUnwrap(opened.header("Set-Cookie"), file: file, line: line)
        XCTAssertTrue(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"), setCookie, file: file, line: line)
        let cookie = String(setCookie.split(separator: ";")[0])
        let session = try client.request("GET", "/api/session", headers: ["Cookie": cookie])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(session.body)) as? [String: Any])
        XCTAssertEqual(object["tenant"] as? String, tenant, file: file, line: line)
        return Session(client: client, cookie: cookie, csrf: try XCTUnwrap(object["csrf_token"] as? String))
    }

    // MARK: - The portal

    func testAPortalLinkOpensATenantSessionAndABadOrRevokedOneGets401() throws {
        _ = try seed()
        let dashboard = try startPanel(baseURL: "https://webhooks.example.com", token: String(repeating: "t", count: 20))
        let client = LoopbackHTTP(port: dashboard.port)
        let key = try PortalKey(secret: Self.portalKey)
        let link = key.link(tenant: "acme", baseURL: "https://webhooks.example.com")
        XCTAssertTrue(link.hasPrefix("https://webhooks.example.com/portal/open?token="), link)
        let path = String(link.dropFirst("https://webhooks.example.com".count))

        let opened = try client.request("GET", path, headers: ["Host": "webhooks.example.com"])
        XCTAssertEqual(opened.status, 200, "base_url's host is one the dashboard answers to")
        XCTAssertEqual(try client.request("GET", path, headers: ["Host": "evil.example"]).status, 421)
        let setCookie = try XCTUnwrap(opened.header("Set-Cookie"))
        XCTAssertTrue(setCookie.contains("; Secure"), "behind https the cookie is Secure: \(setCookie)")
        XCTAssertFalse(setCookie.contains(Self.portalKey), "the cookie holds no secret")
        let cookie = String(setCookie.split(separator: ";")[0])
        XCTAssertEqual(try client.request("GET", "/endpoints", headers: ["Cookie": cookie]).status, 200, "the session needs no dashboard token")

        // Tampered with (another tenant written into the payload, or one signature byte), expired,
        // or a session cookie used as a link: 401, and no session.
        let token = String(path.split(separator: "=", maxSplits: 1)[1])
        let parts = token.split(separator: ".").map(String.init)
        let forgedPayload = PortalKey.base64URL(Array("v1|link|globex|admin|\(Int(Date().timeIntervalSince1970) + 3600)|00".utf8))
        // One signature character changed (the first: every bit of it counts), and the last
        // one written another way (its two unused bits set), which decodes to the same bytes.
        let flipped = (parts[1].hasPrefix("A") ? "B" : "A") + String(parts[1].dropFirst())
        let last = parts[1].last.map(String.init) ?? "A"
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let lastIndex = alphabet.firstIndex(of: Character(last)) ?? 0
        let noncanonical = String(parts[1].dropLast()) + String(alphabet[lastIndex | 3 == lastIndex ? lastIndex - 1 : lastIndex | 3])
        let expired = key.link(tenant: "acme", ttl: 60, baseURL: "", now: Date().addingTimeInterval(-120))
        let sessionToken = String(cookie.split(separator: "=", maxSplits: 1)[1])
        for bad in ["/portal/open?token=\(forgedPayload).\(parts[1])", "/portal/open?token=\(parts[0]).\(flipped)",
                    "/portal/open?token=\(parts[0]).\(noncanonical)", expired,
                    "/portal/open?token=\(sessionToken)", "/portal/open?token=", "/portal/open"] {
            let response = try client.request("GET", bad)
            XCTAssertEqual(response.status, 401, bad)
            XCTAssertTrue(response.header("Set-Cookie")?.hasPrefix("dispatcher_portal=;") ?? false, "a refused link clears any session")
        }
        // A link's token is no session either.
        XCTAssertEqual(try client.request("GET", "/endpoints", headers: ["Cookie": "dispatcher_portal=\(token)"]).status, 401)

        // Rotating portal.key revokes every link and session at once.
        dashboard.stop()
        let rotated = try startPanel(key: String(repeating: "r", count: 40), baseURL: "https://webhooks.example.com", token: String(repeating: "t", count: 20))
        let after = LoopbackHTTP(port: rotated.port)
        XCTAssertEqual(try after.request("GET", path).status, 401)
        let stale = try after.request("GET", "/deliveries", headers: ["Cookie": cookie])
        XCTAssertEqual(stale.status, 401, "an old session does not fall back to anything")
        XCTAssertEqual(try after.request("GET", "/api/deliveries", headers: ["Cookie": cookie]).status, 401)
    }

    /// Tenant A's session, walking every route with tenant B's ids, gets 404 with nothing of B
    /// in the body; every list it may read shows only A; and B's objects are unchanged.
    func testTheIsolationWalk() throws {
        let seed = try seed()
        let dashboard = try startPanel()
        let tokenOfB = try TenantTokens.create(tenantID: "globex", name: "globex verifier", in: store)
        let acme = try openSession(dashboard, tenant: "acme")
        let secretsOfB = ["globex", seed.globexEventID, "globex-private-path", "Globex", tokenOfB.record.id]
        func assertNothingOfB(_ response: LoopbackHTTP.Response, _ route: String, file: StaticString = #filePath, line: UInt = #line) {
            for secret in secretsOfB {
                XCTAssertFalse(response.text.contains(secret), "\(route) shows '\(secret)': \(response.text.prefix(300))", file: file, line: line)
            }
        }

        let b = "globex-hooks", delivery = seed.globexDeliveryID
        let gets = ["/endpoints/\(b)", "/endpoints/\(b)/edit", "/deliveries/\(delivery)", "/deliveries?tenant=globex", "/deliveries?endpoint=\(b)",
                    "/api/deliveries/\(delivery)", "/api/deliveries?tenant=globex", "/api/deliveries?endpoint=\(b)", "/api/endpoints/\(b)",
                    "/api/overview", "/metrics"]
        for route in gets {
            let response = try acme.get(route)
            XCTAssertEqual(response.status, 404, route)
            assertNothingOfB(response, route)
        }
        let posts = ["/api/deliveries/\(delivery)/redeliver", "/api/replay?tenant=globex&status=succeeded", "/api/replay?endpoint=\(b)&status=succeeded",
                     "/api/endpoints/\(b)/disable", "/api/endpoints/\(b)/enable", "/api/endpoints/\(b)/test", "/api/endpoints/\(b)/remove",
                     "/api/endpoints/\(b)/secret", "/api/endpoints/\(b)", "/api/tokens/\(tokenOfB.record.id)/revoke",
                     "/deliveries/\(delivery)/redeliver", "/endpoints/\(b)/disable", "/endpoints/\(b)/remove", "/endpoints/\(b)"]
        for route in posts {
            let response = try acme.post(route, "url=https%3A%2F%2Fexample.com%2Fh")
            XCTAssertEqual(response.status, 404, route)
            assertNothingOfB(response, route)
        }
        // Creating an endpoint with B's id says only that it is taken.
        let taken = try acme.post("/api/endpoints", "id=\(b)&url=http%3A%2F%2F127.0.0.1%3A9%2Fx")
        XCTAssertEqual(taken.status, 400)
        XCTAssertTrue(taken.text.contains(DashboardAction.takenID), taken.text)
        XCTAssertFalse(taken.text.contains("Globex") || taken.text.contains("globex\""), taken.text)

        // What A may read shows A only.
        for route in ["/", "/endpoints", "/deliveries", "/deliveries?status=succeeded", "/catalog", "/tokens", "/api/endpoints", "/api/deliveries", "/api/tokens",
                      "/endpoints/acme-hooks", "/deliveries/\(seed.acmeDeliveryID)", "/endpoints/new"] {
            let response = try acme.get(route)
            XCTAssertEqual(response.status, 200, route)
            assertNothingOfB(response, route)
        }
        let listed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try acme.get("/api/deliveries").body)) as? [String: Any])
        XCTAssertEqual((listed["deliveries"] as? [[String: Any]])?.map { $0["tenant_id"] as? String }, ["acme"])
        // A replay with no tenant named replays A's only.
        XCTAssertEqual(try acme.post("/api/replay?status=succeeded&dry_run=1").text, #"{"would_replay":1}"#)

        // B is untouched.
        XCTAssertEqual(try store.endpoint(id: b)?.enabled, true)
        XCTAssertEqual(try store.eventRecord(deliveryID: delivery)?.deliveries.first?.delivery.status, .succeeded)
        XCTAssertNil(try store.tenantToken(id: tokenOfB.record.id)?.revokedAt)
        XCTAssertEqual(seed.receiver.requests(on: "/globex-private-path").count, 1, "no test send reached B")
        XCTAssertTrue(try store.endpointHistory(id: b, limit: 10).allSatisfy { $0.actor == "library" })
    }

    func testAViewerReadsButChangesNothing() throws {
        let seed = try seed()
        let dashboard = try startPanel()
        let viewer = try openSession(dashboard, tenant: "acme", role: .viewer)
        XCTAssertEqual(try viewer.get("/deliveries/\(seed.acmeDeliveryID)").status, 200)
        XCTAssertEqual(try viewer.get("/catalog").status, 200)
        let page = try viewer.get("/endpoints").text
        XCTAssertFalse(page.contains("Send test") || page.contains("New endpoint"), "no buttons for what a viewer may not do")
        for route in ["/api/deliveries/\(seed.acmeDeliveryID)/redeliver", "/api/replay?status=succeeded", "/api/endpoints/acme-hooks/disable",
                      "/api/endpoints/acme-hooks/secret", "/api/endpoints/acme-hooks/test", "/api/endpoints", "/api/tokens"] {
            XCTAssertEqual(try viewer.post(route, "name=x&id=new-one&url=http%3A%2F%2F127.0.0.1%3A9%2Fx").status, 403, route)
        }
        XCTAssertEqual(try viewer.get("/tokens").status, 403)
        XCTAssertEqual(try store.endpoint(id: "acme-hooks")?.enabled, true)
        XCTAssertEqual(try store.endpoint(id: "acme-hooks")?.signingSecrets, [])
    }

    // MARK: - Endpoints in the browser

    /// The form is validated by the config's decoder: the same message for the same value,
    /// beside its field, and nothing saved while any value is wrong.
    func testTheFormGivesTheConfigsMessagesAndSavesNothingWhenAValueIsWrong() throws {
        _ = try seed()
        let dashboard = try startPanel()
        let client = LoopbackHTTP(port: dashboard.port)
        let csrf = dashboard.csrfToken
        func post(_ target: String, _ body: String) throws -> LoopbackHTTP.Response {
            try client.request("POST", target, body: body, headers: ["Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf])
        }
        func configMessage(_ object: [String: Any]) -> String {
            let result = Result { try Endpoint.fromConfig(JSONValue(foundation: object), tenantID: "acme", urlPolicy: URLPolicy(requireHTTPS: false)) }
            guard case .failure(let error) = result else { return "no error" }
            guard case DispatcherError.invalidConfiguration(_, let message) = error else { return "\(error)" }
            return message
        }
        let cases: [(body: String, field: String, expected: String)] = [
            ("id=new-one&url=ftp%3A%2F%2Fexample.com%2Fh", "url", configMessage(["id": "new-one", "url": "ftp://example.com/h"])),
            ("id=new-one&url=http%3A%2F%2F127.0.0.1%3A9%2Fh&retry_policy=exponential&retry_factor=0.5", "retry",
             configMessage(["id": "new-one", "url": "http://127.0.0.1:9/h", "retry": ["policy": "exponential", "factor": 0.5]])),
            ("id=new-one&url=http%3A%2F%2F127.0.0.1%3A9%2Fh&max_concurrency=lots", "max_concurrency",
             configMessage(["id": "new-one", "url": "http://127.0.0.1:9/h", "max_concurrency": "lots"])),
            ("id=new-one&url=http%3A%2F%2F127.0.0.1%3A9%2Fh&events_other=visit.%3Cbad%3E", "events",
             configMessage(["id": "new-one", "url": "http://127.0.0.1:9/h", "events": ["visit.<bad>"]])),
        ]
        for (body, field, expected) in cases {
            XCTAssertNotEqual(expected, "no error")
            let page = try post("/endpoints", "tenant=acme&" + body)
            XCTAssertEqual(page.status, 400, body)
            XCTAssertTrue(page.text.contains("id=\"error-\(field)\""), "the message sits beside \(field): \(page.text)")
            XCTAssertTrue(page.text.contains(HTML.escape(expected)), "'\(expected)' in the page for \(body)")
            let api = try post("/api/endpoints", "tenant=acme&" + body)
            XCTAssertEqual(api.status, 400)
            XCTAssertTrue(api.text.contains(#""field":"\#(field)""#), api.text)
        }
        XCTAssertNil(try store.endpoint(id: "new-one"), "nothing was saved")

        // A valid form saves every key it covers, for a new tenant too.
        let body = ["new_tenant=initech", "new_tenant_name=Initech", "id=initech-prod", "url=http%3A%2F%2F127.0.0.1%3A9%2Fhooks",
                    "events=checkin.outcome", "events_other=visit.*", "headers=X-Api-Key%3A+s3cret%0AX-Team%3A+ops", "secret_headers=X-Team",
                    "timeout_seconds=7", "connect_timeout_seconds=2", "max_concurrency=3", "retry_policy=schedule", "retry_delays_seconds=1%2C+60",
                    "success=json_200_or_204", "ordered=on", "enabled=on", "circuit_failure_threshold=9",
                    "auth_token_url=http%3A%2F%2F127.0.0.1%3A9%2Ftoken", "auth_client_id=cid", "auth_client_secret=csecret", "auth_scope=hooks"]
        let saved = try post("/endpoints", body.joined(separator: "&"))
        XCTAssertEqual(saved.status, 303, saved.text)
        XCTAssertEqual(saved.header("Location"), "/endpoints/initech-prod?notice=saved")
        let endpoint = try XCTUnwrap(store.endpoint(id: "initech-prod"))
        XCTAssertEqual(endpoint.tenantID, "initech")
        XCTAssertEqual(try store.tenants().first { $0.id == "initech" }?.name, "Initech")
        XCTAssertEqual(endpoint.eventFilters, ["checkin.outcome", "visit.*"])
        XCTAssertEqual(endpoint.headers, ["X-Api-Key": "s3cret", "X-Team": "ops"])
        XCTAssertEqual(endpoint.secretHeaders, ["X-Team"])
        XCTAssertEqual(endpoint.timeoutSeconds, 7)
        XCTAssertEqual(endpoint.retry, .schedule(RetryPolicy.Schedule(delaysSeconds: [1, 60], maxAgeSeconds: nil)))
        XCTAssertEqual(endpoint.success, .json200Or204)
        XCTAssertTrue(endpoint.ordered)
        XCTAssertEqual(endpoint.circuit.failureThreshold, 9)
        XCTAssertEqual(endpoint.auth, .oauth2ClientCredentials(OAuth2ClientCredentials(tokenURL: "http://127.0.0.1:9/token", clientID: "cid", clientSecret: "csecret", scope: "hooks")))

        // Left to the family's documented rule, an onboarding endpoint retries once and wants JSON 200 or 204, as the config would.
        XCTAssertEqual(try post("/api/endpoints", "tenant=acme&id=onboarding-hooks&url=http%3A%2F%2F127.0.0.1%3A9%2Fo&events=onboarding.*&retry_policy=profile&success=profile&enabled=on").status, 200)
        XCTAssertEqual(try store.endpoint(id: "onboarding-hooks")?.retry, .oneRetry(delaySeconds: 5))
        XCTAssertEqual(try store.endpoint(id: "onboarding-hooks")?.success, .json200Or204)

        // The edit form shows write-only values as ***; posting it back keeps them.
        let edit = try client.request("GET", "/endpoints/initech-prod/edit")
        XCTAssertFalse(edit.text.contains("s3cret") || edit.text.contains("csecret"), "no secret in the form")
        XCTAssertTrue(edit.text.contains("X-Api-Key: ***"))
        let changed = body.filter { !$0.hasPrefix("headers=") && !$0.hasPrefix("auth_client_secret=") && !$0.hasPrefix("new_tenant") && !$0.hasPrefix("id=") }
            + ["headers=X-Api-Key%3A+***%0AX-Team%3A+ops", "auth_client_secret=***", "max_concurrency=5"]
        XCTAssertEqual(try post("/endpoints/initech-prod", changed.joined(separator: "&").replacingOccurrences(of: "max_concurrency=3&", with: "")).status, 303)
        let after = try XCTUnwrap(store.endpoint(id: "initech-prod"))
        XCTAssertEqual(after.headers["X-Api-Key"], "s3cret")
        XCTAssertEqual(after.maxConcurrency, 5)
        if case .oauth2ClientCredentials(let credentials) = after.auth { XCTAssertEqual(credentials.clientSecret, "csecret") } else { XCTFail("auth kept") }

        // The history says who changed what, secrets as ***.
        let history = try store.endpointHistory(id: "initech-prod", limit: 10)
        XCTAssertEqual(history.map(\.actor), ["operator", "operator"])
        XCTAssertEqual(history[0].changes.map(\.field), ["max_concurrency"])
        let created = history[1].changes
        XCTAssertEqual(created.first { $0.field == "headers" }?.to, #"{"X-Api-Key":"***","X-Team":"***"}"#)
        let everything = try XCTUnwrap(client.request("GET", "/endpoints/initech-prod").text)
        for secret in ["s3cret", "csecret"] {
            XCTAssertFalse(history.flatMap(\.changes).contains { ($0.from ?? "").contains(secret) || ($0.to ?? "").contains(secret) })
            XCTAssertFalse(everything.contains(secret))
            XCTAssertFalse(try client.request("GET", "/api/endpoints/initech-prod").text.contains(secret))
        }
    }

    /// `require_https` and the destination guard apply to what a tenant enters.
    func testTheConfigsURLRulesApplyToWhatATenantEnters() throws {
        _ = try seed()
        let dashboard = try startPanel(rules: EndpointRules())
        let acme = try openSession(dashboard, tenant: "acme")
        let plain = try acme.post("/api/endpoints", "id=acme-2&url=http%3A%2F%2Fexample.com%2Fh")
        XCTAssertEqual(plain.status, 400)
        XCTAssertTrue(plain.text.contains("https"), plain.text)
        for url in ["https://127.0.0.1/h", "https://[::1]/h", "https://10.1.2.3/h", "https://localhost/h", "https://169.254.169.254/latest"] {
            let refused = try acme.post("/api/endpoints", "id=acme-2&url=\(FormData.escape(url))")
            XCTAssertEqual(refused.status, 400, url)
            XCTAssertTrue(refused.text.contains("deliveries may not go there"), "\(url): \(refused.text)")
        }
        // env:NAME reads the dispatcher's own environment at send time: not for tenants.
        for field in ["headers=X-Leak%3A+env%3AHOME", "auth_token_url=https%3A%2F%2Fauth.example.com%2Ft&auth_client_id=c&auth_client_secret=env%3AHOME"] {
            let refused = try acme.post("/api/endpoints", "id=acme-2&url=https%3A%2F%2Fhooks.example.com%2Fh&" + field)
            XCTAssertEqual(refused.status, 400, field)
            XCTAssertTrue(refused.text.contains("may not start with env:"), refused.text)
        }
        XCTAssertNil(try store.endpoint(id: "acme-2"))
        XCTAssertEqual(try acme.post("/api/endpoints", "id=acme-2&url=https%3A%2F%2Fhooks.example.com%2Fh&enabled=on").status, 200)
        XCTAssertEqual(try store.endpoint(id: "acme-2")?.tenantID, "acme", "a tenant's endpoint is its own, whatever the form says")
    }

    // MARK: - Signing secrets

    /// Generate shows the secret once; Rotate keeps the old one signing beside the new one for
    /// the grace period (both signatures verify at a real receiver), then housekeeping drops it.
    func testGenerateAndRotateASecretWithAGracePeriod() throws {
        _ = try seed()
        let dashboard = try startPanel()
        let acme = try openSession(dashboard, tenant: "acme")
        let generated = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try acme.post("/api/endpoints/acme-hooks/secret").body)) as? [String: Any])
        let first = try XCTUnwrap(generated["secret"] as? String)
        XCTAssertTrue(first.hasPrefix("whsec_"))
        XCTAssertEqual(try store.endpoint(id: "acme-hooks")?.signingSecrets, [first])

        let rotated = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try acme.post("/api/endpoints/acme-hooks/secret", "grace_hours=2").body)) as? [String: Any])
        let second = try XCTUnwrap(rotated["secret"] as? String)
        XCTAssertEqual(try store.endpoint(id: "acme-hooks")?.signingSecrets, [second, first])
        let shown = try acme.get("/api/endpoints/acme-hooks")
        let secrets = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(shown.body)) as? [String: Any])?["signing_secrets"] as? [[String: Any]])
        XCTAssertEqual(secrets.count, 2)
        XCTAssertTrue(secrets[0]["expires_at"] is NSNull)
        let expiry = try XCTUnwrap((secrets[1]["expires_at"] as? String).flatMap { try? Date($0, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)) })
        XCTAssertEqual(expiry.timeIntervalSinceNow, 7_200, accuracy: 60)
        for page in [shown.text, try acme.get("/endpoints/acme-hooks").text] {
            XCTAssertFalse(page.contains(first.dropFirst(6)) || page.contains(second.dropFirst(6)), "a secret is never shown again")
        }

        // A delivery now carries both signatures, each verifying with its secret.
        let receiver = try makeReceiver()
        try store.upsert(tenants: [], endpoints: [endpoint("acme-hooks", tenant: "acme", url: receiver.url("/signed"))].map {
            var endpoint = $0
            endpoint.signingSecrets = [second, first]
            return endpoint
        })
        let event = try store.enqueue(NewEvent(tenantID: "acme", type: "checkin.outcome", json: #"{"n":1}"#))
        let service = try startService()
        waitUntil("the signed delivery arrives") { receiver.requests(on: "/signed").count == 1 }
        service.stop()
        let request = try XCTUnwrap(receiver.requests(on: "/signed").first)
        let signatures = try XCTUnwrap(request.header("webhook-signature")).split(separator: " ")
        XCTAssertEqual(signatures.count, 2)
        for secret in [second, first] {
            // Each signature alone verifies with its own secret.
            let mine = signatures.filter { SignatureVerifier.verify(id: event.eventID, timestamp: request.header("webhook-timestamp"), signature: String($0), body: request.body, secret: secret) }
            XCTAssertEqual(mine.count, 1, secret)
        }

        // The grace period ends: housekeeping's call drops the old secret, and says so in the history.
        XCTAssertEqual(try store.dropExpiredSigningSecrets(now: Date().addingTimeInterval(3_600)), 0)
        XCTAssertEqual(try store.dropExpiredSigningSecrets(now: Date().addingTimeInterval(7_300)), 1)
        XCTAssertEqual(try store.endpoint(id: "acme-hooks")?.signingSecrets, [second])
        let history = try store.endpointHistory(id: "acme-hooks", limit: 10)
        XCTAssertEqual(history.first?.actor, "dispatcher")
        XCTAssertEqual(history.first?.changes.first?.field, "signing")
        XCTAssertEqual(history.first?.changes.first?.to, #"{"secrets":["***"]}"#)
        XCTAssertTrue(history.contains { $0.actor == "portal:acme (admin)" })
        XCTAssertFalse(history.flatMap(\.changes).contains { ($0.from ?? "").contains("whsec_") || ($0.to ?? "").contains("whsec_") })
    }

    // MARK: - Config and browser together

    /// Endpoints the config names are managed by it: read-only in the browser, and `serve`'s
    /// start puts the file's version back over any other change. One the config stops naming
    /// lives in the store from then on.
    func testEndpointsTheConfigNamesAreReadOnlyInTheBrowserAndTheConfigWins() throws {
        let receiver = try makeReceiver()
        let fromFile = endpoint("managed", tenant: "acme", url: receiver.url("/file"))
        try store.upsert(tenants: [Tenant(id: "acme", name: "Acme")], endpoints: [fromFile], actor: .config)
        let dashboard = try startPanel()
        let client = LoopbackHTTP(port: dashboard.port)
        let headers = ["Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": dashboard.csrfToken]
        XCTAssertTrue(try client.request("GET", "/endpoints/managed").text.contains("managed by the config file"))
        XCTAssertEqual(try client.request("GET", "/endpoints/managed/edit").status, 409)
        XCTAssertEqual(try client.request("POST", "/api/endpoints/managed", body: "url=http%3A%2F%2F127.0.0.1%3A9%2Fother", headers: headers).status, 409)
        XCTAssertEqual(try client.request("POST", "/api/endpoints/managed/secret", headers: headers).status, 409)
        XCTAssertEqual(try client.request("POST", "/api/endpoints/managed/remove", headers: headers).status, 409)
        XCTAssertEqual(try store.endpoint(id: "managed")?.url, fromFile.url, "nothing changed")

        // Another tool (the CLI) changes it anyway; the next start applies the file again.
        var edited = fromFile
        edited.url = receiver.url("/edited")
        try store.upsert(tenants: [], endpoints: [edited], actor: .cli)
        try store.upsert(tenants: [Tenant(id: "acme", name: "Acme")], endpoints: [fromFile], actor: .config)
        XCTAssertEqual(try store.endpoint(id: "managed")?.url, fromFile.url)
        let history = try store.endpointHistory(id: "managed", limit: 10)
        XCTAssertEqual(history.map(\.actor), ["config", "cli", "config"])
        XCTAssertEqual(history[0].changes, [FieldChange(field: "url", from: "\"\(edited.url)\"", to: "\"\(fromFile.url)\"")])

        // The config stops naming it: it lives in the store, and the browser may change it.
        try store.upsert(tenants: [Tenant(id: "acme", name: "Acme")], endpoints: [], actor: .config)
        XCTAssertFalse(try XCTUnwrap(store.endpointStatuses().first).isManagedByConfig)
        XCTAssertEqual(try client.request("POST", "/api/endpoints/managed", body: "url=http%3A%2F%2F127.0.0.1%3A9%2Fother&enabled=on", headers: headers).status, 200)
        XCTAssertEqual(try store.endpoint(id: "managed")?.url, "http://127.0.0.1:9/other")
    }

    // MARK: - Tenant read tokens

    func testATenantReadTokenFetchesItsOwnEventsOnly() throws {
        let seed = try seed()
        let dashboard = try startPanel()
        let acme = try openSession(dashboard, tenant: "acme")
        let created = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try acme.post("/api/tokens", "name=verifier").body)) as? [String: Any])
        let token = try XCTUnwrap(created["token"] as? String)
        XCTAssertTrue(token.hasPrefix("dtt_"))
        let listed = try acme.get("/api/tokens").text
        XCTAssertTrue(listed.contains("verifier"))
        XCTAssertFalse(listed.contains(String(token.suffix(20))), "the token is shown once")
        XCTAssertFalse(listed.contains(Digest.sha256Hex(Array(token.utf8))))

        let client = LoopbackHTTP(port: dashboard.port)
        func fetch(_ id: String, _ bearer: String) throws -> LoopbackHTTP.Response {
            try client.request("GET", "/v1/tenant/events/\(id)", headers: ["Authorization": "Bearer \(bearer)"])
        }
        let own = try fetch(seed.acmeEventID, token)
        XCTAssertEqual(own.status, 200, own.text)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(own.body)) as? [String: Any])
        XCTAssertEqual((object["event"] as? [String: Any])?["body"] as? String, #"{"who":"acme"}"#, "the event as sent")
        XCTAssertEqual((object["deliveries"] as? [[String: Any]])?.first?["status"] as? String, "succeeded")
        XCTAssertNil((object["deliveries"] as? [[String: Any]])?.first?["attempt_log"])

        let other = try fetch(seed.globexEventID, token)
        XCTAssertEqual(other.status, 404)
        XCTAssertFalse(other.text.contains("globex"))
        let globexToken = try TenantTokens.create(tenantID: "globex", name: "g", in: store).token
        XCTAssertEqual(try fetch(seed.acmeEventID, globexToken).status, 404, "one tenant's token never reads another's event")
        XCTAssertEqual(try fetch(seed.globexEventID, globexToken).status, 200)
        XCTAssertEqual(try fetch(seed.acmeEventID, token.dropLast() + (token.hasSuffix("0") ? "1" : "0")).status, 401)
        XCTAssertEqual(try client.request("GET", "/v1/tenant/events/\(seed.acmeEventID)").status, 401)

        let id = try XCTUnwrap(created["id"] as? String)
        XCTAssertEqual(try acme.post("/api/tokens/\(id)/revoke").status, 200)
        XCTAssertEqual(try fetch(seed.acmeEventID, token).status, 401, "a revoked token reads nothing")
        XCTAssertNotNil(try store.tenantToken(id: id)?.lastUsedAt)
    }

    // MARK: - In a real browser

    /// Headless Chromium: a form with a wrong value shows the error and saves nothing; the
    /// right one creates the endpoint; Generate shows a secret once; Send test reaches a
    /// receiver on 127.0.0.1 with a signature that verifies and lands in the log; a portal link
    /// made with the dashboard's button opens the tenant's portal, where the other tenant's
    /// pages are not found. Screenshots of each page go to .build/screenshots/.
    func testTheControlPanelInHeadlessChromium() throws {
        let seed = try seed()
        let browser = try HeadlessBrowser.launch()
        defer { browser.close() }
        let store = try openStore()
        let delivery = DeliveryServiceConfiguration(concurrentRequests: 2, pollInterval: 0.02, leaseSeconds: 30,
                                                    destinationPolicy: DestinationPolicy(allowPrivateAddresses: true), urlPolicy: URLPolicy(requireHTTPS: false), logger: .silent)
        let dashboard = try Dashboard(store: store, settings: DashboardSettings(port: 0), tester: EndpointTester(store: store, configuration: delivery),
                                      rules: Self.loopbackRules, portal: PortalSettings(key: Self.portalKey))
        defer { dashboard.stop() }
        let base = "http://127.0.0.1:\(dashboard.port)"
        let page = try browser.newPage()
        let shots = DashboardTests.screenshotDirectory
        func set(_ name: String, _ value: String) throws {
            _ = try page.evaluate("document.querySelector('#endpoint-form [name=\(name)]').value = \(BrowserPage.quote(value))")
        }
        func text(_ selector: String) throws -> String? { try page.evaluate("document.querySelector(\(BrowserPage.quote(selector)))?.textContent") as? String }

        // A wrong value: the message beside its field, nothing saved.
        try page.open(base + "/endpoints/new")
        _ = try page.evaluate("document.querySelector('#endpoint-form [name=tenant]').value = 'acme'")
        try set("id", "browser-made")
        try set("url", "ftp://example.com/hooks")
        _ = try page.evaluate("document.querySelector('#endpoint-form [value=\"checkin.outcome\"]').checked = true")
        try page.click("#endpoint-form button[type=submit]")
        try page.waitForLoad { $0.hasSuffix("/endpoints") }
        XCTAssertNotNil(try text("#error-url"), "the url's message is shown beside it")
        XCTAssertNotNil(try text("#form-errors"))
        XCTAssertEqual(try page.evaluate("document.querySelector('#endpoint-form [value=\"checkin.outcome\"]').checked") as? Bool, true, "what was typed stays")
        XCTAssertNil(try store.endpoint(id: "browser-made"))
        try page.screenshot(to: shots + "/endpoint-form-error.png")

        // The right value: saved, and the endpoint's page.
        try set("url", seed.receiver.url("/browser"))
        try page.click("#endpoint-form button[type=submit]")
        try page.waitForLoad { $0.contains("/endpoints/browser-made?notice=saved") }
        XCTAssertTrue(browser.dialogs.contains { $0.hasPrefix("Save this new endpoint?") }, "saving asks first: \(browser.dialogs)")
        XCTAssertEqual(try store.endpoint(id: "browser-made")?.eventFilters, ["checkin.outcome"])

        // Generate a secret: asked first, shown once.
        try page.click("form[action$=secret] button")
        try page.waitForLoad { $0.hasSuffix("/secret") }
        XCTAssertTrue(browser.dialogs.contains { $0.hasPrefix("Generate a signing secret for browser-made") }, "\(browser.dialogs)")
        let secret = try XCTUnwrap(text("#shown-once"))
        XCTAssertTrue(secret.hasPrefix("whsec_"), secret)
        try page.screenshot(to: shots + "/secret-shown-once.png")
        try page.open(base + "/endpoints/browser-made")
        XCTAssertFalse(try XCTUnwrap(page.evaluate("document.body.innerHTML") as? String).contains(String(secret.dropFirst(6))), "never shown again")
        try page.screenshot(to: shots + "/endpoint.png")

        // Send a test event: it reaches the receiver, signed with that secret, and is in the log.
        try page.click("form.test-send button")
        try page.waitForLoad { $0.contains("notice=tested") }
        let request = try XCTUnwrap(seed.receiver.requests(on: "/browser").last)
        XCTAssertTrue(SignatureVerifier.verify(id: request.header("webhook-id"), timestamp: request.header("webhook-timestamp"),
                                               signature: request.header("webhook-signature"), body: request.body, secret: secret))
        XCTAssertEqual(try text("section.attempt h3 .badge"), "succeeded")
        try page.open(base + "/deliveries?endpoint=browser-made")
        XCTAssertEqual(try page.evaluate("document.querySelectorAll('table.deliveries tbody tr').length") as? Int, 1)

        // The portal: a link from the dashboard's button opens acme's portal.
        try page.open(base + "/endpoints")
        _ = try page.evaluate("document.querySelector('#portal-link [name=tenant]').value = 'acme'")
        try page.click("#portal-link button")
        try page.waitForLoad { $0.hasSuffix("/portal-links") }
        let link = try XCTUnwrap(text("#shown-once"))
        // The link's page moves on to the portal by itself (a same-site navigation, which takes the SameSite=Strict cookie).
        _ = try page.send("Page.navigate", ["url": link])
        try page.waitForLoad { $0.hasSuffix("/endpoints") }
        XCTAssertEqual(try text("header .portal-who"), "acme · admin")
        let portalPage = try XCTUnwrap(page.evaluate("document.body.innerText") as? String)
        XCTAssertTrue(portalPage.contains("acme-hooks") && portalPage.contains("browser-made"))
        XCTAssertFalse(portalPage.contains("globex"))
        XCTAssertEqual(try page.evaluate("[...document.querySelectorAll('header nav a')].map(a => a.textContent).join(',')") as? String,
                       "Deliveries,Endpoints,Event catalog,Read tokens", "no overview of every tenant")
        try page.screenshot(to: shots + "/portal.png")
        for route in ["/endpoints/globex-hooks", "/deliveries/\(seed.globexDeliveryID)", "/deliveries?tenant=globex"] {
            try page.open(base + route)
            let shown = try XCTUnwrap(page.evaluate("document.body.innerText") as? String)
            XCTAssertTrue(shown.contains("Not found"), "\(route): \(shown)")
            XCTAssertFalse(shown.contains("globex") || shown.contains("Globex"), "\(route): \(shown)")
        }
        try page.open(base + "/tokens")
        try page.click("form[action='/tokens'] button")
        // The answer has the same URL as the page: wait for what it shows.
        waitUntil("the new token is shown") { (try? text("#shown-once")) != nil }
        XCTAssertTrue(try XCTUnwrap(text("#shown-once")).hasPrefix("dtt_"))
        try page.open(base + "/tokens")
        try page.screenshot(to: shots + "/tokens.png")
        try page.click("form[action='/portal/exit'] button")
        try page.waitForLoad { $0.hasSuffix("/signed-out") }
        for name in ["endpoint-form-error", "secret-shown-once", "endpoint", "portal", "tokens"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: "\(shots)/\(name).png")[.size] as? Int) ?? 0
            XCTAssertGreaterThan(size, 10_000, "\(name).png holds a rendered page")
        }
    }

    // MARK: - From the command line

    func testPortalLinkRotateSecretAndHistoryFromTheCLI() throws {
        let config = try writeConfig(url: "http://127.0.0.1:9/unused", extra: #", "portal": {"key": "\#(Self.portalKey)", "base_url": "https://hooks.example.com"}"#)
        let link = try run(["portal-link", "--config", config, "--tenant", "tenant-a", "--ttl", "30m", "--role", "viewer"])
        XCTAssertEqual(link.status, 0, link.stderr)
        let url = link.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(url.hasPrefix("https://hooks.example.com/portal/open?token="), url)
        let grant = try XCTUnwrap(PortalKey(secret: Self.portalKey).verify(String(url.split(separator: "=", maxSplits: 1)[1]), kind: .link))
        XCTAssertEqual(grant.tenantID, "tenant-a")
        XCTAssertEqual(grant.role, .viewer)
        XCTAssertEqual(grant.expiresAt.timeIntervalSinceNow, 1_800, accuracy: 30)
        XCTAssertNotEqual(try run(["portal-link", "--config", config, "--tenant", "nobody"]).status, 0)
        XCTAssertNotEqual(try run(["portal-link", "--config", config, "--tenant", "tenant-a", "--role", "root"]).status, 0)

        // ep-1 is the config's: rotation happens in the file. One made by the CLI rotates.
        let managed = try run(["endpoints", "rotate-secret", "ep-1", "--config", config])
        XCTAssertNotEqual(managed.status, 0)
        XCTAssertTrue(managed.stderr.contains("managed by the config file"), managed.stderr)
        XCTAssertEqual(try run(["endpoints", "add", "--config", config, "--tenant", "tenant-a", "--id", "cli-made", "--url", "http://127.0.0.1:9/x"]).status, 0)
        let first = try run(["endpoints", "rotate-secret", "cli-made", "--config", config])
        XCTAssertEqual(first.status, 0, first.stderr)
        let second = try run(["endpoints", "rotate-secret", "cli-made", "--grace", "1h", "--config", config])
        XCTAssertEqual(second.status, 0, second.stderr)
        let secrets = [first, second].map { $0.stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
        XCTAssertEqual(try store.endpoint(id: "cli-made")?.signingSecrets, [secrets[1], secrets[0]])
        XCTAssertNotEqual(try run(["endpoints", "rotate-secret", "cli-made", "--grace", "soon", "--config", config]).status, 0)

        let history = try run(["endpoints", "history", "cli-made", "--json", "--config", config])
        XCTAssertEqual(history.status, 0, history.stderr)
        let lines = history.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(lines.map { $0["actor"] as? String }, ["cli", "cli", "cli"])
        XCTAssertFalse(history.stdout.contains("whsec_"))
        let text = try run(["endpoints", "history", "cli-made", "--config", config])
        XCTAssertTrue(text.stdout.contains("signing:"), text.stdout)
        XCTAssertNotEqual(try run(["endpoints", "history", "nope", "--config", config]).status, 0)
    }
}
