import DispatcherConfig
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherServer
import DispatcherStore
import DispatcherWorker
import Foundation

/// The deliveries filter as the dashboard's query strings and forms carry it: one parser for
/// the page, the JSON API and the replay action, so "replay what I am looking at" replays
/// exactly the rows the filter shows.
struct DashboardFilter: Equatable {
    var tenantID: String?
    var endpointID: String?
    var typePattern: String?
    var status: DeliveryStatus?
    var sinceText: String?
    var untilText: String?
    var since: Date?
    var until: Date?
    var beforeID: Int64?
    static let pageSize = 50

    init(_ form: FormData, now: Date = Date()) throws {
        tenantID = form["tenant"]
        endpointID = form["endpoint"]
        if let pattern = form["type"] {
            guard EventType.isValidPattern(pattern) else {
                throw DashboardError(status: 400, message: "type '\(pattern)' is not an event type or a pattern such as visit.*")
            }
            typePattern = pattern
        }
        if let text = form["status"] {
            guard let status = DeliveryStatus(rawValue: text) else {
                throw DashboardError(status: 400, message: "status must be one of \(DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.status = status
        }
        sinceText = form["since"]
        untilText = form["until"]
        since = try sinceText.map { try Self.time($0, field: "since", now: now) }
        until = try untilText.map { try Self.time($0, field: "until", now: now) }
        if let text = form["before"] {
            guard let id = Int64(text), id > 0 else { throw DashboardError(status: 400, message: "before must be a delivery id") }
            beforeID = id
        }
    }

    private static func time(_ text: String, field: String, now: Date) throws -> Date {
        guard let date = TimeExpression.parse(text, now: now) else {
            throw DashboardError(status: 400, message: "\(field) '\(text)' is not \(TimeExpression.help)")
        }
        return date
    }

    var deliveryFilter: DeliveryFilter {
        DeliveryFilter(tenantID: tenantID, endpointID: endpointID, typePattern: typePattern, status: status,
                       since: since, until: until, beforeID: beforeID, limit: Self.pageSize)
    }

    /// Replay re-queues finished deliveries: failed ones unless the filter names another finished status.
    var replayFilter: ReplayFilter? {
        let status = self.status ?? .failed
        guard [.failed, .cancelled, .succeeded].contains(status) else { return nil }
        return ReplayFilter(status: status, tenantID: tenantID, endpointID: endpointID, typePattern: typePattern, since: since, until: until)
    }

    /// The filter as query pairs (without the page cursor), for links and hidden form fields.
    var pairs: [(String, String?)] {
        [("tenant", tenantID), ("endpoint", endpointID), ("type", typePattern), ("status", status?.rawValue),
         ("since", sinceText), ("until", untilText)]
    }

    var isEmpty: Bool { pairs.allSatisfy { $0.1 == nil } }

    /// The filter as `viewer` may use it: a tenant sees its own deliveries whatever the query
    /// says, and naming another tenant or its endpoint is answered as if it did not exist.
    func scoped(to viewer: Viewer, store: any DashboardStore) throws -> DashboardFilter {
        guard let own = viewer.tenantID else { return self }
        var scoped = self
        if let tenantID, tenantID != own { throw viewer.notFound("tenant") }
        if let endpointID { _ = try viewer.endpoint(endpointID, in: store) }
        scoped.tenantID = own
        return scoped
    }
}

/// The JSON API under `/api/`: the same snake_case shapes as the CLI's `--json`, scoped to the viewer.
struct DashboardAPI {
    let store: any DashboardStore
    let viewer: Viewer

    func overview(now: Date = Date()) throws -> [String: Any] {
        var object = JSONRepresentation.stats(try store.stats(windowSeconds: 3_600))
        let activity = try store.activity(since: ActivityReport.hourlyTimelineStart(now: now), bucketSeconds: 3_600, now: now)
        object["timeline"] = activity.buckets.map { bucket -> [String: Any] in
            ["start": Clock.iso8601(bucket.start), "succeeded": bucket.succeeded, "failed": bucket.failed]
        }
        return object
    }

    func deliveries(query: FormData) throws -> [String: Any] {
        let filter = try DashboardFilter(query).scoped(to: viewer, store: store)
        let deliveries = try store.deliveries(matching: filter.deliveryFilter)
        let next: Any = deliveries.count == DashboardFilter.pageSize ? (deliveries.last?.id ?? 0) : NSNull()
        return ["deliveries": deliveries.map(JSONRepresentation.delivery), "next_before": next]
    }

    func delivery(id: Int64) throws -> [String: Any] {
        guard let record = try store.eventRecord(deliveryID: id) else { throw viewer.notFound("delivery \(id)") }
        try viewer.check(tenant: record.event.tenantID, "delivery \(id)")
        return JSONRepresentation.eventRecord(record)
    }

    func endpoints(now: Date = Date()) throws -> [String: Any] {
        let activity = try store.activity(since: now.addingTimeInterval(-86_400), bucketSeconds: 86_400, now: now)
        let endpoints = try store.endpointStatuses(tenantID: viewer.tenantID).map { status -> [String: Any] in
            var object = JSONRepresentation.endpointForPanel(status, tenantView: !viewer.isOperator, now: now)
            object["health"] = JSONRepresentation.endpointActivity(activity.endpoints[status.endpoint.id] ?? EndpointActivity())
            return object
        }
        return ["endpoints": endpoints]
    }

    func endpoint(id: String) throws -> [String: Any] {
        let status = try viewer.endpoint(id, in: store)
        var object = JSONRepresentation.endpointForPanel(status, tenantView: !viewer.isOperator)
        object["history"] = try store.endpointHistory(id: id, limit: 100).map(JSONRepresentation.endpointChange)
        return object
    }

    func tokens() throws -> [String: Any] {
        guard let tenant = viewer.tenantID else { throw DashboardError(status: 404, message: "read tokens are listed in each tenant's portal") }
        try viewer.checkCanChange()
        return ["tokens": try store.tenantTokens(tenantID: tenant).map { token -> [String: Any] in
            ["id": token.id, "name": token.name, "created_at": Clock.iso8601(token.createdAt),
             "last_used_at": token.lastUsedAt.map(Clock.iso8601) ?? NSNull(), "revoked_at": token.revokedAt.map(Clock.iso8601) ?? NSNull()]
        }]
    }

    /// `GET /api/catalog`: every event type, its meaning and its example body.
    func catalog() -> [String: Any] {
        ["types": EventCatalog.entries.map { entry -> [String: Any] in
            var object: [String: Any] = ["type": entry.type, "family": entry.family, "summary": entry.summary]
            object["example"] = entry.example.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } ?? NSNull()
            return object
        }]
    }
}
