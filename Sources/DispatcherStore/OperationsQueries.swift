import DispatcherModel
import Foundation

/// Operators' writes and reports: redeliver, replay, cancel, stats, prune. Each is a handful of
/// set-based statements, whatever the number of rows.
enum OperationsQueries {
    /// Re-queues as a new run of the same delivery: history and event id kept, the retry
    /// policy starting over, ordered if its endpoint is ordered now. In-flight deliveries are
    /// left alone.
    static let requeueColumns = """
        status = 'pending', next_attempt_at = ?1, retry_base = attempt_count, schedule_started_at = ?1,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1,
        ordered = coalesce((SELECT e.ordered FROM endpoints e WHERE e.id = deliveries.endpoint_id), 0)
        """

    static let redeliverDelivery = "UPDATE deliveries SET \(requeueColumns) WHERE id = ?2 AND status != 'delivering'"
    static let redeliverEvent = "UPDATE deliveries SET \(requeueColumns) WHERE event_id = ?2 AND status != 'delivering'"

    /// The replay filter, as one statement over every matching row.
    static let replayFilter = """
         WHERE status = ?2
           AND (?3 IS NULL OR tenant_id = ?3)
           AND (?4 IS NULL OR endpoint_id = ?4)
           AND (?5 IS NULL OR glob(?5, event_type))
           AND (?6 IS NULL OR created_at >= ?6)
           AND (?7 IS NULL OR created_at < ?7)
        """
    static let replay = "UPDATE deliveries SET \(requeueColumns) \(replayFilter)"
    /// Binds the same seven parameters as `replay` (SQLite counts them by the highest index).
    static let countReplay = "SELECT count(*) FROM deliveries \(replayFilter)"

    /// Cancelling, wherever it happens: why in `last_error` (?1), when (?2).
    static let cancelColumns = "status = 'cancelled', next_attempt_at = NULL, last_error = ?1, updated_at = ?2"

    static let cancelDelivery = "UPDATE deliveries SET \(cancelColumns) WHERE id = ?3 AND status = 'pending'"
    static let cancelEvent = "UPDATE deliveries SET \(cancelColumns) WHERE event_id = ?3 AND status = 'pending'"
    static let cancelPendingOfEndpoint = "UPDATE deliveries SET \(cancelColumns) WHERE endpoint_id = ?3 AND status = 'pending'"

    static func redeliver(deliveryIDs: [Int64], eventIDs: [String], in db: some SQLConnection) throws -> Int {
        try db.inTransaction {
            let now = Clock.nowMilliseconds()
            var count = 0
            for id in deliveryIDs { count += try db.execute(redeliverDelivery, [now, id]) }
            for id in eventIDs { count += try db.execute(redeliverEvent, [now, id.lowercased()]) }
            return count
        }
    }

    static func replay(_ filter: ReplayFilter, dryRun: Bool, in db: some SQLConnection) throws -> Int {
        let bindings: [SQLBindable] = [Clock.nowMilliseconds(), filter.status.rawValue, filter.tenantID, filter.endpointID,
                                          filter.typePattern, filter.since.map(Clock.milliseconds), filter.until.map(Clock.milliseconds)]
        if dryRun { return try db.query(countReplay, bindings) { $0.int(0) }.first ?? 0 }
        return try db.inTransaction { try db.execute(replay, bindings) }
    }

    static func cancel(deliveryIDs: [Int64], eventIDs: [String], in db: some SQLConnection) throws -> Int {
        try db.inTransaction {
            let now = Clock.nowMilliseconds()
            let note = "cancelled by an operator at \(Clock.iso8601(Clock.date(milliseconds: now)))"
            var count = 0
            for id in deliveryIDs { count += try db.execute(cancelDelivery, [note, now, id]) }
            for id in eventIDs { count += try db.execute(cancelEvent, [note, now, id.lowercased()]) }
            return count
        }
    }

    // MARK: - Test events

    static let insertTestEvent = """
        INSERT INTO events (id, tenant_id, type, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
        """
    static let insertTestDelivery = """
        INSERT INTO deliveries (event_id, endpoint_id, tenant_id, event_type, status, lease_owner, lease_expires_at,
                                created_at, updated_at, ordering_key)
        VALUES (?1, ?2, ?3, ?4, 'delivering', ?5, ?6, ?7, ?7, ?3)
        RETURNING id
        """

