import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Synchronization

/// Parsed endpoints shared by the workers, reloaded when the store's revision moves on.
final class EndpointCache: Sendable {
    private let store: any EndpointDirectory
    private let entries = Mutex<[String: (revision: Int, endpoint: Endpoint)]>([:])

    init(store: any EndpointDirectory) { self.store = store }

    /// The endpoint as of `revision` (the one the claim saw), or nil if it no longer exists.
    func endpoint(id: String, revision: Int) throws -> Endpoint? {
        if let cached = entries.withLock({ $0[id] }), cached.revision >= revision { return cached.endpoint }
        guard let endpoint = try store.endpoint(id: id) else { return nil }
        entries.withLock { $0[id] = (revision, endpoint) }
        return endpoint
    }
}
