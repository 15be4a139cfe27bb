import CSQLite
import Glibc
import DispatcherModel
import Foundation

/// One SQLite connection: the only place that opens, configures and talks to `sqlite3`.
///
/// A `Database` is not thread-safe; its owner (`SQLiteConnectionProvider`) hands it out only while holding
/// its lock, which is why the type is not `Sendable`. Producers meet it inside
/// `OutboxStore.write { tx in ... }`, where they may run their own SQL and enqueue events in
/// the same transaction.
package final class Database: SQLConnection {
    var dialect: SQLDialect { .sqlite }
    let handle: OpaquePointer
    package let path: String
    private var statements: [String: Statement] = [:]
    /// False for a connection a producer opened (`borrowing`): it is theirs to configure and close.
    private let ownsHandle: Bool

    /// Opens (creating when missing, with mode 0600: the file holds endpoint secrets) the
    /// database at `path`, in WAL mode with a busy timeout and foreign keys on. `reading`: a
    /// connection that only reads (`query_only`), with a page cache of `readerPageCachePages`.
    init(path: String, busyTimeoutMilliseconds: Int32 = 5_000, reading: Bool = false) throws {
        self.path = path
        ownsHandle = true
        if path != ":memory:" && !FileManager.default.fileExists(atPath: path) {
            let descriptor = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            if descriptor >= 0 { close(descriptor) }
        }
        _ = Database.configureLibrary
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw SQLiteError(code: code, message: "cannot open \(path): \(message)", sql: nil)
        }
        self.handle = handle
        sqlite3_extended_result_codes(handle, 1)
        dispatcher_sqlite_busy_timeout(handle, busyTimeoutMilliseconds)
        // NORMAL in WAL mode: a committed transaction survives a process crash; a power loss
        // may lose the last few commits. README "Durability" says so. An 8 MiB page cache (the
        // default is 2 MiB) keeps the hot indexes of a large outbox out of read syscalls; the
        // reads that visit pages in proportion to the outbox have a connection of their own
        // (`SQLiteConnectionProvider.withReadConnection`) and keep few.
        // Checkpoints are BackgroundCheckpointer's (it sets how often, and keeps them off the
        // committing thread).
        try Self.retryingWhileBusy(for: busyTimeoutMilliseconds) {
            try execute("""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            PRAGMA foreign_keys = ON;
            PRAGMA cache_size = \(reading ? Self.readerPageCachePages : Self.pageCacheSize);
            PRAGMA temp_store = MEMORY;
            PRAGMA query_only = \(reading ? 1 : 0);
            """)
        }
    }

    /// The page cache's size, in SQLite's terms (negative: KiB). 8 MiB rather than the 16 it
    /// was: 8 MB less RSS at 10,000 endpoints with 2,000 requests in flight, and no CPU or
    /// enqueue rate measurably lost there, at 10 endpoints, or in batched enqueue (README
    /// "Performance").
    private static let pageCacheSize = -8_192
    /// A reading connection's page cache: a B-tree's path from root to leaf, with room to spare.
    /// A count over 100,000 pending deliveries otherwise leaves ~2.5 MB of index pages in it.
    static let readerPageCachePages = 64

    /// The bytes of pages this connection's cache holds (SQLite's own count).
    var pageCacheBytes: Int {
        var current: Int32 = 0, highest: Int32 = 0
        sqlite3_db_status(handle, SQLITE_DBSTATUS_CACHE_USED, &current, &highest, 0)
        return Int(current)
    }

    /// Runs `body` again while SQLite answers BUSY, for up to `milliseconds`. For start-up:
    /// the busy timeout makes SQLite wait for a lock, but not when two connections that both
    /// read the file race to upgrade their locks (setting WAL mode on a new file, a migration
    /// reading before it writes): one of them gets SQLITE_BUSY at once, and waiting is ours.
    static func retryingWhileBusy<T>(for milliseconds: Int32, _ body: () throws -> T) throws -> T {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, milliseconds)) * 1_000_000
        var pause: UInt32 = 2_000
        while true {
            do {
                return try body()
            } catch let error as SQLiteError where error.isBusy && DispatchTime.now().uptimeNanoseconds < deadline {
                usleep(pause + UInt32.random(in: 0..<pause))
                pause = min(pause * 2, 50_000)
            }
        }
    }

    /// Turns off SQLite's memory statistics, which take a global mutex on every allocation
    /// (thousands per transaction) and which nothing reads. Possible only before SQLite's
    /// first use in the process; if a host application got there first, nothing changes.
    private static let configureLibrary: Void = { _ = dispatcher_sqlite_disable_memstatus() }()

    /// Wraps a connection the producer opened and keeps: nothing is configured, and it is not
    /// closed here. Statements prepared on it live only as long as this wrapper.
    init(borrowing handle: OpaquePointer) {
        self.handle = handle
        path = sqlite3_db_filename(handle, "main").map { String(cString: $0) } ?? ""
        ownsHandle = false
    }

    deinit {
        statements.removeAll()
        if ownsHandle { sqlite3_close_v2(handle) }
    }

    func error(code: Int32, sql: String?) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more statements that take no parameters.
    package func execute(_ sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if code != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(errorMessage)
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: message, sql: sql)
        }
    }

    /// Runs one statement with `bindings`, returning the number of rows it changed.
    @discardableResult
    package func execute(_ sql: String, _ bindings: [SQLBindable]) throws -> Int {
        let statement = try cachedStatement(sql)
        try statement.bind(bindings)
        while try statement.step() {}
        return Int(sqlite3_changes(handle))
    }

    /// Runs a query and hands each row to `body` without collecting them: for scans whose
    /// rows are folded into a summary.
    func forEachRow(_ sql: String, _ bindings: [SQLBindable], _ body: (Statement) throws -> Void) throws {
        let statement = try cachedStatement(sql)
        try statement.bind(bindings)
        while try statement.step() { try body(statement) }
    }

    /// A public, read-only convenience for producers' own tables: each row as column values.
    package func rows(_ sql: String, _ bindings: [SQLBindable] = []) throws -> [[SQLValue]] {
        try query(sql, bindings) { row in
            (0..<sqlite3_column_count(row.handle)).map { column -> SQLValue in
                switch sqlite3_column_type(row.handle, column) {
                case SQLITE_INTEGER: return .integer(row.int64(column))
                case SQLITE_FLOAT: return .real(row.double(column))
                case SQLITE_TEXT: return .text(row.string(column))
                case SQLITE_BLOB: return .blob(row.bytes(column))
                default: return .null
                }
            }
        }
    }

    /// The statement for `sql`, prepared once per connection and reused. The dispatcher's own
    /// statements number about a hundred; a producer that builds SQL text per call (values
    /// written into it) would grow the cache without end, so past `statementCacheLimit` it
    /// starts over. A statement in use stays alive with its user.
    func cachedStatement(_ sql: String) throws -> Statement {
        if let statement = statements[sql] { return statement }
        let statement = try Statement(database: self, sql: sql, persistent: true)
        if statements.count >= Self.statementCacheLimit { statements.removeAll(keepingCapacity: true) }
        statements[sql] = statement
        return statement
    }

    static let statementCacheLimit = 512

    /// How many prepared statements the cache holds (tests).
    var cachedStatementCount: Int { statements.count }

    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// IMMEDIATE: the write lock is taken up front, so a busy database is waited for at BEGIN
    /// rather than failing at the first write. BEGIN and COMMIT are prepared once, like any
    /// statement: `sqlite3_exec` would parse and plan them anew for every transaction.
    func begin() throws { try execute("BEGIN IMMEDIATE", []) }

    func commit() throws { try execute("COMMIT", []) }

    func rollback() { try? execute("ROLLBACK") }

    func executeDeferred(_ sql: String, _ bindings: [SQLBindable]) throws { _ = try execute(sql, bindings) }
}
