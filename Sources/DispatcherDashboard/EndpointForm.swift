import DispatcherConfig
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import Foundation

/// The endpoint form: its fields as posted, turned into the config's endpoint object and
/// validated by the config's own decoder (`Endpoint.fromConfig`), so a form, the config file
/// and `dispatcher endpoints add|update` give the same messages. Write-only values (header
/// values, the OAuth client secret) are never sent back to the page: a saved header shows
/// `***`, and `***` or an empty secret field keeps what was saved.
struct EndpointForm {
    /// The posted fields (or, for a page, the saved endpoint written as fields).
    var fields: FormData
    /// The field a validation message belongs to, and the message.
    var errors: [String: String] = [:]

    static let masked = "***"
    /// The retry or success choice that leaves it to the family's documented profile.
    static let profile = "profile"

    /// The form for an endpoint as saved (nil: a new one).
    init(endpoint saved: Endpoint?) {
        // A new endpoint's form starts from the defaults the config file has.
        let endpoint = saved ?? Endpoint(id: "", tenantID: "", url: "")
        defer {
            if saved == nil { fields = FormData("retry_policy=\(Self.profile)&success=\(Self.profile)").merging(fields) }
        }
        var pairs: [(String, String?)] = [
            ("id", endpoint.id), ("tenant", endpoint.tenantID), ("url", endpoint.url),
            ("headers", endpoint.headers.keys.sorted().map { "\($0): \(Self.masked)" }.joined(separator: "\n")),
            ("secret_headers", endpoint.secretHeaders.joined(separator: ", ")),
            ("timeout_seconds", JSONReader.format(endpoint.timeoutSeconds)),
            ("connect_timeout_seconds", JSONReader.format(endpoint.connectTimeoutSeconds)),
            ("max_concurrency", String(endpoint.maxConcurrency)), ("success", endpoint.success.rawValue),
            ("ordered", endpoint.ordered ? "on" : nil), ("enabled", endpoint.enabled ? "on" : nil),
            ("circuit_failure_threshold", String(endpoint.circuit.failureThreshold)),
            ("circuit_cooldown_seconds", JSONReader.format(endpoint.circuit.cooldownSeconds)),
            ("circuit_disable_after_seconds", JSONReader.format(endpoint.circuit.disableAfterSeconds)),
        ]
        let known = Set(EventCatalog.entries.map(\.type))
        pairs += endpoint.eventFilters.filter(known.contains).map { ("events", $0) }
        pairs.append(("events_other", endpoint.eventFilters.filter { !known.contains($0) }.joined(separator: ", ")))
        switch endpoint.retry {
        case .oneRetry(let delay):
            pairs += [("retry_policy", "one_retry"), ("retry_delay_seconds", JSONReader.format(delay))]
        case .exponential(let p):
            pairs += [("retry_policy", "exponential"), ("retry_initial_seconds", JSONReader.format(p.initialSeconds)),
                      ("retry_factor", JSONReader.format(p.factor)), ("retry_max_seconds", JSONReader.format(p.maxSeconds)),
                      ("retry_max_attempts", String(p.maxAttempts)), ("retry_max_age_seconds", p.maxAgeSeconds.map(JSONReader.format))]
        case .schedule(let schedule):
            pairs += [("retry_policy", "schedule"), ("retry_delays_seconds", schedule.delaysSeconds.map(JSONReader.format).joined(separator: ", ")),
                      ("retry_max_age_seconds", schedule.maxAgeSeconds.map(JSONReader.format))]
        }
        if case .oauth2ClientCredentials(let credentials) = endpoint.auth {
            pairs += [("auth_token_url", credentials.tokenURL), ("auth_client_id", credentials.clientID), ("auth_scope", credentials.scope),
                      ("auth_client_secret", Self.masked)]
        }
        fields = FormData(FormData.encode(pairs.filter { $0.1?.isEmpty == false }))
    }

    init(posted: FormData) { fields = posted }

