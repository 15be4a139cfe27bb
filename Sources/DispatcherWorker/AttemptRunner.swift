import DispatcherDelivery
import DispatcherModel
import DispatcherStore
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
        if let trace = delivery.traceContext {
            // A span of its own for each attempt, in the producer's trace (an all-zero id is invalid).
            var span = Digest.randomBytes(8)
            if span.allSatisfy({ $0 == 0 }) { span[7] = 1 }
            headers.append(HeaderField("traceparent", trace.attemptTraceparent(spanID: span)))
            if let state = trace.tracestate { headers.append(HeaderField("tracestate", state)) }
        }
        if !endpoint.signingSecrets.isEmpty {
            let scheme = endpoint.signatureScheme
            let secrets = try endpoint.signingSecrets.map { secret throws(Unsendable) -> String in
                guard let reference = EnvironmentReference(secret) else { return secret }
                guard let value = reference.value, scheme.problem(withSecret: value) == nil else {
                    throw Unsendable(kind: .auth, description: "signing secret environment variable \(reference.name) is not set to a \(scheme.name) secret; nothing was sent")
                }
                return value
            }
            guard let signature = WebhookSigner.signatureHeader(scheme: scheme, id: delivery.eventID, timestamp: timestamp,
                                                                body: delivery.body, secrets: secrets) else {
                throw Unsendable(kind: .auth, description: "no signing secret of endpoint \(endpoint.id) could sign (\(scheme.name)); nothing was sent")
            }
            headers.append(signature)
        }
        if let bearerToken { headers.append(HeaderField("Authorization", "Bearer \(bearerToken)")) }
        for (name, configured) in endpoint.headers.sorted(by: { $0.key < $1.key }) {
            var value = configured
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

    /// The proxy a request to `endpoint` goes through: its own, else the configured one;
    /// `"none"` for none; `env:NAME` read now.
    func proxy(for endpoint: Endpoint) throws(Unsendable) -> String? {
        do {
            return try ProxyAddress.resolve(endpoint.proxy ?? client.defaultProxy)
        } catch {
            throw Unsendable(kind: .other, description: "\(error); nothing was sent")
        }
    }

    /// The endpoint's TLS settings with `env:` certificates and keys read now.
    static func requestTLS(_ tls: EndpointTLS?) throws(Unsendable) -> RequestTLS? {
        do {
            return try RequestTLS.resolving(tls)
        } catch {
            throw Unsendable(kind: .tls, description: "\(error.description); nothing was sent")
        }
    }

    /// One claim's attempts: usually one; two when an OAuth endpoint answers 401 and the
    /// request is repeated at once with a fresh token.
    func attempts(_ delivery: ClaimedDelivery, endpoint: Endpoint) -> [AttemptResult] {
        let first = attempt(delivery, endpoint: endpoint, number: delivery.attemptNumber)
        guard let interim = interimAfterRejectedToken(first, endpoint: endpoint) else { return [first.result] }
        return [interim, retryWithFreshToken(delivery, endpoint: endpoint)]
    }

    /// When an OAuth endpoint answered 401 to a token from the cache: the attempt as an interim
    /// one (its lease kept, a retry at once), and the token forgotten so the retry fetches anew.
    func interimAfterRejectedToken(_ first: Finished, endpoint: Endpoint) -> AttemptResult? {
        guard first.status == 401, case .oauth2ClientCredentials(let credentials) = endpoint.auth, let token = first.token else {
            return nil
        }
        tokens.invalidate(token, for: credentials)
        var interim = first.result
        interim.keepsLease = true
        interim.attempt.verdict = .retryScheduled(at: Date())
        interim.attempt.errorMessage = (interim.attempt.errorMessage ?? "") + "; retrying at once with a fresh token"
        return interim
    }

    /// The attempt after `interimAfterRejectedToken`: fetches a token (blocking) and sends.
    func retryWithFreshToken(_ delivery: ClaimedDelivery, endpoint: Endpoint) -> AttemptResult {
        attempt(delivery, endpoint: endpoint, number: delivery.attemptNumber + 1).result
    }

    /// A finished attempt, with what the 401 rule needs.
    struct Finished {
        var result: AttemptResult
        let status: Int?
        let token: String?
    }

    /// An attempt's request, built (or why none can be sent), before it goes out.
    struct Prepared {
        let delivery: ClaimedDelivery
        let endpoint: Endpoint
        let number: Int
        let startedAt: Date
        let headers: [HeaderField]
        let token: String?
        let request: Result<HTTPRequest, Unsendable>
    }

    /// The token an endpoint's requests carry: nil without OAuth; fetched (blocking, on this
    /// thread) when the cache holds none.
    func token(for endpoint: Endpoint) -> Result<String?, Unsendable> {
        guard case .oauth2ClientCredentials(let credentials) = endpoint.auth else { return .success(nil) }
        let proxy: String?
        do {
            proxy = try self.proxy(for: endpoint)
        } catch {
            return .failure(error)
        }
        do {
            return .success(try tokens.token(for: credentials) { () throws(TokenError) in
                try TokenRequest.fetch(credentials, with: client, timeoutSeconds: endpoint.timeoutSeconds, proxy: proxy)
            })
        } catch {
            return .failure(Unsendable(kind: .auth, description: "no access token: \(error.description); nothing was sent"))
        }
    }

    /// Builds attempt `number`'s request with `token` (from `token(for:)` or the cache).
    func prepare(_ claimed: ClaimedDelivery, endpoint: Endpoint, number: Int, startedAt: Date,
                 token: Result<String?, Unsendable>) -> Prepared {
        var delivery = claimed
        // A Slack-compatible endpoint gets a sentence, signed as sent.
        if endpoint.bodyFormat == .slack {
            delivery.body = SlackMessage.body(eventType: claimed.eventType, eventID: claimed.eventID, body: claimed.body)
        }
        // one_retry promises an identical retry, so the timestamp (and signature) repeat.
        let timestampDate = endpoint.retry.repeatsRequestExactly ? (delivery.firstAttemptAt ?? startedAt) : startedAt
        let timestamp = Int(timestampDate.timeIntervalSince1970)
        var headers: [HeaderField] = []
        let request = Result { () throws(Unsendable) -> HTTPRequest in
            let bearer = try token.get()
            headers = try Self.requestHeaders(for: delivery, endpoint: endpoint, userAgent: client.userAgent, timestamp: timestamp, bearerToken: bearer)
            return HTTPRequest(url: endpoint.url, headers: headers, body: delivery.body,
                               timeoutSeconds: endpoint.timeoutSeconds, connectTimeoutSeconds: endpoint.connectTimeoutSeconds,
                               tls: try Self.requestTLS(endpoint.tls), proxy: try proxy(for: endpoint), http2: endpoint.http2)
        }
        return Prepared(delivery: delivery, endpoint: endpoint, number: number, startedAt: startedAt, headers: headers,
                        token: try? token.get(), request: request)
    }

    private func attempt(_ delivery: ClaimedDelivery, endpoint: Endpoint, number: Int) -> Finished {
        let startedAt = Date()
        let prepared = prepare(delivery, endpoint: endpoint, number: number, startedAt: startedAt, token: token(for: endpoint))
        return finish(prepared, exchange: (try? prepared.request.get()).map(client.post))
    }

    /// Judges the exchange by the endpoint's success rule and retry policy; `exchange` is nil
    /// when the request could not be built.
    func finish(_ prepared: Prepared, exchange sent: HTTPExchange?) -> Finished {
        let endpoint = prepared.endpoint, delivery = prepared.delivery, number = prepared.number
        let exchange: HTTPExchange
        switch (sent, prepared.request) {
        case (let sent?, _):
            exchange = sent
        case (nil, let request):
            // A request that could not be built; a built one always comes back with its exchange.
            let error: Unsendable
            switch request {
            case .failure(let failure): error = failure
            case .success: error = Unsendable(kind: .other, description: "the request was built but never sent")
            }
            exchange = HTTPExchange(status: nil, headers: [], body: [], bodyTruncated: false, errorKind: error.kind,
                                    errorMessage: error.description, durationMicroseconds: Int64(Date().timeIntervalSince(prepared.startedAt) * 1_000_000))
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
            number: number, startedAt: prepared.startedAt, durationMicroseconds: exchange.durationMicroseconds,
            url: endpoint.url, requestHeaders: HeaderRedaction.redact(prepared.headers, alsoSecret: HeaderRedaction.secretNames(of: endpoint)),
            responseStatus: exchange.status, responseHeaders: exchange.status == nil ? nil : HeaderRedaction.redact(exchange.headers),
            responseBody: exchange.status == nil ? nil : exchange.body, responseTruncated: exchange.bodyTruncated,
            errorKind: errorKind, errorMessage: errorMessage, verdict: verdict)
        var result = AttemptResult(deliveryID: delivery.deliveryID, endpointID: delivery.endpointID, leaseOwner: leaseOwner, attempt: attempt)
        result.encodeHeadersForRecording()
        return Finished(result: result, status: exchange.status, token: prepared.token)
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
