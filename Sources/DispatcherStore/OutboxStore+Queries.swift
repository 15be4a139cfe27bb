import DispatcherModel
import Foundation

extension OutboxStore: EndpointDirectory {
    public func upsert(tenants: [Tenant], endpoints: [Endpoint], actor: ChangeActor) throws {
        try withConnection { db in
            try EndpointQueries.upsert(tenants: tenants, endpoints: endpoints, actor: actor, in: db)
            try provider.announceWork(on: db)
        }
    }

    public func endpoint(id: String) throws -> Endpoint? {
        try withConnection { db in try EndpointQueries.endpoint(id: id, in: db) }
    }

    public func endpoints(ids: [String]) throws -> [Endpoint] {
        try withConnection { db in try EndpointQueries.endpoints(ids: ids, in: db) }
    }

    public func tenants() throws -> [Tenant] {
        try withConnection { db in try db.query(EndpointQueries.selectTenants) { Tenant(id: $0.string(0), name: $0.string(1)) } }
    }

    public func setEndpointEnabled(id: String, enabled: Bool, actor: ChangeActor) throws {
        try withConnection { db in
            try db.inTransaction {
                let before = try EndpointQueries.setEnabled(id: id, enabled: enabled, reason: enabled ? nil : "disabled by hand", actor: actor, in: db)
                if enabled, let tenant = options.operationsTenant, let reason = before.disabledReason, reason != "disabled by hand" {
                    try OperationsNotices.recovered(endpointID: id, tenantID: before.tenantID, reason: reason, tenant: tenant, options: options, in: db)
                }
            }
            try provider.announceWork(on: db)
        }
    }

    public func removeEndpoint(id: String, actor: ChangeActor) throws -> Int {
        try withConnection { db in try EndpointQueries.remove(id: id, actor: actor, in: db) }
    }

    public func rotateSigningSecret(endpointID: String, secret: String, graceSeconds: Double, actor: ChangeActor) throws {
        try withConnection { db in
            try EndpointQueries.rotateSigningSecret(endpointID: endpointID, secret: secret, graceSeconds: graceSeconds, actor: actor, in: db)
        }
    }

    public func endpointHistory(id: String, limit: Int) throws -> [EndpointChange] {
        try withConnection { db in try EndpointQueries.history(id: id, limit: limit, in: db) }
    }
}

extension OutboxStore: DeliveryLog {
    public func deliveries(matching filter: DeliveryFilter) throws -> [Delivery] {
        try withConnection { db in try LogQueries.deliveries(matching: filter, in: db) }
    }

    public func eventRecord(eventID: String) throws -> EventRecord? {
        try withConnection { db in try LogQueries.eventRecord(eventID: eventID, in: db) }
    }

    public func eventRecord(deliveryID: Int64) throws -> EventRecord? {
        try withConnection { db in try LogQueries.eventRecord(deliveryID: deliveryID, in: db) }
    }

    public func eventIDs(withPrefix prefix: String, limit: Int) throws -> [String] {
        try withConnection { db in try LogQueries.eventIDs(withPrefix: prefix, limit: limit, in: db) }
    }
}

extension OutboxStore: DeliveryQueue {
    package func endpointRevision(id: String) throws -> Int? {
        try withConnection { db in try EndpointQueries.revision(id: id, in: db) }
    }

    package func claimDueDeliveries(limit: Int, owner: String, leaseSeconds: Double, inFlight: [String: Int]) throws -> [ClaimedDelivery] {
        try withDeliveryTransaction { db in
            try DeliveryQueries.claim(limit: limit, owner: owner, leaseSeconds: leaseSeconds, inFlight: inFlight, in: db)
        }
    }

    @discardableResult
    package func record(_ results: [AttemptResult]) throws -> [DisabledEndpoint] {
        try withDeliveryTransaction { db in try DeliveryQueries.record(results, options: options, in: db) }
    }

    package func recordAndClaim(_ results: [AttemptResult], claimLimit: Int, owner: String, leaseSeconds: Double,
                               inFlight: [String: Int], awaitingRecord: [String: Int]) throws -> StoreCycle {
        var bodyEnded = DispatchTime.now()
        let (disabled, claimed) = try withDeliveryTransaction { db in
            let disabled = try DeliveryQueries.record(results, options: options, in: db)
            let claimed = try DeliveryQueries.claim(limit: claimLimit, owner: owner, leaseSeconds: leaseSeconds, inFlight: inFlight,
                                                    awaitingRecord: awaitingRecord, in: db)
            bodyEnded = DispatchTime.now()
            return (disabled, claimed)
        }
        let commitNanoseconds = DispatchTime.now().uptimeNanoseconds - bodyEnded.uptimeNanoseconds
        return StoreCycle(disabled: disabled, claimed: claimed, commitSeconds: Double(commitNanoseconds) / 1e9)
    }

