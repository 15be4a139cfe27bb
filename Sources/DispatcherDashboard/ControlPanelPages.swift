import DispatcherConfig
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import Foundation

/// The control panel's pages: one endpoint with its secrets and history, the endpoint form,
/// read tokens, portal links, and the page that shows a new secret once.
extension DashboardPages {
    // MARK: - One endpoint

    func endpoint(id: String, query: FormData) throws -> HTML {
        let status = try viewer.endpoint(id, in: store)
        let endpoint = status.endpoint
        let history = try store.endpointHistory(id: id, limit: 100)
        let managed: HTML = status.isManagedByConfig
            ? "<p class=\"notice\">This endpoint is managed by the config file: it is shown read-only here, and <code>serve</code> applies the file's version at start.</p>"
            : ""
        let editable = viewer.canChange && !status.isManagedByConfig
        let escapedID = FormData.escape(id)
        let tools: HTML = editable ? """
            <a class="button" href="/endpoints/\(escapedID)/edit">Edit</a>
            <form method="post" action="/endpoints/\(escapedID)/remove" class="inline" data-confirm="Remove \(id)? Its pending deliveries are cancelled; its log stays.">\(csrfField)<button type="submit" class="danger">Remove</button></form>
            """ : ""
        let actions: HTML = viewer.canChange ? "<div class=\"toolbar\">\(endpointActions(status))</div>" : ""
        let headers: HTML = endpoint.headers.isEmpty ? "none" : HTML.join(endpoint.headers.keys.sorted().map { "<code>\($0): ***</code>" as HTML }, separator: "<br>")
        let auth: HTML
        if case .oauth2ClientCredentials(let credentials) = endpoint.auth {
            auth = "OAuth 2.0 client credentials at <code>\(credentials.tokenURL)</code>, client <code>\(credentials.clientID)</code>\(credentials.scope.map { ", scope <code>\($0)</code>" as HTML } ?? ""), secret ***"
        } else {
            auth = "none"
        }
        return layout(title: endpoint.id, active: "endpoints", body: """
            <p class="crumbs"><a href="/endpoints">Endpoints</a> / \(endpoint.id)</p>
            \(notice(query))
            <div class="title-row"><h1>\(endpoint.id)</h1>\(tools)</div>
            \(managed)
            \(actions)
            <dl class="summary" id="endpoint-settings">
              <dt>Tenant</dt><dd>\(endpoint.tenantID)</dd>
              <dt>State</dt><dd>\(endpointState(status))</dd>
              <dt>URL</dt><dd><code>\(endpoint.url)</code></dd>
              <dt>Events</dt><dd>\(endpoint.eventFilters.isEmpty ? "every event" : endpoint.eventFilters.joined(separator: ", "))</dd>
              <dt>Headers</dt><dd>\(headers)</dd>
              <dt>Authentication</dt><dd>\(auth)</dd>
              <dt>Timeouts</dt><dd>\(JSONReader.format(endpoint.timeoutSeconds)) s (connect \(JSONReader.format(endpoint.connectTimeoutSeconds)) s)</dd>
              <dt>Concurrency</dt><dd>\(endpoint.maxConcurrency) per serve process</dd>
              <dt>Retries</dt><dd>\(Self.retryText(endpoint.retry))</dd>
              <dt>Success</dt><dd><code>\(endpoint.success.rawValue)</code></dd>
              <dt>Ordered</dt><dd>\(endpoint.ordered ? "yes, by ordering key" : "no")</dd>
              <dt>Circuit</dt><dd>opens after \(endpoint.circuit.failureThreshold) failures for \(JSONReader.format(endpoint.circuit.cooldownSeconds)) s; disables after \(JSONReader.format(endpoint.circuit.disableAfterSeconds)) s failing</dd>
            </dl>
            \(signingSection(status, editable: editable))
            <section class="panel" id="history"><h2>Change history</h2>\(historyTable(history))</section>
            """)
    }

