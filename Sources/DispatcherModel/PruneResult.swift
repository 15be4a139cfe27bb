import Foundation

/// What `prune` removed (or, dry, would remove).
package struct PruneResult: Sendable, Equatable {
    package var deliveries: Int
    package var attempts: Int
    package var events: Int

    package init(deliveries: Int, attempts: Int, events: Int) {
        self.deliveries = deliveries
        self.attempts = attempts
        self.events = events
    }
}
