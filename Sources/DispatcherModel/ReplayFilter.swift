import Foundation

/// Which finished deliveries `replay` re-queues.
public struct ReplayFilter: Sendable, Equatable {
    public var status: DeliveryStatus
    public var tenantID: String?
    public var endpointID: String?
    public var typePattern: String?
    public var since: Date?
    public var until: Date?

    public init(status: DeliveryStatus = .failed, tenantID: String? = nil, endpointID: String? = nil,
                typePattern: String? = nil, since: Date? = nil, until: Date? = nil) {
        self.status = status
        self.tenantID = tenantID
        self.endpointID = endpointID
        self.typePattern = typePattern
        self.since = since
        self.until = until
    }
}
