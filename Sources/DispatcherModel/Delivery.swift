import Foundation

/// Where a delivery stands.
public enum DeliveryStatus: String, Sendable, Equatable, CaseIterable, Codable {
    /// Waiting for its next attempt (`nextAttemptAt`).
    case pending
    /// Claimed by a worker under a lease; reclaimable if the lease expires.
    case delivering
    case succeeded
    /// Retries exhausted.
    case failed
    case cancelled

    public var isFinal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// One event to one endpoint, as the log lists it.
public struct Delivery: Sendable, Equatable {
    public var id: Int64
    public var eventID: String
    public var tenantID: String
    public var endpointID: String
    public var eventType: String
    public var status: DeliveryStatus
    public var attemptCount: Int
    public var lastHTTPStatus: Int?
    public var lastError: String?
    public var nextAttemptAt: Date?
    public var createdAt: Date
    public var updatedAt: Date

    package init(id: Int64, eventID: String, tenantID: String, endpointID: String, eventType: String, status: DeliveryStatus, attemptCount: Int, lastHTTPStatus: Int? = nil, lastError: String? = nil, nextAttemptAt: Date? = nil, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.eventID = eventID
        self.tenantID = tenantID
        self.endpointID = endpointID
        self.eventType = eventType
        self.status = status
        self.attemptCount = attemptCount
        self.lastHTTPStatus = lastHTTPStatus
        self.lastError = lastError
        self.nextAttemptAt = nextAttemptAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// What `log` selects. Nil fields do not filter.
public struct DeliveryFilter: Sendable, Equatable {
    public var tenantID: String?
    public var endpointID: String?
    /// A glob over the event type: `visit.*`.
    public var typePattern: String?
    public var status: DeliveryStatus?
    /// Deliveries created at or after this time.
    public var since: Date?
    /// Deliveries created before this time.
    public var until: Date?
    public var eventID: String?
    /// Keyset paging: only deliveries with a smaller id than this (the last row of the previous
    /// page), so page 1,000 costs what page 1 does.
    public var beforeID: Int64?
    public var limit: Int

    public init(tenantID: String? = nil, endpointID: String? = nil, typePattern: String? = nil,
                status: DeliveryStatus? = nil, since: Date? = nil, until: Date? = nil, eventID: String? = nil,
                beforeID: Int64? = nil, limit: Int = 50) {
        self.tenantID = tenantID
        self.endpointID = endpointID
        self.typePattern = typePattern
        self.status = status
        self.since = since
        self.until = until
        self.eventID = eventID
        self.beforeID = beforeID
        self.limit = limit
    }
}

/// An event with every delivery and every attempt, as recorded: what `show` prints.
public struct EventRecord: Sendable, Equatable {
    public var event: Event
    public var deliveries: [DeliveryRecord]

    package init(event: Event, deliveries: [DeliveryRecord]) {
        self.event = event
        self.deliveries = deliveries
    }
}

public struct DeliveryRecord: Sendable, Equatable {
    public var delivery: Delivery
    public var attempts: [Attempt]

    package init(delivery: Delivery, attempts: [Attempt]) {
        self.delivery = delivery
        self.attempts = attempts
    }
}