    /// A transaction of the worker's bookkeeping (leases, attempts, verdicts): on PostgreSQL
    /// its commit does not wait for the server's disk unless `synchronousDeliveryCommits` says
    /// so (`StoreOptions` says what that risks), and it reads the leases by index scans
    /// (`DeliveryQueries.scanLeasesByIndex`). The settings travel with the transaction's first
    /// statement and end with it, so an enqueue on the same connection still waits.
    func withDeliveryTransaction<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try provider.withRetryingTransaction { db in
            if db.dialect == .postgres {
                try db.executeDeferred(DeliveryQueries.scanLeasesByIndex, [])
                if !options.synchronousDeliveryCommits { try db.executeDeferred(DeliveryQueries.commitWithoutWaitingForDisk, []) }
            }
            return try body(db)
        }
    }

    package func releaseLeases(deliveryIDs: [Int64], owner: String) throws {
        try withConnection { db in
            try DeliveryQueries.release(deliveryIDs: deliveryIDs, owner: owner, in: db)
            try provider.announceWork(on: db)
        }
    }

    package func hasUnfinishedDeliveries() throws -> Bool {
        try withConnection { db in try db.query(LogQueries.anyUnfinished) { $0.int(0) != 0 }.first ?? false }
    }

    package func pendingCount() throws -> Int {
        try withReadConnection { db in try db.query(LogQueries.pendingCount) { $0.int(0) }.first ?? 0 }
    }
}

extension OutboxStore: OutboxAdministration {
    package func metrics(eventsAfter: Int64, eventsUpTo: Int64) throws -> StoreMetrics {
        try withReadConnection { db in try OperationsQueries.metrics(eventsAfter: eventsAfter, eventsUpTo: eventsUpTo, in: db) }
    }

    package func endpointStatuses(tenantID: String?) throws -> [EndpointStatus] {
        try withConnection { db in try EndpointQueries.endpointsWithHealth(tenantID: tenantID, in: db) }
    }

    package func endpointStatus(id: String) throws -> EndpointStatus? {
        try withConnection { db in try EndpointQueries.endpointsWithHealth(id: id, in: db).first }
    }

    package func redeliver(deliveryIDs: [Int64], eventIDs: [String]) throws -> Int {
        try withConnection { db in
            defer { try? provider.announceWork(on: db) }
            return try OperationsQueries.redeliver(deliveryIDs: deliveryIDs, eventIDs: eventIDs, in: db)
        }
    }

    package func replay(_ filter: ReplayFilter, dryRun: Bool) throws -> Int {
        try withConnection { db in
            defer { if !dryRun { try? provider.announceWork(on: db) } }
            return try OperationsQueries.replay(filter, dryRun: dryRun, in: db)
        }
    }

    package func cancel(deliveryIDs: [Int64], eventIDs: [String]) throws -> Int {
        try withConnection { db in try OperationsQueries.cancel(deliveryIDs: deliveryIDs, eventIDs: eventIDs, in: db) }
    }

    package func stats(windowSeconds: Double) throws -> DeliveryStats {
        try withReadConnection { db in try OperationsQueries.stats(window: windowSeconds, in: db) }
    }

    package func queueStats(windowSeconds: Double) throws -> DeliveryStats {
        try withReadConnection { db in try OperationsQueries.queueStats(window: windowSeconds, in: db) }
    }

    package func prune(olderThan cutoff: Date, dryRun: Bool) throws -> PruneResult {
        try withConnection { db in try OperationsQueries.prune(olderThan: cutoff, dryRun: dryRun, in: db) }
    }

    package func activity(since: Date, bucketSeconds: Double, now: Date) throws -> ActivityReport {
        try withReadConnection { db in try LogQueries.activity(since: since, bucketSeconds: bucketSeconds, now: now, in: db) }
    }

    package func dropExpiredSigningSecrets(now: Date) throws -> Int {
        let changed = try withConnection { db in try EndpointQueries.dropExpiredSigningSecrets(now: now, in: db) }
        if changed > 0 { try withConnection { db in try provider.announceWork(on: db) } }
        return changed
    }
}
