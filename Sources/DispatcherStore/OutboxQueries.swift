import DispatcherModel
import Foundation

/// The outbox's write path: validating and storing events, fanning them out to deliveries.
///
/// An enqueue is one statement on PostgreSQL (a round trip costs more than the work) and two
/// on SQLite (no data-modifying CTEs), and neither writes anything when the tenant is unknown
/// or the id is taken: the event row is inserted only under those conditions, and the
/// deliveries only from the inserted row.
enum OutboxQueries {
    static let tenantExists = "SELECT 1 FROM tenants WHERE id = ?"

    /// ?1 id, ?2 type, ?3 now, ?4 tenant, ?5 ordering key, ?6 body, ?7 traceparent, ?8 tracestate.
    static let insertEventOfKnownTenant = """
        INSERT INTO events (id, tenant_id, type, body, created_at, ordering_key, traceparent, tracestate)
        SELECT ?1, t.id, ?2, ?6, ?3, ?5, ?7, ?8 FROM tenants t WHERE t.id = ?4
        ON CONFLICT (id) DO NOTHING
        """

    static let existingEvent = "SELECT tenant_id, type, body FROM events WHERE id = ?"

    static let countDeliveries = "SELECT count(*) FROM deliveries WHERE event_id = ?"

    /// The columns every fan-out fills, in the order its SELECT lists them.
    static let deliveryColumns = """
        event_id, endpoint_id, tenant_id, event_type, status, next_attempt_at, created_at, updated_at, ordering_key, ordered
        """

    /// Whether endpoint `e` gets an event of `type` (an SQL expression): enabled, not removed,
    /// and its filter matches — `[]` matches everything; otherwise any pattern that GLOBs the
    /// type. The filters are a JSON array, which each engine unpacks with its own table function.
    /// Every fan-out (one event, a batch, either engine) asks this.
    static func receives(_ dialect: SQLDialect, type: String) -> String {
        let patterns = dialect == .sqlite
            ? "SELECT 1 FROM json_each(e.event_filters) f WHERE glob(f.value, \(type))"
            : "SELECT 1 FROM json_array_elements_text(e.event_filters::json) f WHERE glob(f, \(type))"
        return "e.enabled = 1 AND e.removed_at IS NULL AND (e.event_filters = '[]' OR EXISTS (\(patterns)))"
    }

    /// One delivery per endpoint of the tenant that `receives` the type.
    static func fanOut(_ dialect: SQLDialect, from source: String = "endpoints e") -> String {
        """
        INSERT INTO deliveries (\(deliveryColumns))
        SELECT ?1, e.id, e.tenant_id, ?2, 'pending', ?3, ?3, ?3, coalesce(?5, e.tenant_id), e.ordered
          FROM \(source)
         WHERE e.tenant_id = ?4 AND \(receives(dialect, type: "?2"))
        """
    }
    static let fanOutSQLite = fanOut(.sqlite)

    /// PostgreSQL's enqueue in one statement: the event (when its tenant exists and its id is
    /// free), its deliveries, and a `NOTIFY` for idle workers, which PostgreSQL sends at commit
    /// and folds into one per transaction. Answers (tenant found, event inserted, deliveries).
    static let enqueuePostgres = """
        WITH event AS (
            \(insertEventOfKnownTenant)
            RETURNING id
        ), fanned AS (
            \(fanOut(.postgres, from: "event, endpoints e"))
            RETURNING 1
        ), announced AS (
            SELECT pg_notify('\(PostgresConnectionProvider.channel)', '') FROM event
        )
        SELECT (SELECT count(*) FROM tenants WHERE id = ?4), (SELECT count(*) FROM event),
               (SELECT count(*) FROM fanned), (SELECT count(*) FROM announced)
        """

