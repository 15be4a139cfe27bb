import Foundation

/// Makes the attempts of one claimed delivery and decides their verdicts: the place where a
/// request is built (headers, token, signature), a response is judged by the endpoint's
/// success rule, and a retry is scheduled or given up.
struct AttemptRunner {
    let client: HTTPClient
    let leaseOwner: String
    let tokens: TokenCache

    /// A request that could not be built: nothing was sent.
    struct Unsendable: Error, CustomStringConvertible {
        let kind: AttemptErrorKind
        let description: String
    }

    /// The request headers of an attempt, in the order they are sent, with `env:NAME` values
    /// resolved, the bearer token and the signature.
    static func requestHeaders(for delivery: ClaimedDelivery, endpoint: Endpoint, userAgent: String, timestamp: Int,
                               bearerToken: String?) throws(Unsendable) -> [HeaderField] {
        var headers = [
            HeaderField("Content-Type", "application/json"),
            HeaderField("User-Agent", userAgent),
            HeaderField("webhook-id", delivery.eventID),
            HeaderField("webhook-timestamp", String(timestamp)),
        ]
        if !endpoint.signingSecrets.isEmpty {
            let secrets = try endpoint.signingSecrets.map { secret throws(Unsendable) -> String in
                guard let reference = EnvironmentReference(secret) else { return secret }
                guard let value = reference.value, WebhookSigner.problem(withSecret: value) == nil else {
                    throw Unsendable(kind: .auth, description: "signing secret environment variable \(reference.name) is not set to a whsec_ secret; nothing was sent")
                }
                return value
            }
            headers.append(HeaderField("webhook-signature",
                                       WebhookSigner.signature(id: delivery.eventID, timestamp: timestamp, body: delivery.body, secrets: secrets)))
        }
        if let bearerToken { headers.append(HeaderField("Authorization", "Bearer \(bearerToken)")) }
        for name in endpoint.headers.keys.sorted() {
            var value = endpoint.headers[name]!
            if let reference = EnvironmentReference(value) {
                guard let resolved = reference.value else {
                    throw Unsendable(kind: .other, description: "header \(name) comes from environment variable \(reference.name), which is not set; nothing was sent")
                }
                value = resolved
            }
            if let index = headers.firstIndex(where: { $0.hasName(name) }) {
                headers[index] = HeaderField(name, value)
            } else {
                headers.append(HeaderField(name, value))
            }
        }
        return headers
    }

    /// One claim's attempts: usually one; two when an OAuth endpoint answers 401 and the
    /// request is repeated at once with a fresh token.
    func attempts(_ delivery: ClaimedDelivery, endpoint: Endpoint) -> [AttemptResult] {
        let first = attempt(delivery, endpoint: endpoint, number: delivery.attemptNumber)
        guard first.status == 401, case .oauth2ClientCredentials(let credentials) = endpoint.auth, let token = first.token else {
            return [first.result]
        }
        tokens.invalidate(token, for: credentials)
        var interim = first.result
        interim.keepsLease = true
        interim.attempt.verdict = .retryScheduled(at: Date())
        interim.attempt.errorMessage = (interim.attempt.errorMessage ?? "") + "; retrying at once with a fresh token"
        return [interim, attempt(delivery, endpoint: endpoint, number: delivery.attemptNumber + 1).result]
    }

