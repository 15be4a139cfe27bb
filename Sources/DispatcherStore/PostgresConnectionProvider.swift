import DispatcherModel
import Foundation

/// The outbox on PostgreSQL, for more than one machine: several producers and several
/// `dispatcher serve` hosts on one database. The same queries as SQLite, with claims taking
/// `FOR UPDATE SKIP LOCKED` so concurrent workers never wait on each other's rows, and new work
/// announced with `NOTIFY` so idle workers wake at once without polling.
///
/// Opening applies pending migrations (`migrations/postgres/`) under an advisory lock, so
/// processes starting together apply each exactly once.
///
/// `@unchecked Sendable`: connections are handed to one caller at a time by `pool`; the
/// listener's state is touched only under `listener`.
final class PostgresConnectionProvider: ConnectionProvider, @unchecked Sendable {
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
    let location: String

    init(url: String, connections: Int) throws {
        self.url = url
        location = PostgresConnection.redacted(url)
        pool = ConnectionPool(url: url, size: max(1, connections))
        try pool.withConnection { db in try Migrator(migrations: EmbeddedMigrations.postgres).migrate(db) }
    }

    /// Whether `location` names a PostgreSQL database rather than a SQLite file.
    static func isURL(_ location: String) -> Bool {
        location.hasPrefix("postgres://") || location.hasPrefix("postgresql://")
    }

    func withConnection<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try pool.withConnection { try body($0) }
    }

    /// Claims and result batches retry a transaction PostgreSQL aborted to break a deadlock
    /// (two serve processes touching the same endpoint rows in another order).
    func withRetryingTransaction<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try withConnection { db in try db.inTransaction { try body(db) } }
            } catch let error as PostgresError where error.isRetryable && attempt < 5 {
                attempt += 1
            }
        }
    }

    func announceWork(on db: any SQLConnection) throws {
        try db.execute("NOTIFY \(Self.channel)")
    }

    /// Counts `NOTIFY`s received on a connection that listens: reading them costs no round
    /// trip, so the worker pool's idle check stays as cheap as SQLite's `data_version`.
    func externalChangeToken() throws -> Int64 {
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