    private func signingSection(_ status: EndpointStatus, editable: Bool) -> HTML {
        let endpoint = status.endpoint
        let rows = zip(endpoint.signingSecrets.indices, status.secrets + Array(repeating: SigningSecretInfo(createdAt: nil, expiresAt: nil), count: max(0, endpoint.signingSecrets.count - status.secrets.count))).map { index, info -> HTML in
            let age: HTML = info.createdAt.map { "\(Self.age(now.timeIntervalSince($0))) old <small>since \(Self.time($0))</small>" } ?? "made before ages were kept"
            let expiry: HTML = info.expiresAt.map { "stops signing \(Self.time($0))" } ?? "signs until rotated"
            return "<tr><td>\(index == 0 ? "current" : "previous")</td><td>***</td><td>\(age)</td><td>\(expiry)</td></tr>"
        }
        let table: HTML = rows.isEmpty
            ? "<p class=\"empty\">Requests are not signed: generate a secret and give it to the receiver.</p>"
            : "<table class=\"secrets\"><thead><tr><th></th><th>Secret</th><th>Age</th><th>Expiry</th></tr></thead><tbody>\(rows)</tbody></table>"
        var form: HTML = ""
        if editable && endpoint.signatureScheme == .standardWebhooks {
            let escapedID = FormData.escape(endpoint.id)
            form = endpoint.signingSecrets.isEmpty ? """
                <form method="post" action="/endpoints/\(escapedID)/secret" data-confirm="Generate a signing secret for \(endpoint.id)? It is shown once.">\(csrfField)<button type="submit">Generate secret</button></form>
                """ : """
                <form method="post" action="/endpoints/\(escapedID)/secret" class="inline-form" data-confirm="Rotate the signing secret of \(endpoint.id)? The new one is shown once; the old one keeps signing for the grace period.">\(csrfField)
                <label>Grace period (hours) <input name="grace_hours" value="24" inputmode="decimal" size="4"></label>
                <button type="submit">Rotate secret</button></form>
                """
        }
        return """
            <section class="panel" id="signing"><h2>Signing secrets <small>\(endpoint.signatureScheme.name)</small></h2>
            \(table)\(form)</section>
            """
    }

    func historyTable(_ history: [EndpointChange]) -> HTML {
        guard !history.isEmpty else { return "<p class=\"empty\">No changes recorded yet.</p>" }
        let rows = history.map { change -> HTML in
            let fields = HTML.join(change.changes.map { field -> HTML in
                "<div><code>\(field.field)</code>: <span class=\"muted\">\(field.from ?? "–")</span> → \(field.to ?? "–")</div>"
            })
            return "<tr><td>\(Self.time(change.at))</td><td>\(change.actor)</td><td class=\"changes\">\(fields)</td></tr>"
        }
        return "<table class=\"history\"><thead><tr><th>When</th><th>Who</th><th>What changed</th></tr></thead><tbody>\(rows)</tbody></table>"
    }

    static func retryText(_ retry: RetryPolicy) -> String {
        switch retry {
        case .oneRetry(let delay): return "one retry after \(JSONReader.format(delay)) s"
        case .exponential(let p):
            return "exponential from \(JSONReader.format(p.initialSeconds)) s ×\(JSONReader.format(p.factor)) up to \(JSONReader.format(p.maxSeconds)) s, \(p.maxAttempts) attempts"
                + (p.maxAgeSeconds.map { ", for \(JSONReader.format($0)) s at most" } ?? "")
        case .schedule(let schedule):
            return "after " + schedule.delaysSeconds.map { JSONReader.format($0) + " s" }.joined(separator: ", ")
                + (schedule.maxAgeSeconds.map { ", for \(JSONReader.format($0)) s at most" } ?? "")
        }
    }

    // MARK: - The endpoint form

