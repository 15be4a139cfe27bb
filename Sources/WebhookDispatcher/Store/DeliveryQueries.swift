import Foundation

/// The worker's side of deliveries: claiming under a lease, recording attempts, releasing.
enum DeliveryQueries {
    /// Leases that ran out (a crashed worker's) go back to pending first, so they pass the same
    /// checks as any due delivery: endpoint enabled, circuit, ordering.
    static let sweepExpiredLeases = """
        UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
         WHERE status = 'delivering' AND lease_expires_at <= ?1
        """

    /// Endpoints that may get work now, with how many deliveries each may have in flight:
    /// `max_concurrency`, or 1 while the circuit is half-open (a probe). The claim subtracts
    /// what this process already holds.
    static let eligibleEndpoints = """
        SELECT e.id, e.ordered,
               CASE WHEN e.consecutive_failures >= e.circuit_failure_threshold THEN 1 ELSE e.max_concurrency END
          FROM endpoints e
         WHERE e.enabled = 1 AND e.removed_at IS NULL AND (e.circuit_open_until IS NULL OR e.circuit_open_until <= ?1)
        """

    /// One endpoint's oldest due deliveries: an index probe, so a claim costs one probe per
    /// eligible endpoint however large the backlog, and one endpoint's backlog cannot hide
    /// another's work.
    /// On PostgreSQL the rows are locked as they are read, skipping rows another process's
    /// claim holds (`FOR UPDATE SKIP LOCKED`): concurrent claimers never wait on each other.
    static let dueOfEndpoint = """
        SELECT id, next_attempt_at, ordering_key FROM deliveries
         WHERE endpoint_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2
         ORDER BY next_attempt_at, id LIMIT ?3
        """
    static let dueOfEndpointSkippingLocked = dueOfEndpoint + " FOR UPDATE SKIP LOCKED"

    /// On an ordered endpoint, a delivery waits while an earlier one of its key is unfinished.
    static let earlierUnfinished = """
        SELECT 1 FROM deliveries
         WHERE endpoint_id = ?1 AND ordering_key = ?2 AND id < ?3 AND status IN ('pending', 'delivering')
         LIMIT 1
        """

    static let lease = """
        UPDATE deliveries SET status = 'delivering', lease_owner = ?2, lease_expires_at = ?3, updated_at = ?4
         WHERE id = ?1 AND status = 'pending'
        RETURNING id, event_id, event_type, tenant_id, endpoint_id, attempt_count,
                  coalesce(schedule_started_at, created_at), retry_base
        """

    /// A claim on a half-open endpoint is its one probe: the next waits a cool-down.
    static let startProbe = """
        UPDATE endpoints SET circuit_open_until = ?2 + circuit_cooldown_ms
         WHERE id = ?1 AND consecutive_failures >= circuit_failure_threshold
        """

    /// The first attempt of the current run (after the latest redelivery).
    static let firstAttemptStart = "SELECT min(started_at) FROM attempts WHERE delivery_id = ?1 AND number > ?2"

    static let eventBody = "SELECT body FROM events WHERE id = ?"

