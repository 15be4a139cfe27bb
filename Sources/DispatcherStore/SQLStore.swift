import DispatcherModel
import Foundation

/// The outbox over SQL: every `OutboxStore` operation, written once over `SQLConnection`.
/// `SQLiteStore` (the embedded default) and `PostgresStore` (scale-out) supply connections
/// and what only their engine can do (noticing other processes' commits).
///
/// `@unchecked Sendable`: subclasses hand out a connection to one caller at a time.
public class SQLStore: OutboxStore, @unchecked Sendable {
    public let options: StoreOptions
    /// Where the data lives, fit for logs: a file path, or a PostgreSQL URL without its password.
    public let location: String

    init(options: StoreOptions, location: String) {
        self.options = options
        self.location = location
    }

    /// Opens the store `location` names: a `postgres://` or `postgresql://` URL, else a SQLite
    /// file path. What `database` in the config and `--db` accept.
    public static func open(_ location: String, options: StoreOptions = StoreOptions()) throws -> SQLStore {
        if PostgresStore.isURL(location) { return try PostgresStore(url: location, options: options) }
        return try SQLiteStore(path: location, options: options)
    }

    /// Runs `body` with a connection no other caller uses meanwhile.
    func withDatabase<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        preconditionFailure("\(type(of: self)) must override withDatabase")
    }

    /// Runs `body` in one transaction; PostgreSQL runs it again when it aborted it to break a
    /// deadlock. For the worker's own writes, which have no effect outside the database.
    func withRetryingTransaction<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try withDatabase { db in try db.inTransaction { try body(db) } }
    }

    /// Tells other processes' idle workers that there is new work (PostgreSQL: NOTIFY, sent
    /// when the surrounding transaction commits). SQLite needs nothing: they watch `data_version`.
    func announceWork(on db: any SQLConnection) throws {}

    /// See `OutboxStore.externalChangeToken`.
    public func externalChangeToken() throws -> Int64 {
        preconditionFailure("\(type(of: self)) must override externalChangeToken")
    }

    /// Runs `body` in one write transaction: a producer's own SQL and its `enqueue` calls
    /// commit together or not at all (the transactional outbox). Throwing rolls back.
    ///
    /// ```swift
    /// try store.write { tx in
    ///     try tx.execute("INSERT INTO visits (id, status) VALUES (?, ?)", [28540, "ended"])
    ///     try tx.enqueue(NewEvent(tenantID: "clinic-a", type: "visit.ended", json: body))
    /// }
    /// ```
    @discardableResult
    public func write<T>(_ body: (OutboxTransaction) throws -> T) throws -> T {
        try withDatabase { db in
            try db.inTransaction { try body(OutboxTransaction(db: db, options: options)) }
        }
    }

    /// One event in a transaction of its own: on PostgreSQL a single statement (event,
    /// deliveries and wake-up), so one round trip.
    @discardableResult
    public func enqueue(_ event: NewEvent) throws -> EnqueueResult {
        try withDatabase { db in try OutboxQueries.enqueue(event, in: db, options: options) }
    }

    /// Enqueues many events in one transaction: the same validation and idempotency as
    /// `enqueue`, all or nothing (one invalid event stores none).
    @discardableResult
    public func enqueue(contentsOf events: [NewEvent]) throws -> [EnqueueResult] {
        try write { tx in try events.map { try tx.enqueue($0) } }
    }

    /// Enqueues many events in one transaction, each on its own: a rejected event (its error
    /// returned in its place) does not stop the others. For backfills (`enqueue --ndjson`).
    public func enqueueEach(_ events: [NewEvent]) throws -> [Result<EnqueueResult, DispatcherError>] {
        try write { tx in try events.map { event in try tx.enqueueIsolated(event) } }
    }

    /// A ping event with one delivery to `endpoint`, already leased to `owner` (`endpoints test`).
    package func enqueuePing(endpoint: Endpoint, body: [UInt8], owner: String, leaseSeconds: Double) throws -> ClaimedDelivery {
        try withDatabase { db in
            try OperationsQueries.enqueuePing(endpoint: endpoint, body: body, owner: owner, leaseSeconds: leaseSeconds, in: db)
        }
    }
}

/// The handle a store's `write` closure gets: the producer's SQL and the outbox in one
/// transaction. Valid only inside that closure.
public struct OutboxTransaction {
    let db: any SQLConnection
    let options: StoreOptions

    init(db: any SQLConnection, options: StoreOptions) {
        self.db = db
        self.options = options
    }

    /// Runs one statement of the producer's own, with bound parameters; returns rows changed.
    @discardableResult
    public func execute(_ sql: String, _ bindings: [SQLiteBindable] = []) throws -> Int {
        try db.execute(sql, bindings)
    }

    /// Reads rows of the producer's own tables.
    public func rows(_ sql: String, _ bindings: [SQLiteBindable] = []) throws -> [[SQLiteValue]] {
        try db.rows(sql, bindings)
    }

    /// Enqueues an event inside this transaction; it is delivered only if the transaction commits.
    @discardableResult
    public func enqueue(_ event: NewEvent) throws -> EnqueueResult {
        try OutboxQueries.enqueue(event, in: db, options: options)
    }

    /// Enqueues on its own: an invalid event is returned as its error and the transaction goes
    /// on (an enqueue that throws `DispatcherError` has written nothing); a database failure
    /// still throws.
    func enqueueIsolated(_ event: NewEvent) throws -> Result<EnqueueResult, DispatcherError> {
        do {
            return .success(try OutboxQueries.enqueue(event, in: db, options: options))
        } catch let error as DispatcherError {
            return .failure(error)
        }
    }
}

