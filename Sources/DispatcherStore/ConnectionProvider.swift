import DispatcherModel
import Foundation

/// Where an `OutboxStore` gets its connections: SQLite's one connection under a lock, or a
/// pool of PostgreSQL connections. The queries are the same for both; a provider adds only
/// what its engine does differently (how it notices other processes' commits, how it retries).
protocol ConnectionProvider: Sendable {
    /// Where the data lives, fit for logs: a file path, or a PostgreSQL URL without its password.
    var location: String { get }

    /// Runs `body` with a connection no other caller uses meanwhile.
    func withConnection<T>(_ body: (any SQLConnection) throws -> T) throws -> T

    /// Runs `body`, a read of committed data whose pages grow with the outbox (the pending
    /// count, stats, `/metrics`), on a connection that neither waits for the store loop's
    /// writes nor makes it wait.
    func withReadConnection<T>(_ body: (any SQLConnection) throws -> T) throws -> T

    /// Runs `body` in one transaction, again when the engine aborted it to break a deadlock.
    /// For the worker's own writes, which have no effect outside the database.
    func withRetryingTransaction<T>(_ body: (any SQLConnection) throws -> T) throws -> T

    /// Tells other processes' idle workers that there is new work, when the surrounding
    /// transaction commits.
    func announceWork(on db: any SQLConnection) throws

    /// A value that changes when another connection commits: a cheap way for an idle worker
    /// pool to notice new events without claiming.
    func externalChangeToken() throws -> Int64

    /// Throws when the database can no longer be what this process writes to (SQLite: its
    /// file was deleted or replaced). Cheap; the store loop calls it about once a second.
    func checkHealth() throws
}

extension ConnectionProvider {
    /// A pool's connections are separate already.
    func withReadConnection<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try withConnection(body)
    }

    func withRetryingTransaction<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try withConnection { db in try db.inTransaction { try body(db) } }
    }

    /// SQLite needs nothing: other processes watch `data_version`.
    func announceWork(on db: any SQLConnection) throws {}

    func checkHealth() throws {}
}
