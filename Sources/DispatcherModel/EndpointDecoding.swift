import Foundation

extension Endpoint {
    /// The rules no endpoint may break however it was made (a library `Endpoint(...)` as much
    /// as the config file): what reaches the request line and headers. The config's decoder
    /// applies them too, with these messages; `upsert` runs this for every endpoint it stores.
    package func checkRequestSafety() throws(DispatcherError) {
        let path = "endpoint \(id)"
        guard EventType.isValid(id) else {
            throw .invalidConfiguration(path: "\(path).id", message: "'\(id)' must be 1-200 letters, digits, '.', '_' or '-'")
        }
        if let problem = URLPolicy(requireHTTPS: false).problem(with: url) { throw .invalidConfiguration(path: "\(path).url", message: problem) }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            if let problem = HeaderRules.problem(withConfigured: name, value: value) {
                throw .invalidConfiguration(path: "\(path).headers.\(name)", message: problem)
            }
        }
        if case .oauth2ClientCredentials(let credentials) = auth,
           let problem = URLPolicy(requireHTTPS: false).problem(with: credentials.tokenURL) {
            throw .invalidConfiguration(path: "\(path).auth.token_url", message: problem)
        }
    }

    /// The endpoint as a config file writes it (`tenants[i].endpoints[j]`), secrets included:
    /// what `fromConfig` reads back.
    public var configJSON: JSONValue { JSONValue(foundation: configObject) }

    /// Validates a config-shaped endpoint exactly as the config file's endpoints are validated,
    /// with the same messages: an admin page that takes an endpoint as JSON uses this.
    public static func fromConfig(_ json: JSONValue, tenantID: String, urlPolicy: URLPolicy = URLPolicy()) throws -> Endpoint {
        try decode(JSONReader(json, path: ""), tenantID: tenantID, urlPolicy: urlPolicy)
    }

    /// `configJSON` in the form JSONSerialization takes (the store's columns, the CLI).
    package var configObject: [String: Any] {
        var object: [String: Any] = [
            "id": id, "url": url, "events": eventFilters, "headers": headers, "secret_headers": secretHeaders,
            "timeout_seconds": timeoutSeconds, "connect_timeout_seconds": connectTimeoutSeconds,
            "max_concurrency": maxConcurrency, "retry": retry.jsonObject, "success": success.rawValue,
            "enabled": enabled, "ordered": ordered,
            "circuit": ["failure_threshold": circuit.failureThreshold, "cooldown_seconds": circuit.cooldownSeconds,
                        "disable_after_seconds": circuit.disableAfterSeconds],
        ]
        if let auth { object["auth"] = auth.jsonObject }
        if !signingSecrets.isEmpty { object["signing"] = signatureScheme.configObject(secrets: signingSecrets) }
        if let tls { object["tls"] = tls.configObject }
        if let proxy { object["proxy"] = proxy }
        if http2 { object["http2"] = true }
        if let rateLimitPerSecond { object["rate_limit_per_second"] = rateLimitPerSecond }
        if bodyFormat != .event { object["body_format"] = bodyFormat.rawValue }
        return object
    }

    /// `fromConfig` for an object as JSONSerialization returned it (the CLI's `endpoints add|update`).
    package static func fromConfigObject(_ object: [String: Any], tenantID: String, urlPolicy: URLPolicy = URLPolicy()) throws -> Endpoint {
        try decode(JSONReader(configuration: object, path: ""), tenantID: tenantID, urlPolicy: urlPolicy)
    }

    /// Decodes an endpoint from its config object (`tenants[i].endpoints[j]`), the same shape
    /// the store keeps.
    package static func decode(_ reader: JSONReader, tenantID: String, urlPolicy: URLPolicy) throws -> Endpoint {
        let id = try reader.requiredString("id")
        guard EventType.isValid(id) else {
            throw reader.fail("id", "'\(id)' must be 1-200 letters, digits, '.', '_' or '-'")
        }
        let url = try reader.requiredString("url")
        if let problem = urlPolicy.problem(with: url) { throw reader.fail("url", problem) }

        let filters = try reader.stringArray("events") ?? []
        // An endpoint that only takes one family's events gets that family's documented profile.
        let family = EventFamily.only(in: filters)
        let profile = family?.recommendedProfile
        for (index, pattern) in filters.enumerated() where !EventType.isValidPattern(pattern) {
            throw DispatcherError.invalidConfiguration(
                path: "\(reader.keyPath("events"))[\(index)]",
                message: "'\(pattern)' is not an event type or pattern (letters, digits, '.', '_', '-', '*')")
        }

        if profile?.requiresHTTPS == true && !url.lowercased().hasPrefix("https://") {
            throw reader.fail("url", "must be https: \(family!.rawValue) receivers accept webhooks over HTTPS only")
        }

        var headers: [String: String] = [:]
        if let headerReader = try reader.object("headers") {
            headers = try headerReader.stringMap()
            for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
                if let problem = HeaderRules.problem(withConfigured: name, value: value) { throw headerReader.fail(name, problem) }
            }
        }

        let secretHeaders = try reader.stringArray("secret_headers") ?? []
        for (index, name) in secretHeaders.enumerated() where !headers.keys.contains(where: { $0.caseInsensitiveCompare(name) == .orderedSame }) {
            throw DispatcherError.invalidConfiguration(path: "\(reader.keyPath("secret_headers"))[\(index)]",
                                                       message: "'\(name)' is not one of this endpoint's headers")
        }

        let timeout = try reader.number("timeout_seconds", default: 10, in: 0.1...300)
        let connectTimeout = try reader.number("connect_timeout_seconds", default: min(5, timeout), in: 0.1...300)
        let maxConcurrency = try reader.integer("max_concurrency", default: 4, in: 1...1_000)
        let retry = try reader.object("retry").map(RetryPolicy.decode) ?? profile?.retry ?? .default
        let success: SuccessRule
        if let rule = try reader.string("success") {
            guard let parsed = SuccessRule(rawValue: rule) else {
                throw reader.fail("success", "'\(rule)' is not one of \(SuccessRule.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            success = parsed
        } else {
            success = profile?.success ?? .any2xx
        }
        let enabled = try reader.bool("enabled", default: true)
        let auth = try reader.object("auth").map { try EndpointAuth.decode($0, urlPolicy: urlPolicy) }
        var signingSecrets: [String] = []
        var signatureScheme = SignatureScheme.standardWebhooks
        if let signing = try reader.object("signing") {
            (signatureScheme, signingSecrets) = try SignatureScheme.decode(signing)
            if case .hmacSHA256Hex(let header, _) = signatureScheme,
               headers.keys.contains(where: { $0.caseInsensitiveCompare(header) == .orderedSame }) {
                throw signing.fail("header", "'\(header)' is also one of the endpoint's headers, which would replace the signature")
            }
        }
        let tls = try reader.object("tls").map { try EndpointTLS.decode($0, checkFiles: true) }
        if tls != nil && !url.lowercased().hasPrefix("https://") { throw reader.fail("tls", "goes with an https url") }
        let proxy = try reader.string("proxy")
        if let proxy, let problem = ProxyAddress.problem(with: proxy, allowNone: true) { throw reader.fail("proxy", problem) }
        let http2 = try reader.bool("http2", default: false)
        if http2 && !url.lowercased().hasPrefix("https://") { throw reader.fail("http2", "goes with an https url (HTTP/2 is offered in the TLS handshake)") }
        let rateLimit = try reader.has("rate_limit_per_second") ? reader.number("rate_limit_per_second", default: 1, in: 0.01...100_000) : nil
        let formatName = try reader.string("body_format") ?? BodyFormat.event.rawValue
        guard let bodyFormat = BodyFormat(rawValue: formatName) else {
            throw reader.fail("body_format", "'\(formatName)' is not one of \(BodyFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let ordered = try reader.bool("ordered", default: false)
        var circuit = CircuitPolicy()
        if let circuitReader = try reader.object("circuit") {
            circuit.failureThreshold = try circuitReader.integer("failure_threshold", default: circuit.failureThreshold, in: 1...10_000)
            circuit.cooldownSeconds = try circuitReader.number("cooldown_seconds", default: circuit.cooldownSeconds, in: 0.01...86_400)
            circuit.disableAfterSeconds = try circuitReader.number("disable_after_seconds", default: circuit.disableAfterSeconds, in: 1...(365 * 86_400))
            try circuitReader.rejectUnknownKeys()
        }
        try reader.rejectUnknownKeys()
        return Endpoint(id: id, tenantID: tenantID, url: url, eventFilters: filters, headers: headers, secretHeaders: secretHeaders,
                        timeoutSeconds: timeout, connectTimeoutSeconds: connectTimeout, maxConcurrency: maxConcurrency,
                        retry: retry, success: success, enabled: enabled, auth: auth, signingSecrets: signingSecrets,
                        signatureScheme: signatureScheme, tls: tls, proxy: proxy, http2: http2, rateLimitPerSecond: rateLimit, bodyFormat: bodyFormat, ordered: ordered, circuit: circuit)
    }
}

extension SignatureScheme {
    /// Decodes `{"scheme"?: "v1" | "v1a" | "hmac_sha256_hex", "secret" | "secrets", "header"?,
    /// "prefix"?}` (header and prefix for `hmac_sha256_hex` only): the scheme and its secrets.
    package static func decode(_ signing: JSONReader) throws -> (SignatureScheme, [String]) {
        let name = try signing.string("scheme") ?? "v1"
        let scheme: SignatureScheme
        switch name {
        case "v1": scheme = .standardWebhooks
        case "v1a": scheme = .standardWebhooksEd25519
        case "hmac_sha256_hex":
            let header = try signing.string("header") ?? SignatureScheme.hubHeader
            if let problem = HeaderRules.problem(withConfigured: header, value: "") { throw signing.fail("header", problem) }
            let prefix = try signing.string("prefix") ?? SignatureScheme.hubPrefix
            if let problem = HeaderRules.problem(withValue: prefix) { throw signing.fail("prefix", problem) }
            scheme = .hmacSHA256Hex(header: header, prefix: prefix)
        default:
            throw signing.fail("scheme", "'\(name)' is not one of v1, v1a, hmac_sha256_hex")
        }
        if case .hmacSHA256Hex = scheme {} else {
            for key in ["header", "prefix"] where signing.has(key) {
                throw signing.fail(key, "goes with scheme hmac_sha256_hex only")
            }
        }
        var secrets: [String] = []
        if let one = try signing.string("secret") { secrets.append(one) }
        secrets += try signing.stringArray("secrets") ?? []
        try signing.rejectUnknownKeys()
        guard (1...scheme.maxSecrets).contains(secrets.count) else {
            throw signing.fail("secrets", scheme.maxSecrets == 1
                ? "give one secret (\"secret\"): \(scheme.name) signs with one"
                : "give one secret, or two while rotating (\"secret\" or \"secrets\")")
        }
        for secret in secrets where EnvironmentReference(secret) == nil {
            if let problem = scheme.problem(withSecret: secret) { throw signing.fail("secret", problem) }
        }
        return (scheme, secrets)
    }

    /// The config's `signing` object for `secrets` under this scheme (the default scheme unnamed).
    package func configObject(secrets: [String]) -> [String: Any] {
        var object: [String: Any] = ["secrets": secrets]
        if self != .standardWebhooks { object["scheme"] = name }
        if case .hmacSHA256Hex(let header, let prefix) = self {
            object["header"] = header
            object["prefix"] = prefix
        }
        return object
    }
}

extension EndpointAuth {
    /// Decodes `{"type": "oauth2_client_credentials", "token_url", "client_id", "client_secret", "scope"?}`.
    package static func decode(_ reader: JSONReader, urlPolicy: URLPolicy) throws -> EndpointAuth {
        let type = try reader.requiredString("type")
        guard type == "oauth2_client_credentials" else { throw reader.fail("type", "'\(type)' is not oauth2_client_credentials") }
        let tokenURL = try reader.requiredString("token_url")
        if let problem = urlPolicy.problem(with: tokenURL) { throw reader.fail("token_url", problem) }
        let credentials = OAuth2ClientCredentials(
            tokenURL: tokenURL, clientID: try reader.requiredString("client_id"),
            clientSecret: try reader.requiredString("client_secret"), scope: try reader.string("scope"))
        try reader.rejectUnknownKeys()
        return .oauth2ClientCredentials(credentials)
    }

    /// The shape the store keeps, the config's.
    package var jsonObject: [String: Any] {
        switch self {
        case .oauth2ClientCredentials(let credentials):
            var object: [String: Any] = ["type": "oauth2_client_credentials", "token_url": credentials.tokenURL,
                                         "client_id": credentials.clientID, "client_secret": credentials.clientSecret]
            object["scope"] = credentials.scope
            return object
        }
    }
}

extension RetryPolicy {
    /// Decodes `{"policy": "one_retry", "delay_seconds": 5}`,
    /// `{"policy": "exponential", "initial_seconds": 5, "factor": 2, "max_seconds": 3600, "max_attempts": 10, "max_age_seconds": 86400}`
    /// or `{"policy": "schedule", "delays_seconds": [5, 300, 1800], "max_age_seconds": 86400}`.
    package static func decode(_ reader: JSONReader) throws -> RetryPolicy {
        let name = try reader.requiredString("policy")
        let policy: RetryPolicy
        switch name {
        case "one_retry":
            policy = .oneRetry(delaySeconds: try reader.number("delay_seconds", default: 5, in: 0...86_400))
        case "exponential":
            let defaults = Exponential()
            let initial = try reader.number("initial_seconds", default: defaults.initialSeconds, in: 0...86_400)
            let factor = try reader.number("factor", default: defaults.factor, in: 1...100)
            let maxSeconds = try reader.number("max_seconds", default: max(defaults.maxSeconds, initial), in: initial...(7 * 86_400))
            let maxAge = try reader.has("max_age_seconds") ? reader.number("max_age_seconds", default: 0, in: 1...(30 * 86_400)) : nil
            // With an age bound, the attempt count is only a backstop.
            let maxAttempts = try reader.integer("max_attempts", default: maxAge == nil ? defaults.maxAttempts : 100, in: 1...100)
            policy = .exponential(Exponential(initialSeconds: initial, factor: factor, maxSeconds: maxSeconds,
                                              maxAttempts: maxAttempts, maxAgeSeconds: maxAge))
        case "schedule":
            guard let delays = try reader.array("delays_seconds") else { throw reader.fail("delays_seconds", "is required") }
            guard !delays.isEmpty, delays.count <= 99 else { throw reader.fail("delays_seconds", "must list 1 to 99 waits") }
            let seconds = try delays.enumerated().map { index, value -> Double in
                guard let number = value.doubleValue, (0...(7 * 86_400)).contains(number) else {
                    throw DispatcherError.invalidConfiguration(path: "\(reader.keyPath("delays_seconds"))[\(index)]",
                                                               message: "must be a number of seconds from 0 to 604800")
                }
                return number
            }
            let maxAge = try reader.has("max_age_seconds") ? reader.number("max_age_seconds", default: 0, in: 1...(30 * 86_400)) : nil
            policy = .schedule(Schedule(delaysSeconds: seconds, maxAgeSeconds: maxAge))
        default:
            throw reader.fail("policy", "'\(name)' is not one of one_retry, exponential, schedule")
        }
        try reader.rejectUnknownKeys()
        return policy
    }

    /// The config-shaped JSON object, as the store keeps it.
    package var jsonObject: [String: Any] {
        switch self {
        case .oneRetry(let delaySeconds):
            return ["policy": "one_retry", "delay_seconds": delaySeconds]
        case .exponential(let p):
            var object: [String: Any] = ["policy": "exponential", "initial_seconds": p.initialSeconds, "factor": p.factor,
                                         "max_seconds": p.maxSeconds, "max_attempts": p.maxAttempts]
            object["max_age_seconds"] = p.maxAgeSeconds
            return object
        case .schedule(let schedule):
            var object: [String: Any] = ["policy": "schedule", "delays_seconds": schedule.delaysSeconds]
            object["max_age_seconds"] = schedule.maxAgeSeconds
            return object
        }
    }
}
