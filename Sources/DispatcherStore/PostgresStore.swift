import DispatcherModel
import Foundation

/// The outbox on PostgreSQL, for more than one machine: several producers and several
/// `dispatcher serve` hosts on one database. The same queries as SQLite (`SQLStore`), with
/// claims taking `FOR UPDATE SKIP LOCKED` so concurrent workers never wait on each other's
/// rows, and new work announced with `NOTIFY` so idle workers wake at once without polling.
///
/// ```swift
/// let store = try PostgresStore(url: "postgresql://dispatcher@db.internal/dispatcher")
/// try store.write { tx in
///     try tx.execute("UPDATE visits SET status = 'ended' WHERE id = ?", [28540])
///     try tx.enqueue(NewEvent(tenantID: "clinic-a", type: "visit.ended", json: body))
/// }
/// ```
///
/// Opening applies pending migrations (`migrations/postgres/`) under an advisory lock, so
/// processes starting together apply each exactly once.
///
/// `@unchecked Sendable`: connections are handed to one caller at a time by `pool`.
public final class PostgresStore: SQLStore, @unchecked Sendable {
    /// The channel `NOTIFY` uses when work is added.
    static let channel = "dispatcher_work"

    private let url: String
    private let pool: ConnectionPool
    private let listener = NSLock()
    private var listenerConnection: PostgresConnection?
    private var notificationsSeen: Int64 = 0
    private var nextListenAttempt = Date.distantPast

    /// `url`: `postgres://` or `postgresql://`, as libpq reads it (user, password, host, port,
    /// database, and `?sslmode=...` and other parameters). `connections`: how many this
    /// process opens at most; a serve process uses two or three (the store loop, stats, the dashboard).
    public init(url: String, options: StoreOptions = StoreOptions(), connections: Int = 4) throws {
        self.url = url
        pool = ConnectionPool(url: url, size: max(1, connections))
        super.init(options: options, location: PostgresConnection.redacted(url))
        try pool.withConnection { db in try Migrator(migrations: EmbeddedMigrations.postgres).migrate(db) }
    }

    /// Whether `location` names a PostgreSQL database rather than a SQLite file.
    public static func isURL(_ location: String) -> Bool {
        location.hasPrefix("postgres://") || location.hasPrefix("postgresql://")
    }

    override func withDatabase<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try pool.withConnection { try body($0) }
    }

    /// Claims and result batches retry a transaction PostgreSQL aborted to break a deadlock
    /// (two serve processes touching the same endpoint rows in another order).
    override func withRetryingTransaction<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try super.withRetryingTransaction(body)
            } catch let error as PostgresError where error.isRetryable && attempt < 5 {
                attempt += 1
            }
        }
    }

    override func announceWork(on db: any SQLConnection) throws {
        try db.execute("NOTIFY \(Self.channel)")
    }

    /// Counts `NOTIFY`s received on a connection that listens: reading them costs no round
    /// trip, so the worker pool's idle check stays as cheap as SQLite's `data_version`.
    public override func externalChangeToken() throws -> Int64 {
        try listener.withLock {
            if listenerConnection == nil {
                // Called every few milliseconds by an idle pool: while the server is unreachable,
                // try to listen again at most once a second.
                guard Date() >= nextListenAttempt else { return notificationsSeen }
                nextListenAttempt = Date().addingTimeInterval(1)
                let connection = try PostgresConnection(url: url)
                try connection.execute("LISTEN \(Self.channel)")
                listenerConnection = connection
            }
            do {
                notificationsSeen += Int64(try listenerConnection?.drainNotifications() ?? 0)
            } catch {
                // A lost connection: listen again next time, and report a change meanwhile so
                // the worker pool claims rather than sleeps on a deaf listener.
                listenerConnection = nil
                notificationsSeen += 1
            }
            return notificationsSeen
        }
    }
}

/// A few connections shared by the threads of one process, each used by one at a time.
final class ConnectionPool: @unchecked Sendable {
    private let url: String
    private let size: Int
    private let condition = NSCondition()
    private var idle: [PostgresConnection] = []
    private var opened = 0

    init(url: String, size: Int) {
        self.url = url
        self.size = size
    }

    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try checkOut()
        var healthy = true
        defer { checkIn(connection, healthy: healthy) }
        do {
            return try body(connection)
        } catch let error as PostgresError where error.sqlState.isEmpty {
            healthy = false
            throw error
        }
    }

    private func checkOut() throws -> PostgresConnection {
        condition.lock()
        while idle.isEmpty && opened >= size { condition.wait() }
        if let connection = idle.popLast() {
            condition.unlock()
            return connection
        }
        opened += 1
        condition.unlock()
        do {
            return try PostgresConnection(url: url)
        } catch {
            condition.lock()
            opened -= 1
            condition.signal()
            condition.unlock()
            throw error
        }
    }

    /// An unhealthy connection (libpq's own error) means the server went away, a restart or a
    /// fail-over, and with it every idle connection: all are dropped, so the next callers
    /// connect afresh instead of failing too.
    private func checkIn(_ connection: PostgresConnection, healthy: Bool) {
        condition.lock()
        defer { condition.unlock() }
        guard !healthy else {
            idle.append(connection)
            condition.signal()
            return
        }
        opened -= 1 + idle.count
        idle.removeAll()
        condition.broadcast()
    }
}