    static let insertAttempt = """
        INSERT INTO attempts (delivery_id, number, started_at, duration_us, url, request_headers,
                              response_status, response_headers, response_body, response_truncated,
                              error_kind, error_message, verdict, next_attempt_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// An attempt followed at once by another under the same lease.
    static let countAttempt = """
        UPDATE deliveries SET attempt_count = attempt_count + 1, last_http_status = ?1, last_error = ?2, updated_at = ?3
         WHERE id = ?4 AND lease_owner = ?5 AND status = 'delivering'
        """

    static let endpointSucceeded = """
        UPDATE endpoints SET consecutive_failures = 0, failing_since = NULL, circuit_open_until = NULL
         WHERE id = ?1 AND (consecutive_failures > 0 OR circuit_open_until IS NOT NULL)
        """

    /// Counts the failure; at the threshold the circuit opens for a cool-down.
    static let endpointFailed = """
        UPDATE endpoints
           SET consecutive_failures = consecutive_failures + 1,
               failing_since = coalesce(failing_since, ?2),
               circuit_open_until = CASE WHEN consecutive_failures + 1 >= circuit_failure_threshold
                                         THEN ?2 + circuit_cooldown_ms ELSE circuit_open_until END
         WHERE id = ?1
        """

    /// Failing without a success for longer than `disable_after_ms` disables the endpoint.
    static func disableFailingEndpoint(_ dialect: SQLDialect) -> String {
        let since = dialect == .sqlite
            ? "strftime('%Y-%m-%dT%H:%M:%SZ', failing_since / 1000, 'unixepoch')"
            : #"to_char(to_timestamp(failing_since / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"#
        return """
            UPDATE endpoints
               SET enabled = 0, revision = revision + 1, updated_at = ?2,
                   disabled_reason = 'failing without a success since ' || \(since)
                                     || ' (' || consecutive_failures || ' failed attempts); run dispatcher endpoints enable ' || id
             WHERE id = ?1 AND enabled = 1 AND failing_since IS NOT NULL AND ?2 - failing_since >= disable_after_ms
            RETURNING disabled_reason
            """
    }
    static let disableFailingEndpointSQLite = disableFailingEndpoint(.sqlite)
    static let disableFailingEndpointPostgres = disableFailingEndpoint(.postgres)

    /// Applied only while the lease is still this worker's: a worker whose lease expired and
    /// was retaken still gets its attempt recorded, but no longer decides the delivery's state.
    static let finishAttempt = """
        UPDATE deliveries
           SET status = ?1, attempt_count = attempt_count + 1, next_attempt_at = ?2,
               last_http_status = ?3, last_error = ?4, lease_owner = NULL, lease_expires_at = NULL,
               updated_at = ?5
         WHERE id = ?6 AND lease_owner = ?7 AND status = 'delivering'
        """

    static let release = """
        UPDATE deliveries
           SET status = 'pending', next_attempt_at = ?1, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1
         WHERE id = ?2 AND lease_owner = ?3 AND status = 'delivering'
        """

    /// How many candidates a claim considers per claimed row: room to skip saturated endpoints.
    static let scanFactor = 4

    /// Claims up to `limit` due deliveries in one transaction; see `eligibleEndpoints`.
    static func claim(limit: Int, owner: String, leaseSeconds: Double, inFlight: [String: Int], in db: some SQLConnection) throws -> [ClaimedDelivery] {
        guard limit > 0 else { return [] }
        let now = Clock.nowMilliseconds()
        let leaseExpiry = now + Int64((leaseSeconds * 1000).rounded())
        return try db.inTransaction {
            try db.execute(sweepExpiredLeases, [now])
            let endpoints = try db.query(eligibleEndpoints, [now]) { row in
                (id: row.string(0), ordered: row.int(1) != 0, room: row.int(2) - (inFlight[row.string(0)] ?? 0))
            }.filter { $0.room > 0 }
            var candidates: [(id: Int64, due: Int64)] = []
            for endpoint in endpoints {
                let room = min(endpoint.room, limit)
                // An ordered endpoint looks further: the oldest rows may all wait on one key.
                let due = try db.query(db.dialect == .sqlite ? dueOfEndpoint : dueOfEndpointSkippingLocked, [endpoint.id, now, endpoint.ordered ? limit * scanFactor : room]) { row in
                    (id: row.int64(0), due: row.int64(1), key: row.string(2))
                }
                var taken = 0
                for row in due where taken < room {
                    if endpoint.ordered, try !db.query(earlierUnfinished, [endpoint.id, row.key, row.id], map: { _ in true }).isEmpty {
                        continue
                    }
                    candidates.append((row.id, row.due))
                    taken += 1
                }
            }
            candidates.sort { ($0.due, $0.id) < ($1.due, $1.id) }

            var claimed: [ClaimedDelivery] = []
            var revisions: [String: Int] = [:]
            for candidate in candidates.prefix(limit) {
                guard var delivery = try db.query(lease, [candidate.id, owner, leaseExpiry, now], map: { row in
                    ClaimedDelivery(deliveryID: row.int64(0), eventID: row.string(1), eventType: row.string(2),
                                    tenantID: row.string(3), endpointID: row.string(4), endpointRevision: 0,
                                    attemptNumber: row.int(5) + 1, body: [], createdAt: Clock.date(milliseconds: row.int64(6)),
                                    firstAttemptAt: nil, retryBase: row.int(7))
                }).first else { continue }
                delivery.body = try db.query(eventBody, [delivery.eventID]) { $0.bytes(0) }.first ?? []
                if revisions[delivery.endpointID] == nil {
                    revisions[delivery.endpointID] = try EndpointQueries.revision(id: delivery.endpointID, in: db) ?? 0
                    try db.execute(startProbe, [delivery.endpointID, now])
                }
                delivery.endpointRevision = revisions[delivery.endpointID] ?? 0
                if delivery.attemptNumber > delivery.retryBase + 1 {
                    delivery.firstAttemptAt = try db.query(firstAttemptStart, [delivery.deliveryID, delivery.retryBase]) {
                        $0.isNull(0) ? nil : Clock.date(milliseconds: $0.int64(0))
                    }.first ?? nil
                }
                claimed.append(delivery)
            }
            return claimed
        }
    }

    static func record(_ results: [AttemptResult], in db: some SQLConnection) throws -> [DisabledEndpoint] {
        guard !results.isEmpty else { return [] }
        let now = Clock.nowMilliseconds()
        return try db.inTransaction {
            var disabled: [DisabledEndpoint] = []
            var healthyInBatch: Set<String> = []
            // By endpoint (each endpoint's results in their order), so that concurrent batches
            // lock endpoint rows in one order and cannot deadlock each other.
            let ordered = results.enumerated().sorted { ($0.element.endpointID, $0.offset) < ($1.element.endpointID, $1.offset) }.map(\.element)
            for result in ordered {
                let attempt = result.attempt
                let nextAttempt: Int64?
                let status: DeliveryStatus
                switch attempt.verdict {
                case .succeeded: status = .succeeded; nextAttempt = nil
                case .failed: status = .failed; nextAttempt = nil
                case .retryScheduled(let at): status = .pending; nextAttempt = Clock.milliseconds(at)
                }
                try db.execute(insertAttempt, [
                    result.deliveryID, attempt.number, Clock.milliseconds(attempt.startedAt), attempt.durationMicroseconds,
                    attempt.url, try JSONText.encodeHeaders(attempt.requestHeaders),
                    attempt.responseStatus, try attempt.responseHeaders.map(JSONText.encodeHeaders),
                    attempt.responseBody, attempt.responseTruncated,
                    attempt.errorKind?.rawValue, attempt.errorMessage, attempt.verdict.storedName, nextAttempt,
                ])
                let lastError = attempt.errorKind.map { kind in
                    attempt.errorMessage.map { "\(kind): \($0)" } ?? kind.rawValue
                }
                if result.keepsLease {
                    try db.execute(countAttempt, [attempt.responseStatus, lastError, now, result.deliveryID, result.leaseOwner])
                } else {
                    try db.execute(finishAttempt, [
                        status.rawValue, nextAttempt, attempt.responseStatus, lastError, now, result.deliveryID, result.leaseOwner,
                    ])
                }
                if attempt.errorKind == nil {
                    // One reset per endpoint and batch is enough; a later failure clears the mark.
                    if healthyInBatch.insert(result.endpointID).inserted {
                        try db.execute(endpointSucceeded, [result.endpointID])
                    }
                } else {
                    healthyInBatch.remove(result.endpointID)
                    try db.execute(endpointFailed, [result.endpointID, now])
                    let disable = db.dialect == .sqlite ? disableFailingEndpointSQLite : disableFailingEndpointPostgres
                    if let reason = try db.query(disable, [result.endpointID, now], map: { $0.string(0) }).first {
                        disabled.append(DisabledEndpoint(endpointID: result.endpointID, reason: reason))
                    }
                }
            }
            return disabled
        }
    }

    static func release(deliveryIDs: [Int64], owner: String, in db: some SQLConnection) throws {
        guard !deliveryIDs.isEmpty else { return }
        let now = Clock.nowMilliseconds()
        try db.inTransaction {
            for id in deliveryIDs { try db.execute(release, [now, id, owner]) }
        }
    }
}
