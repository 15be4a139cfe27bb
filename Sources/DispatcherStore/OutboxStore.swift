import DispatcherModel
import Foundation

/// Everything the worker pool and the CLI need from storage. SQLite (`SQLiteStore`) is the
/// embedded default; the protocol is the seam for a PostgreSQL store (`FOR UPDATE SKIP LOCKED`).
public protocol OutboxStore: AnyObject, Sendable {
    /// Stores the event and fans it out to one delivery per matching enabled endpoint.
    func enqueue(_ event: NewEvent) throws -> EnqueueResult

    /// Creates or updates tenants and their endpoints (config at `serve` start). Endpoints the
    /// list does not name are left as they are.
    func upsert(tenants: [Tenant], endpoints: [Endpoint]) throws

    func endpoint(id: String) throws -> Endpoint?
    func tenants() throws -> [Tenant]
    /// Every endpoint with its health, by tenant.
    func endpointStatuses() throws -> [EndpointStatus]
    /// Enables or disables an endpoint by hand; enabling clears a failure run and its circuit.
    func setEndpointEnabled(id: String, enabled: Bool) throws
    /// The endpoint's revision, which grows on every change; workers cache parsed endpoints by it.
    func endpointRevision(id: String) throws -> Int?

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
    func recordAndClaim(_ results: [AttemptResult], claimLimit: Int, owner: String, leaseSeconds: Double,
                        inFlight: [String: Int]) throws -> (disabled: [DisabledEndpoint], claimed: [ClaimedDelivery])

    /// Hands claimed deliveries back unattempted (graceful stop), due now.
    func releaseLeases(deliveryIDs: [Int64], owner: String) throws

    /// The log: deliveries newest first.
    func deliveries(matching filter: DeliveryFilter) throws -> [Delivery]

    /// An event with all its deliveries and attempts, by event id or delivery id.
    func eventRecord(eventID: String) throws -> EventRecord?
    func eventRecord(deliveryID: Int64) throws -> EventRecord?

    /// Removes an endpoint (its history stays) and cancels its pending deliveries; returns how many.
    func removeEndpoint(id: String) throws -> Int

    /// Re-queues deliveries (by delivery id, or every delivery of an event id) as a new run of
    /// attempts: history and event id kept. Returns how many were re-queued.
    func redeliver(deliveryIDs: [Int64], eventIDs: [String]) throws -> Int
    /// Re-queues every delivery matching `filter` in one statement; `dryRun` only counts.
    func replay(_ filter: ReplayFilter, dryRun: Bool) throws -> Int
    /// Cancels pending deliveries; returns how many.
    func cancel(deliveryIDs: [Int64], eventIDs: [String]) throws -> Int
    /// Counts, the oldest pending delivery, attempts and latency over the last `windowSeconds`.
    func stats(windowSeconds: Double) throws -> DeliveryStats
    /// Deletes finished deliveries, their attempts and orphaned events older than `cutoff`.
    func prune(olderThan cutoff: Date, dryRun: Bool) throws -> PruneResult

    /// Attempts since `since` folded into a timeline of `bucketSeconds` buckets and each
    /// endpoint's last-hour and last-day health (the dashboard's overview and endpoints pages).
    func activity(since: Date, bucketSeconds: Double, now: Date) throws -> ActivityReport

    /// A value that changes when another connection commits (SQLite's `data_version`): a cheap
    /// way for an idle worker pool to notice new events without claiming.
    func externalChangeToken() throws -> Int64

    /// Deliveries waiting for an attempt, due or not.
    func pendingCount() throws -> Int

    /// True while any delivery is pending (due or not) or in flight.
    func hasUnfinishedDeliveries() throws -> Bool

    /// Event ids starting with `prefix` (at most `limit`), so people can type a short id.
    func eventIDs(withPrefix prefix: String, limit: Int) throws -> [String]
}