    /// A test event of `type` with one delivery to `endpoint`, already leased to `owner`.
    static func enqueueTestEvent(endpoint: Endpoint, type: String, body: [UInt8], owner: String, leaseSeconds: Double, in db: some SQLConnection) throws -> ClaimedDelivery {
        try db.inTransaction {
            let now = Clock.nowMilliseconds()
            let id = UUID.timeOrdered().lowercasedString
            try db.execute(insertTestEvent, [id, endpoint.tenantID, type, body, now])
            let deliveryID = try db.query(insertTestDelivery, [id, endpoint.id, endpoint.tenantID, type, owner,
                                                               now + Int64(leaseSeconds * 1000), now]) { $0.int64(0) }.first ?? 0
            return ClaimedDelivery(deliveryID: deliveryID, eventID: id, eventType: type,
                                   tenantID: endpoint.tenantID, endpointID: endpoint.id, endpointRevision: 0, attemptNumber: 1,
                                   body: body, createdAt: Clock.date(milliseconds: now), firstAttemptAt: nil)
        }
    }

    // MARK: - Stats

    /// A count of rows by their first `keys` columns (text), written both ways: `grouped`
    /// (`SELECT a, b, count(*) ... GROUP BY a, b`) and `rows` (`SELECT a, b ...`).
    struct CountQuery {
        let grouped: String
        let rows: String
        let keys: Int32
    }

    /// The counts, in key order. PostgreSQL runs `grouped`: it groups on the server, so only the
    /// counts travel. On SQLite a GROUP BY first sorts every row in memory (`temp_store =
    /// MEMORY`): 9 MB for the 140,000 events of a first `/metrics` scrape at 2,000 a second, and
    /// the allocator kept it; so there the `rows` are counted as they stream by, in memory that
    /// grows with the keys, not the rows.
    static func counts(_ query: CountQuery, _ bindings: [SQLBindable], in db: some SQLConnection) throws -> [(key: [String], count: Int)] {
        guard db.dialect == .sqlite else {
            return try db.query(query.grouped, bindings) { row in ((0..<query.keys).map(row.string), row.int(query.keys)) }
        }
        var counts: [[String]: Int] = [:]
        try db.forEachRow(query.rows, bindings) { row in counts[(0..<query.keys).map(row.string), default: 0] += 1 }
        return counts.map { (key: $0.key, count: $0.value) }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }

    static let countsByStatus = CountQuery(
        grouped: "SELECT tenant_id, endpoint_id, status, count(*) FROM deliveries GROUP BY tenant_id, endpoint_id, status",
        rows: "SELECT tenant_id, endpoint_id, status FROM deliveries", keys: 3)
    /// The oldest pending delivery's creation. On SQLite, the first inserted of the pending ones
    /// (ids rise with insertion): its id comes from walking the pending index, which holds only
    /// ids, and one row is read. `min(created_at)` read every pending row from the table, 0.24 s
    /// at the 130,000 a soak holds behind open circuits; SQLite's own plan for `min(id)` walks
    /// the table from its first row, through all finished history kept. PostgreSQL keeps
    /// `min(created_at)`, which its planner answers from the pending index and the heap.
    static let oldestPending = DialectSQL { dialect in
        dialect == .sqlite ? """
            SELECT created_at FROM deliveries WHERE id = (
                SELECT min(id) FROM deliveries INDEXED BY deliveries_due_by_endpoint WHERE status = 'pending')
            """ : "SELECT min(created_at) FROM deliveries WHERE status = 'pending'"
    }

