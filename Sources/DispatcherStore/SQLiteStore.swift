import DispatcherModel
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

/// The SQLite outbox: one database file holding events, deliveries and the audit log.
///
/// Opening applies pending migrations. One `SQLiteStore` owns one connection and serialises
/// its use with a mutex, so it may be shared across threads; several processes may open the
/// same file (WAL mode; writers wait up to the busy timeout).
///
/// ```swift
/// let store = try SQLiteStore(path: "dispatcher.sqlite")
/// let result = try store.enqueue(NewEvent(tenantID: "clinic-a", type: "visit.ended", json: #"{"id":"1"}"#))
/// ```
///
/// `@unchecked Sendable`: `database` is used only inside `withDatabase`, under `lock`. (A plain
/// pthread mutex: the worker pool's store loop takes it for every cycle while producers and the
/// stats line take it too, and Synchronization's `Mutex`, a priority-inheritance futex on Linux,
/// spends such contention spinning in the kernel.)
public final class SQLiteStore: SQLStore, @unchecked Sendable {
    public let path: String
    private let database: Database
    private let lock = NSLock()

    public init(path: String, options: StoreOptions = StoreOptions()) throws {
        self.path = path
        let db = try Database(path: path, busyTimeoutMilliseconds: options.busyTimeoutMilliseconds)
        try Migrator().migrate(db)
        self.database = db
        super.init(options: options, location: path)
    }

    /// Runs `body` with the connection, serialised with every other use of this store.
    override func withDatabase<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try lock.withLock { try body(database) }
    }

    /// SQLite's `data_version`: changes whenever another connection commits.
    public override func externalChangeToken() throws -> Int64 {
        try lock.withLock { try database.query(LogQueries.dataVersion) { $0.int64(0) }.first ?? 0 }
    }
}
