import Foundation

/// Makes one attempt of a claimed delivery and decides its verdict: the place where a
/// response is judged by the endpoint's success rule and a retry is scheduled or given up.
struct AttemptRunner {
    let client: HTTPClient
    let leaseOwner: String
    let userAgent: String

    /// The request headers of an attempt, in the order they are sent, with `env:NAME` values
    /// resolved. Throws (naming the header) when such a variable is not set.
    static func requestHeaders(for delivery: ClaimedDelivery, endpoint: Endpoint, userAgent: String, timestamp: Date) throws -> [HeaderField] {
        var headers = [
            HeaderField("Content-Type", "application/json"),
            HeaderField("User-Agent", userAgent),
            HeaderField("webhook-id", delivery.eventID),
            HeaderField("webhook-timestamp", String(Int(timestamp.timeIntervalSince1970))),
        ]
        for name in endpoint.headers.keys.sorted() {
            var value = endpoint.headers[name]!
            if let reference = EnvironmentReference(value) {
                guard let resolved = reference.value else {
                    throw MissingEnvironmentVariable(header: name, variable: reference.name)
                }
                value = resolved
            }
            if let index = headers.firstIndex(where: { $0.name.caseInsensitiveCompare(name) == .orderedSame }) {
                headers[index] = HeaderField(name, value)
            } else {
                headers.append(HeaderField(name, value))
            }
        }
        return headers
    }

    struct MissingEnvironmentVariable: Error, CustomStringConvertible {
        let header: String
        let variable: String
        var description: String { "header \(header) comes from environment variable \(variable), which is not set; nothing was sent" }
    }

    /// Header names whose values the audit log must not keep, beyond the usual credential names.
    static func secretHeaderNames(of endpoint: Endpoint) -> Set<String> {
        Set(endpoint.secretHeaders.map { $0.lowercased() })
            .union(endpoint.headers.filter { EnvironmentReference($0.value) != nil }.keys.map { $0.lowercased() })
    }

    func attempt(_ delivery: ClaimedDelivery, endpoint: Endpoint) -> AttemptResult {
        let startedAt = Date()
        let secretNames = Self.secretHeaderNames(of: endpoint)
        let headers: [HeaderField]
        let exchange: HTTPExchange
        do {
            headers = try Self.requestHeaders(for: delivery, endpoint: endpoint, userAgent: userAgent, timestamp: startedAt)
            exchange = client.post(HTTPRequest(
                url: endpoint.url, headers: headers, body: delivery.body,
                timeoutSeconds: endpoint.timeoutSeconds, connectTimeoutSeconds: endpoint.connectTimeoutSeconds))
        } catch {
            headers = []
            exchange = HTTPExchange(status: nil, headers: [], body: [], bodyTruncated: false, errorKind: .other,
                                    errorMessage: "\(error)", durationMicroseconds: 0)
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
        } else if let delay = endpoint.retry.delayAfterFailure(attemptsMade: delivery.attemptNumber) {
            verdict = .retryScheduled(at: Date().addingTimeInterval(delay))
        } else {
            verdict = .failed
        }

        let attempt = Attempt(
            number: delivery.attemptNumber, startedAt: startedAt, durationMicroseconds: exchange.durationMicroseconds,
            url: endpoint.url, requestHeaders: HeaderRedaction.redact(headers, alsoSecret: secretNames),
            responseStatus: exchange.status, responseHeaders: exchange.status == nil ? nil : HeaderRedaction.redact(exchange.headers),
            responseBody: exchange.status == nil ? nil : exchange.body, responseTruncated: exchange.bodyTruncated,
            errorKind: errorKind, errorMessage: errorMessage, verdict: verdict)
        return AttemptResult(deliveryID: delivery.deliveryID, endpointID: delivery.endpointID, leaseOwner: leaseOwner, attempt: attempt)
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
