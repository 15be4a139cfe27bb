import DispatcherModel
import Foundation

/// OAuth 2.0 client-credentials tokens, one per (token URL, client id), shared by every worker
/// of the process and reused until shortly before they expire.
///
/// Fetches are single-flight: while one worker asks the token endpoint, the others wait for
/// its answer, so a burst of deliveries to a cold endpoint makes one token request. A failed
/// fetch is shared the same way (and remembered for a second) so a broken token endpoint is
/// not stampeded.
///
/// `@unchecked Sendable`: `entries` is read and written only with `condition` locked.
package final class TokenCache: @unchecked Sendable {
    struct Key: Hashable {
        let tokenURL: String
        let clientID: String
    }

    private enum Entry {
        case fetching
        case valid(token: String, renewAt: Date)
        case failed(TokenError, until: Date)
    }

    private let condition = NSCondition()
    private var entries: [Key: Entry] = [:]
    private var succeededFetches = 0
    private var failedFetches = 0

    /// Token requests made so far, by how they ended (for `/metrics`).
    package var fetchCounts: (succeeded: Int, failed: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (succeededFetches, failedFetches)
    }

    package init() {}

    /// A token for `credentials`; `fetch` runs on the calling thread when a new one is needed.
    package func token(for credentials: OAuth2ClientCredentials, fetch: () throws(TokenError) -> (token: String, expiresIn: Double)) throws(TokenError) -> String {
        let key = Key(tokenURL: credentials.tokenURL, clientID: credentials.clientID)
        condition.lock()
        while true {
            let now = Date()
            switch entries[key] {
            case .valid(let token, let renewAt) where renewAt > now:
                condition.unlock()
                return token
            case .failed(let error, let until) where until > now:
                condition.unlock()
                throw error
            case .fetching:
                condition.wait()
                continue
            default:
                break
            }
            entries[key] = .fetching
            condition.unlock()
            let outcome = Result { () throws(TokenError) in try fetch() }
            condition.lock()
            switch outcome {
            case .success(let fresh):
                succeededFetches += 1
                // Renew a little early: 10% of the lifetime, at most 30 seconds.
                let margin = min(30, fresh.expiresIn * 0.1)
                entries[key] = .valid(token: fresh.token, renewAt: Date().addingTimeInterval(fresh.expiresIn - margin))
                condition.broadcast()
                condition.unlock()
                return fresh.token
            case .failure(let error):
                failedFetches += 1
                entries[key] = .failed(error, until: Date().addingTimeInterval(1))
                condition.broadcast()
                condition.unlock()
                throw error
            }
        }
    }

    /// The token for `credentials` if one is held and not due for renewal; never fetches.
    package func cachedToken(for credentials: OAuth2ClientCredentials) -> String? {
        let key = Key(tokenURL: credentials.tokenURL, clientID: credentials.clientID)
        condition.lock()
        defer { condition.unlock() }
        if case .valid(let token, let renewAt) = entries[key], renewAt > Date() { return token }
        return nil
    }

    /// Forgets `token` (the receiver answered 401), unless another worker already replaced it.
    package func invalidate(_ token: String, for credentials: OAuth2ClientCredentials) {
        let key = Key(tokenURL: credentials.tokenURL, clientID: credentials.clientID)
        condition.lock()
        if case .valid(let cached, _) = entries[key], cached == token { entries[key] = nil }
        condition.unlock()
    }
}

/// Why no token could be had. The message never contains the secret or a token.
package struct TokenError: Error, CustomStringConvertible {
    package let description: String
}

/// The token request of the client-credentials grant (RFC 6749 §4.4), as the onboarding seed
/// describes it: a form POST with HTTP Basic client authentication.
package enum TokenRequest {
    package static func fetch(_ credentials: OAuth2ClientCredentials, with client: HTTPClient, timeoutSeconds: Double,
                              proxy: String? = nil) throws(TokenError) -> (token: String, expiresIn: Double) {
        var secret = credentials.clientSecret
        if let reference = EnvironmentReference(secret) {
            guard let value = reference.value else { throw TokenError(description: "client_secret comes from environment variable \(reference.name), which is not set") }
            secret = value
        }
        var form = "grant_type=client_credentials"
        if let scope = credentials.scope { form += "&scope=" + formEncode(scope) }
        let basic = Data("\(credentials.clientID):\(secret)".utf8).base64EncodedString()
        let exchange = client.post(HTTPRequest(
            url: credentials.tokenURL,
            headers: [HeaderField("Content-Type", "application/x-www-form-urlencoded"), HeaderField("Accept", "application/json"),
                      HeaderField("Authorization", "Basic \(basic)")],
            body: Array(form.utf8), timeoutSeconds: timeoutSeconds, connectTimeoutSeconds: min(timeoutSeconds, 5), proxy: proxy))
        let endpoint = "token endpoint \(credentials.tokenURL)"
        if let kind = exchange.errorKind {
            throw TokenError(description: "\(endpoint) failed (\(kind)): \(exchange.errorMessage ?? "")")
        }
        guard let status = exchange.status, (200...299).contains(status) else {
            throw TokenError(description: "\(endpoint) answered HTTP \(exchange.status ?? 0)")
        }
        guard case .object(let members)? = JSONValue(parsing: exchange.body) else {
            throw TokenError(description: "\(endpoint) did not answer a JSON object")
        }
        let fields = Dictionary(members, uniquingKeysWith: { _, last in last })
        guard case .string(let token)? = fields["access_token"], !token.isEmpty else {
            throw TokenError(description: "\(endpoint) answered without an access_token")
        }
        // A number, or a numeric string as some servers send; never a boolean.
        let expiresIn: Double?
        if case .string(let text)? = fields["expires_in"] { expiresIn = Double(text) } else { expiresIn = fields["expires_in"]?.doubleValue }
        guard let expiresIn, expiresIn > 0 else {
            throw TokenError(description: "\(endpoint) answered without a positive expires_in")
        }
        return (token, expiresIn)
    }

    /// application/x-www-form-urlencoded for one value.
    static func formEncode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._*")
        return value.addingPercentEncoding(withAllowedCharacters: allowed)?.replacingOccurrences(of: "%20", with: "+") ?? value
    }
}