    /// PostgreSQL's enqueue of many events in one statement (one round trip for a whole batch,
    /// where `enqueuePostgres` costs one per event). ?1 is a JSON array of `{ord, id, tenant_id,
    /// type, body_at, body_length, ordering_key, traceparent, tracestate}`, ?2 the time, ?3 the
    /// bodies one after another (each row's is `body_length` bytes from `body_at`). Events are
    /// inserted and fanned out in `ord` order, so delivery ids keep the batch's order. Answers,
    /// for each input row in order, whether its event was inserted and its delivery count; a
    /// row not inserted (unknown tenant, id taken) is then looked at alone.
    static let enqueueManyPostgres = """
        WITH input AS (
            SELECT x.ord, x.id, x.tenant_id, x.type, substring(?3 FROM x.body_at + 1 FOR x.body_length) AS body,
                   x.ordering_key, x.traceparent, x.tracestate
              FROM json_to_recordset(?1::json) AS x(ord int, id text, tenant_id text, type text, body_at int, body_length int,
                                                    ordering_key text, traceparent text, tracestate text)
        ), event AS (
            INSERT INTO events (id, tenant_id, type, body, created_at, ordering_key, traceparent, tracestate)
            SELECT i.id, t.id, i.type, i.body, ?2, i.ordering_key, i.traceparent, i.tracestate
              FROM input i JOIN tenants t ON t.id = i.tenant_id
             ORDER BY i.ord
            ON CONFLICT (id) DO NOTHING
            RETURNING id
        ), fanned AS (
            INSERT INTO deliveries (\(deliveryColumns))
            SELECT i.id, e.id, e.tenant_id, i.type, 'pending', ?2, ?2, ?2, coalesce(i.ordering_key, e.tenant_id), e.ordered
              FROM event ev JOIN input i ON i.id = ev.id JOIN endpoints e ON e.tenant_id = i.tenant_id
             WHERE \(receives(.postgres, type: "i.type"))
             ORDER BY i.ord, e.id
            RETURNING event_id
        ), counted AS (
            SELECT event_id, count(*) AS n FROM fanned GROUP BY event_id
        ), announced AS (
            SELECT pg_notify('\(PostgresConnectionProvider.channel)', '') WHERE EXISTS (SELECT 1 FROM event)
        )
        SELECT i.ord, ev.id IS NOT NULL, coalesce(c.n, 0), (SELECT count(*) FROM announced)
          FROM input i LEFT JOIN event ev ON ev.id = i.id LEFT JOIN counted c ON c.event_id = i.id
         ORDER BY i.ord
        """