    /// The window's attempts, whether each succeeded and its latency, in one pass and fixed
    /// memory: PostgreSQL counts them into `LatencyHistogram`'s buckets on the server; SQLite
    /// streams the two columns (sorting the window's attempts, as `ORDER BY duration_us LIMIT 1
    /// OFFSET n` did twice for the two percentiles, took 0.2 s a minute at 200,000 attempts).
    static let recentAttemptRows = """
        SELECT CASE WHEN verdict = 'succeeded' THEN 1 ELSE 0 END, duration_us FROM attempts WHERE started_at >= ?1
        """
    static let recentAttemptBuckets = """
        SELECT CASE WHEN verdict = 'succeeded' THEN 1 ELSE 0 END, \(LatencyHistogram.bucketSQL("duration_us")), count(*)
          FROM attempts WHERE started_at >= ?1 GROUP BY 1, 2
        """

    static let queueCounts = """
        SELECT (\(LogQueries.pendingCount)), (SELECT count(*) FROM deliveries WHERE status = 'delivering')
        """

    static func stats(window: Double, in db: some SQLConnection) throws -> DeliveryStats {
        var stats = try queueAndWindow(window: window, in: db)
        stats.endpoints = try EndpointQueries.endpointsWithHealth(in: db)
        for (key, count) in try counts(countsByStatus, [], in: db) {
            stats.byStatus[key[2], default: 0] += count
            stats.byTenant[key[0], default: [:]][key[2], default: 0] += count
            stats.byEndpoint[key[1], default: [:]][key[2], default: 0] += count
        }
        return stats
    }

    /// The queue's counts through its partial indexes, and the window: no pass over history.
    static func queueStats(window: Double, in db: some SQLConnection) throws -> DeliveryStats {
        var stats = try queueAndWindow(window: window, in: db)
        stats.queueOnly = true
        stats.endpoints = try EndpointQueries.endpointsNeedingAttention(at: Clock.milliseconds(stats.generatedAt), in: db)
        if let (pending, delivering) = try db.query(queueCounts, map: { ($0.int(0), $0.int(1)) }).first {
            stats.byStatus = [DeliveryStatus.pending.rawValue: pending, DeliveryStatus.delivering.rawValue: delivering]
        }
        return stats
    }

    /// What both report besides the counts and the endpoints: the oldest pending delivery, and
    /// the window's attempts and latency.
    private static func queueAndWindow(window: Double, in db: some SQLConnection) throws -> DeliveryStats {
        let now = Clock.nowMilliseconds()
        var stats = DeliveryStats(generatedAt: Clock.date(milliseconds: now), windowSeconds: window)
        stats.oldestPending = try db.query(oldestPending[db.dialect]) { $0.isNull(0) ? nil : Clock.date(milliseconds: $0.int64(0)) }.first ?? nil
        let since = now - Int64(window * 1000)
        var latency = LatencyHistogram()
        if db.dialect == .sqlite {
            try db.forEachRow(recentAttemptRows, [since]) { row in
                stats.recentSucceeded += row.int(0)
                latency.record(microseconds: row.int64(1))
            }
        } else {
            try db.forEachRow(recentAttemptBuckets, [since]) { row in
                stats.recentSucceeded += row.int(0) * row.int(2)
                latency.add(row.int(2), toBucket: row.int(1))
            }
        }
        stats.recentAttempts = latency.count
        stats.latencyP50Milliseconds = latency.percentileMilliseconds(0.5)
        stats.latencyP99Milliseconds = latency.percentileMilliseconds(0.99)
        return stats
    }

    // MARK: - Metrics

    /// Through the partial indexes of pending and leased rows: the cost follows the queue, not
    /// the history (finished deliveries are counted by the services that finish them).
    static let pendingByEndpoint = """
        SELECT endpoint_id, count(*), min(next_attempt_at) FROM deliveries WHERE status = 'pending' GROUP BY endpoint_id
        """
    static let deliveringByEndpoint = """
        SELECT endpoint_id, count(*) FROM deliveries WHERE status = 'delivering' GROUP BY endpoint_id
        """
    static let endpointSwitches = """
        SELECT id, tenant_id, enabled, circuit_open_until FROM endpoints WHERE removed_at IS NULL ORDER BY id
        """
    static let eventsCreatedBetween = CountQuery(
        grouped: "SELECT tenant_id, type, count(*) FROM events WHERE created_at > ?1 AND created_at <= ?2 GROUP BY tenant_id, type",
        rows: "SELECT tenant_id, type FROM events WHERE created_at > ?1 AND created_at <= ?2", keys: 2)

