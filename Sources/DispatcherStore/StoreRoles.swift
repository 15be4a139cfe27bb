import DispatcherModel
import Foundation

// What each kind of caller needs from the outbox, one protocol per role, so a caller depends on
// its role rather than on every operation the store has. `OutboxStore` plays them all.

/// A producer: events into the outbox, alone or inside the producer's own transaction.
public protocol EventOutbox: AnyObject, Sendable {
    /// Runs `body` in one write transaction: the producer's own SQL and its `enqueue` calls
    /// commit together or not at all. Throwing rolls back.
    @discardableResult
    func write<T>(_ body: (OutboxTransaction) throws -> T) throws -> T

    /// Stores the event and fans it out to one delivery per matching enabled endpoint.
    @discardableResult
    func enqueue(_ event: NewEvent) throws -> EnqueueResult

    /// Enqueues many events in one transaction, all or nothing.
    @discardableResult
    func enqueue(contentsOf events: [NewEvent]) throws -> [EnqueueResult]

    /// Enqueues many events in one transaction, each on its own: a rejected event (its error
    /// returned in its place) does not stop the others.
    func enqueueEach(_ events: [NewEvent]) throws -> [Result<EnqueueResult, DispatcherError>]
}

/// Tenants and their endpoints: the config at `serve` start, `dispatcher endpoints`, an admin page.
public protocol EndpointDirectory: AnyObject, Sendable {
    /// Creates or updates tenants and their endpoints. Endpoints the list does not name are
    /// left as they are.
    /// Every endpoint that changes gets an entry in its history naming `actor`; with
    /// `.config` the endpoints become managed by the config file (and those it no longer
    /// names stop being).
    func upsert(tenants: [Tenant], endpoints: [Endpoint], actor: ChangeActor) throws
    func endpoint(id: String) throws -> Endpoint?
    /// Those of `ids` that exist and are not removed, in no particular order: many in one query.
    func endpoints(ids: [String]) throws -> [Endpoint]
    func tenants() throws -> [Tenant]
    /// Enables or disables an endpoint by hand; enabling clears a failure run and its circuit.
    func setEndpointEnabled(id: String, enabled: Bool, actor: ChangeActor) throws
    /// Removes an endpoint (its history stays) and cancels its pending deliveries; returns how many.
    func removeEndpoint(id: String, actor: ChangeActor) throws -> Int
    /// Makes `secret` the endpoint's signing secret (Standard Webhooks `v1`). The one it had
    /// keeps signing beside it for `graceSeconds` (0: dropped now), then housekeeping drops it.
    func rotateSigningSecret(endpointID: String, secret: String, graceSeconds: Double, actor: ChangeActor) throws
    /// The endpoint's change history, newest first.
    func endpointHistory(id: String, limit: Int) throws -> [EndpointChange]
}

extension EndpointDirectory {
    public func upsert(tenants: [Tenant], endpoints: [Endpoint]) throws { try upsert(tenants: tenants, endpoints: endpoints, actor: .library) }
    public func setEndpointEnabled(id: String, enabled: Bool) throws { try setEndpointEnabled(id: id, enabled: enabled, actor: .library) }
    public func removeEndpoint(id: String) throws -> Int { try removeEndpoint(id: id, actor: .library) }
}

/// The recorded-response audit log: what `dispatcher log` and `show` read.
public protocol DeliveryLog: AnyObject, Sendable {
    /// Deliveries newest first.
    func deliveries(matching filter: DeliveryFilter) throws -> [Delivery]
    /// An event with all its deliveries and attempts, by event id or delivery id.
    func eventRecord(eventID: String) throws -> EventRecord?
    func eventRecord(deliveryID: Int64) throws -> EventRecord?
    /// Event ids starting with `prefix` (at most `limit`), so people can type a short id.
    func eventIDs(withPrefix prefix: String, limit: Int) throws -> [String]
}

