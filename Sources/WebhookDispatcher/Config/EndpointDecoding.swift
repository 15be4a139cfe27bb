import Foundation

/// Which destination URLs an endpoint may have. The connect-time address check lives in
/// `Delivery/DestinationPolicy`; this is the part that can be judged from the URL alone.
public struct URLPolicy: Sendable, Equatable {
    /// Only `https` URLs (the default; the verification seed requires it).
    public var requireHTTPS: Bool

    public init(requireHTTPS: Bool = true) {
        self.requireHTTPS = requireHTTPS
    }

    /// Returns a message saying what is wrong with `url`, or nil when it is acceptable.
    public func problem(with url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty else {
            return "'\(url)' is not an absolute URL (expected https://host/path)"
        }
        guard scheme == "https" || scheme == "http" else { return "scheme '\(scheme)' is not http or https" }
        if requireHTTPS && scheme != "https" {
            return "'\(url)' is not https; set require_https to false to allow plain http (tests and local development only)"
        }
        if components.user != nil || components.password != nil {
            return "credentials in the URL would be logged; put them in headers instead"
        }
        if components.fragment != nil { return "a URL fragment (#...) is never sent; remove it" }
        return nil
    }
}

/// A config value written `env:NAME`: the secret lives in the environment, not in files.
struct EnvironmentReference: Equatable {
    let name: String

    init?(_ value: String) {
        guard value.hasPrefix("env:"), value.count > 4 else { return nil }
        name = String(value.dropFirst(4))
    }

    /// The variable's value now, or nil when it is not set.
    var value: String? { ProcessInfo.processInfo.environment[name] }
}

/// Header names the dispatcher sets itself; an endpoint may not override them.
let reservedHeaderNames: Set<String> = [
    "content-length", "host", "transfer-encoding", "connection", "expect",
    "webhook-id", "webhook-timestamp", "webhook-signature",
]

extension Endpoint {
    /// Decodes an endpoint from its config object (`tenants[i].endpoints[j]`), the same shape
    /// the store keeps.
    static func decode(_ reader: JSONObjectReader, tenantID: String, urlPolicy: URLPolicy) throws -> Endpoint {
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
            for (name, value) in headers {
                guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
                    throw headerReader.fail(name, "is not a valid header name")
                }
                guard reservedHeaderNames.contains(name.lowercased()) == false else {
                    throw headerReader.fail(name, "is set by the dispatcher and cannot be configured")
                }
                guard !value.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
                    throw headerReader.fail(name, "header values may not contain line breaks")
                }
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
        try reader.rejectUnknownKeys()
        return Endpoint(id: id, tenantID: tenantID, url: url, eventFilters: filters, headers: headers, secretHeaders: secretHeaders,
                        timeoutSeconds: timeout, connectTimeoutSeconds: connectTimeout, maxConcurrency: maxConcurrency,
                        retry: retry, success: success, enabled: enabled)
    }
}

/// RFC 9110 token characters.
private func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}

extension RetryPolicy {
    /// Decodes `{"policy": "one_retry", "delay_seconds": 5}` or
    /// `{"policy": "exponential", "initial_seconds": 5, "factor": 2, "max_seconds": 3600, "max_attempts": 10}`.
    static func decode(_ reader: JSONObjectReader) throws -> RetryPolicy {
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
            let maxAttempts = try reader.integer("max_attempts", default: defaults.maxAttempts, in: 1...100)
            policy = .exponential(Exponential(initialSeconds: initial, factor: factor, maxSeconds: maxSeconds, maxAttempts: maxAttempts))
        default:
            throw reader.fail("policy", "'\(name)' is not one of one_retry, exponential")
        }
        try reader.rejectUnknownKeys()
        return policy
    }

    /// The config-shaped JSON object, as the store keeps it.
    var jsonObject: [String: Any] {
        switch self {
        case .oneRetry(let delaySeconds):
            return ["policy": "one_retry", "delay_seconds": delaySeconds]
        case .exponential(let p):
            return ["policy": "exponential", "initial_seconds": p.initialSeconds, "factor": p.factor,
                    "max_seconds": p.maxSeconds, "max_attempts": p.maxAttempts]
        }
    }
}