extension SQLStore {
    public func upsert(tenants: [Tenant], endpoints: [Endpoint]) throws {
        try withDatabase { db in
            try EndpointQueries.upsert(tenants: tenants, endpoints: endpoints, in: db)
            try announceWork(on: db)
        }
    }

    public func endpoint(id: String) throws -> Endpoint? {
        try withDatabase { db in try EndpointQueries.endpoint(id: id, in: db) }
    }

    public func tenants() throws -> [Tenant] {
        try withDatabase { db in try db.query(EndpointQueries.selectTenants) { Tenant(id: $0.string(0), name: $0.string(1)) } }
    }

    public func endpointStatuses() throws -> [EndpointStatus] {
        try withDatabase { db in try EndpointQueries.endpointsWithHealth(in: db) }
    }

    public func setEndpointEnabled(id: String, enabled: Bool) throws {
        try withDatabase { db in
            try EndpointQueries.setEnabled(id: id, enabled: enabled, reason: enabled ? nil : "disabled by hand", in: db)
            try announceWork(on: db)
        }
    }

    public func endpointRevision(id: String) throws -> Int? {
        try withDatabase { db in try EndpointQueries.revision(id: id, in: db) }
    }

    public func claimDueDeliveries(limit: Int, owner: String, leaseSeconds: Double, inFlight: [String: Int]) throws -> [ClaimedDelivery] {
        try withRetryingTransaction { db in
            try DeliveryQueries.claim(limit: limit, owner: owner, leaseSeconds: leaseSeconds, inFlight: inFlight, in: db)
        }
    }

    @discardableResult
    public func record(_ results: [AttemptResult]) throws -> [DisabledEndpoint] {
        try withRetryingTransaction { db in try DeliveryQueries.record(results, in: db) }
    }

    public func recordAndClaim(_ results: [AttemptResult], claimLimit: Int, owner: String, leaseSeconds: Double,
                               inFlight: [String: Int]) throws -> (disabled: [DisabledEndpoint], claimed: [ClaimedDelivery]) {
        try withRetryingTransaction { db in
            let disabled = try DeliveryQueries.record(results, in: db)
            let claimed = try DeliveryQueries.claim(limit: claimLimit, owner: owner, leaseSeconds: leaseSeconds, inFlight: inFlight, in: db)
            return (disabled, claimed)
        }
    }

    public func releaseLeases(deliveryIDs: [Int64], owner: String) throws {
        try withDatabase { db in
            try DeliveryQueries.release(deliveryIDs: deliveryIDs, owner: owner, in: db)
            try announceWork(on: db)
        }
    }

    public func deliveries(matching filter: DeliveryFilter) throws -> [Delivery] {
        try withDatabase { db in try LogQueries.deliveries(matching: filter, in: db) }
    }

    public func eventRecord(eventID: String) throws -> EventRecord? {
        try withDatabase { db in try LogQueries.eventRecord(eventID: eventID, in: db) }
    }

    public func eventRecord(deliveryID: Int64) throws -> EventRecord? {
        try withDatabase { db in try LogQueries.eventRecord(deliveryID: deliveryID, in: db) }
    }

    public func eventIDs(withPrefix prefix: String, limit: Int) throws -> [String] {
        try withDatabase { db in try LogQueries.eventIDs(withPrefix: prefix, limit: limit, in: db) }
    }

    public func removeEndpoint(id: String) throws -> Int {
        try withDatabase { db in try EndpointQueries.remove(id: id, in: db) }
    }

    public func redeliver(deliveryIDs: [Int64], eventIDs: [String]) throws -> Int {
        try withDatabase { db in
            defer { try? announceWork(on: db) }
            return try OperationsQueries.redeliver(deliveryIDs: deliveryIDs, eventIDs: eventIDs, in: db)
        }
    }

    public func replay(_ filter: ReplayFilter, dryRun: Bool) throws -> Int {
        try withDatabase { db in
            defer { if !dryRun { try? announceWork(on: db) } }
            return try OperationsQueries.replay(filter, dryRun: dryRun, in: db)
        }
    }

    public func cancel(deliveryIDs: [Int64], eventIDs: [String]) throws -> Int {
        try withDatabase { db in try OperationsQueries.cancel(deliveryIDs: deliveryIDs, eventIDs: eventIDs, in: db) }
    }

    public func stats(windowSeconds: Double) throws -> DeliveryStats {
        try withDatabase { db in try OperationsQueries.stats(window: windowSeconds, in: db) }
    }

    public func prune(olderThan cutoff: Date, dryRun: Bool) throws -> PruneResult {
        try withDatabase { db in try OperationsQueries.prune(olderThan: cutoff, dryRun: dryRun, in: db) }
    }

    public func activity(since: Date, bucketSeconds: Double, now: Date) throws -> ActivityReport {
        try withDatabase { db in try LogQueries.activity(since: since, bucketSeconds: bucketSeconds, now: now, in: db) }
    }

    public func hasUnfinishedDeliveries() throws -> Bool {
        try withDatabase { db in try db.query(LogQueries.anyUnfinished) { $0.int(0) != 0 }.first ?? false }
    }

    public func pendingCount() throws -> Int {
        try withDatabase { db in try db.query(LogQueries.pendingCount) { $0.int(0) }.first ?? 0 }
    }
}
