import DispatcherModel
import Foundation

/// The worker's side of deliveries: claiming under a lease, recording attempts, releasing.
enum DeliveryQueries {
    /// Leases that ran out (a crashed worker's) go back to pending first, so they pass the same
    /// checks as any due delivery: endpoint enabled, circuit, ordering.
    static let sweepExpiredLeases = """
        UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
         WHERE status = 'delivering' AND lease_expires_at <= ?1
        """

    /// PostgreSQL, for the rest of this transaction: its commit returns once the server has it,
    /// before it is on disk (`OutboxStore.withDeliveryTransaction`).
    static let commitWithoutWaitingForDisk = "SET LOCAL synchronous_commit = off"

    /// PostgreSQL, for the rest of this transaction: no bitmap scans. Every lease leaves an entry
    /// in the partial index of leases (`deliveries_leased`) that outlives its verdict until a
    /// vacuum, and only a plain index scan marks such dead entries as it meets them, so that the
    /// next scan skips them unread; a bitmap scan cannot. Under bitmap scans the count of leases
    /// (`inFlightEndpoints`) read every lease taken since the last vacuum, live or not: 20,000
    /// entries on 900 heap pages a claim at 6,500 deliveries a second, a quarter of the server's
    /// work per delivery. (Every other statement of a worker's transaction finds its rows by an
    /// index either way.)
    static let scanLeasesByIndex = "SET LOCAL enable_bitmapscan = off"

    /// What a rate-limited endpoint's bucket holds after a claim took from it (?2 tokens as of ?3).
    static let spendRateTokens = "UPDATE endpoints SET rate_tokens = ?2, rate_updated_at = ?3 WHERE id = ?1"

    /// A 429 with `Retry-After` holds the whole endpoint until ?2, not only the delivery it answered.
    static let throttleEndpoint = """
        UPDATE endpoints SET throttled_until = ?2 WHERE id = ?1 AND (throttled_until IS NULL OR throttled_until < ?2)
        """

    /// The longest a 429's `Retry-After` holds a whole endpoint: a receiver asking for more is
    /// asked again after this (each delivery still waits as long as its retry policy allows).
    static let maxThrottleSeconds = 3_600.0

    /// The endpoint of every live lease: at most the deliveries in flight in all processes,
    /// read through the partial index of leases and counted in Swift (cheaper than a GROUP BY).
    static let inFlightEndpoints = "SELECT endpoint_id FROM deliveries WHERE status = 'delivering' AND lease_expires_at > ?1"

    /// SQLite: the live leases (?1 now) that ?2 holds, and those of all processes, counted in
    /// the partial index of leases alone, which holds each lease's owner.
    static let liveLeaseCounts = """
        SELECT count(*) FILTER (WHERE lease_owner = ?2), count(*) FROM deliveries WHERE status = 'delivering' AND lease_expires_at > ?1
        """

    /// Endpoints' oldest due deliveries, each endpoint's up to its own limit: an index probe
    /// per endpoint, so a claim's cost does not grow with the backlog, and one endpoint's
    /// backlog cannot hide another's work. Rows are (endpoint, id, due, ordering key).
    ///
    /// SQLite: one endpoint per statement (?1 endpoint, ?2 limit): no round trips. It reads the
    /// endpoint's oldest pending rows, due or not (the claim keeps the due ones), so that the
    /// claim, asking for one row more than it may take, learns from the same probe where the
    /// endpoint's next pending delivery is (`moveOn`).
    /// PostgreSQL: every endpoint in one statement (?1 a JSON array of `{"id", "limit", "from"}`,
    /// ?2 now), since a round trip each would cost more than the probes; each probe starts at its
    /// endpoint's `pending_from`, past the entries of deliveries leased since (which stay in the
    /// index until a vacuum); the rows are locked as they are read, skipping rows another
    /// process's claim holds (`FOR UPDATE SKIP LOCKED`), so concurrent claimers never wait on
    /// each other.
    static let dueOfEndpoints = DialectSQL { dialect in
        dialect == .sqlite ? """
            SELECT endpoint_id, id, next_attempt_at, ordering_key FROM deliveries
             WHERE endpoint_id = ?1 AND status = 'pending'
             ORDER BY next_attempt_at, id LIMIT ?2
            """ : """
            SELECT e.id, d.id, d.next_attempt_at, d.ordering_key
              FROM json_to_recordset(?1::json) AS e(id text, "limit" int, "from" bigint)
             CROSS JOIN LATERAL (
                   SELECT id, next_attempt_at, ordering_key FROM deliveries
                    WHERE endpoint_id = e.id AND status = 'pending' AND next_attempt_at BETWEEN e."from" AND ?2
                    ORDER BY next_attempt_at, id LIMIT e."limit"
                      FOR UPDATE SKIP LOCKED) d
            """
    }

    /// Runs `dueOfEndpoints` for `limits` (endpoint id, how many rows to read, and on PostgreSQL
    /// the earliest due time to read from). On SQLite rows not due yet come too, after the due.
    static func dueDeliveries(limits: [(endpointID: String, limit: Int, from: Int64)], now: Int64, in db: some SQLConnection)
        throws -> [String: [(id: Int64, due: Int64, key: String)]] {
        var due: [String: [(id: Int64, due: Int64, key: String)]] = [:]
        func collect(_ row: some SQLRow) { due[row.string(0), default: []].append((row.int64(1), row.int64(2), row.string(3))) }
        switch db.dialect {
        case .sqlite:
            for (endpointID, limit, _) in limits { try db.forEachRow(dueOfEndpoints[.sqlite], [endpointID, limit], collect) }
        case .postgres:
            let list = JSONValue.array(limits.map {
                .object([("id", .string($0.endpointID)), ("limit", .integer(Int64($0.limit))), ("from", .integer($0.from))])
            })
            try db.forEachRow(dueOfEndpoints[.postgres], [list.text, now], collect)
        }
        return due
    }

