import DispatcherModel
import Foundation

/// Reading the audit log: deliveries by filter, and one event's whole record.
enum LogQueries {
    static let deliveryColumns = """
        id, event_id, tenant_id, endpoint_id, event_type, status, attempt_count, last_http_status,
        last_error, next_attempt_at, created_at, updated_at
        """

    /// Changes whenever another connection commits to the database.
    static let dataVersion = "PRAGMA data_version"

    static let pendingCount = "SELECT count(*) FROM deliveries WHERE status = 'pending'"

    static let anyUnfinished = """
        SELECT CASE WHEN EXISTS (SELECT 1 FROM deliveries WHERE status = 'pending')
                      OR EXISTS (SELECT 1 FROM deliveries WHERE status = 'delivering') THEN 1 ELSE 0 END
        """

    static let eventByID = "SELECT id, tenant_id, type, body, created_at, traceparent, tracestate FROM events WHERE id = ?"
    static let deliveriesOfEvent = "SELECT \(deliveryColumns) FROM deliveries WHERE event_id = ? ORDER BY id"
    static let eventOfDelivery = "SELECT event_id FROM deliveries WHERE id = ?"
    static let attemptsOfDelivery = """
        SELECT number, started_at, duration_us, url, request_headers, response_status, response_headers,
               response_body, response_truncated, error_kind, error_message, verdict, next_attempt_at
          FROM attempts WHERE delivery_id = ? ORDER BY number, id
        """

    /// `glob(pattern, value)` is SQLite's function form of GLOB; the PostgreSQL schema defines
    /// one with the same meaning for event-type patterns.
    /// The filter becomes a fixed set of `(? IS NULL OR column = ?)` terms, so one prepared
    /// statement serves every combination and no value is ever spliced into SQL.
    static let filteredDeliveries = """
        SELECT \(deliveryColumns) FROM deliveries
         WHERE (?1 IS NULL OR tenant_id = ?1)
           AND (?2 IS NULL OR endpoint_id = ?2)
           AND (?3 IS NULL OR glob(?3, event_type))
           AND (?4 IS NULL OR status = ?4)
           AND (?5 IS NULL OR created_at >= ?5)
           AND (?6 IS NULL OR event_id = ?6)
           AND (?8 IS NULL OR id < ?8)
           AND (?9 IS NULL OR created_at < ?9)
         ORDER BY id DESC
         LIMIT ?7
        """

    /// Ids are lowercase hex and '-', all of which sort below 'g': a range scan of the key.
    static let eventIDsWithPrefix = "SELECT id FROM events WHERE id >= ?1 AND id < ?1 || 'g' ORDER BY id LIMIT ?2"

    static func eventIDs(withPrefix prefix: String, limit: Int, in db: some SQLConnection) throws -> [String] {
        try db.query(eventIDsWithPrefix, [prefix.lowercased(), limit]) { $0.string(0) }
    }

    static func readDelivery(_ row: some SQLRow) -> Delivery {
        Delivery(
            id: row.int64(0), eventID: row.string(1), tenantID: row.string(2), endpointID: row.string(3),
            eventType: row.string(4), status: DeliveryStatus(rawValue: row.string(5)) ?? .pending,
            attemptCount: row.int(6), lastHTTPStatus: row.optionalInt(7), lastError: row.optionalString(8),
            nextAttemptAt: row.isNull(9) ? nil : Clock.date(milliseconds: row.int64(9)),
            createdAt: Clock.date(milliseconds: row.int64(10)), updatedAt: Clock.date(milliseconds: row.int64(11)))
    }

    static func deliveries(matching filter: DeliveryFilter, in db: some SQLConnection) throws -> [Delivery] {
        try db.query(filteredDeliveries, [
            filter.tenantID, filter.endpointID, filter.typePattern, filter.status?.rawValue,
            filter.since.map(Clock.milliseconds), filter.eventID?.lowercased(), filter.limit,
            filter.beforeID, filter.until.map(Clock.milliseconds),
        ], map: readDelivery)
    }

    static func eventRecord(eventID: String, in db: some SQLConnection) throws -> EventRecord? {
        guard let event = try db.query(eventByID, [eventID.lowercased()], map: { row in
            Event(id: row.string(0), tenantID: row.string(1), type: row.string(2), body: row.bytes(3),
                  createdAt: Clock.date(milliseconds: row.int64(4)),
                  traceContext: try? row.optionalString(5).map { try TraceContext(traceparent: $0, tracestate: row.optionalString(6)) })
        }).first else { return nil }
        let deliveries = try db.query(deliveriesOfEvent, [event.id], map: readDelivery)
        let records = try deliveries.map { delivery in
            DeliveryRecord(delivery: delivery, attempts: try db.query(attemptsOfDelivery, [delivery.id], map: readAttempt))
        }
        return EventRecord(event: event, deliveries: records)
    }

    static func eventRecord(deliveryID: Int64, in db: some SQLConnection) throws -> EventRecord? {
        guard let eventID = try db.query(eventOfDelivery, [deliveryID], map: { $0.string(0) }).first,
              var record = try eventRecord(eventID: eventID, in: db) else { return nil }
        record.deliveries.removeAll { $0.delivery.id != deliveryID }
        return record
    }

    static func readAttempt(_ row: some SQLRow) -> Attempt {
        let verdict: AttemptVerdict
        switch row.string(11) {
        case "succeeded": verdict = .succeeded
        case "retry": verdict = .retryScheduled(at: Clock.date(milliseconds: row.int64(12)))
        default: verdict = .failed
        }
        return Attempt(
            number: row.int(0), startedAt: Clock.date(milliseconds: row.int64(1)), durationMicroseconds: row.int64(2),
            url: row.string(3), requestHeaders: JSONText.decodeHeaders(row.string(4)),
            responseStatus: row.optionalInt(5), responseHeaders: row.optionalString(6).map(JSONText.decodeHeaders),
            responseBody: row.optionalBytes(7), responseTruncated: row.int(8) != 0,
            errorKind: row.optionalString(9).map(AttemptErrorKind.init(rawValue:)), errorMessage: row.optionalString(10),
            verdict: verdict)
    }

    /// Every attempt since a time with its endpoint: one range scan of attempts_by_started.
    static let attemptsSince = """
        SELECT d.endpoint_id, a.started_at, a.duration_us, CASE WHEN a.verdict = 'succeeded' THEN 1 ELSE 0 END, a.response_status, a.error_kind, a.error_message
          FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
         WHERE a.started_at >= ?1
        """

    static func activity(since: Date, bucketSeconds: Double, now: Date, in db: some SQLConnection) throws -> ActivityReport {
        var builder = ActivityReport.Builder(since: since, bucketSeconds: bucketSeconds, now: now)
        try db.forEachRow(attemptsSince, [Clock.milliseconds(since)]) { row in
            let endpointID = row.string(0), startedAt = row.int64(1), succeeded = row.int(3) != 0
            let summary = !succeeded && builder.wantsFailureSummary(endpointID: endpointID, startedAt: startedAt)
                ? ActivityReport.failureSummary(status: row.optionalInt(4), errorKind: row.optionalString(5), errorMessage: row.optionalString(6))
                : nil
            builder.add(endpointID: endpointID, startedAt: startedAt, durationMicroseconds: row.int64(2),
                        succeeded: succeeded, failureSummary: summary)
        }
        return builder.report()
    }
}
