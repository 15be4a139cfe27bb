import Foundation

/// A delivery a worker holds under a lease, with the event's bytes read once.
package struct ClaimedDelivery: Sendable, Equatable {
    package var deliveryID: Int64
    package var eventID: String
    package var eventType: String
    package var tenantID: String
    package var endpointID: String
    package var endpointRevision: Int
    /// The number the next attempt gets (1 for the first).
    package var attemptNumber: Int
    package var body: [UInt8]
    /// When the delivery was created or last redelivered (for a policy's `max_age_seconds`).
    package var createdAt: Date
    /// When the first attempt of this run started, if it had one (a one_retry retry repeats its timestamp).
    package var firstAttemptAt: Date?
    /// Attempts made before the latest redelivery; the retry policy counts attempts after it.
    package var retryBase: Int = 0
    /// The event's trace, continued by each attempt.
    package var traceContext: TraceContext?
    /// When the claim took its lease (Unix ms): a job that waits too long for a slot is handed
    /// back rather than started on a lease about to run out (`JobBoard.takeStale`).
    package var leasedAt: Int64 = 0

    package init(deliveryID: Int64, eventID: String, eventType: String, tenantID: String, endpointID: String, endpointRevision: Int, attemptNumber: Int, body: [UInt8], createdAt: Date, firstAttemptAt: Date? = nil, retryBase: Int = 0) {
        self.deliveryID = deliveryID
        self.eventID = eventID
        self.eventType = eventType
        self.tenantID = tenantID
        self.endpointID = endpointID
        self.endpointRevision = endpointRevision
        self.attemptNumber = attemptNumber
        self.body = body
        self.createdAt = createdAt
        self.firstAttemptAt = firstAttemptAt
        self.retryBase = retryBase
    }
}