    /// On an ordered endpoint, a delivery waits while an earlier one of its key is unfinished:
    /// one created (or redelivered) while the endpoint was ordered, which is what the partial
    /// index of unfinished deliveries by key holds.
    static let earlierUnfinished = """
        SELECT 1 FROM deliveries
         WHERE endpoint_id = ?1 AND ordering_key = ?2 AND id < ?3 AND status IN ('pending', 'delivering') AND ordered = 1
         LIMIT 1
        """

    /// Leases the chosen deliveries (ids as a JSON array in ?1) in one statement; `bodies`
    /// then reads their events' bodies in one more. Two statements per claim, not two per
    /// delivery. (Not one: SQLite plans a subquery in RETURNING as a scan of `events`.)
    /// The chosen rows were read pending in this transaction (on PostgreSQL, and locked: `FOR
    /// UPDATE`), so only SQLite repeats the check: on PostgreSQL it would let the planner,
    /// misled by statistics older than a bulk enqueue, scan every pending delivery instead of
    /// probing the primary key.
    static let lease = DialectSQL { dialect in
        """
        UPDATE deliveries SET status = 'delivering', lease_owner = ?2, lease_expires_at = ?3, updated_at = ?4
         WHERE \(isMember("id", of: "?1", dialect, as: "bigint"))\(dialect == .sqlite ? " AND status = 'pending'" : "")
        RETURNING id, event_id, event_type, tenant_id, endpoint_id, attempt_count,
                  coalesce(schedule_started_at, created_at), retry_base
        """
    }

    /// The bodies of the events named in ?1 (a JSON array of ids).
    static let bodies = DialectSQL { dialect in
        "SELECT id, body, traceparent, tracestate FROM events WHERE \(isMember("id", of: "?1", dialect))"
    }

    /// `column` is one of the members of a JSON array parameter (`JSONText.integers`/`strings`):
    /// how one prepared statement takes a list of any length on either engine. On PostgreSQL
    /// the list becomes an array first: `IN (SELECT … FROM json_array_elements_text(…))` is
    /// planned as a hash join over every row the rest of the condition allows (every pending
    /// delivery, for a lease), while `= ANY(ARRAY(…))` probes the primary key once per member.
    static func isMember(_ column: String, of parameter: String, _ dialect: SQLDialect, as type: String = "text") -> String {
        dialect == .sqlite
            ? "\(column) IN (SELECT value FROM json_each(\(parameter)))"
            : "\(column) = ANY (ARRAY(SELECT value::\(type) FROM json_array_elements_text(\(parameter)::json)))"
    }

    /// A claim on a half-open endpoint is its one probe: the next waits a cool-down.
    static let startProbe = """
        UPDATE endpoints SET circuit_open_until = ?2 + circuit_cooldown_ms
         WHERE id = ?1 AND consecutive_failures >= circuit_failure_threshold
        """

    /// The first attempt of the current run (after the latest redelivery).
    static let firstAttemptStart = "SELECT min(started_at) FROM attempts WHERE delivery_id = ?1 AND number > ?2"

    /// An attempt followed at once by another under the same lease.
    static let countAttempt = """
        UPDATE deliveries SET attempt_count = attempt_count + 1, last_http_status = ?1, last_error = ?2, updated_at = ?3
         WHERE id = ?4 AND lease_owner = ?5 AND status = 'delivering'
        """

