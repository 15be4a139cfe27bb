import DispatcherEvents
import DispatcherModel
import DispatcherServer
import DispatcherStore
import Foundation

/// The HTTP ingest API, for producers on other hosts and in other languages:
///
/// - `POST /v1/events` `{"tenant", "type", "id"?, "ordering_key"?, "data"}` → `202 {"id",
///   "deliveries", "duplicate"}`, once committed; an `Idempotency-Key` header may carry the id.
/// - `POST /v1/events/batch`: NDJSON lines or a JSON array of the same objects, up to
///   `maxBatch`; `200 {"accepted", "rejected", "results": [...]}` with one result per item.
/// - `GET /v1/events/ID`: the event, its deliveries and attempts (`dispatcher show --json`).
/// - `GET /v1/deliveries?tenant=&endpoint=&type=&status=&limit=&before=`: the log
///   (`dispatcher log --json`).
///
/// Every request carries `Authorization: Bearer dk_...`; a key limited to tenants acts only for
/// them. Validation is `dispatcher enqueue`'s: the seed families' formats are checked. Errors
/// are `{"error": "..."}` with 400, 401, 403, 404, 409, 413, 429 or 503.
package struct IngestAPI: Sendable {
    let store: any EventOutbox & DeliveryLog
    let keys: APIKeys
    let committer: GroupCommitter
    let maxPayloadBytes: Int
    let maxBatch: Int

    package init(store: OutboxStore, committer: GroupCommitter, maxBatch: Int) {
        self.store = store
        self.keys = APIKeys(store: store)
        self.committer = committer
        self.maxPayloadBytes = store.options.maxPayloadBytes
        self.maxBatch = maxBatch
    }

    /// An error answer: its status and message.
    struct Failure: Error {
        let status: Int
        let message: String
        init(_ status: Int, _ message: String) {
            self.status = status
            self.message = message
        }
    }

    package func respond(to request: HTTPServerRequest) -> HTTPServerResponse {
        Self.answer {
            let key = try authenticate(request)
            let segments = request.path.split(separator: "/").map(String.init)
            switch (request.method, segments) {
            case ("POST", ["v1", "events"]): return try enqueueOne(request, key: key)
            case ("POST", ["v1", "events", "batch"]): return try enqueueBatch(request, key: key)
            case ("GET", let path) where path.count == 3 && path[0] == "v1" && path[1] == "events": return try event(id: path[2], key: key)
            case ("GET", ["v1", "deliveries"]): return try deliveries(request, key: key)
            default: throw Failure(404, "no such route: \(request.method) \(request.path)")
            }
        }
    }

    /// `POST /v1/events` with a key verified moments ago, on the event loop's thread: the
    /// event is checked here and handed to the committer, which answers once it is committed,
    /// so the request costs no thread hand-off. Anything else (or a key to look up) goes to
    /// `respond` on a handler thread: returns false.
    package func respondImmediately(to request: HTTPServerRequest, responder: HTTPServerResponder) -> Bool {
        guard request.method == "POST", request.path == "/v1/events",
              let presented = request.bearerToken, let key = keys.recentlyVerified(presented) else { return false }
        do {
            let prepared = try admitOne(request, key: key)
            let submitted = committer.submit([prepared]) { outcome in
                responder.reply(Self.answer { try Self.accepted(outcome.get()[0].get()) })
            }
            if !submitted { responder.reply(Self.error(429, Self.tooManyWaiting)) }
        } catch {
            responder.reply(Self.answer(respond: { throw error }))
        }
        return true
    }

    private static func answer(respond: () throws -> HTTPServerResponse) -> HTTPServerResponse {
        do {
            return try respond()
        } catch let failure as Failure {
            return Self.error(failure.status, failure.message)
        } catch let error as DispatcherError {
            return Self.error(Self.status(of: error), error.description)
        } catch {
            return Self.error(503, "the store failed; nothing was committed: \(error)")
        }
    }

    private func authenticate(_ request: HTTPServerRequest) throws -> APIKeyRecord {
        guard let token = request.bearerToken, !token.isEmpty else {
            throw Failure(401, "send Authorization: Bearer <API key> (dispatcher api-keys create)")
        }
        guard let key = try keys.verify(token) else {
            throw Failure(401, "the API key is not valid, or was revoked")
        }
        return key
    }

    private func enqueueOne(_ request: HTTPServerRequest, key: APIKeyRecord) throws -> HTTPServerResponse {
        let prepared = try admitOne(request, key: key)
        guard let results = try committer.commit([prepared]) else { throw Failure(429, Self.tooManyWaiting) }
        return Self.accepted(try results[0].get())
    }

    /// A single event's request, checked: size, envelope, `Idempotency-Key`, the key's tenants
    /// and the event's family.
    private func admitOne(_ request: HTTPServerRequest, key: APIKeyRecord) throws -> NewEvent {
        guard request.body.count <= maxPayloadBytes + Self.envelopeAllowance else {
            throw Failure(413, "the request is larger than max_payload_bytes (\(maxPayloadBytes)) allows")
        }
        var event = try NDJSONEvent.parse(request.body)
        if let idempotencyKey = request.header("Idempotency-Key") {
            guard let id = UUID(uuidString: idempotencyKey) else { throw DispatcherError.invalidEventID(idempotencyKey) }
            if let given = event.id, given != id { throw Failure(400, "Idempotency-Key and \"id\" differ; give one") }
            event.id = id
        }
        // The request's own trace context is the producer's, unless the body names one.
        if event.traceContext == nil, let traceparent = request.header("traceparent") {
            event.traceContext = try TraceContext(traceparent: traceparent, tracestate: request.header("tracestate"))
        }
        var admitted = try admit(event, key: key)
        // Named here rather than by the store, so the committing thread, which every request
        // waits for, does not spend time on it.
        admitted.id = admitted.id ?? UUID.timeOrdered()
        return admitted
    }

    /// `202 {"id", "deliveries", "duplicate"}`, written straight to bytes: the committing thread
    /// that every request waits on writes one per event, and as a `JSONValue` it cost that
    /// thread ~5,000 instructions an event (5 % of its work).
    private static func accepted(_ result: EnqueueResult) -> HTTPServerResponse {
        var body: [UInt8] = []
        body.reserveCapacity(96)
        body.append(contentsOf: #"{"id":"#.utf8)
        JSONValue.writeString(result.eventID, to: &body)
        body.append(contentsOf: #","deliveries":"#.utf8)
        JSONValue.writeInteger(Int64(result.deliveryCount), to: &body)
        body.append(contentsOf: (result.isDuplicate ? #","duplicate":true}"# : #","duplicate":false}"#).utf8)
        return .json(202, bytes: body)
    }

    private static let tooManyWaiting = "too many events are waiting to be committed; retry shortly"

    private func enqueueBatch(_ request: HTTPServerRequest, key: APIKeyRecord) throws -> HTTPServerResponse {
        let items = try Self.items(of: request.body)
        guard items.count <= maxBatch else { throw Failure(413, "\(items.count) events in one batch; at most \(maxBatch) (api.max_batch)") }
        var outcomes: [JSONValue?] = Array(repeating: nil, count: items.count)
        var admitted: [(index: Int, event: NewEvent)] = []
        var rejected = 0
        func reject(_ index: Int, _ status: Int, _ message: String) {
            outcomes[index] = .object([("index", .integer(Int64(index))), ("status", .integer(Int64(status))), ("error", .string(message))])
            rejected += 1
        }
        for (index, item) in items.enumerated() {
            do {
                admitted.append((index, try admit(try NDJSONEvent.parse(item), key: key)))
            } catch let failure as Failure {
                reject(index, failure.status, failure.message)
            } catch let error as DispatcherError {
                reject(index, Self.status(of: error), error.description)
            }
        }
        if !admitted.isEmpty {
            guard let results = try committer.commit(admitted.map(\.event)) else {
                throw Failure(429, Self.tooManyWaiting)
            }
            for (entry, result) in zip(admitted, results) {
                switch result {
                case .success(let stored):
                    outcomes[entry.index] = .object([("index", .integer(Int64(entry.index))), ("id", .string(stored.eventID)),
                                                     ("deliveries", .integer(Int64(stored.deliveryCount))), ("duplicate", .bool(stored.isDuplicate))])
                case .failure(let error):
                    reject(entry.index, Self.status(of: error), error.description)
                }
            }
        }
        let results = outcomes.compactMap { $0 }
        return .json(200, JSONValue.object([
            ("accepted", .integer(Int64(results.count - rejected))), ("rejected", .integer(Int64(rejected))), ("results", .array(results)),
        ]).text)
    }

    /// Checks an event as `dispatcher enqueue` does and against the key's tenants.
    private func admit(_ event: NewEvent, key: APIKeyRecord) throws -> NewEvent {
        guard key.allows(tenant: event.tenantID) else { throw Failure(403, "this API key may not enqueue for tenant '\(event.tenantID)'") }
        return try EventFamily.prepare(event)
    }

    private func event(id: String, key: APIKeyRecord) throws -> HTTPServerResponse {
        guard let record = try store.eventRecord(eventID: id.lowercased()), key.allows(tenant: record.event.tenantID) else {
            throw Failure(404, "no event \(id)")
        }
        return .json(200, JSONRepresentation.line(JSONRepresentation.eventRecord(record)))
    }

    private func deliveries(_ request: HTTPServerRequest, key: APIKeyRecord) throws -> HTTPServerResponse {
        let query = Self.query(request.target)
        var filter = DeliveryFilter(limit: min(1_000, max(1, Int(query["limit"] ?? "") ?? 100)))
        filter.tenantID = query["tenant"]
        if let tenants = key.tenants {
            if filter.tenantID == nil, tenants.count == 1 { filter.tenantID = tenants[0] }
            guard let tenant = filter.tenantID, tenants.contains(tenant) else {
                throw Failure(403, "this API key reads only tenants \(tenants.joined(separator: ", ")): give ?tenant=")
            }
        }
        filter.endpointID = query["endpoint"]
        filter.typePattern = query["type"]
        if let status = query["status"] {
            guard let parsed = DeliveryStatus(rawValue: status) else { throw Failure(400, "status '\(status)' is not a delivery status") }
            filter.status = parsed
        }
        filter.beforeID = query["before"].flatMap { Int64($0) }
        let rows = try store.deliveries(matching: filter).map(JSONRepresentation.delivery)
        return .json(200, "{\"deliveries\":[" + rows.map(JSONRepresentation.line).joined(separator: ",") + "]}")
    }

    /// The items of a batch: NDJSON lines, or the elements of a JSON array (each byte for byte).
    static func items(of body: [UInt8]) throws -> [[UInt8]] {
        let first = body.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }
        if first == UInt8(ascii: "[") {
            return try JSONValidation.topLevelElements(body).map { Array(body[$0]) }
        }
        return body.split(separator: 0x0A).map(Array.init).filter { line in line.contains { $0 != 0x20 && $0 != 0x0D && $0 != 0x09 } }
    }

    /// Room in a request for the envelope around the event's body.
    static let envelopeAllowance = 4 * 1024

    static func status(of error: DispatcherError) -> Int {
        switch error {
        case .unknownTenant: return 404
        case .conflictingEvent: return 409
        case .payloadTooLarge: return 413
        case .notFound: return 404
        default: return 400
        }
    }

    static func error(_ status: Int, _ message: String) -> HTTPServerResponse {
        .json(status, JSONValue.object([("error", .string(message))]).text)
    }

    static func query(_ target: String) -> [String: String] {
        guard let components = URLComponents(string: "http://x" + target) else { return [:] }
        return Dictionary((components.queryItems ?? []).compactMap { item in item.value.map { (item.name, $0) } }, uniquingKeysWith: { _, last in last })
    }
}
