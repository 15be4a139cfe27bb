import Foundation

/// Makes one attempt of a claimed delivery and decides its verdict: the place where a
/// response is judged by the endpoint's success rule and a retry is scheduled or given up.
struct AttemptRunner {
    let client: HTTPClient
    let leaseOwner: String
    let userAgent: String

    /// The request headers of an attempt, in the order they are sent.
    static func requestHeaders(for delivery: ClaimedDelivery, endpoint: Endpoint, userAgent: String, timestamp: Date) -> [HeaderField] {
        var headers = [
            HeaderField("Content-Type", "application/json"),
            HeaderField("User-Agent", userAgent),
            HeaderField("webhook-id", delivery.eventID),
            HeaderField("webhook-timestamp", String(Int(timestamp.timeIntervalSince1970))),
        ]
        for name in endpoint.headers.keys.sorted() {
            if let index = headers.firstIndex(where: { $0.name.caseInsensitiveCompare(name) == .orderedSame }) {
                headers[index] = HeaderField(name, endpoint.headers[name]!)
            } else {
                headers.append(HeaderField(name, endpoint.headers[name]!))
            }
        }
        return headers
    }

    func attempt(_ delivery: ClaimedDelivery, endpoint: Endpoint) -> AttemptResult {
        let startedAt = Date()
        let headers = Self.requestHeaders(for: delivery, endpoint: endpoint, userAgent: userAgent, timestamp: startedAt)
        let exchange = client.post(HTTPRequest(
            url: endpoint.url, headers: headers, body: delivery.body,
            timeoutSeconds: endpoint.timeoutSeconds, connectTimeoutSeconds: endpoint.connectTimeoutSeconds))

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
            url: endpoint.url, requestHeaders: HeaderRedaction.redact(headers),
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
