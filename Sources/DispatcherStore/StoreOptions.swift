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

    public init(maxPayloadBytes: Int = 256 * 1024, busyTimeoutMilliseconds: Int32 = 5_000, operationsTenant: String? = nil) {
        self.maxPayloadBytes = maxPayloadBytes
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.operationsTenant = operationsTenant
    }
}
