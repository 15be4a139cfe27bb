import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Synchronization

/// Parsed endpoints shared by the workers, reloaded when the store's revision moves on.
///
/// The store loop fills it (`preload`) with the endpoints of each claim before the transfer loop
/// sees the jobs: a load on the transfer loop's thread waits for the store's connection, which
/// the store loop holds through its whole cycle, and every request in flight waits with it.
/// With 10,000 endpoints, a claim brings endpoints not seen before all the time, and those
/// waits held the transfer loop to about 30 turns a second (README "A transfer loop that
/// never waits for the store").
final class EndpointCache: Sendable {
    private let store: any EndpointDirectory
    private typealias Entry = (revision: Int, endpoint: Endpoint)
    private let entries = Mutex<[String: Entry]>([:])

    init(store: any EndpointDirectory) { self.store = store }

    /// The endpoint as of `revision` (the one the claim saw), or nil if it no longer exists.
    func endpoint(id: String, revision: Int) throws -> Endpoint? {
        if let cached = entries.withLock({ $0[id] }), Self.isCurrent(cached, for: revision) { return cached.endpoint }
        guard let endpoint = try store.endpoint(id: id) else { return nil }
        entries.withLock { $0[id] = (revision, endpoint) }
        return endpoint
    }

    /// Loads, in one query, the endpoints of `jobs` not cached at their claims' revisions. A
    /// failure is left to `endpoint(id:revision:)`, which tries again for each job and hands
    /// back what it cannot load.
    func preload(_ jobs: [ClaimedDelivery]) {
        var wanted: [String: Int] = [:]
        entries.withLock { entries in
            for job in jobs where !Self.isCurrent(entries[job.endpointID], for: job.endpointRevision) {
                wanted[job.endpointID] = max(wanted[job.endpointID] ?? Int.min, job.endpointRevision)
            }
        }
        guard !wanted.isEmpty, let loaded = try? store.endpoints(ids: Array(wanted.keys)) else { return }
        entries.withLock { entries in
            for endpoint in loaded {
                guard let revision = wanted[endpoint.id] else { continue }
                entries[endpoint.id] = (revision, endpoint)
            }
        }
    }

    /// Whether `cached` is as new as the revision a claim saw: both lookups' one rule.
    private static func isCurrent(_ cached: Entry?, for revision: Int) -> Bool {
        guard let cached else { return false }
        return cached.revision >= revision
    }
}