    /// A success resets each listed endpoint's failure count and closes its circuit (ids as a
    /// JSON array in ?1); endpoints already healthy are left unwritten.
    static let endpointsSucceeded = DialectSQL { dialect in
        """
        UPDATE endpoints SET consecutive_failures = 0, failing_since = NULL, circuit_open_until = NULL
         WHERE \(isMember("id", of: "?1", dialect)) AND (consecutive_failures > 0 OR circuit_open_until IS NOT NULL)
        """
    }

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
    static let disableFailingEndpoint = DialectSQL { dialect in
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

    static let release = DialectSQL { dialect in
        """
        UPDATE deliveries
           SET status = 'pending', next_attempt_at = ?1, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1
         WHERE \(isMember("id", of: "?2", dialect, as: "bigint")) AND lease_owner = ?3 AND status = 'delivering'
        """
    }

    /// How many candidates a claim considers per claimed row: room to skip saturated endpoints.
    static let scanFactor = 4

    /// What a claim weighs of an endpoint `e` (?1 now): usable (enabled and not removed),
    /// ordered, concurrency (1 while the circuit is half-open: a probe), revision, half-open,
    /// rate limit, tokens, tokens as of, held until (an open circuit's or a 429's end, when
    /// later than now). NULLs when the endpoint row is missing.
    private static let endpointState = """
        CASE WHEN e.enabled = 1 AND e.removed_at IS NULL THEN 1 ELSE 0 END, e.ordered,
        CASE WHEN e.consecutive_failures >= e.circuit_failure_threshold THEN 1 ELSE e.max_concurrency END,
        e.revision, CASE WHEN e.consecutive_failures >= e.circuit_failure_threshold THEN 1 ELSE 0 END,
        e.rate_limit_per_second, e.rate_tokens, e.rate_updated_at,
        CASE WHEN coalesce(e.circuit_open_until, 0) > ?1 OR coalesce(e.throttled_until, 0) > ?1
             THEN CASE WHEN coalesce(e.circuit_open_until, 0) > coalesce(e.throttled_until, 0)
                       THEN e.circuit_open_until ELSE e.throttled_until END END
        """

    /// A page of `endpoint_work` in due order (?1 now, ?2 and ?3 the last row of the page
    /// before, ?4 the page size). On SQLite with its endpoints' `endpointState`; PostgreSQL reads
    /// that once the page's endpoints are locked (`lockEndpointStates`), and only then, and reads
    /// each row's `pending_from` instead.
    static let workPage = DialectSQL { dialect in
        """
        SELECT w.endpoint_id, w.due_at, w.version, \(dialect == .sqlite ? endpointState : "w.pending_from")
          FROM endpoint_work w\(dialect == .sqlite ? " LEFT JOIN endpoints e ON e.id = w.endpoint_id" : "")
         WHERE w.due_at <= ?1 AND (w.due_at, w.endpoint_id) > (?2, ?3)
         ORDER BY w.due_at, w.endpoint_id
         LIMIT ?4
        """
    }

    /// PostgreSQL: locks the endpoints a claim will take from (?1 now, ?2 their ids as a JSON
    /// array) and reads their `endpointState`, skipping those another process is claiming for
    /// right now, so two claims never both fill the same endpoint's room from one count. (SQLite's
    /// write lock already serialises claims.) A row locked FOR UPDATE is read as its latest
    /// committed version, so the state includes whatever another claim (spending tokens,
    /// closing a circuit) committed; ids in order, as folds and claims lock them.
    static let lockEndpointStates = """
        SELECT e.id, \(endpointState) FROM endpoints e WHERE \(isMember("e.id", of: "?2", .postgres))
         ORDER BY e.id FOR UPDATE OF e SKIP LOCKED
        """

    /// Rows a claim reads from `endpoint_work` at a time: a small page first, each next one
    /// twice the last, up to the largest. A claim mostly needs a few endpoints, each one's room
    /// covering several deliveries; pages of the largest size read four rows of `endpoint_work`
    /// (and of `endpoints`) for each delivery a claim of 64 took at 10,000 endpoints.
    static let workPageSizes = (first: 16, largest: 256)

    /// PostgreSQL: folds the committed signals into `endpoint_work`, endpoints in id order (so
    /// folds and claims lock rows in one order), when this claim gets the fold lock (one folder
    /// at a time; the others go on without waiting). One statement: the lock is tried first,
    /// and the signals are taken only under it.
    static let foldSignals = """
        WITH folder AS (
            SELECT pg_try_advisory_xact_lock(7465627) AS holds
        ), taken AS (
            DELETE FROM endpoint_work_signals
             WHERE id IN (SELECT id FROM endpoint_work_signals WHERE (SELECT holds FROM folder) ORDER BY id LIMIT 50000)
            RETURNING endpoint_id, due_at
        )
        INSERT INTO endpoint_work (endpoint_id, due_at, pending_from)
        SELECT endpoint_id, min(due_at), min(due_at) FROM taken GROUP BY endpoint_id ORDER BY endpoint_id
        ON CONFLICT (endpoint_id) DO UPDATE
           SET due_at = least(endpoint_work.due_at, excluded.due_at),
               pending_from = least(endpoint_work.pending_from, excluded.pending_from), version = endpoint_work.version + 1
        """

    /// Moves an endpoint's row to ?2 (?1 endpoint, ?3 the version the claim read): past an open
    /// circuit or an empty bucket, or to its next pending delivery. On PostgreSQL a row another
    /// claim holds is left alone: an early row is only revisited.
    static let moveWork = DialectSQL { dialect in
        dialect == .sqlite
            ? "UPDATE endpoint_work SET due_at = ?2, version = version + 1 WHERE endpoint_id = ?1 AND version = ?3"
            : """
              UPDATE endpoint_work SET due_at = ?2, version = version + 1
               WHERE endpoint_id = (SELECT endpoint_id FROM endpoint_work WHERE endpoint_id = ?1 AND version = ?3 FOR UPDATE SKIP LOCKED)
              """
    }

    /// Deletes an endpoint's row (?1 endpoint, ?2 the version read): no pending delivery left,
    /// or the endpoint disabled or removed.
    static let dropWork = DialectSQL { dialect in
        dialect == .sqlite
            ? "DELETE FROM endpoint_work WHERE endpoint_id = ?1 AND version = ?2"
            : """
              DELETE FROM endpoint_work
               WHERE endpoint_id = (SELECT endpoint_id FROM endpoint_work WHERE endpoint_id = ?1 AND version = ?2 FOR UPDATE SKIP LOCKED)
              """
    }

    /// PostgreSQL: the earliest pending delivery of `endpoint` but those this claim leases
    /// (`mine`, a JSON array of ids), from `from` on: where the endpoint's row goes once its due
    /// work is taken. Rows another claim is leasing still read as pending, so they keep the row
    /// where it is. (SQLite's claim learns as much from its probe: `Probe.read`.)
    static func nextPendingDue(endpoint: String, mine: String, from: String) -> String {
        """
        SELECT min(d.next_attempt_at) FROM deliveries d
         WHERE d.endpoint_id = \(endpoint) AND d.status = 'pending' AND d.next_attempt_at >= \(from)
           AND NOT (\(isMember("d.id", of: mine, .postgres, as: "bigint")))
        """
    }

    /// PostgreSQL: `moveOn` for every probed endpoint in one statement (a round trip each cost
    /// more than the work: nine in ten of a claim's statements at ten endpoints). ?1 is a JSON
    /// array of `{endpoint_id, version, due_at, pending_from, filled, mine}` (`filled`: the claim
    /// took all the room it had there; `mine`: a JSON array of the ids it leases). Each row whose
    /// version is still the one read, and that no other claim holds, goes when its endpoint has
    /// no pending delivery left; otherwise its `pending_from` moves on to the next one, and so
    /// does its `due_at` unless the claim filled the endpoint's room (it surely has more due:
    /// left where it is, so that the update stays a heap-only one, with no new index entry).
    /// Rows are locked in endpoint order, as claims and folds lock them.
    static let moveOnPostgres = """
        WITH input AS (
            SELECT x.endpoint_id, x.version, x.due_at, x.pending_from, x.filled, x.mine
              FROM json_to_recordset(?1::json)
                AS x(endpoint_id text, version bigint, due_at bigint, pending_from bigint, filled boolean, mine text)
        ), nexts AS (
            SELECT i.endpoint_id, i.version, i.due_at, i.pending_from, i.filled,
                   (\(nextPendingDue(endpoint: "i.endpoint_id", mine: "i.mine", from: "i.pending_from"))) AS next
              FROM input i
        ), locked AS (
            SELECT w.endpoint_id FROM endpoint_work w JOIN nexts n ON n.endpoint_id = w.endpoint_id AND w.version = n.version
             WHERE n.next IS NULL OR n.next > n.pending_from OR (NOT n.filled AND n.next > n.due_at)
             ORDER BY w.endpoint_id FOR UPDATE OF w SKIP LOCKED
        ), moved AS (
            UPDATE endpoint_work w
               SET due_at = CASE WHEN NOT n.filled AND n.next > w.due_at THEN n.next ELSE w.due_at END,
                   pending_from = n.next, version = w.version + 1
              FROM nexts n
             WHERE w.endpoint_id = n.endpoint_id AND n.next IS NOT NULL AND w.endpoint_id IN (SELECT endpoint_id FROM locked)
            RETURNING 1
        ), dropped AS (
            DELETE FROM endpoint_work w USING nexts n
             WHERE w.endpoint_id = n.endpoint_id AND n.next IS NULL AND w.endpoint_id IN (SELECT endpoint_id FROM locked)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM dropped)
        """

    /// One endpoint of `endpoint_work` as a claim weighs it.
    private struct WorkRow {
        var id: String
        var dueAt: Int64
        var version: Int64
        /// PostgreSQL: where the probe of its due deliveries starts (`endpoint_work.pending_from`).
        var pendingFrom: Int64 = 0
        var usable = false
        var ordered = false
        var concurrency = 0
        var revision = 0
        var halfOpen = false
        var bucket: RateBucket?
        var heldUntil: Int64?

        /// The `endpointState` columns from `start` on.
        mutating func read(_ row: some SQLRow, from start: Int32, now: Int64) {
            func isSet(_ offset: Int32) -> Bool { !row.isNull(start + offset) && row.int(start + offset) != 0 }
            usable = isSet(0)
            ordered = isSet(1)
            concurrency = row.isNull(start + 2) ? 0 : row.int(start + 2)
            revision = row.isNull(start + 3) ? 0 : row.int(start + 3)
            halfOpen = isSet(4)
            bucket = row.isNull(start + 5) ? nil : RateBucket(
                perSecond: row.double(start + 5), tokens: row.isNull(start + 6) ? nil : row.double(start + 6),
                asOf: row.isNull(start + 7) ? nil : row.int64(start + 7), now: now)
            heldUntil = row.isNull(start + 8) ? nil : row.int64(start + 8)
        }
    }

    /// An endpoint a claim takes from: how many it may take, and how many rows it asked for.
    private struct Probe {
        var row: WorkRow
        var room: Int
        var asked: Int
        /// SQLite: the endpoint's pending rows the probe read, due or not, in due order, one
        /// more than it asked for: `moveOn` finds the endpoint's next pending delivery among them.
        var read: [(id: Int64, due: Int64, key: String)] = []
    }

    /// Claims up to `limit` due deliveries in one transaction.
    ///
    /// It reads `endpoint_work` in due order, a page at a time, and probes only the endpoints
    /// there that may take work now, in that order, no more of them than their room needs to
    /// cover the limit: its cost follows the endpoints with due work it visits (at most those
    /// with work in flight besides the ones it takes from), not how many endpoints exist. Each endpoint's oldest due deliveries are read by its own index probe,
    /// up to its room, so one endpoint's backlog cannot hide another's work; the rows chosen
    /// are the oldest due among them. An endpoint whose due work it took, or that may not take
    /// work before a known time, has its row moved on, so the next claim does not visit it again.
    /// `inFlight`: what this process holds by endpoint; `awaitingRecord`: of it, and of the
    /// store's leases, the attempts that ended and are not recorded yet (see `recordAndClaim`).
    static func claim(limit: Int, owner: String, leaseSeconds: Double, inFlight: [String: Int], awaitingRecord: [String: Int] = [:],
                      in db: some SQLConnection) throws -> [ClaimedDelivery] {
        guard limit > 0 else { return [] }
        let now = Clock.nowMilliseconds()
        let leaseExpiry = now + Int64((leaseSeconds * 1000).rounded())
        return try db.inTransaction {
            try db.executeDeferred(sweepExpiredLeases, [now])
            if db.dialect == .postgres { try db.executeDeferred(foldSignals, []) }
            var probes: [Probe] = []
            var leases = LeaseCounts.unread
            var candidates: [(id: Int64, due: Int64, endpointID: String)] = []
            var after: (due: Int64, id: String) = (Int64.min, "")
            var pageWasFull = true
            var pageSize = workPageSizes.first
            var open: ArraySlice<Probe> = []
            while candidates.count < limit {
                if open.isEmpty {
                    guard pageWasFull else { break }
                    let page = try db.query(workPage[db.dialect], [now, after.due, after.id, pageSize]) { row in
                        var work = WorkRow(id: row.string(0), dueAt: row.int64(1), version: row.int64(2))
                        if db.dialect == .sqlite { work.read(row, from: 3, now: now) } else { work.pendingFrom = row.int64(3) }
                        return work
                    }
                    pageWasFull = page.count == pageSize
                    pageSize = min(2 * pageSize, workPageSizes.largest)
                    guard let last = page.last else { break }
                    after = (last.dueAt, last.id)
                    open = try weigh(page, limit: limit - candidates.count, inFlight: inFlight, awaitingRecord: awaitingRecord,
                                     leases: &leases, owner: owner, now: now, in: db)[...]
                    continue
                }
                var next = fewestCovering(limit - candidates.count, of: &open)
                candidates += try probe(&next, now: now, in: db)
                probes += next
            }
            candidates.sort { ($0.due, $0.id) < ($1.due, $1.id) }
            let chosen = Array(candidates.prefix(limit))
            try moveOn(probes, chosen: chosen, in: db)
            guard !chosen.isEmpty else { return [] }
            return try leaseChosen(chosen.map(\.id), of: probes.map(\.row), owner: owner, leaseExpiry: leaseExpiry, now: now, in: db)
        }
    }

    /// The endpoints of a page that may take work now, each with its room; the others' rows are
    /// moved past what holds them, or dropped. On PostgreSQL the endpoints are locked first
    /// (skipping those another claim holds) and then read, then the leases counted, so the state
    /// and counts include whatever a claim that held a lock committed.
    private static func weigh(_ page: [WorkRow], limit: Int, inFlight: [String: Int], awaitingRecord: [String: Int],
                              leases: inout LeaseCounts, owner: String, now: Int64, in db: some SQLConnection) throws -> [Probe] {
        var page = page
        if db.dialect == .postgres {
            var fresh: [String: WorkRow] = [:]
            try db.forEachRow(lockEndpointStates, [now, JSONText.strings(page.map(\.id))]) { row in
                var work = WorkRow(id: row.string(0), dueAt: 0, version: 0)
                work.read(row, from: 1, now: now)
                fresh[work.id] = work
            }
            page = page.compactMap { row in
                guard var state = fresh[row.id] else { return nil }
                state.dueAt = row.dueAt
                state.version = row.version
                state.pendingFrom = row.pendingFrom
                return state
            }
        }
        var open: [WorkRow] = []
        for row in page {
            if !row.usable {
                try db.executeDeferred(dropWork[db.dialect], [row.id, row.version])
            } else if let heldUntil = row.heldUntil {
                try db.executeDeferred(moveWork[db.dialect], [row.id, heldUntil, row.version])
            } else if let bucket = row.bucket, bucket.whole == 0 {
                // When the bucket next holds a whole token.
                let wait = Int64(((1 - bucket.tokens) / bucket.perSecond * 1000).rounded(.up))
                try db.executeDeferred(moveWork[db.dialect], [row.id, now + max(1, wait), row.version])
            } else {
                open.append(row)
            }
        }
        guard !open.isEmpty else { return [] }
        let everywhere = try leases.read(owner: owner, inFlight: inFlight, now: now, in: db)
        return open.compactMap { row in
            // Ended attempts hold a lease, not the receiver. (Should one of their leases have run
            // out and been retaken, the other process's lease goes uncounted until this records.)
            let held = max(everywhere[row.id] ?? 0, inFlight[row.id] ?? 0) - (awaitingRecord[row.id] ?? 0)
            let concurrency = row.concurrency - held
            let room = min(concurrency, row.bucket?.whole ?? concurrency, limit)
            guard room > 0 else { return nil }
            // An ordered endpoint looks further: the oldest rows may all wait on one key.
            return Probe(row: row, room: room, asked: row.ordered ? limit * scanFactor : room)
        }
    }

    /// Every process's live leases by endpoint, read once a claim, unless the claiming process's
    /// own counts (`inFlight`) already say as much: when every live lease is its own and it
    /// counts as many as the store holds, the store's counts by endpoint are its counts. Reading
    /// every lease back to count them grew with the requests in flight, not the work due (at
    /// 2,000 workers and receivers answering in 100 ms, about 2,500 rows a claim); the two
    /// counts come from the index alone. (Should this process hold a job whose lease ran out
    /// while a lease it no longer tracks lives on, the totals could match with the counts by
    /// endpoint apart; both follow only failed writes, and that lease runs out in turn.)
    private enum LeaseCounts {
        case unread
        case read([String: Int])

        mutating func read(owner: String, inFlight: [String: Int], now: Int64, in db: some SQLConnection) throws -> [String: Int] {
            if case .read(let counts) = self { return counts }
            // On PostgreSQL the count would cost a round trip more, and several processes
            // (what it serves) mostly hold leases each: it reads them back every time.
            var onlyOwn = false
            if db.dialect == .sqlite {
                let (own, all) = try db.query(liveLeaseCounts, [now, owner]) { ($0.int(0), $0.int(1)) }.first ?? (0, 0)
                onlyOwn = own == all && own == inFlight.values.reduce(0, +)
            }
            var counts: [String: Int] = [:]
            if !onlyOwn {
                try db.forEachRow(inFlightEndpoints, [now]) { counts[$0.string(0), default: 0] += 1 }
            }
            self = .read(counts)
            return counts
        }
    }

    /// The first endpoints of `open` (in due order) whose room covers `needed`, taken from it;
    /// the last one's room cut to what is left. A page holds up to 256 endpoints (`workPageSizes`):
    /// probing them all to take a few would read every due row of each and leave most of them.
    private static func fewestCovering(_ needed: Int, of open: inout ArraySlice<Probe>) -> [Probe] {
        var left = needed
        var taken: [Probe] = []
        while left > 0, var probe = open.popFirst() {
            probe.room = min(probe.room, left)
            if !probe.row.ordered { probe.asked = probe.room }
            left -= probe.room
            taken.append(probe)
        }
        return taken
    }

    /// Each probed endpoint's oldest due deliveries, up to its room. On SQLite each probe reads
    /// one row more than it asks for (`Probe.read`).
    private static func probe(_ probes: inout [Probe], now: Int64, in db: some SQLConnection) throws -> [(id: Int64, due: Int64, endpointID: String)] {
        let lookAhead = db.dialect == .sqlite ? 1 : 0
        let due = try dueDeliveries(limits: probes.map { ($0.row.id, $0.asked + lookAhead, $0.row.pendingFrom) }, now: now, in: db)
        var candidates: [(id: Int64, due: Int64, endpointID: String)] = []
        for index in probes.indices {
            let probe = probes[index]
            let rows = due[probe.row.id] ?? []
            if db.dialect == .sqlite { probes[index].read = rows }
            var taken = 0
            for row in rows where taken < probe.room && row.due <= now {
                if probe.row.ordered, try !db.query(earlierUnfinished, [probe.row.id, row.key, row.id], map: { _ in true }).isEmpty {
                    continue
                }
                candidates.append((row.id, row.due, probe.row.id))
                taken += 1
            }
        }
        return candidates
    }

    /// Moves each probed endpoint's row on to its earliest pending delivery but those this
    /// claim leases, or deletes it when there is none: the next claim visits it only when it has
    /// due work again. (Its due work left, if any, keeps the row where it is: a room that ran
    /// out, a candidate not chosen, an ordered key waiting, another claim's lease not yet
    /// committed.) An endpoint that filled its room surely has more: left as it is, but on
    /// PostgreSQL its probe's start moves on past what this claim leased (`moveOnPostgres`).
    private static func moveOn(_ probes: [Probe], chosen: [(id: Int64, due: Int64, endpointID: String)], in db: some SQLConnection) throws {
        let chosenOf = Dictionary(grouping: chosen, by: \.endpointID)
        func filled(_ probe: Probe) -> Bool { (chosenOf[probe.row.id]?.count ?? 0) >= probe.room }
        if db.dialect == .postgres {
            guard !probes.isEmpty else { return }
            let rows = probes.map { probe -> JSONValue in
                .object([("endpoint_id", .string(probe.row.id)), ("version", .integer(probe.row.version)), ("due_at", .integer(probe.row.dueAt)),
                         ("pending_from", .integer(probe.row.pendingFrom)), ("filled", .bool(filled(probe))),
                         ("mine", .string(JSONText.integers((chosenOf[probe.row.id] ?? []).map(\.id))))])
            }
            try db.executeDeferred(moveOnPostgres, [JSONValue.array(rows).text])
            return
        }
        // SQLite: the probe read the endpoint's oldest pending rows in due order, one more than
        // it asked for, so the first this claim does not lease is the next. When it leases
        // every row read, they were fewer than asked for (it takes at most its room), and so
        // all there were: none is left.
        for probe in probes where !filled(probe) {
            let mine = Set((chosenOf[probe.row.id] ?? []).map(\.id))
            if let next = probe.read.first(where: { !mine.contains($0.id) })?.due {
                if next > probe.row.dueAt { try db.execute(moveWork[db.dialect], [probe.row.id, next, probe.row.version]) }
            } else {
                try db.execute(dropWork[db.dialect], [probe.row.id, probe.row.version])
            }
        }
    }

    /// Leases the chosen deliveries and reads what their attempts need: bodies, trace context,
    /// the endpoint's revision, when the run of attempts began. Starts a half-open endpoint's
    /// probe and spends rate-limited endpoints' tokens.
    private static func leaseChosen(_ chosen: [Int64], of endpoints: [WorkRow], owner: String, leaseExpiry: Int64, now: Int64,
                                    in db: some SQLConnection) throws -> [ClaimedDelivery] {
        let position = Dictionary(uniqueKeysWithValues: chosen.enumerated().map { ($1, $0) })
        var claimed = try db.query(lease[db.dialect],
                                   [JSONText.integers(chosen), owner, leaseExpiry, now]) { row in
            ClaimedDelivery(deliveryID: row.int64(0), eventID: row.string(1), eventType: row.string(2),
                            tenantID: row.string(3), endpointID: row.string(4), endpointRevision: 0,
                            attemptNumber: row.int(5) + 1, body: [], createdAt: Clock.date(milliseconds: row.int64(6)),
                            firstAttemptAt: nil, retryBase: row.int(7))
        }
        claimed.sort { position[$0.deliveryID, default: 0] < position[$1.deliveryID, default: 0] }
        let eventIDs = Array(Set(claimed.map(\.eventID)))
        let bodies = Dictionary(try db.query(bodies[db.dialect], [JSONText.strings(eventIDs)]) { row in
            (row.string(0), (body: row.bytes(1),
                             trace: try? row.optionalString(2).map { try TraceContext(traceparent: $0, tracestate: row.optionalString(3)) }))
        }, uniquingKeysWith: { first, _ in first })
        let byID = Dictionary(uniqueKeysWithValues: endpoints.map { ($0.id, $0) })
        for endpoint in endpoints where endpoint.halfOpen && claimed.contains(where: { $0.endpointID == endpoint.id }) {
            try db.executeDeferred(startProbe, [endpoint.id, now])
        }
        for endpoint in endpoints {
            guard let bucket = endpoint.bucket else { continue }
            let taken = claimed.count { $0.endpointID == endpoint.id }
            if taken > 0 { try db.executeDeferred(spendRateTokens, [endpoint.id, bucket.tokens - Double(taken), now]) }
        }
        for index in claimed.indices {
            let stored = bodies[claimed[index].eventID]
            claimed[index].body = stored?.body ?? []
            claimed[index].traceContext = stored?.trace ?? nil
            claimed[index].endpointRevision = byID[claimed[index].endpointID]?.revision ?? 0
            claimed[index].leasedAt = now
            if claimed[index].attemptNumber > claimed[index].retryBase + 1 {
                claimed[index].firstAttemptAt = try db.query(firstAttemptStart, [claimed[index].deliveryID, claimed[index].retryBase]) {
                    $0.isNull(0) ? nil : Clock.date(milliseconds: $0.int64(0))
                }.first ?? nil
            }
        }
        return claimed
    }

    /// Records a batch in a few statements whatever its size: attempts and delivery verdicts
    /// go in multi-row chunks (`chunked`), and endpoint health is updated once per endpoint.
    static func record(_ results: [AttemptResult], options: StoreOptions = StoreOptions(), in db: some SQLConnection) throws -> [DisabledEndpoint] {
        guard !results.isEmpty else { return [] }
        let now = Clock.nowMilliseconds()
        return try db.inTransaction {
            // With an operations tenant, the endpoints' health before these results, to tell
            // what they changed (`OperationsNotices`).
            let before = try options.operationsTenant.map { _ in try OperationsNotices.states(of: Array(Set(results.map(\.endpointID))), in: db) }
            for chunk in chunked(results, db.dialect) {
                try db.executeDeferred(insertAttempts[chunk.count] ?? insertAttemptsSQL(rows: chunk.count), rows(chunk, columns: attemptColumns, appendAttemptRow))
            }
            // An interim attempt (a 401 retried at once) counts under the lease its final
            // attempt then releases, so the counts go first.
            for result in results where result.keepsLease {
                try db.executeDeferred(countAttempt, [result.attempt.responseStatus, lastError(of: result.attempt), now, result.deliveryID, result.leaseOwner])
            }
            // Filtered only when some result keeps its lease (a 401 retried at once): a filtered
            // array is a copy of every result, each copy retaining its strings and arrays.
            let finishing = results.contains(where: \.keepsLease) ? results.filter { !$0.keepsLease } : results
            for chunk in chunked(finishing, db.dialect) {
                try db.executeDeferred(finishAttempts[chunk.count]?[db.dialect] ?? finishAttemptsSQL(rows: chunk.count, db.dialect),
                                       rows(chunk, columns: verdictColumns) { appendVerdictRow($0, now: now, to: &$1) })
            }
            let disabled = try updateEndpointHealth(after: results, now: now, in: db)
            if let tenant = options.operationsTenant, let before {
                try OperationsNotices.afterRecording(results, before: before, disabled: disabled, now: now, tenant: tenant, options: options, in: db)
            }
            return disabled
        }
    }

    /// Each endpoint's health after its results in this batch: a success resets it, and the
    /// failures after its last success count (and may open the circuit or disable it).
    /// Endpoints in id order, so concurrent batches lock endpoint rows in one order and cannot
    /// deadlock each other.
    private static func updateEndpointHealth(after results: [AttemptResult], now: Int64, in db: some SQLConnection) throws -> [DisabledEndpoint] {
        // One pass in the results' order, counting by endpoint id rather than grouping the
        // results themselves (a copy of each).
        var healthy: Set<String> = []
        var failuresAfterLastSuccess: [String: Int] = [:]
        for result in results {
            if result.attempt.errorKind == nil {
                healthy.insert(result.endpointID)
                failuresAfterLastSuccess[result.endpointID] = nil
            } else {
                failuresAfterLastSuccess[result.endpointID, default: 0] += 1
            }
        }
        if !healthy.isEmpty {
            try db.executeDeferred(endpointsSucceeded[db.dialect], [JSONText.strings(healthy.sorted())])
        }
        for result in results where result.attempt.responseStatus == 429 {
            let header = result.attempt.responseHeaders?.last { $0.hasName("Retry-After") }?.value
            guard let seconds = RetryAfter.seconds(from: header), seconds > 0 else { continue }
            try db.executeDeferred(throttleEndpoint, [result.endpointID, now + Int64((min(seconds, maxThrottleSeconds) * 1000).rounded())])
        }
        var disabled: [DisabledEndpoint] = []
        for (endpointID, failures) in failuresAfterLastSuccess.sorted(by: { $0.key < $1.key }) {
            for _ in 0..<failures { try db.executeDeferred(endpointFailed, [endpointID, now]) }
            if let reason = try db.query(disableFailingEndpoint[db.dialect], [endpointID, now], map: { $0.string(0) }).first {
                disabled.append(DisabledEndpoint(endpointID: endpointID, reason: reason))
            }
        }
        return disabled
    }

    /// An attempt's error as a delivery's `last_error` keeps it: `kind: message`.
    static func lastError(of attempt: Attempt) -> String? {
        attempt.errorKind.map { kind in attempt.errorMessage.map { "\(kind): \($0)" } ?? kind.rawValue }
    }

    /// A multi-row statement's bindings, written into one array sized up front (a row per
    /// result), rather than an array per row joined afterwards.
    private static func rows(_ chunk: ArraySlice<AttemptResult>, columns: Int,
                             _ appendRow: (AttemptResult, inout [SQLBindable]) -> Void) -> [SQLBindable] {
        var bindings: [SQLBindable] = []
        bindings.reserveCapacity(chunk.count * columns)
        for result in chunk { appendRow(result, &bindings) }
        return bindings
    }

    /// The parameters a row of `insertAttempts` binds (`appendAttemptRow`), and of
    /// `finishAttempts` (`appendVerdictRow`): one count for the SQL and the bindings.
    private static let attemptColumns = 14
    private static let verdictColumns = 7

    private static func appendAttemptRow(_ result: AttemptResult, to bindings: inout [SQLBindable]) {
        let attempt = result.attempt
        let headers = result.storedHeaders ?? StoredHeaders(attempt)
        bindings += [
            result.deliveryID, attempt.number, Clock.milliseconds(attempt.startedAt), attempt.durationMicroseconds,
            attempt.url, headers.request, attempt.responseStatus, headers.response,
            attempt.responseBody, attempt.responseTruncated,
            attempt.errorKind?.rawValue, attempt.errorMessage, attempt.verdict.storedName, nextAttempt(of: attempt),
        ]
    }

    /// The columns of `finishAttempts`' VALUES rows, in order.
    private static func appendVerdictRow(_ result: AttemptResult, now: Int64, to bindings: inout [SQLBindable]) {
        let status: DeliveryStatus
        switch result.attempt.verdict {
        case .succeeded: status = .succeeded
        case .failed: status = .failed
        case .retryScheduled: status = .pending
        }
        bindings += [result.deliveryID, result.leaseOwner, status.rawValue, nextAttempt(of: result.attempt),
                     result.attempt.responseStatus, lastError(of: result.attempt), now]
    }

    private static func nextAttempt(of attempt: Attempt) -> Int64? {
        if case .retryScheduled(let at) = attempt.verdict { return Clock.milliseconds(at) }
        return nil
    }

    /// The largest rows per multi-row statement: 14 × 32 parameters stays far below either
    /// engine's limit, and a batch needs at most one statement per power of two below it.
    static let chunkSizes = [32, 16, 8, 4, 2, 1]

    /// Splits a batch into chunks of `chunkSizes`, so that only six statement texts (each
    /// prepared once per connection) ever serve any batch size. On PostgreSQL, where each
    /// statement is executed on its own (pipelined, but one by one), a chunk is as large as it can
    /// be (up to 32 rows: 32 texts).
    static func chunked<T>(_ rows: [T], _ dialect: SQLDialect) -> [ArraySlice<T>] {
        var chunks: [ArraySlice<T>] = []
        var start = rows.startIndex
        while start < rows.endIndex {
            let left = rows.endIndex - start
            let size = dialect == .postgres ? min(left, chunkSizes[0]) : chunkSizes.first { $0 <= left } ?? 1
            chunks.append(rows[start..<(start + size)])
            start += size
        }
        return chunks
    }

    private static func valuesRows(_ rows: Int, columns: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        return Array(repeating: row, count: rows).joined(separator: ", ")
    }

    /// The multi-row statements for every size `chunked` makes (SQLite's six, and any up to 32 on
    /// PostgreSQL), built once: only the six were, so a PostgreSQL cycle built and hashed the text
    /// of any other size again each time.
    static let insertAttempts = Dictionary(uniqueKeysWithValues: (1...chunkSizes[0]).map { ($0, insertAttemptsSQL(rows: $0)) })
    static let finishAttempts = Dictionary(uniqueKeysWithValues: (1...chunkSizes[0]).map { rows in
        (rows, DialectSQL { finishAttemptsSQL(rows: rows, $0) })
    })

    static func insertAttemptsSQL(rows: Int) -> String {
        """
        INSERT INTO attempts (delivery_id, number, started_at, duration_us, url, request_headers,
                              response_status, response_headers, response_body, response_truncated,
                              error_kind, error_message, verdict, next_attempt_at)
        VALUES \(valuesRows(rows, columns: attemptColumns))
        """
    }

    /// Applied only while the lease is still this worker's: a worker whose lease expired and
    /// was retaken still gets its attempt recorded, but no longer decides the delivery's state.
    /// VALUES columns are `column1`... on both engines: id, owner, status, next attempt, HTTP
    /// status, last error, now.
    ///
    /// On PostgreSQL the status test is written so that it does not match the predicate of the
    /// partial index `deliveries_leased` (same meaning: `status` is never NULL). Written as `=`,
    /// it let the planner, whose statistics date from before the bulk of the work was leased,
    /// estimate one leased row and answer each chunk of 32 by reading every leased delivery
    /// (128–272 at once in the bench) into a hash join, where the primary key finds each one.
    static func finishAttemptsSQL(rows: Int, _ dialect: SQLDialect) -> String {
        let stillLeased = dialect == .postgres ? "deliveries.status IS NOT DISTINCT FROM 'delivering'" : "deliveries.status = 'delivering'"
        return """
            UPDATE deliveries
               SET status = v.column3, attempt_count = attempt_count + 1, next_attempt_at = v.column4,
                   last_http_status = v.column5, last_error = v.column6, lease_owner = NULL, lease_expires_at = NULL,
                   updated_at = v.column7
              FROM (VALUES \(valuesRows(rows, columns: verdictColumns))) AS v
             WHERE deliveries.id = v.column1 AND deliveries.lease_owner = v.column2 AND \(stillLeased)
            """
    }

    static func release(deliveryIDs: [Int64], owner: String, in db: some SQLConnection) throws {
        guard !deliveryIDs.isEmpty else { return }
        let now = Clock.nowMilliseconds()
        try db.execute(release[db.dialect], [now, JSONText.integers(deliveryIDs), owner])
    }
}
