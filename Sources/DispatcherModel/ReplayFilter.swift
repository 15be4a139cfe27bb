import Foundation

/// Which finished deliveries `replay` re-queues.
package struct ReplayFilter: Sendable, Equatable {
    package var status: DeliveryStatus
    package var tenantID: String?
    package var endpointID: String?
    package var typePattern: String?
    package var since: Date?
    package var until: Date?

    package init(status: DeliveryStatus = .failed, tenantID: String? = nil, endpointID: String? = nil,
                typePattern: String? = nil, since: Date? = nil, until: Date? = nil) {
        self.status = status
        self.tenantID = tenantID
        self.endpointID = endpointID
        self.typePattern = typePattern
        self.since = since
        self.until = until
    }
}