    /// Validates the posted fields into an endpoint of `tenantID`. `existing` supplies what the
    /// form leaves alone (signing secrets, TLS, proxy, HTTP/2, rate limit, body format) and the
    /// write-only values kept as `***`. Throws `self` with `errors` filled in.
    /// `allowEnvironment` is the operator's: an `env:NAME` value makes the dispatcher read its own
    /// environment at send time, which a tenant could aim at any variable and have sent to its URL.
    mutating func endpoint(tenantID: String, existing: Endpoint?, rules: EndpointRules, allowEnvironment: Bool) -> Endpoint? {
        errors = [:]
        var object: [String: Any] = existing?.configObject ?? [:]
        for key in ["events", "headers", "secret_headers", "retry", "auth", "circuit", "ordered", "enabled", "success"] { object[key] = nil }
        object["id"] = existing?.id ?? fields["id"] ?? ""
        object["url"] = fields["url"] ?? ""
        let events = fields.values("events") + Self.list(fields["events_other"])
        if !events.isEmpty { object["events"] = events }
        do {
            object["headers"] = try headers(existing: existing)
        } catch {
            errors["headers"] = error.message
        }
        let secretHeaders = Self.list(fields["secret_headers"])
        if !secretHeaders.isEmpty { object["secret_headers"] = secretHeaders }
        for key in ["timeout_seconds", "connect_timeout_seconds", "max_concurrency"] { object[key] = Self.number(fields[key]) }
        // "profile": the rule the seed documents give the family the endpoint takes (the config's default).
        if let success = fields["success"], success != Self.profile { object["success"] = success }
        object["ordered"] = fields["ordered"] != nil
        object["enabled"] = fields["enabled"] != nil
        if fields["retry_policy"] != Self.profile { object["retry"] = retry() }
        object["circuit"] = [
            "failure_threshold": Self.number(fields["circuit_failure_threshold"]), "cooldown_seconds": Self.number(fields["circuit_cooldown_seconds"]),
            "disable_after_seconds": Self.number(fields["circuit_disable_after_seconds"]),
        ].compactMapValues { $0 }
        if let tokenURL = fields["auth_token_url"] {
            var auth: [String: Any] = ["type": "oauth2_client_credentials", "token_url": tokenURL, "client_id": fields["auth_client_id"] ?? ""]
            auth["scope"] = fields["auth_scope"]
            let posted = fields["auth_client_secret"]
            if posted == nil || posted == Self.masked, case .oauth2ClientCredentials(let old) = existing?.auth {
                auth["client_secret"] = old.clientSecret
            } else {
                auth["client_secret"] = posted ?? ""
            }
            object["auth"] = auth
        }
        if !allowEnvironment {
            let saved = Set((existing?.headers ?? [:]).values)
            if let headers = object["headers"] as? [String: String],
               headers.values.contains(where: { EnvironmentReference($0) != nil && !saved.contains($0) }) {
                errors["headers"] = "a value may not start with env: here (the operator's way to read the dispatcher's environment)"
            }
            if let auth = object["auth"] as? [String: Any], let secret = auth["client_secret"] as? String, EnvironmentReference(secret) != nil,
               fields["auth_client_secret"] != nil && fields["auth_client_secret"] != Self.masked {
                errors["auth"] = "the client secret may not start with env: here (the operator's way to read the dispatcher's environment)"
            }
        }
        guard errors.isEmpty else { return nil }
        do {
            let endpoint = try Endpoint.fromConfig(JSONValue(foundation: object), tenantID: tenantID, urlPolicy: rules.urlPolicy)
            try Self.checkDestination(endpoint.url, field: "url", rules: rules)
            if case .oauth2ClientCredentials(let credentials) = endpoint.auth {
                try Self.checkDestination(credentials.tokenURL, field: "auth.token_url", rules: rules)
            }
            guard endpoint.timeoutSeconds < rules.leaseSeconds else {
                throw DispatcherError.invalidConfiguration(path: "timeout_seconds", message: "must be shorter than lease_seconds (\(JSONReader.format(rules.leaseSeconds))), or a slow attempt's delivery could be retaken while it is still in flight")
            }
            return endpoint
        } catch let error as DispatcherError {
            if case .invalidConfiguration(let path, let message) = error {
                errors[Self.field(ofPath: path)] = message
            } else {
                errors["id"] = error.description
            }
        } catch {
            errors["id"] = "\(error)"
        }
        return nil
    }

