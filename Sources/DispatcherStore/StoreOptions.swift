import Foundation

/// Limits the store enforces on what producers enqueue.
public struct StoreOptions: Sendable, Equatable {
    /// The largest event body accepted, in bytes.
    public var maxPayloadBytes: Int
    /// How long a write waits for another process's write lock before failing.
    public var busyTimeoutMilliseconds: Int32

    public init(maxPayloadBytes: Int = 256 * 1024, busyTimeoutMilliseconds: Int32 = 5_000) {
        self.maxPayloadBytes = maxPayloadBytes
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
    }
}
