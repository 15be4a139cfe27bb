import DispatcherModel
import Foundation

/// The handle a store's `write` closure gets: the producer's SQL and the outbox in one
/// transaction. Valid only inside that closure.
public struct OutboxTransaction {
    let db: any SQLConnection
    let options: StoreOptions

    init(db: any SQLConnection, options: StoreOptions) {
        self.db = db
        self.options = options
    }

    /// Runs one statement of the producer's own, with bound parameters; returns rows changed.
    @discardableResult
    public func execute(_ sql: String, _ bindings: [SQLBindable] = []) throws -> Int {
        try db.execute(sql, bindings)
    }

    /// Reads rows of the producer's own tables.
    public func rows(_ sql: String, _ bindings: [SQLBindable] = []) throws -> [[SQLValue]] {
        try db.rows(sql, bindings)
    }

    /// Enqueues an event inside this transaction; it is delivered only if the transaction commits.
    @discardableResult
    public func enqueue(_ event: NewEvent) throws -> EnqueueResult {
        try OutboxQueries.enqueue(event, in: db, options: options)
    }

    /// Enqueues each event on its own: an invalid one is returned as its error and the
    /// transaction goes on (an enqueue that throws `DispatcherError` has written nothing); a
    /// database failure still throws. The batch takes one statement on PostgreSQL, two per 32 events on SQLite.
    func enqueueEach(_ events: [NewEvent], bodyChecked: Bool = false) throws -> [Result<EnqueueResult, DispatcherError>] {
        try OutboxQueries.enqueueEach(events, in: db, options: options, bodyChecked: bodyChecked)
    }
}