    /// `Name: value` lines; a value of `***` keeps the saved one (header values are write-only).
    private func headers(existing: Endpoint?) throws(DashboardError) -> [String: String] {
        var headers: [String: String] = [:]
        for line in (fields["headers"] ?? "").split(whereSeparator: \.isNewline) {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { continue }
            guard let colon = text.firstIndex(of: ":") else {
                throw DashboardError(status: 400, message: "'\(text.prefix(60))' is not a 'Name: value' line")
            }
            let name = text[..<colon].trimmingCharacters(in: .whitespaces)
            var value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if value == Self.masked {
                guard let saved = existing?.headers.first(where: { $0.key.caseInsensitiveCompare(name) == .orderedSame })?.value else {
                    throw DashboardError(status: 400, message: "'\(name)' has no saved value to keep: type its value")
                }
                value = saved
            }
            headers[name] = value
        }
        return headers
    }

    private func retry() -> [String: Any] {
        let policy = fields["retry_policy"] ?? "one_retry"
        var retry: [String: Any] = ["policy": policy]
        switch policy {
        case "one_retry":
            retry["delay_seconds"] = Self.number(fields["retry_delay_seconds"])
        case "exponential":
            for key in ["initial_seconds", "factor", "max_seconds", "max_attempts", "max_age_seconds"] { retry[key] = Self.number(fields["retry_" + key]) }
        default:
            retry["delays_seconds"] = Self.list(fields["retry_delays_seconds"]).map { Self.number($0) ?? $0 }
            retry["max_age_seconds"] = Self.number(fields["retry_max_age_seconds"])
        }
        return retry
    }

    /// A literal address in the URL is checked against the destination guard now, so the
    /// form says so; a name is checked when a request connects (it may resolve differently then).
    static func checkDestination(_ url: String, field: String, rules: EndpointRules) throws {
        guard let host = URLComponents(string: url)?.host else { return }
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let ip = bare.lowercased() == "localhost" ? IPAddress("127.0.0.1") : IPAddress(bare)
        if let ip, let refusal = rules.destinationPolicy.refusal(for: ip) {
            throw DispatcherError.invalidConfiguration(path: field, message: "\(refusal); deliveries may not go there")
        }
    }

    /// The form field a validator's key path (`retry.delay_seconds`, `events[2]`) belongs to.
    static func field(ofPath path: String) -> String {
        let head = path.split(whereSeparator: { $0 == "." || $0 == "[" }).first.map(String.init) ?? "id"
        switch head {
        case "retry", "auth", "circuit", "events", "headers", "secret_headers", "url", "timeout_seconds", "connect_timeout_seconds",
             "max_concurrency", "success", "ordered", "enabled":
            return head
        default:
            return "id"
        }
    }

    /// A number when the text is one; otherwise the text itself, for the validator to name.
    static func number(_ text: String?) -> Any? {
        guard let text else { return nil }
        if let integer = Int(text) { return integer }
        if let double = Double(text), double.isFinite { return double }
        return text
    }

    static func list(_ text: String?) -> [String] {
        (text ?? "").split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
    }
}

extension FormData {
    /// These pairs followed by `other`'s (a lookup finds these first).
    func merging(_ other: FormData) -> FormData {
        FormData(FormData.encode(pairs.map { ($0.name, $0.value) } + other.pairs.map { ($0.name, $0.value) }))
    }

    /// Every non-empty value of `name` (checkboxes, multiple selects).
    func values(_ name: String) -> [String] {
        pairs.filter { $0.name == name && !$0.value.isEmpty }.map(\.value)
    }
}