/// The worker pool's side: leases, results, and noticing new work.
package protocol DeliveryQueue: AnyObject, Sendable {
    /// Claims up to `limit` due deliveries (pending and due, or delivering with an expired
    /// lease) for `owner` until `leaseSeconds` from now, taking at most
    /// `maxConcurrency - inFlight[endpoint]` per endpoint.
    func claimDueDeliveries(limit: Int, owner: String, leaseSeconds: Double, inFlight: [String: Int]) throws -> [ClaimedDelivery]

    /// Records attempts and their verdicts in one transaction, and keeps endpoint health:
    /// returns the endpoints these results disabled (failing for longer than allowed).
    @discardableResult
    func record(_ results: [AttemptResult]) throws -> [DisabledEndpoint]

    /// The worker pool's one write per cycle: records `results` as `record` does, then claims
    /// up to `claimLimit` as `claimDueDeliveries` does (`inFlight` counted after these results),
    /// in one transaction, so the rows just finished and the rows just leased share one commit.
    /// `awaitingRecord`: of `inFlight`, the attempts that ended since `results` were taken. Their
    /// rows are still leased, but their requests no longer count against `max_concurrency`: with
    /// them counted, a PostgreSQL cycle of ~10 ms left the workers without jobs.
    func recordAndClaim(_ results: [AttemptResult], claimLimit: Int, owner: String, leaseSeconds: Double,
                        inFlight: [String: Int], awaitingRecord: [String: Int]) throws -> StoreCycle

    /// Hands claimed deliveries back unattempted (graceful stop), due now.
    func releaseLeases(deliveryIDs: [Int64], owner: String) throws

    /// A test event (a ping, or a documented example) with one delivery to `endpoint`, already
    /// leased to `owner` (`endpoints test`, the dashboard's Send test).
    func enqueueTestEvent(endpoint: Endpoint, type: String, body: [UInt8], owner: String, leaseSeconds: Double) throws -> ClaimedDelivery

    /// The endpoint's revision, which grows on every change; workers cache parsed endpoints by it.
    func endpointRevision(id: String) throws -> Int?

    /// A value that changes when another connection commits (SQLite's `data_version`, the
    /// count of PostgreSQL `NOTIFY`s): an idle pool's cheap check for new events.
    func externalChangeToken() throws -> Int64

    /// Throws an error that will not mend when the store can no longer be written to as it
    /// was opened (a SQLite file deleted or replaced under the process).
    func checkHealth() throws

    /// Deliveries waiting for an attempt, due or not.
    func pendingCount() throws -> Int

    /// True while any delivery is pending (due or not) or in flight.
    func hasUnfinishedDeliveries() throws -> Bool
}

/// What one store-loop cycle did: the endpoints its results disabled, what it claimed, and how
/// long its commit took (for `/metrics`).
package struct StoreCycle: Sendable {
    package var disabled: [DisabledEndpoint]
    package var claimed: [ClaimedDelivery]
    package var commitSeconds: Double
}

/// The operator's side: health, re-queueing, cancelling, statistics, retention.
package protocol OutboxAdministration: AnyObject, Sendable {
    /// Every endpoint with its health, by tenant; only `tenantID`'s when given.
    func endpointStatuses(tenantID: String?) throws -> [EndpointStatus]
    /// One endpoint with its health; nil when there is none (or it was removed).
    func endpointStatus(id: String) throws -> EndpointStatus?
    /// Re-queues deliveries (by delivery id, or every delivery of an event id) as a new run of
    /// attempts: history and event id kept. Returns how many were re-queued.
    func redeliver(deliveryIDs: [Int64], eventIDs: [String]) throws -> Int
    /// Re-queues every delivery matching `filter` in one statement; `dryRun` only counts.
    func replay(_ filter: ReplayFilter, dryRun: Bool) throws -> Int
    /// Cancels pending deliveries; returns how many.
    func cancel(deliveryIDs: [Int64], eventIDs: [String]) throws -> Int
    /// Counts, the oldest pending delivery, attempts and latency over the last `windowSeconds`.
    func stats(windowSeconds: Double) throws -> DeliveryStats
    /// `stats` without the counts of finished deliveries, which read every delivery kept: what
    /// `serve` logs every minute, at a cost that follows the queue and the window.
    func queueStats(windowSeconds: Double) throws -> DeliveryStats
    /// The shared state `/metrics` reports: deliveries by status, each endpoint's queue, leases,
    /// circuit and switch, and the events created after `eventsAfter` up to `eventsUpTo`
    /// (milliseconds since the epoch), counted by tenant and type.
    func metrics(eventsAfter: Int64, eventsUpTo: Int64) throws -> StoreMetrics
    /// Deletes finished deliveries, their attempts and orphaned events older than `cutoff`.
    func prune(olderThan cutoff: Date, dryRun: Bool) throws -> PruneResult
    /// Attempts since `since` folded into a timeline of `bucketSeconds` buckets and each
    /// endpoint's last-hour and last-day health (the dashboard's overview and endpoints pages).
    func activity(since: Date, bucketSeconds: Double, now: Date) throws -> ActivityReport
    /// Drops the signing secrets whose rotation grace period has ended; returns how many endpoints changed.
    func dropExpiredSigningSecrets(now: Date) throws -> Int
}

extension OutboxAdministration {
    /// Every endpoint with its health, by tenant.
    package func endpointStatuses() throws -> [EndpointStatus] { try endpointStatuses(tenantID: nil) }
}
