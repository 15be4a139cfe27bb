/// How deliveries to an endpoint authenticate.
public enum EndpointAuth: Sendable, Equatable {
    /// OAuth 2.0 client credentials (the onboarding seed): a token from `tokenURL`, sent as
    /// `Authorization: Bearer <token>`. `clientSecret` may be `env:NAME`.
    case oauth2ClientCredentials(OAuth2ClientCredentials)
}

public struct OAuth2ClientCredentials: Sendable, Equatable, Hashable {
    public var tokenURL: String
    public var clientID: String
    public var clientSecret: String
    public var scope: String?

    public init(tokenURL: String, clientID: String, clientSecret: String, scope: String? = nil) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scope = scope
    }
}

/// When an endpoint that keeps failing stops being tried.
public struct CircuitPolicy: Sendable, Equatable {
    /// Consecutive failed attempts that open the circuit: the endpoint's deliveries then wait,
    /// and one probe attempt is made per cool-down.
    public var failureThreshold: Int
    public var cooldownSeconds: Double
    /// Failing without a success for this long disables the endpoint.
    public var disableAfterSeconds: Double

    public init(failureThreshold: Int = 20, cooldownSeconds: Double = 60, disableAfterSeconds: Double = 5 * 86_400) {
        self.failureThreshold = failureThreshold
        self.cooldownSeconds = cooldownSeconds
        self.disableAfterSeconds = disableAfterSeconds
    }
}
