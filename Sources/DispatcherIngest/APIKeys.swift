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
        let id = Hex.lowercase(Digest.randomBytes(6))
        let key = prefix + id + "_" + Hex.lowercase(Digest.randomBytes(24))
        let record = APIKeyRecord(id: id, name: name, keyHash: Digest.sha256Hex(Array(key.utf8)), tenants: tenants, createdAt: Date())
        try store.insertAPIKey(record)
        return (record, key)
    }

    /// The key's record when `presented` is a valid, unrevoked key; nil otherwise.
    package func verify(_ presented: String) throws -> APIKeyRecord? {
        let parts = presented.split(separator: "_", omittingEmptySubsequences: false)
        guard presented.hasPrefix(Self.prefix), parts.count == 3 else { return nil }
        let id = String(parts[1])
        let now = Date()
        if let record = recentlyVerified(presented, now: now) { return record }
        let hash = Digest.sha256Hex(Array(presented.utf8))
        guard let record = try store.apiKey(id: id), record.revokedAt == nil,
              !hash.isEmpty, Digest.constantTimeEquals(record.keyHash, hash) else { return nil }
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