    private func attempt(_ delivery: ClaimedDelivery, endpoint: Endpoint, number: Int) -> (result: AttemptResult, status: Int?, token: String?) {
        let startedAt = Date()
        // one_retry promises an identical retry, so the timestamp (and signature) repeat.
        let timestampDate = endpoint.retry.repeatsRequestExactly ? (delivery.firstAttemptAt ?? startedAt) : startedAt
        let timestamp = Int(timestampDate.timeIntervalSince1970)
        var headers: [HeaderField] = []
        var token: String?
        let exchange: HTTPExchange
        do throws(Unsendable) {
            if case .oauth2ClientCredentials(let credentials) = endpoint.auth {
                do {
                    token = try tokens.token(for: credentials) { () throws(TokenError) in
                        try TokenRequest.fetch(credentials, with: client, timeoutSeconds: endpoint.timeoutSeconds)
                    }
                } catch {
                    throw Unsendable(kind: .auth, description: "no access token: \(error.description); nothing was sent")
                }
            }
            headers = try Self.requestHeaders(for: delivery, endpoint: endpoint, userAgent: client.userAgent, timestamp: timestamp, bearerToken: token)
            exchange = client.post(HTTPRequest(
                url: endpoint.url, headers: headers, body: delivery.body,
                timeoutSeconds: endpoint.timeoutSeconds, connectTimeoutSeconds: endpoint.connectTimeoutSeconds))
        } catch {
            exchange = HTTPExchange(status: nil, headers: [], body: [], bodyTruncated: false, errorKind: error.kind,
                                    errorMessage: error.description, durationMicroseconds: Int64(Date().timeIntervalSince(startedAt) * 1_000_000))
        }

        var errorKind = exchange.errorKind
        var errorMessage = exchange.errorMessage
        if errorKind == nil, let status = exchange.status,
           !endpoint.success.isSuccess(status: status, contentType: exchange.header("Content-Type")) {
            errorKind = .http
            errorMessage = Self.rejection(status: status, contentType: exchange.header("Content-Type"), rule: endpoint.success)
        }

        let verdict: AttemptVerdict
        if errorKind == nil {
            verdict = .succeeded
        } else {
            let retryAfter = [429, 503].contains(exchange.status ?? 0) ? RetryAfter.seconds(from: exchange.header("Retry-After")) : nil
            if let delay = endpoint.retry.delayAfterFailure(attemptsMade: number - delivery.retryBase, ageSeconds: Date().timeIntervalSince(delivery.createdAt),
                                                            retryAfterSeconds: retryAfter) {
                verdict = .retryScheduled(at: Date().addingTimeInterval(delay))
            } else {
                verdict = .failed
            }
        }

        let attempt = Attempt(
            number: number, startedAt: startedAt, durationMicroseconds: exchange.durationMicroseconds,
            url: endpoint.url, requestHeaders: HeaderRedaction.redact(headers, alsoSecret: HeaderRedaction.secretNames(of: endpoint)),
            responseStatus: exchange.status, responseHeaders: exchange.status == nil ? nil : HeaderRedaction.redact(exchange.headers),
            responseBody: exchange.status == nil ? nil : exchange.body, responseTruncated: exchange.bodyTruncated,
            errorKind: errorKind, errorMessage: errorMessage, verdict: verdict)
        var result = AttemptResult(deliveryID: delivery.deliveryID, endpointID: delivery.endpointID, leaseOwner: leaseOwner, attempt: attempt)
        result.encodeHeadersForRecording()
        return (result, exchange.status, token)
    }

    /// An attempt that could not be made because its endpoint was removed after the claim.
    func endpointMissing(_ delivery: ClaimedDelivery) -> AttemptResult {
        let attempt = Attempt(
            number: delivery.attemptNumber, startedAt: Date(), durationMicroseconds: 0, url: "",
            requestHeaders: [], responseStatus: nil, responseHeaders: nil, responseBody: nil, responseTruncated: false,
            errorKind: .other, errorMessage: "endpoint '\(delivery.endpointID)' no longer exists", verdict: .failed)
        return AttemptResult(deliveryID: delivery.deliveryID, endpointID: delivery.endpointID, leaseOwner: leaseOwner, attempt: attempt)
    }

    static func rejection(status: Int, contentType: String?, rule: SuccessRule) -> String {
        switch rule {
        case .any2xx:
            return "HTTP \(status) is not 2xx"
        case .json200Or204:
            if status == 200 {
                return "HTTP 200 with content type '\(contentType ?? "none")' is not JSON (success rule json_200_or_204)"
            }
            return "HTTP \(status) is neither 200 JSON nor 204 (success rule json_200_or_204)"
        }
    }
}
