import CSQLite
import DispatcherModel
import Foundation

/// The embedded default: one SQLite connection to one database file, serialised with a mutex,
/// so the store may be shared across threads, and a second one for the outbox-wide reads
/// (`withReadConnection`); several processes may open the same file (WAL mode; writers wait up
/// to the busy timeout).
///
/// `@unchecked Sendable`: `database` is used only inside `withConnection`, under `lock`, and
/// `reader` only inside `withReadConnection`, under `readerLock`. (A plain
/// pthread mutex: the worker pool's store loop takes it for every cycle while producers and the
/// dashboard take it too, and Synchronization's `Mutex`, a priority-inheritance futex on Linux,
/// spends such contention spinning in the kernel.)
final class SQLiteConnectionProvider: ConnectionProvider, @unchecked Sendable {
    let location: String
    private let database: Database
    private let lock = NSLock()
    /// `withReadConnection`'s: opened at the first such read, with a page cache of a few pages.
    private var reader: Database?
    private let readerLock = NSLock()
    private let busyTimeoutMilliseconds: Int32
    /// The file's identity when opened, to notice it being deleted or replaced.
    private let identity: (device: UInt64, inode: UInt64)?
    let checkpointer: BackgroundCheckpointer?

    /// Opens the file and applies pending migrations.
    init(path: String, options: StoreOptions) throws {
        location = path
        busyTimeoutMilliseconds = options.busyTimeoutMilliseconds
        let db = try Database(path: path, busyTimeoutMilliseconds: options.busyTimeoutMilliseconds)
        _ = try Database.retryingWhileBusy(for: options.busyTimeoutMilliseconds) { try Migrator().migrate(db) }
        database = db
        identity = Self.identity(of: path)
        checkpointer = Self.isInMemory(path) ? nil : BackgroundCheckpointer(path: path, busyTimeoutMilliseconds: options.busyTimeoutMilliseconds)
        checkpointer?.attach(to: db)
    }

    deinit {
        checkpointer?.detach(from: database)
        checkpointer?.stop()
    }

    /// The file is still the one opened: a deleted database keeps working on its unlinked
    /// inode, and everything written to it would vanish with the process.
    func checkHealth() throws {
        guard let identity, !Self.isInMemory(location) else { return }
        guard let now = Self.identity(of: location), now == identity else {
            throw SQLiteError(code: SQLITE_READONLY | (4 << 8), // SQLITE_READONLY_DBMOVED
                               message: "the database file \(location) was deleted or replaced while this process had it open", sql: nil)
        }
    }

    private static func identity(of path: String) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    func withConnection<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try lock.withLock { try body(database) }
    }

    /// In WAL mode a reader sees the last commit and never waits for the writer, so these reads
    /// take the store loop's connection from it no more: a `/metrics` scrape or the stats line
    /// held it for tens of milliseconds, and every delivery waited. Its page cache is kept to
    /// `Database.readerPageCachePages`: these reads visit pages in proportion to the outbox,
    /// which in the writer's larger cache stayed in memory and, once SQLite freed them, in the
    /// allocator's. (`:memory:` has one database per connection: the writer's then.)
    func withReadConnection<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        guard !Self.isInMemory(location) else { return try withConnection(body) }
        return try readerLock.withLock {
            let reader = try self.reader ?? Database(path: location, busyTimeoutMilliseconds: busyTimeoutMilliseconds, reading: true)
            self.reader = reader
            return try body(reader)
        }
    }

    /// A database that lives in its connection only: no file to check, checkpoint or open twice.
    private static func isInMemory(_ path: String) -> Bool { path == ":memory:" }

    /// SQLite's `data_version`: changes whenever another connection commits.
    func externalChangeToken() throws -> Int64 {
        try lock.withLock { try database.query(LogQueries.dataVersion) { $0.int64(0) }.first ?? 0 }
    }
}