    /// The form for a new endpoint (`existing` nil) or an edit, with any validation messages beside their fields.
    func endpointForm(_ form: EndpointForm, existing: Endpoint?) throws -> HTML {
        let fields = form.fields
        func error(_ field: String) -> HTML {
            form.errors[field].map { "<p class=\"field-error\" id=\"error-\(field)\" role=\"alert\">\($0)</p>" } ?? ""
        }
        func text(_ name: String, _ label: String, placeholder: String = "", hint: HTML = "") -> HTML {
            "<label>\(label) <input name=\"\(name)\" value=\"\(fields[name] ?? "")\" placeholder=\"\(placeholder)\">\(hint)</label>"
        }
        func select(_ name: String, _ options: [String], selected: String?) -> HTML {
            HTML.join(options.map { option -> HTML in
                let label = option == EndpointForm.profile ? "the family's documented rule" : option
                return "<option value=\"\(option)\"\(option == selected ? HTML(" selected") : "")>\(label)</option>"
            })
        }
        let chosen = Set(fields.values("events"))
        let knownTypes = (EventCatalog.entries.map(\.type) + ((try? store.deliveries(matching: DeliveryFilter(tenantID: viewer.tenantID, limit: 200)).map(\.eventType)) ?? []))
        // Each family's glob first, then its types: the seed families', and those the store has seen.
        let types = Array(Set(knownTypes)).sorted().filter { viewer.isOperator || !$0.hasPrefix("operations.") }
        let families = Array(Set(types.map { String($0.prefix { $0 != "." }) })).sorted()
        func box(_ value: String) -> HTML {
            "<label class=\"check\"><input type=\"checkbox\" name=\"events\" value=\"\(value)\"\(chosen.contains(value) ? HTML(" checked") : "")> <code>\(value)</code></label>"
        }
        let picker = HTML.join(families.map { family -> HTML in
            let members = types.filter { $0.hasPrefix(family + ".") || $0 == family }
            return "<div class=\"family\">\(box(family + ".*"))\(HTML.join(members.map(box)))</div>"
        })
        let tenantField: HTML
        if let existing {
            tenantField = "<p>Tenant <strong>\(existing.tenantID)</strong> · id <strong>\(existing.id)</strong></p>"
        } else if viewer.isOperator {
            let tenants = try store.tenants()
            tenantField = """
                <label>Tenant <select name="tenant">\(select("tenant", tenants.map(\.id), selected: fields["tenant"]))</select></label>
                <label>or a new tenant <input name="new_tenant" value="\(fields["new_tenant"] ?? "")" placeholder="acme"></label>
                <label>its name <input name="new_tenant_name" value="\(fields["new_tenant_name"] ?? "")" placeholder="Acme Clinics"></label>
                \(text("id", "Endpoint id", placeholder: "acme-prod"))\(error("id"))
                """
        } else {
            tenantField = "\(text("id", "Endpoint id", placeholder: "production"))\(error("id"))"
        }
        let retryPolicy = fields["retry_policy"] ?? EndpointForm.profile
        let action = existing.map { "/endpoints/\(FormData.escape($0.id))" } ?? "/endpoints"
        let title = existing.map { "Edit \($0.id)" } ?? "New endpoint"
        let summary: HTML = form.errors.isEmpty ? "" : "<p class=\"notice error\" id=\"form-errors\">Nothing was saved: \(form.errors.count == 1 ? "one value needs" : "some values need") fixing.</p>"
        return layout(title: title, active: "endpoints", body: """
            <p class="crumbs"><a href="/endpoints">Endpoints</a> / \(existing?.id ?? "new")</p>
            <h1>\(title)</h1>
            \(summary)
            <form method="post" action="\(action)" class="endpoint-form" id="endpoint-form" data-confirm="Save \(existing?.id ?? "this new endpoint")? Deliveries use it from their next attempt.">\(csrfField)
              <fieldset><legend>Where</legend>
                \(tenantField)
                <label>URL <input name="url" value="\(fields["url"] ?? "")" placeholder="https://example.com/webhooks" size="60" required></label>\(error("url"))
              </fieldset>
              <fieldset><legend>Events</legend>
                <p class="muted">None chosen: every event.</p>
                <div class="picker">\(picker)</div>
                \(text("events_other", "More types or globs", placeholder: "visit.*, verification.*"))\(error("events"))
              </fieldset>
              <fieldset><legend>Headers</legend>
                <label><span>One <code>Name: value</code> a line; a saved value shows as <code>***</code>: leave it to keep it</span>
                <textarea name="headers" rows="3" cols="60" placeholder="X-Api-Key: ...">\(fields["headers"] ?? "")</textarea></label>\(error("headers"))
                \(text("secret_headers", "Secret headers (redacted in the log)", placeholder: "X-Api-Key"))\(error("secret_headers"))
              </fieldset>
              <fieldset><legend>OAuth 2.0 client credentials <small>(optional)</small></legend>
                \(text("auth_token_url", "Token URL", placeholder: "https://auth.example.com/oauth/token"))
                \(text("auth_client_id", "Client id"))
                \(text("auth_scope", "Scope"))
                <label>Client secret <input type="password" name="auth_client_secret" value="\(fields["auth_client_secret"] == EndpointForm.masked ? EndpointForm.masked : "")" autocomplete="off"></label>\(error("auth"))
              </fieldset>
              <fieldset><legend>Delivery</legend>
                \(text("timeout_seconds", "Timeout (s)"))\(error("timeout_seconds"))
                \(text("connect_timeout_seconds", "Connect timeout (s)"))\(error("connect_timeout_seconds"))
                \(text("max_concurrency", "Max concurrency"))\(error("max_concurrency"))
                <label>Success <select name="success">\(select("success", [EndpointForm.profile] + SuccessRule.allCases.map(\.rawValue), selected: fields["success"]))</select></label>\(error("success"))
                <label class="check"><input type="checkbox" name="ordered"\(fields["ordered"] != nil ? HTML(" checked") : "")> Ordered (one at a time per ordering key)</label>
                <label class="check"><input type="checkbox" name="enabled"\(fields["enabled"] != nil ? HTML(" checked") : "")> Enabled</label>
              </fieldset>
              <fieldset><legend>Retries</legend>
                <label>Policy <select name="retry_policy">\(select("retry_policy", [EndpointForm.profile, "one_retry", "exponential", "schedule"], selected: retryPolicy))</select></label>
                \(text("retry_delay_seconds", "one_retry: delay (s)", placeholder: "5"))
                \(text("retry_initial_seconds", "exponential: first wait (s)", placeholder: "5"))
                \(text("retry_factor", "factor", placeholder: "2"))
                \(text("retry_max_seconds", "longest wait (s)", placeholder: "3600"))
                \(text("retry_max_attempts", "attempts", placeholder: "10"))
                \(text("retry_delays_seconds", "schedule: waits (s)", placeholder: "5, 300, 1800"))
                \(text("retry_max_age_seconds", "give up after (s)", placeholder: "86400"))
                \(error("retry"))
              </fieldset>
              <fieldset><legend>Circuit breaker</legend>
                \(text("circuit_failure_threshold", "Opens after failures"))
                \(text("circuit_cooldown_seconds", "Stays open (s)"))
                \(text("circuit_disable_after_seconds", "Disables after failing for (s)"))
                \(error("circuit"))
              </fieldset>
              <button type="submit">Save</button> <a class="button plain" href="\(existing.map { "/endpoints/\(FormData.escape($0.id))" } ?? "/endpoints")">Cancel</a>
            </form>
            """)
    }

