import DispatcherModel
import Foundation

/// The dispatcher's operational events, enqueued for the operations tenant's endpoints in the
/// transaction that records what caused them, and delivered (signed, retried) like any event:
///
/// - `operations.endpoint.circuit_opened`: failures reached the circuit's threshold; the endpoint
///   waits a cool-down (once per outage: a failed probe re-opens it without another event);
/// - `operations.endpoint.circuit_closed`: a success closed an open circuit;
/// - `operations.endpoint.disabled`: the endpoint failed for longer than allowed and was disabled;
/// - `operations.endpoint.recovered`: an endpoint the dispatcher had disabled was enabled again;
/// - `operations.delivery.exhausted`: a delivery failed for good.
///
/// Nothing about the operations tenant's own endpoints and deliveries raises one, so trouble
/// delivering an operational event cannot feed itself.
enum OperationsNotices {
    struct EndpointState {
        let tenantID: String
        let consecutiveFailures: Int
        let circuitOpenUntil: Int64?
    }

    /// Read before and after each recording (primary-key probes): what the results changed.
    static let endpointStates = DialectSQL { dialect in
        """
        SELECT e.id, e.tenant_id, e.consecutive_failures, e.circuit_open_until
          FROM endpoints e WHERE \(DeliveryQueries.isMember("e.id", of: "?1", dialect))
        """
    }

    static let exhaustedDelivery = """
        SELECT event_id, event_type, tenant_id, attempt_count, last_http_status, last_error FROM deliveries WHERE id = ?1
        """

    static func states(of endpointIDs: [String], in db: some SQLConnection) throws -> [String: EndpointState] {
        guard !endpointIDs.isEmpty else { return [:] }
        var states: [String: EndpointState] = [:]
        try db.forEachRow(endpointStates[db.dialect], [JSONText.strings(endpointIDs)]) { row in
            states[row.string(0)] = EndpointState(tenantID: row.string(1), consecutiveFailures: row.int(2),
                                                  circuitOpenUntil: row.isNull(3) ? nil : row.int64(3))
        }
        return states
    }

    /// The events `results` caused: circuits that opened or closed between `before` and now,
    /// endpoints `disabled`, deliveries that failed for good.
    static func afterRecording(_ results: [AttemptResult], before: [String: EndpointState], disabled: [DisabledEndpoint],
                               now: Int64, tenant: String, options: StoreOptions, in db: some SQLConnection) throws {
        let after = try states(of: Array(before.keys), in: db)
        for (endpointID, old) in before.sorted(by: { $0.key < $1.key }) where old.tenantID != tenant {
            guard let new = after[endpointID] else { continue }
            let wasOpen = (old.circuitOpenUntil ?? 0) > now, isOpen = (new.circuitOpenUntil ?? 0) > now
            if !wasOpen && isOpen {
                // The failure that opened it is among these results: the last one of the endpoint's.
                let lastError = results.last { $0.endpointID == endpointID && $0.attempt.errorKind != nil }
                    .flatMap { DeliveryQueries.lastError(of: $0.attempt) }
                try enqueue("operations.endpoint.circuit_opened", [
                    ("endpoint_id", .string(endpointID)), ("tenant_id", .string(new.tenantID)),
                    ("consecutive_failures", .integer(Int64(new.consecutiveFailures))),
                    ("circuit_open_until", .string(Clock.iso8601(Clock.date(milliseconds: new.circuitOpenUntil ?? now)))),
                    ("last_error", lastError.map(JSONValue.string) ?? .null),
                ], tenant: tenant, now: now, options: options, in: db)
            } else if old.circuitOpenUntil != nil && new.circuitOpenUntil == nil {
                try enqueue("operations.endpoint.circuit_closed", [
                    ("endpoint_id", .string(endpointID)), ("tenant_id", .string(new.tenantID)),
                    ("failures_before", .integer(Int64(old.consecutiveFailures))),
                ], tenant: tenant, now: now, options: options, in: db)
            }
        }
        for endpoint in disabled where before[endpoint.endpointID].map({ $0.tenantID != tenant }) ?? true {
            try enqueue("operations.endpoint.disabled", [
                ("endpoint_id", .string(endpoint.endpointID)), ("tenant_id", .string(before[endpoint.endpointID]?.tenantID ?? "")),
                ("reason", .string(endpoint.reason)),
            ], tenant: tenant, now: now, options: options, in: db)
        }
        for result in results where result.attempt.verdict == .failed && !result.keepsLease {
            guard let row = try db.query(exhaustedDelivery, [result.deliveryID], map: { row in
                (event: row.string(0), type: row.string(1), tenant: row.string(2), attempts: row.int(3),
                 status: row.isNull(4) ? nil : row.int(4), error: row.optionalString(5))
            }).first, row.tenant != tenant else { continue }
            try enqueue("operations.delivery.exhausted", [
                ("delivery_id", .integer(result.deliveryID)), ("event_id", .string(row.event)), ("event_type", .string(row.type)),
                ("endpoint_id", .string(result.endpointID)), ("tenant_id", .string(row.tenant)),
                ("attempts", .integer(Int64(row.attempts))), ("last_status", row.status.map { .integer(Int64($0)) } ?? .null),
                ("last_error", row.error.map(JSONValue.string) ?? .null),
            ], tenant: tenant, now: now, options: options, in: db)
        }
    }

    /// `operations.endpoint.recovered`, when an endpoint the dispatcher disabled is enabled again.
    static func recovered(endpointID: String, tenantID: String, reason: String, tenant: String, options: StoreOptions,
                          in db: some SQLConnection) throws {
        guard tenantID != tenant else { return }
        try enqueue("operations.endpoint.recovered", [
            ("endpoint_id", .string(endpointID)), ("tenant_id", .string(tenantID)), ("was_disabled_because", .string(reason)),
        ], tenant: tenant, now: Clock.nowMilliseconds(), options: options, in: db)
    }

    private static func enqueue(_ type: String, _ fields: [(String, JSONValue)], tenant: String, now: Int64, options: StoreOptions,
                                in db: some SQLConnection) throws {
        let body = JSONValue.object([("type", .string(type)), ("occurred_at", .string(Clock.iso8601(Clock.date(milliseconds: now))))] + fields)
        do {
            _ = try OutboxQueries.enqueue(NewEvent(tenantID: tenant, type: type, body: Array(body.text.utf8)), in: db, options: options)
        } catch is DispatcherError {
            // An operations tenant missing from the store (removed since the config was read) must
            // not fail the recording of the attempts themselves; nothing of this event was written.
        }
    }
}
