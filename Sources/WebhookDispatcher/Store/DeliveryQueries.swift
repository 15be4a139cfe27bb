import Foundation

/// The worker's side of deliveries: claiming under a lease, recording attempts, releasing.
enum DeliveryQueries {
    /// Claims due work in one statement. Candidates are the oldest due pending rows and rows
    /// whose lease expired (a crashed worker's), each list bounded by the scan window; per
    /// endpoint, rows beyond its free capacity (`max_concurrency` less what this process
    /// already holds, passed as a JSON object) stay for a later claim.
    static let claim = """
        WITH candidates AS (
            SELECT * FROM (SELECT id, endpoint_id, next_attempt_at AS due FROM deliveries
                            WHERE status = 'pending' AND next_attempt_at <= ?1
                            ORDER BY next_attempt_at LIMIT ?2)
            UNION ALL
            SELECT * FROM (SELECT id, endpoint_id, lease_expires_at AS due FROM deliveries
                            WHERE status = 'delivering' AND lease_expires_at <= ?1
                            ORDER BY lease_expires_at LIMIT ?2)
        ),
        ranked AS (
            SELECT c.id, c.due,
                   row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.due, c.id) AS position,
                   e.max_concurrency - coalesce(busy.value, 0) AS room
              FROM candidates c
              JOIN endpoints e ON e.id = c.endpoint_id AND e.enabled = 1
              LEFT JOIN json_each(?3) busy ON busy.key = c.endpoint_id
        )
        UPDATE deliveries
           SET status = 'delivering', lease_owner = ?4, lease_expires_at = ?5, updated_at = ?1
         WHERE id IN (SELECT id FROM ranked WHERE position <= room ORDER BY due, id LIMIT ?6)
        RETURNING id, event_id, event_type, tenant_id, endpoint_id, attempt_count
        """

    static let eventBody = "SELECT body FROM events WHERE id = ?"

    static let insertAttempt = """
        INSERT INTO attempts (delivery_id, number, started_at, duration_us, url, request_headers,
                              response_status, response_headers, response_body, response_truncated,
                              error_kind, error_message, verdict, next_attempt_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

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

    static func claim(limit: Int, owner: String, leaseSeconds: Double, inFlight: [String: Int], in db: Database) throws -> [ClaimedDelivery] {
        guard limit > 0 else { return [] }
        let now = Clock.nowMilliseconds()
        let leaseExpiry = now + Int64((leaseSeconds * 1000).rounded())
        return try db.inTransaction {
            let claimed = try db.query(claim, [now, limit * scanFactor, try JSONText.encode(inFlight), owner, leaseExpiry, limit]) { row in
                ClaimedDelivery(deliveryID: row.int64(0), eventID: row.string(1), eventType: row.string(2),
                                tenantID: row.string(3), endpointID: row.string(4), endpointRevision: 0,
                                attemptNumber: row.int(5) + 1, body: [])
            }
            var revisions: [String: Int] = [:]
            return try claimed.map { delivery in
                var delivery = delivery
                delivery.body = try db.query(eventBody, [delivery.eventID]) { $0.bytes(0) }.first ?? []
                if revisions[delivery.endpointID] == nil {
                    revisions[delivery.endpointID] = try EndpointQueries.revision(id: delivery.endpointID, in: db) ?? 0
                }
                delivery.endpointRevision = revisions[delivery.endpointID] ?? 0
                return delivery
            }
        }
    }

    static func record(_ results: [AttemptResult], in db: Database) throws {
        guard !results.isEmpty else { return }
        let now = Clock.nowMilliseconds()
        try db.inTransaction {
            for result in results {
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
                try db.execute(finishAttempt, [
                    status.rawValue, nextAttempt, attempt.responseStatus, lastError, now, result.deliveryID, result.leaseOwner,
                ])
            }
        }
    }

    static func release(deliveryIDs: [Int64], owner: String, in db: Database) throws {
        guard !deliveryIDs.isEmpty else { return }
        let now = Clock.nowMilliseconds()
        try db.inTransaction {
            for id in deliveryIDs { try db.execute(release, [now, id, owner]) }
        }
    }
}
