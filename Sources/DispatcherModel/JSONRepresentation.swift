import Foundation

/// The snake_case JSON shapes of the log, shared by `dispatcher log --json`, `show --json`
/// and anything else that prints deliveries (one definition, so they cannot drift apart).
package enum JSONRepresentation {
    /// One compact line with sorted keys.
    package static func line(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }

    package static func delivery(_ delivery: Delivery) -> [String: Any] {
        [
            "id": delivery.id,
            "event_id": delivery.eventID,
            "tenant_id": delivery.tenantID,
            "endpoint_id": delivery.endpointID,
            "event_type": delivery.eventType,
            "status": delivery.status.rawValue,
            "attempts": delivery.attemptCount,
            "last_http_status": delivery.lastHTTPStatus ?? NSNull(),
            "last_error": delivery.lastError ?? NSNull(),
            "next_attempt_at": delivery.nextAttemptAt.map(Clock.iso8601) ?? NSNull(),
            "created_at": Clock.iso8601(delivery.createdAt),
            "updated_at": Clock.iso8601(delivery.updatedAt),
        ]
    }

    package static func attempt(_ attempt: Attempt) -> [String: Any] {
        var object: [String: Any] = [
            "number": attempt.number,
            "started_at": Clock.iso8601(attempt.startedAt),
            "duration_ms": Double(attempt.durationMicroseconds) / 1000,
            "url": attempt.url,
            "request_headers": headers(attempt.requestHeaders),
            "response_status": attempt.responseStatus ?? NSNull(),
            "response_headers": attempt.responseHeaders.map(headers) ?? NSNull(),
            "response_truncated": attempt.responseTruncated,
            "error_kind": attempt.errorKind?.rawValue ?? NSNull(),
            "error_message": attempt.errorMessage ?? NSNull(),
        ]
        switch attempt.verdict {
        case .succeeded: object["verdict"] = "succeeded"; object["next_attempt_at"] = NSNull()
        case .failed: object["verdict"] = "failed"; object["next_attempt_at"] = NSNull()
        case .retryScheduled(let at): object["verdict"] = "retry"; object["next_attempt_at"] = Clock.iso8601(at)
        }
        // Text when it is text; base64 (under another key) when a receiver answered binary.
        if let body = attempt.responseBody {
            if let text = String(validating: body, as: UTF8.self) {
                object["response_body"] = text
            } else {
                object["response_body"] = NSNull()
                object["response_body_base64"] = Data(body).base64EncodedString()
            }
        } else {
            object["response_body"] = NSNull()
        }
        return object
    }

    /// The event, its exact body as a string, and every delivery with every attempt.
    package static func eventRecord(_ record: EventRecord) -> [String: Any] {
        [
            "event": [
                "id": record.event.id,
                "tenant_id": record.event.tenantID,
                "type": record.event.type,
                "created_at": Clock.iso8601(record.event.createdAt),
                "body": String(decoding: record.event.body, as: UTF8.self),
                "traceparent": record.event.traceContext?.traceparent ?? NSNull(),
                "tracestate": record.event.traceContext?.tracestate ?? NSNull(),
            ] as [String: Any],
            "deliveries": record.deliveries.map { entry -> [String: Any] in
                var object = delivery(entry.delivery)
                object["attempt_log"] = entry.attempts.map(attempt)
                return object
            },
        ]
    }

    /// An endpoint as configured, with every secret shown as `***`, and its health.
    package static func endpointStatus(_ status: EndpointStatus, now: Date = Date()) -> [String: Any] {
        let endpoint = status.endpoint
        let secretNames = HeaderRedaction.secretNames(of: endpoint)
        var headers: [String: String] = [:]
        for (name, value) in endpoint.headers {
            let secret = HeaderRedaction.isSecret(name) || secretNames.contains(name.lowercased())
            headers[name] = secret ? HeaderRedaction.placeholder : value
        }
        var object: [String: Any] = [
            "id": endpoint.id,
            "tenant_id": endpoint.tenantID,
            "url": endpoint.url,
            "events": endpoint.eventFilters,
            "headers": headers,
            "timeout_seconds": endpoint.timeoutSeconds,
            "connect_timeout_seconds": endpoint.connectTimeoutSeconds,
            "max_concurrency": endpoint.maxConcurrency,
            "retry": endpoint.retry.jsonObject,
            "success": endpoint.success.rawValue,
            "enabled": endpoint.enabled,
            "ordered": endpoint.ordered,
            "signing": endpoint.signingSecrets.isEmpty ? NSNull()
                : endpoint.signatureScheme.configObject(secrets: endpoint.signingSecrets.map { _ in HeaderRedaction.placeholder }),
            "circuit": ["failure_threshold": endpoint.circuit.failureThreshold, "cooldown_seconds": endpoint.circuit.cooldownSeconds,
                        "disable_after_seconds": endpoint.circuit.disableAfterSeconds] as [String: Any],
            "consecutive_failures": status.consecutiveFailures,
            "failing_since": status.failingSince.map(Clock.iso8601) ?? NSNull(),
            "circuit_state": circuitState(status, now: now),
            "circuit_open_until": status.circuitOpenUntil.map(Clock.iso8601) ?? NSNull(),
            "disabled_reason": status.disabledReason ?? NSNull(),
            "tls": endpoint.tls?.configObject ?? NSNull(),
            "proxy": endpoint.proxy.map(ProxyAddress.redacted) ?? NSNull(),
            "http2": endpoint.http2,
            "rate_limit_per_second": endpoint.rateLimitPerSecond ?? NSNull(),
            "body_format": endpoint.bodyFormat.rawValue,
        ]
        if case .oauth2ClientCredentials(let credentials)? = endpoint.auth {
            var auth: [String: Any] = ["type": "oauth2_client_credentials", "token_url": credentials.tokenURL,
                                       "client_id": credentials.clientID, "client_secret": HeaderRedaction.placeholder]
            auth["scope"] = credentials.scope
            object["auth"] = auth
        } else {
            object["auth"] = NSNull()
        }
        object["managed_by"] = status.managedBy ?? "store"
        object["signing_secrets"] = status.secrets.map { info -> [String: Any] in
            ["created_at": info.createdAt.map(Clock.iso8601) ?? NSNull(), "expires_at": info.expiresAt.map(Clock.iso8601) ?? NSNull()]
        }
        return object
    }

    /// `endpointStatus` as the control panel shows it: every header value written `***` (they are
    /// write-only there), and for a tenant without the operator's transport settings (TLS file
    /// paths, the proxy), which are not theirs to see.
    package static func endpointForPanel(_ status: EndpointStatus, tenantView: Bool, now: Date = Date()) -> [String: Any] {
        var object = endpointStatus(status, now: now)
        object["headers"] = status.endpoint.headers.mapValues { _ in HeaderRedaction.placeholder }
        if tenantView {
            object["tls"] = nil
            object["proxy"] = nil
        }
        return object
    }

    package static func endpointChange(_ change: EndpointChange) -> [String: Any] {
        ["id": change.id, "endpoint_id": change.endpointID, "tenant_id": change.tenantID, "actor": change.actor, "at": Clock.iso8601(change.at),
         "changes": change.changes.map { ["field": $0.field, "from": $0.from ?? NSNull(), "to": $0.to ?? NSNull()] as [String: Any] }]
    }

    package static func stats(_ stats: DeliveryStats) -> [String: Any] {
        [
            "generated_at": Clock.iso8601(stats.generatedAt),
            "window_seconds": stats.windowSeconds,
            "by_status": stats.byStatus,
            "by_tenant": stats.byTenant,
            "by_endpoint": stats.byEndpoint,
            "oldest_pending_at": stats.oldestPending.map(Clock.iso8601) ?? NSNull(),
            "oldest_pending_age_seconds": stats.oldestPending.map { stats.generatedAt.timeIntervalSince($0) } ?? NSNull(),
            "attempts": stats.recentAttempts,
            "attempts_succeeded": stats.recentSucceeded,
            "success_rate": stats.successRate ?? NSNull(),
            "latency_p50_ms": stats.latencyP50Milliseconds ?? NSNull(),
            "latency_p99_ms": stats.latencyP99Milliseconds ?? NSNull(),
            "circuits_open": stats.endpoints.filter { $0.isCircuitOpen(at: stats.generatedAt) }.map(\.endpoint.id),
            "endpoints_disabled": stats.endpoints.filter { !$0.endpoint.enabled }.map(\.endpoint.id),
        ]
    }

    /// An endpoint's success rate and latency over the last hour and day, and its last failure.
    package static func endpointActivity(_ activity: EndpointActivity) -> [String: Any] {
        func window(_ window: AttemptWindow) -> [String: Any] {
            ["attempts": window.attempts, "succeeded": window.succeeded, "success_rate": window.successRate ?? NSNull(),
             "latency_p50_ms": window.latency.percentileMilliseconds(0.5) ?? NSNull(),
             "latency_p99_ms": window.latency.percentileMilliseconds(0.99) ?? NSNull()]
        }
        return [
            "last_hour": window(activity.lastHour),
            "last_day": window(activity.lastDay),
            "last_error": activity.lastFailure.map { ["at": Clock.iso8601($0.at), "summary": $0.summary] as [String: Any] } ?? NSNull(),
        ]
    }

    /// `closed`, `open` (deliveries wait), or `half_open` (the next claim is a probe).
    package static func circuitState(_ status: EndpointStatus, now: Date = Date()) -> String {
        if status.isCircuitOpen(at: now) { return "open" }
        return status.consecutiveFailures >= status.endpoint.circuit.failureThreshold ? "half_open" : "closed"
    }

    static func headers(_ fields: [HeaderField]) -> [[String: String]] {
        fields.map { ["name": $0.name, "value": $0.value] }
    }
}
