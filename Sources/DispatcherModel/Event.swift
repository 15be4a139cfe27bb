import Foundation

/// An event a producer hands to the outbox.
public struct NewEvent: Sendable, Equatable {
    public var tenantID: String
    /// `checkin.outcome`, `visit.ended`, ...: what endpoints filter on.
    public var type: String
    /// The exact bytes every receiver gets: a JSON object.
    public var body: [UInt8]
    /// The idempotency key: enqueuing the same id again stores nothing new. Generated when nil.
    public var id: UUID?
    /// Events of one key reach an `ordered` endpoint one at a time, in enqueue order (an
    /// interview id, say). Nil means the tenant: all its events in one sequence.
    public var orderingKey: String?
    /// The producer's trace: every attempt sends its trace id under a new span id.
    public var traceContext: TraceContext?

    public init(tenantID: String, type: String, body: [UInt8], id: UUID? = nil, orderingKey: String? = nil,
                traceContext: TraceContext? = nil) {
        self.tenantID = tenantID
        self.type = type
        self.body = body
        self.id = id
        self.orderingKey = orderingKey
        self.traceContext = traceContext
    }

    public init(tenantID: String, type: String, json: String, id: UUID? = nil, orderingKey: String? = nil,
                traceContext: TraceContext? = nil) {
        self.init(tenantID: tenantID, type: type, body: Array(json.utf8), id: id, orderingKey: orderingKey, traceContext: traceContext)
    }
}

/// An event as stored.
public struct Event: Sendable, Equatable {
    /// Lowercase UUID.
    public var id: String
    public var tenantID: String
    public var type: String
    public var body: [UInt8]
    public var createdAt: Date
    public var traceContext: TraceContext?

    package init(id: String, tenantID: String, type: String, body: [UInt8], createdAt: Date, traceContext: TraceContext? = nil) {
        self.id = id
        self.tenantID = tenantID
        self.type = type
        self.body = body
        self.createdAt = createdAt
        self.traceContext = traceContext
    }
}

/// What `enqueue` did with an event.
public struct EnqueueResult: Sendable, Equatable {
    public var eventID: String
    /// True when an event with this id was already stored; nothing new was written.
    public var isDuplicate: Bool
    /// Deliveries the event fanned out to (for a duplicate: those it has).
    public var deliveryCount: Int

    package init(eventID: String, isDuplicate: Bool, deliveryCount: Int) {
        self.eventID = eventID
        self.isDuplicate = isDuplicate
        self.deliveryCount = deliveryCount
    }
}

extension UUID {
    /// A time-ordered UUID (RFC 9562 version 7): 48 bits of Unix milliseconds, then random
    /// bits from the system generator. The events table's primary key then grows at its end,
    /// as rows arrive, instead of at random leaves (sqlite3 inserts 100,000 events about twice
    /// as fast). (Foundation's `UUID()` on Linux reads `/dev/urandom` with three system calls
    /// per id; these come from `RandomBytes`, one system call per 256 ids.)
    package static func timeOrdered(at date: Date = Date()) -> UUID {
        var raw: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { bytes in
            RandomBytes.shared.fill(bytes)
            let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
            for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index))) }
            bytes[6] = (bytes[6] & 0x0F) | 0x70  // version 7
            bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 9562 variant
        }
        return UUID(uuid: raw)
    }

    /// The canonical lowercase form (`0190c2b4-...`), as events are stored and shown: written
    /// directly rather than as Foundation's uppercase string lowered afterwards.
    package var lowercasedString: String {
        let digits = Hex.digits
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                var position = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    text[position] = digits[Int(byte >> 4)]
                    text[position + 1] = digits[Int(byte & 0x0F)]
                    position += 2
                }
                return position
            }
        }
    }
}

/// The system generator's bytes, fetched 4 KiB at a time: glibc's `arc4random_buf` is a
/// `getrandom` system call per call, and the ingest API names an id for every event it admits
/// (about 5 % of its event loop's time went to those calls).
///
/// `@unchecked Sendable`: `buffer` and `used` are touched only with `lock` held.
final class RandomBytes: @unchecked Sendable {
    static let shared = RandomBytes()
    private let lock = NSLock()
    private var buffer = [UInt8](repeating: 0, count: 4_096)
    private var used = 4_096

    /// Fills `target` with bytes no caller has had before.
    func fill(_ target: UnsafeMutableRawBufferPointer) {
        guard let base = target.baseAddress, target.count > 0 else { return }
        guard target.count <= buffer.count else { return arc4random_buf(base, target.count) }
        lock.lock()
        defer { lock.unlock() }
        if used + target.count > buffer.count {
            buffer.withUnsafeMutableBytes { if let start = $0.baseAddress { arc4random_buf(start, $0.count) } }
            used = 0
        }
        buffer.withUnsafeBytes { source in
            target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[used..<(used + target.count)]))
        }
        used += target.count
    }
}
