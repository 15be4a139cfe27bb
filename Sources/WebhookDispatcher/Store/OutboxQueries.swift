import Foundation

/// The outbox's write path: validating and storing events, fanning them out to deliveries.
enum OutboxQueries {
    static let tenantExists = "SELECT 1 FROM tenants WHERE id = ?"

    static let insertEvent = """
        INSERT INTO events (id, tenant_id, type, body, created_at, ordering_key)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO NOTHING
        """

    static let existingEvent = "SELECT tenant_id, type, body FROM events WHERE id = ?"

    static let countDeliveries = "SELECT count(*) FROM deliveries WHERE event_id = ?"

    /// One delivery per enabled endpoint of the tenant whose filter matches the type:
    /// `[]` matches everything; otherwise any pattern that GLOBs the type. The filters are a
    /// JSON array, which each engine unpacks with its own table function.
    static func fanOut(_ dialect: SQLDialect) -> String {
        let patterns = dialect == .sqlite
            ? "SELECT 1 FROM json_each(e.event_filters) f WHERE glob(f.value, ?2)"
            : "SELECT 1 FROM json_array_elements_text(e.event_filters::json) f WHERE glob(f, ?2)"
        return """
            INSERT INTO deliveries (event_id, endpoint_id, tenant_id, event_type, status,
                                    next_attempt_at, created_at, updated_at, ordering_key)
            SELECT ?1, e.id, e.tenant_id, ?2, 'pending', ?3, ?3, ?3, coalesce(?5, e.tenant_id)
              FROM endpoints e
             WHERE e.tenant_id = ?4
               AND e.enabled = 1 AND e.removed_at IS NULL
               AND (e.event_filters = '[]' OR EXISTS (\(patterns)))
            """
    }
    static let fanOutSQLite = fanOut(.sqlite)
    static let fanOutPostgres = fanOut(.postgres)

    /// Checks `event` and returns its canonical id; throws before anything is written.
    static func validate(_ event: NewEvent, options: StoreOptions) throws -> String {
        guard EventType.isValid(event.type) else { throw DispatcherError.invalidEventType(event.type) }
        guard event.body.count <= options.maxPayloadBytes else {
            throw DispatcherError.payloadTooLarge(bytes: event.body.count, limit: options.maxPayloadBytes)
        }
        try JSONValidation.requireObject(event.body)
        return (event.id ?? UUID()).uuidString.lowercased()
    }

    static func enqueue(_ event: NewEvent, in db: some SQLConnection, options: StoreOptions) throws -> EnqueueResult {
        let id = try validate(event, options: options)
        return try db.inTransaction {
            guard try !db.query(tenantExists, [event.tenantID], map: { _ in true }).isEmpty else {
                throw DispatcherError.unknownTenant(event.tenantID)
            }
            let now = Clock.nowMilliseconds()
            let inserted = try db.execute(insertEvent, [id, event.tenantID, event.type, event.body, now, event.orderingKey])
            if inserted == 0 {
                let same = try db.query(existingEvent, [id]) { row in
                    row.string(0) == event.tenantID && row.string(1) == event.type && row.bytes(2) == event.body
                }
                guard same.first == true else { throw DispatcherError.conflictingEvent(id: id) }
                let count = try db.query(countDeliveries, [id]) { $0.int(0) }.first ?? 0
                return EnqueueResult(eventID: id, isDuplicate: true, deliveryCount: count)
            }
            let fannedOut = try db.execute(db.dialect == .sqlite ? fanOutSQLite : fanOutPostgres, [id, event.type, now, event.tenantID, event.orderingKey])
            return EnqueueResult(eventID: id, isDuplicate: false, deliveryCount: fannedOut)
        }
    }
}
