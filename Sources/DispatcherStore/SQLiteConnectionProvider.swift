import CSQLite
import DispatcherModel
import Foundation

/// The embedded default: one SQLite connection to one database file, serialised with a mutex,
/// so the store may be shared across threads; several processes may open the same file (WAL
/// mode; writers wait up to the busy timeout).
///
/// `@unchecked Sendable`: `database` is used only inside `withConnection`, under `lock`. (A plain
/// pthread mutex: the worker pool's store loop takes it for every cycle while producers and the
/// stats line take it too, and Synchronization's `Mutex`, a priority-inheritance futex on Linux,
/// spends such contention spinning in the kernel.)
final class SQLiteConnectionProvider: ConnectionProvider, @unchecked Sendable {
    let location: String
    private let database: Database
    private let lock = NSLock()
    /// The file's identity when opened, to notice it being deleted or replaced.
    private let identity: (device: UInt64, inode: UInt64)?
    let checkpointer: BackgroundCheckpointer?

    /// Opens the file and applies pending migrations.
    init(path: String, options: StoreOptions) throws {
        location = path
        let db = try Database(path: path, busyTimeoutMilliseconds: options.busyTimeoutMilliseconds)
        _ = try Database.retryingWhileBusy(for: options.busyTimeoutMilliseconds) { try Migrator().migrate(db) }
        database = db
        identity = Self.identity(of: path)
        checkpointer = path == ":memory:" ? nil : BackgroundCheckpointer(path: path, busyTimeoutMilliseconds: options.busyTimeoutMilliseconds)
        checkpointer?.attach(to: db)
    }

    deinit {
        checkpointer?.detach(from: database)
        checkpointer?.stop()
    }

    /// The file is still the one opened: a deleted database keeps working on its unlinked
    /// inode, and everything written to it would vanish with the process.
    func checkHealth() throws {
        guard let identity, location != ":memory:" else { return }
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

    /// SQLite's `data_version`: changes whenever another connection commits.
    func externalChangeToken() throws -> Int64 {
        try lock.withLock { try database.query(LogQueries.dataVersion) { $0.int64(0) }.first ?? 0 }
    }
}
