import Foundation

/// One receiving URL of a tenant, with everything that shapes a delivery to it.
public struct Endpoint: Sendable, Equatable {
    /// Unique across tenants; names the endpoint in the log and the CLI.
    public var id: String
    public var tenantID: String
    public var url: String
    /// Event-type patterns (`checkin.*`, `visit.ended`); empty means every type.
    public var eventFilters: [String]
    /// Custom request headers, sent on every attempt. A value written `env:NAME` is read from
    /// the environment variable NAME when the request is made (and never stored). Values are
    /// redacted in the audit log when the name looks like a credential (see `HeaderRedaction`),
    /// comes from the environment, or is listed in `secretHeaders`.
    public var headers: [String: String]
    /// Further header names whose values are secrets.
    public var secretHeaders: [String]
    public var timeoutSeconds: Double
    public var connectTimeoutSeconds: Double
    /// In-flight deliveries to this endpoint per `dispatcher serve` process.
    public var maxConcurrency: Int
    public var retry: RetryPolicy
    public var success: SuccessRule
    public var enabled: Bool
    public var auth: EndpointAuth?
    /// Signing secrets (or `env:NAME`) of `signatureScheme`: `whsec_<base64>` for Standard
    /// Webhooks, `whsk_<base64>` for its ed25519 form, text for the hex scheme; two during rotation.
    public var signingSecrets: [String]
    public var signatureScheme: SignatureScheme
    /// Client certificate, private CA and pinned key, when the receiver needs them.
    public var tls: EndpointTLS?
    /// An HTTP proxy every request to this endpoint goes through (`http://host:port`, with
    /// `user:password@` allowed, or `env:NAME`), for receivers that allowlist source addresses;
    /// nil uses the config's `proxy`, `"none"` none.
    public var proxy: String?
    /// Offer HTTP/2 (the receiver may take it, many requests then sharing one connection).
    /// Off by default: for webhook-sized requests HTTP/1.1 over kept-alive connections costs
    /// less CPU at both ends (README "Performance").
    public var http2: Bool
    /// At most this many requests a second, across every `serve` process (a token bucket the
    /// claims share, bursting to a tenth of a second's worth); nil for no limit.
    public var rateLimitPerSecond: Double?
    /// `.slack` sends `{"text": "..."}` instead of the event's bytes, so a Slack-compatible
    /// incoming-webhook URL works as an alert channel (operational events read as sentences).
    public var bodyFormat: BodyFormat
    /// Deliver events of one ordering key one at a time, in enqueue order.
    public var ordered: Bool
    public var circuit: CircuitPolicy

    public init(
        id: String,
        tenantID: String,
        url: String,
        eventFilters: [String] = [],
        headers: [String: String] = [:],
        secretHeaders: [String] = [],
        timeoutSeconds: Double = 10,
        connectTimeoutSeconds: Double = 5,
        maxConcurrency: Int = 4,
        retry: RetryPolicy = .default,
        success: SuccessRule = .any2xx,
        enabled: Bool = true,
        auth: EndpointAuth? = nil,
        signingSecrets: [String] = [],
        signatureScheme: SignatureScheme = .standardWebhooks,
        tls: EndpointTLS? = nil,
        proxy: String? = nil,
        http2: Bool = false,
        rateLimitPerSecond: Double? = nil,
        bodyFormat: BodyFormat = .event,
        ordered: Bool = false,
        circuit: CircuitPolicy = CircuitPolicy()
    ) {
        self.id = id
        self.tenantID = tenantID
        self.url = url
        self.eventFilters = eventFilters
        self.headers = headers
        self.secretHeaders = secretHeaders
        self.timeoutSeconds = timeoutSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.maxConcurrency = maxConcurrency
        self.retry = retry
        self.success = success
        self.enabled = enabled
        self.auth = auth
        self.signingSecrets = signingSecrets
        self.signatureScheme = signatureScheme
        self.tls = tls
        self.proxy = proxy
        self.http2 = http2
        self.rateLimitPerSecond = rateLimitPerSecond
        self.bodyFormat = bodyFormat
        self.ordered = ordered
        self.circuit = circuit
    }

    /// Whether an event of `type` is delivered here. Patterns are globs: `*` matches any run
    /// of characters, so `visit.*` matches `visit.note.signed_and_sent`. The store runs the
    /// same test in SQL (`GLOB`) when it fans an event out.
    public func accepts(eventType type: String) -> Bool {
        eventFilters.isEmpty || eventFilters.contains { EventType.glob($0, matches: type) }
    }
}

/// What an endpoint is sent as the body.
public enum BodyFormat: String, Sendable, Equatable, CaseIterable {
    /// The event's bytes, unchanged (the default).
    case event = "json"
    /// `{"text": "..."}` for Slack-compatible incoming webhooks.
    case slack
}

/// An endpoint with its health, as `dispatcher endpoints list` shows it.
package struct EndpointStatus: Sendable, Equatable {
    package var endpoint: Endpoint
    /// Failed attempts since the last success.
    package var consecutiveFailures: Int
    /// When the current run of failures began.
    package var failingSince: Date?
    /// While in the future, the circuit is open: the endpoint's deliveries wait.
    package var circuitOpenUntil: Date?
    /// Set when the dispatcher disabled the endpoint itself.
    package var disabledReason: String?
    /// `"config"` while the config file names the endpoint; nil when it lives in the store.
    package var managedBy: String?
    /// Each signing secret's age and, during a rotation, its end (never its value).
    package var secrets: [SigningSecretInfo] = []

    package var isManagedByConfig: Bool { managedBy == "config" }

    package func isCircuitOpen(at now: Date = Date()) -> Bool {
        circuitOpenUntil.map { $0 > now } ?? false
    }

    package init(endpoint: Endpoint, consecutiveFailures: Int, failingSince: Date? = nil, circuitOpenUntil: Date? = nil, disabledReason: String? = nil) {
        self.endpoint = endpoint
        self.consecutiveFailures = consecutiveFailures
        self.failingSince = failingSince
        self.circuitOpenUntil = circuitOpenUntil
        self.disabledReason = disabledReason
    }
}
