import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Foundation
import Synchronization

/// Issues and checks the ingest API's keys, `dk_<id>_<secret>`: the id finds the stored
/// record, and the SHA-256 of the whole key must match its hash (compared in constant time).
/// Checked keys are remembered for `cacheSeconds` (by the key as presented, so a busy producer
/// costs neither a read nor a hash per request); a revoked key stops working within that time.
package final class APIKeys: Sendable {
    static let prefix = "dk_"
    static let cacheSeconds = 5.0

    private let store: any APIKeyRegistry
    private let checked = Mutex<[String: (record: APIKeyRecord, until: Date)]>([:])

    package init(store: any APIKeyRegistry) { self.store = store }

    /// Makes a key, stores its hash, and returns the key: the only time it is ever shown.
    package static func create(name: String, tenants: [String]?, in store: any APIKeyRegistry) throws -> (record: APIKeyRecord, key: String) {
        let key = HashedToken(prefix: prefix)
        let record = APIKeyRecord(id: key.id, name: name, keyHash: key.hash, tenants: tenants, createdAt: Date())
        try store.insertAPIKey(record)
        return (record, key.token)
    }

    /// The key's record when `presented` is a valid, unrevoked key; nil otherwise.
    package func verify(_ presented: String) throws -> APIKeyRecord? {
        guard let key = HashedToken(presented: presented, prefix: Self.prefix) else { return nil }
        let now = Date()
        if let record = recentlyVerified(presented, now: now) { return record }
        guard let record = try store.apiKey(id: key.id), record.revokedAt == nil, key.matches(record.keyHash) else { return nil }
        checked.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[presented] = (record, now.addingTimeInterval(Self.cacheSeconds))
        }
        return record
    }

    /// The key's record when `presented` was verified within `cacheSeconds`: no read, no
    /// hash, so it may be asked on the event loop's thread.
    package func recentlyVerified(_ presented: String, now: Date = Date()) -> APIKeyRecord? {
        guard let cached = checked.withLock({ $0[presented] }), cached.until > now else { return nil }
        return cached.record
    }
}
