import Foundation

/// Limits the store enforces on what producers enqueue.
public struct StoreOptions: Sendable, Equatable {
    /// The largest event body accepted, in bytes.
    public var maxPayloadBytes: Int
    /// How long a write waits for another process's write lock before failing.
    public var busyTimeoutMilliseconds: Int32
    /// The tenant whose endpoints get the dispatcher's operational events (an endpoint disabled,
    /// a circuit opened or closed, a delivery failed for good); nil for none.
    public var operationsTenant: String?
    /// On PostgreSQL, whether the worker's own commits (leases, attempts, verdicts) wait for the
    /// server to flush them to disk. Off by default, as SQLite's `synchronous = NORMAL` does not
    /// wait for any commit: a crash of the database server then forgets the last fraction of a
    /// second of that bookkeeping, so a delivery made then is made again (at least once, as a
    /// crash of `serve` between the receiver's answer and the verdict already allows) and its
    /// lost attempt is missing from the log (and an operational event its verdict raised, which
    /// the attempt made again raises again). Enqueues keep the server's own setting, which waits
    /// by default: an accepted event is not lost.
    public var synchronousDeliveryCommits: Bool

    public init(maxPayloadBytes: Int = 256 * 1024, busyTimeoutMilliseconds: Int32 = 5_000, operationsTenant: String? = nil,
                synchronousDeliveryCommits: Bool = false) {
        self.maxPayloadBytes = maxPayloadBytes
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.operationsTenant = operationsTenant
        self.synchronousDeliveryCommits = synchronousDeliveryCommits
    }
}
