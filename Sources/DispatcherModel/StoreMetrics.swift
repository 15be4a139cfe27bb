import Foundation

/// What the store says at one moment, for `/metrics`: the state every process shares (queue,
/// in flight, circuits), as opposed to the counters one process keeps of its own work.
package struct StoreMetrics: Sendable, Equatable {
    /// Deliveries waiting for an attempt, and leased by some process, over every endpoint
    /// (removed ones' included).
    package var pending = 0
    package var delivering = 0
    package var endpoints: [EndpointGauges] = []
    /// Events created in the window the caller asked for, by tenant and type.
    package var eventsCreated: [EventCount] = []

    package struct EndpointGauges: Sendable, Equatable {
        package var endpointID: String
        package var tenantID: String
        package var enabled: Bool
        package var circuitOpen: Bool
        /// Deliveries waiting for an attempt, due or not.
        package var pending: Int
        /// Deliveries leased by some process: requests in flight or about to be.
        package var delivering: Int
        /// When the endpoint's longest-waiting pending delivery became due (milliseconds since
        /// the epoch): its enqueue for a first attempt, its retry time after that.
        package var earliestDueAt: Int64?

        package init(endpointID: String, tenantID: String, enabled: Bool, circuitOpen: Bool, pending: Int = 0,
                     delivering: Int = 0, earliestDueAt: Int64? = nil) {
            self.endpointID = endpointID
            self.tenantID = tenantID
            self.enabled = enabled
            self.circuitOpen = circuitOpen
            self.pending = pending
            self.delivering = delivering
            self.earliestDueAt = earliestDueAt
        }
    }

    package struct EventCount: Sendable, Equatable {
        package var tenantID: String
        package var type: String
        package var count: Int

        package init(tenantID: String, type: String, count: Int) {
            self.tenantID = tenantID
            self.type = type
            self.count = count
        }
    }

    package init() {}
}
