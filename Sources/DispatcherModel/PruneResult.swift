import Foundation

/// What `prune` removed (or, dry, would remove).
public struct PruneResult: Sendable, Equatable {
    public var deliveries: Int
    public var attempts: Int
    public var events: Int

    package init(deliveries: Int, attempts: Int, events: Int) {
        self.deliveries = deliveries
        self.attempts = attempts
        self.events = events
    }
}