    static func metrics(eventsAfter: Int64, eventsUpTo: Int64, in db: some SQLConnection) throws -> StoreMetrics {
        var metrics = StoreMetrics()
        var pending: [String: (count: Int, oldest: Int64)] = [:]
        for row in try db.query(pendingByEndpoint, map: { ($0.string(0), $0.int(1), $0.int64(2)) }) {
            pending[row.0] = (row.1, row.2)
        }
        var delivering: [String: Int] = [:]
        for (endpointID, count) in try db.query(deliveringByEndpoint, map: { ($0.string(0), $0.int(1)) }) {
            delivering[endpointID] = count
        }
        let now = Clock.nowMilliseconds()
        metrics.endpoints = try db.query(endpointSwitches) { row in
            let id = row.string(0)
            return StoreMetrics.EndpointGauges(
                endpointID: id, tenantID: row.string(1), enabled: row.int(2) != 0,
                circuitOpen: !row.isNull(3) && row.int64(3) > now, pending: pending[id]?.count ?? 0,
                delivering: delivering[id] ?? 0, earliestDueAt: pending[id]?.oldest)
        }
        metrics.pending = pending.values.reduce(0) { $0 + $1.count }
        metrics.delivering = delivering.values.reduce(0, +)
        metrics.eventsCreated = try counts(eventsCreatedBetween, [eventsAfter, eventsUpTo], in: db).map {
            StoreMetrics.EventCount(tenantID: $0.key[0], type: $0.key[1], count: $0.count)
        }
        return metrics
    }

    // MARK: - Retention

    /// Whether a delivery is finished, written as the partial index of finished deliveries
    /// (`deliveries_finished_by_updated`) is: SQLite uses that index only for a query that
    /// names its condition as written there, and compares in turn rather than with an `IN`
    /// list, which it would evaluate per row through a temporary b-tree (migration 0015).
    /// PostgreSQL's planner sees that it implies its index's `IN` list.
    static func finished(_ status: String = "status") -> String {
        "(\(status) = 'succeeded' OR \(status) = 'failed' OR \(status) = 'cancelled')"
    }

    /// Finished deliveries last touched before the cut-off, with their attempts; then events
    /// left with no delivery. Pending and delivering rows are never touched.
    static let pruneAttempts = """
        DELETE FROM attempts WHERE delivery_id IN (
            SELECT id FROM deliveries WHERE \(finished()) AND updated_at < ?1)
        """
    static let pruneDeliveries = "DELETE FROM deliveries WHERE \(finished()) AND updated_at < ?1"
    static let pruneEvents = """
        DELETE FROM events WHERE created_at < ?1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)
        """
    static let countPrunableDeliveries = "SELECT count(*) FROM deliveries WHERE \(finished()) AND updated_at < ?1"
    static let countPrunableAttempts = """
        SELECT count(*) FROM attempts WHERE delivery_id IN (
            SELECT id FROM deliveries WHERE \(finished()) AND updated_at < ?1)
        """
    static let countPrunableEvents = """
        SELECT count(*) FROM events WHERE created_at < ?1 AND NOT EXISTS (
            SELECT 1 FROM deliveries d WHERE d.event_id = events.id
               AND NOT (\(finished("d.status")) AND d.updated_at < ?1))
        """

    static func prune(olderThan cutoff: Date, dryRun: Bool, in db: some SQLConnection) throws -> PruneResult {
        let bound = Clock.milliseconds(cutoff)
        if dryRun {
            return PruneResult(
                deliveries: try db.query(countPrunableDeliveries, [bound]) { $0.int(0) }.first ?? 0,
                attempts: try db.query(countPrunableAttempts, [bound]) { $0.int(0) }.first ?? 0,
                events: try db.query(countPrunableEvents, [bound]) { $0.int(0) }.first ?? 0)
        }
        return try db.inTransaction {
            let attempts = try db.execute(pruneAttempts, [bound])
            let deliveries = try db.execute(pruneDeliveries, [bound])
            let events = try db.execute(pruneEvents, [bound])
            return PruneResult(deliveries: deliveries, attempts: attempts, events: events)
        }
    }
}
