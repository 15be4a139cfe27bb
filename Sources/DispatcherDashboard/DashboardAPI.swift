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
}

/// A mutation the dashboard performs, from a form post or an API call.
struct DashboardAction {
    enum Kind {
        case redeliver(Int64)
        case replay(DashboardFilter)
        case setEnabled(endpointID: String, enabled: Bool)
        /// A ping, or the catalog's example of `type`.
        case test(endpointID: String, type: String?)
    }

    let kind: Kind

    /// `deliveries/ID/redeliver`, `replay` (filter in the form or query), `endpoints/ID/enable|disable|test`.
    init(segments: [String], form: FormData) throws {
        let route = Route(segments)
        if let id = route.capture("deliveries/*/redeliver") {
            kind = .redeliver(try DashboardApp.deliveryID(id))
        } else if route.matches("replay") {
            kind = .replay(try DashboardFilter(form))
        } else if let id = route.capture("endpoints/*/enable") {
            kind = .setEnabled(endpointID: id, enabled: true)
        } else if let id = route.capture("endpoints/*/disable") {
            kind = .setEnabled(endpointID: id, enabled: false)
        } else if let id = route.capture("endpoints/*/test") {
            kind = .test(endpointID: id, type: form["type"].flatMap { $0.isEmpty ? nil : $0 })
        } else {
            throw DashboardError(status: 404, message: "no such action: /\(segments.joined(separator: "/"))")
        }
    }

    struct Outcome {
        var json: [String: Any]
        /// Where a form post lands afterwards, with a notice to show.
        var redirect: String
    }

    /// `tester` sends test events (`dispatcher.ping`) with the delivery settings of the process
    /// that hosts the dashboard, so its destination guard and URL policy apply.
    func perform(on store: any DashboardStore, tester: EndpointTester?) throws -> Outcome {
        switch kind {
        case .test(let endpointID, let type):
            guard let tester else { throw DashboardError(status: 503, message: "this dashboard was started without delivery settings; use dispatcher endpoints test") }
            let record: EventRecord
            do {
                if let type {
                    guard let example = EventCatalog.entry(type: type)?.example else {
                        throw DashboardError(status: 400, message: "'\(type)' has no documented example in the event catalog")
                    }
                    record = try tester.send(endpointID: endpointID, type: type, body: Array(example.utf8))
                } else {
                    record = try tester.ping(endpointID: endpointID)
                }
            } catch DispatcherError.notFound {
                throw DashboardError(status: 404, message: "no endpoint '\(endpointID)'")
            }
            let deliveryID = record.deliveries.first?.delivery.id ?? 0
            return Outcome(json: JSONRepresentation.eventRecord(record), redirect: "/deliveries/\(deliveryID)?notice=tested")
        case .redeliver(let id):
            let count = try store.redeliver(deliveryIDs: [id], eventIDs: [])
            guard count > 0 else {
                guard try store.eventRecord(deliveryID: id) != nil else { throw DashboardError(status: 404, message: "no delivery \(id)") }
                throw DashboardError(status: 409, message: "delivery \(id) is being attempted right now; try again when the attempt is recorded")
            }
            return Outcome(json: ["redelivered": count], redirect: "/deliveries/\(id)?notice=redelivered")
        case .replay(let filter):
            guard let replay = filter.replayFilter else {
                throw DashboardError(status: 400, message: "replay re-queues finished deliveries: filter by failed, cancelled or succeeded")
            }
            let count = try store.replay(replay, dryRun: false)
            let query = FormData.encode(filter.pairs + [("notice", "replayed"), ("count", String(count))])
            return Outcome(json: ["replayed": count], redirect: "/deliveries?" + query)
        case .setEnabled(let endpointID, let enabled):
            do {
                try store.setEndpointEnabled(id: endpointID, enabled: enabled)
            } catch DispatcherError.notFound {
                throw DashboardError(status: 404, message: "no endpoint '\(endpointID)'")
            }
            return Outcome(json: ["endpoint_id": endpointID, "enabled": enabled],
                           redirect: "/endpoints?notice=\(enabled ? "enabled" : "disabled")&endpoint=\(FormData.escape(endpointID))")
        }
    }
}

/// The JSON API under `/api/`: the same snake_case shapes as the CLI's `--json`.
struct DashboardAPI {
    let store: any DashboardStore

    func overview(now: Date = Date()) throws -> [String: Any] {
        var object = JSONRepresentation.stats(try store.stats(windowSeconds: 3_600))
        let activity = try store.activity(since: ActivityReport.hourlyTimelineStart(now: now), bucketSeconds: 3_600, now: now)
        object["timeline"] = activity.buckets.map { bucket -> [String: Any] in
            ["start": Clock.iso8601(bucket.start), "succeeded": bucket.succeeded, "failed": bucket.failed]
        }
        return object
    }

    func deliveries(query: FormData) throws -> [String: Any] {
        let filter = try DashboardFilter(query)
        let deliveries = try store.deliveries(matching: filter.deliveryFilter)
        let next: Any = deliveries.count == DashboardFilter.pageSize ? (deliveries.last?.id ?? 0) : NSNull()
        return ["deliveries": deliveries.map(JSONRepresentation.delivery), "next_before": next]
    }

    func delivery(id: Int64) throws -> [String: Any] {
        guard let record = try store.eventRecord(deliveryID: id) else { throw DashboardError(status: 404, message: "no delivery \(id)") }
        return JSONRepresentation.eventRecord(record)
    }

    func endpoints(now: Date = Date()) throws -> [String: Any] {
        let activity = try store.activity(since: now.addingTimeInterval(-86_400), bucketSeconds: 86_400, now: now)
        let endpoints = try store.endpointStatuses().map { status -> [String: Any] in
            var object = JSONRepresentation.endpointStatus(status, now: now)
            object["health"] = JSONRepresentation.endpointActivity(activity.endpoints[status.endpoint.id] ?? EndpointActivity())
            return object
        }
        return ["endpoints": endpoints]
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