    // MARK: - Secrets shown once, tokens, portal links

    /// A secret, token or link: shown on this page once, never again.
    func shownOnce(title: String, value: String, back: String, note: String) -> HTML {
        layout(title: title, active: "", body: """
            <h1>\(title)</h1>
            <p class="notice">Copy it now: it is not shown again.</p>
            <pre class="body secret" id="shown-once">\(value)</pre>
            <p>\(note)</p>
            <p><a class="button" href="\(back)">Done</a></p>
            """)
    }

    func tokens(query: FormData) throws -> HTML {
        guard let tenant = viewer.tenantID else { throw DashboardError(status: 404, message: "read tokens are made in each tenant's portal") }
        try viewer.checkCanChange()
        let tokens = try store.tenantTokens(tenantID: tenant)
        let rows = tokens.map { token -> HTML in
            let state: HTML = token.revokedAt.map { "revoked \(Self.time($0))" } ?? (viewer.canChange ? """
                <form method="post" action="/tokens/\(token.id)/revoke" class="inline" data-confirm="Revoke \(token.name)? Systems using it can no longer read events.">\(csrfField)<button type="submit" class="danger">Revoke</button></form>
                """ : "active")
            return "<tr><td><code>dtt_\(token.id)_…</code></td><td>\(token.name)</td><td>\(Self.time(token.createdAt))</td><td>\(token.lastUsedAt.map(Self.time) ?? "never")</td><td>\(state)</td></tr>"
        }
        let table: HTML = tokens.isEmpty ? "<p class=\"empty\">No read tokens yet.</p>"
            : "<table><thead><tr><th>Token</th><th>Name</th><th>Created</th><th>Last used</th><th></th></tr></thead><tbody>\(rows)</tbody></table>"
        let create: HTML = viewer.canChange ? """
            <form method="post" action="/tokens" class="inline-form" data-confirm="Create a read token? It is shown once.">\(csrfField)
            <label>Name <input name="name" placeholder="production verifier" maxlength="100"></label><button type="submit">Create read token</button></form>
            """ : ""
        return layout(title: "Read tokens", active: "tokens", body: """
            <h1>Read tokens</h1>
            \(notice(query))
            <p class="muted">Your system fetches an event it was sent, and its delivery status, before trusting it:
            <code>GET /v1/tenant/events/ID</code> with <code>Authorization: Bearer dtt_…</code>.</p>
            \(table)
            \(create)
            """)
    }

    /// The operator's button for a tenant portal link (the same as `dispatcher portal-link`).
    func portalLinkForm() throws -> HTML {
        let tenants = try store.tenants()
        guard !tenants.isEmpty else { return "" }
        let options = HTML.join(tenants.map { "<option value=\"\($0.id)\">\($0.id)</option>" as HTML })
        return """
            <section class="panel" id="portal-link"><h2>Tenant portal</h2>
            <form method="post" action="/portal-links" class="inline-form" data-confirm="Create a portal link? Anyone holding it signs in as that tenant until it expires.">\(csrfField)
            <label>Tenant <select name="tenant">\(options)</select></label>
            <label>Role <select name="role"><option value="admin">admin</option><option value="viewer">viewer</option></select></label>
            <label>Valid for (hours) <input name="ttl_hours" value="1" size="4"></label>
            <button type="submit">Create portal link</button></form></section>
            """
    }

    /// After a link is opened: the session cookie is set, and this page moves on to the portal
    /// by itself (a same-site navigation, so the SameSite=Strict cookie goes along).
    static func portalOpened(tenant: String) -> HTML {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/endpoints">
        <title>Signing in · dispatcher</title><link rel="stylesheet" href="/assets/dashboard.css"></head>
        <body><main><p>Signed in as \(tenant). <a href="/endpoints">Continue</a></p></main></body></html>
        """
    }
}