    /// SQLite's enqueue of up to `sqliteRowsPerStatement` events in two statements (its per-event
    /// pair costs a statement step, a trigger and a VALUES parse each): the events, in batch
    /// order; then their deliveries, in the same order.
    /// Columns of a row: id, tenant, type, body, ordering key, traceparent, tracestate; ?1 now.
    /// `CROSS JOIN` keeps the rows as the outer loop (SQLite's rule for it), so they are read
    /// in order as they are written, without the sort an `ORDER BY` cost: it copied every row,
    /// body and all (inserting 32 events of 1 KiB a statement went from 3.7 to 2.8 µs an event).
    static func insertEventsSQLite(rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: eventColumns).joined(separator: ", ") + ")"
        return """
            INSERT INTO events (id, tenant_id, type, body, created_at, ordering_key, traceparent, tracestate)
            SELECT v.column1, t.id, v.column3, v.column4, ?1, v.column5, v.column6, v.column7
              FROM (VALUES \(Array(repeating: row, count: rows).joined(separator: ", "))) AS v CROSS JOIN tenants t ON t.id = v.column2
             WHERE true
            ON CONFLICT (id) DO NOTHING
            """
    }

    /// The largest rowids of events and of deliveries, taken before a batch's two statements:
    /// a row inserted without a rowid gets one past the table's largest (SQLite's rule below
    /// 2^63 - 1), so what the statements wrote is exactly the rows past these marks, found
    /// through the rowid. `RETURNING` had answered the same, but SQLite first writes every
    /// row it returns to a temporary b-tree, and the deliveries were found by looking each
    /// returned id up: ~7,000 instructions an event of the ingest API's committing thread.
    static let lastRowsSQLite = "SELECT (SELECT coalesce(max(rowid), 0) FROM events), (SELECT coalesce(max(id), 0) FROM deliveries)"

    /// The ids of the events past rowid ?1 (read only when a batch's statement skipped some).
    static let eventsAfterSQLite = "SELECT id FROM events WHERE rowid > ?1"

    /// The deliveries of the events past rowid ?2 (a batch's, in its order), ?1 now.
    static let fanOutAfterSQLite = """
        INSERT INTO deliveries (\(deliveryColumns))
        SELECT ev.id, e.id, e.tenant_id, ev.type, 'pending', ?1, ?1, ?1, coalesce(ev.ordering_key, e.tenant_id), e.ordered
          FROM events ev JOIN endpoints e ON e.tenant_id = ev.tenant_id
         WHERE ev.rowid > ?2 AND \(receives(.sqlite, type: "ev.type"))
         ORDER BY ev.rowid, e.id
        """

    /// The event of each delivery past rowid ?1.
    static let deliveryEventsAfterSQLite = "SELECT event_id FROM deliveries WHERE id > ?1"

    /// 32 rows of 7 columns: 225 parameters, far below SQLite's limit.
    static let sqliteRowsPerStatement = 32
    /// The parameters a row of `insertEventsSQLite` binds: one count for the SQL and the bindings.
    static let eventColumns = 7
    /// The statement for each row count, built once: the ingest API commits a few events at a
    /// time, and each commit would otherwise build its statement's text anew.
    static let insertEventsSQLiteByRows = Dictionary(uniqueKeysWithValues: (1...sqliteRowsPerStatement).map { ($0, insertEventsSQLite(rows: $0)) })

    /// Enqueues each event on its own (a rejected one is returned as its error and writes
    /// nothing), inside the caller's transaction: on PostgreSQL in one statement per batch, on
    /// SQLite in two per 32 events.
    static func enqueueEach(_ events: [NewEvent], in db: some SQLConnection, options: StoreOptions,
                            bodyChecked: Bool = false) throws -> [Result<EnqueueResult, DispatcherError>] {
        func alone(_ event: NewEvent) throws -> Result<EnqueueResult, DispatcherError> {
            do {
                return .success(try enqueue(event, in: db, options: options, bodyChecked: bodyChecked))
            } catch let error as DispatcherError {
                return .failure(error)
            }
        }
        guard events.count > 1 else { return try events.map(alone) }
        var results = [Result<EnqueueResult, DispatcherError>?](repeating: nil, count: events.count)
        // The events to insert together: valid, and the first of their id in this batch.
        var batch: [(index: Int, id: String)] = [], seen: Set<String> = []
        for (index, event) in events.enumerated() {
            do {
                let id = try validate(event, options: options, bodyChecked: bodyChecked)
                // A second event with an id already in this batch is looked at after it, alone.
                if seen.insert(id).inserted { batch.append((index, id)) }
            } catch let error as DispatcherError {
                results[index] = .failure(error)
            }
        }
        let now = Clock.nowMilliseconds()
        if db.dialect == .postgres, !batch.isEmpty {
            // The bodies travel as one binary parameter, each row naming its slice: as base64
            // strings inside the JSON, the server parsed and decoded 1.4 MB a batch of 1,000
            // (14 of the statement's 57 ms) after the client had encoded it.
            var bodies: [UInt8] = []
            bodies.reserveCapacity(batch.reduce(0) { $0 + events[$1.index].body.count })
            let rows = batch.enumerated().map { ord, item -> JSONValue in
                let event = events[item.index]
                let offset = bodies.count
                bodies += event.body
                return .object([
                    ("ord", .integer(Int64(ord))), ("id", .string(item.id)), ("tenant_id", .string(event.tenantID)),
                    ("type", .string(event.type)), ("body_at", .integer(Int64(offset))), ("body_length", .integer(Int64(event.body.count))),
                    ("ordering_key", event.orderingKey.map(JSONValue.string) ?? .null),
                    ("traceparent", event.traceContext.map { .string($0.traceparent) } ?? .null),
                    ("tracestate", event.traceContext?.tracestate.map(JSONValue.string) ?? .null),
                ])
            }
            let answers = try db.query(enqueueManyPostgres, [JSONValue.array(rows).text, now, bodies]) { row in
                (ord: row.int(0), inserted: row.int(1) != 0, deliveries: row.int(2))
            }
            for answer in answers where answer.ord < batch.count && answer.inserted {
                let item = batch[answer.ord]
                results[item.index] = .success(EnqueueResult(eventID: item.id, isDuplicate: false, deliveryCount: answer.deliveries))
            }
        } else if db.dialect == .sqlite {
            for start in stride(from: 0, to: batch.count, by: sqliteRowsPerStatement) {
                let chunk = batch[start..<min(start + sqliteRowsPerStatement, batch.count)]
                var bindings: [SQLBindable] = [now]
                bindings.reserveCapacity(1 + chunk.count * eventColumns)
                for item in chunk {
                    // One append per column: an array literal per row would be an allocation per event.
                    let event = events[item.index]
                    bindings.append(item.id)
                    bindings.append(event.tenantID)
                    bindings.append(event.type)
                    bindings.append(event.body)
                    bindings.append(event.orderingKey)
                    bindings.append(event.traceContext?.traceparent)
                    bindings.append(event.traceContext?.tracestate)
                }
                let sql = insertEventsSQLiteByRows[chunk.count] ?? insertEventsSQLite(rows: chunk.count)
                guard let marks = try db.query(lastRowsSQLite, map: { (events: $0.int64(0), deliveries: $0.int64(1)) }).first else { continue }
                let insertedCount = try db.execute(sql, bindings)
                guard insertedCount > 0 else { continue }
                // Which ones, read back only when some were skipped (an unknown tenant, a taken id).
                let inserted = insertedCount == chunk.count ? nil : Set(try db.query(eventsAfterSQLite, [marks.events]) { $0.string(0) })
                _ = try db.execute(fanOutAfterSQLite, [now, marks.events])
                var fanned: [String: Int] = [:]
                try db.forEachRow(deliveryEventsAfterSQLite, [marks.deliveries]) { fanned[$0.string(0), default: 0] += 1 }
                for item in chunk where inserted?.contains(item.id) ?? true {
                    results[item.index] = .success(EnqueueResult(eventID: item.id, isDuplicate: false, deliveryCount: fanned[item.id] ?? 0))
                }
            }
        }
        // What the statement did not insert (an unknown tenant, a taken id, a repeat): as `enqueue` answers it.
        return try events.indices.map { index in try results[index] ?? alone(events[index]) }
    }

    /// The limit the SQL contract (`dispatcher_outbox`, `dispatcher_enqueue`) enforces, kept
    /// equal to the config's; written only when it differs.
    static let recordMaxPayload = """
        UPDATE dispatcher_settings SET value = ?1 WHERE name = 'max_payload_bytes' AND value <> ?1
        """

    /// Checks `event` and returns its canonical id; throws before anything is written.
    /// `bodyChecked`: the caller already knows the body is a JSON object (it parsed it).
    static func validate(_ event: NewEvent, options: StoreOptions, bodyChecked: Bool = false) throws -> String {
        guard EventType.isValid(event.type) else { throw DispatcherError.invalidEventType(event.type) }
        guard event.body.count <= options.maxPayloadBytes else {
            throw DispatcherError.payloadTooLarge(bytes: event.body.count, limit: options.maxPayloadBytes)
        }
        if !bodyChecked { try JSONValidation.requireObject(event.body) }
        return (event.id ?? UUID.timeOrdered()).lowercasedString
    }

    /// Stores one event and its deliveries atomically (inside the caller's transaction when
    /// there is one). A `DispatcherError` is thrown only when nothing was written, so a batch
    /// can report a bad event and carry on without a savepoint.
    static func enqueue(_ event: NewEvent, in db: some SQLConnection, options: StoreOptions, bodyChecked: Bool = false) throws -> EnqueueResult {
        let id = try validate(event, options: options, bodyChecked: bodyChecked)
        let now = Clock.nowMilliseconds()
        let bindings: [SQLBindable] = [id, event.type, now, event.tenantID, event.orderingKey, event.body,
                                       event.traceContext?.traceparent, event.traceContext?.tracestate]
        switch db.dialect {
        case .postgres:
            let counts = try db.query(enqueuePostgres, bindings) { [$0.int(0), $0.int(1), $0.int(2)] }.first ?? [0, 0, 0]
            guard counts[1] == 1 else { return try notInserted(event, id: id, tenantExists: counts[0] == 1, in: db) }
            return EnqueueResult(eventID: id, isDuplicate: false, deliveryCount: counts[2])
        case .sqlite:
            return try db.inTransaction {
                guard try db.execute(insertEventOfKnownTenant, bindings) == 1 else {
                    return try notInserted(event, id: id, tenantExists: !db.query(tenantExists, [event.tenantID], map: { _ in true }).isEmpty, in: db)
                }
                let fannedOut = try db.execute(fanOutSQLite, Array(bindings.prefix(5)))
                return EnqueueResult(eventID: id, isDuplicate: false, deliveryCount: fannedOut)
            }
        }
    }

    /// Why an event was not inserted: an unknown tenant, a retry of the same event (a
    /// duplicate, answered with what the first enqueue made), or another event under its id.
    private static func notInserted(_ event: NewEvent, id: String, tenantExists: Bool, in db: some SQLConnection) throws -> EnqueueResult {
        guard tenantExists else { throw DispatcherError.unknownTenant(event.tenantID) }
        let same = try db.query(existingEvent, [id]) { row in
            row.string(0) == event.tenantID && row.string(1) == event.type && row.bytes(2) == event.body
        }
        guard same.first == true else { throw DispatcherError.conflictingEvent(id: id) }
        let count = try db.query(countDeliveries, [id]) { $0.int(0) }.first ?? 0
        return EnqueueResult(eventID: id, isDuplicate: true, deliveryCount: count)
    }
}
