import DispatcherModel
import Foundation

/// The outbox: events, their deliveries to each matching endpoint, and the audit log of every
/// attempt, in SQLite (the embedded default, one file) or PostgreSQL (several hosts).
///
/// Opening applies pending migrations. A store may be shared across threads; several
/// processes may open the same database.
///
/// ```swift
/// let store = try OutboxStore.open("dispatcher.sqlite")
/// let result = try store.enqueue(NewEvent(tenantID: "clinic-a", type: "visit.ended", json: #"{"id":"1"}"#))
/// ```
///
/// It plays every role a caller may need: `EventOutbox` (producers), `EndpointDirectory`,
/// `DeliveryLog`, and the worker's and operator's package-level roles.
public final class OutboxStore: EventOutbox, Sendable {
    /// Limits on what producers enqueue.
    public let options: StoreOptions
    let provider: any ConnectionProvider

    init(provider: any ConnectionProvider, options: StoreOptions) {
        self.provider = provider
        self.options = options
    }

    /// Opens the store `location` names: a `postgres://` or `postgresql://` URL, else a SQLite
    /// file path (created when missing). What `database` in the config and `--db` accept.
    public static func open(_ location: String, options: StoreOptions = StoreOptions()) throws -> OutboxStore {
        if isPostgresURL(location) { return try postgres(url: location, options: options) }
        return try sqlite(path: location, options: options)
    }

    /// The SQLite outbox in the file at `path`, created (mode 0600) when missing.
    public static func sqlite(path: String, options: StoreOptions = StoreOptions()) throws -> OutboxStore {
        OutboxStore(provider: try SQLiteConnectionProvider(path: path, options: options), options: options)
    }

    /// The outbox on PostgreSQL. `url`: `postgres://` or `postgresql://`, as libpq reads it
    /// (user, password, host, port, database, `?sslmode=...`). `connections`: how many this
    /// process opens at most; a serve process uses two or three (the store loop, stats, the dashboard).
    ///
    /// ```swift
    /// let store = try OutboxStore.postgres(url: "postgresql://dispatcher@db.internal/dispatcher")
    /// ```
    public static func postgres(url: String, options: StoreOptions = StoreOptions(), connections: Int = 4) throws -> OutboxStore {
        OutboxStore(provider: try PostgresConnectionProvider(url: url, connections: connections), options: options)
    }

    /// How many deliveries the delivery service claims ahead of each worker. Every cycle on
    /// PostgreSQL costs the server a new version of each row it touches, in every index, and
    /// it waited for the WAL flush at commit then, so there a claim takes more at once: with eight
    /// per worker one `serve` delivered 13,000/s where three gave 8,700/s, and sixteen gave 7,766 /
    /// 9,074/s where eight gave 4,994 / 5,767/s on a slower disk (README "Scaling out"). Since its
    /// commits stopped waiting for the disk, 32 gave no more than 16 (three alternating runs each:
    /// medians 6,104 / 7,187 / 6,653/s for 8 / 16 / 32). A job that waits half its lease for a slot
    /// is handed back (`JobBoard.takeStale`), so waiting longer cannot outlast the lease.
    package var claimsAheadPerWorker: Int { provider is PostgresConnectionProvider ? 16 : 3 }

    /// Whether `location` names a PostgreSQL database rather than a SQLite file.
    public static func isPostgresURL(_ location: String) -> Bool {
        PostgresConnectionProvider.isURL(location)
    }

    /// Where the data lives, fit for logs: a file path, or a PostgreSQL URL without its password.
    public var location: String { provider.location }

    /// Runs `body` with a connection no other caller uses meanwhile (tests, `doctor`-style checks).
    @discardableResult
    func withConnection<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try provider.withConnection(body)
    }

    /// For the reads of committed data whose pages grow with the outbox, which a long-running
    /// `serve` or dashboard repeats (counts, stats, charts): see `ConnectionProvider.withReadConnection`.
    func withReadConnection<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try provider.withReadConnection(body)
    }

    /// Runs `body` in one write transaction: a producer's own SQL and its `enqueue` calls
    /// commit together or not at all (the transactional outbox). Throwing rolls back.
    ///
    /// ```swift
    /// try store.write { tx in
    ///     try tx.execute("INSERT INTO visits (id, status) VALUES (?, ?)", [28540, "ended"])
    ///     try tx.enqueue(NewEvent(tenantID: "clinic-a", type: "visit.ended", json: body))
    /// }
    /// ```
    @discardableResult
    public func write<T>(_ body: (OutboxTransaction) throws -> T) throws -> T {
        try withConnection { db in
            try db.inTransaction { try body(OutboxTransaction(db: db, options: options)) }
        }
    }

    /// One event in a transaction of its own: on PostgreSQL a single statement (event,
    /// deliveries and wake-up), so one round trip.
    @discardableResult
    public func enqueue(_ event: NewEvent) throws -> EnqueueResult {
        try withConnection { db in try OutboxQueries.enqueue(event, in: db, options: options) }
    }

    /// Enqueues many events in one transaction: the same validation and idempotency as
    /// `enqueue`, all or nothing (one invalid event stores none).
    @discardableResult
    public func enqueue(contentsOf events: [NewEvent]) throws -> [EnqueueResult] {
        try write { tx in try tx.enqueueEach(events).map { try $0.get() } }
    }

    /// Enqueues many events in one transaction, each on its own: a rejected event (its error
    /// returned in its place) does not stop the others. For backfills (`enqueue --ndjson`).
    public func enqueueEach(_ events: [NewEvent]) throws -> [Result<EnqueueResult, DispatcherError>] {
        try write { tx in try tx.enqueueEach(events) }
    }

    /// `enqueueEach` for events `NDJSONEvent.parse` made (the ingest API, `enqueue --ndjson`):
    /// it checked every body to be a JSON object while reading the line, so the one thread that
    /// commits does not read each body again.
    package func enqueueEach(parsed events: [NewEvent]) throws -> [Result<EnqueueResult, DispatcherError>] {
        try write { tx in try tx.enqueueEach(events, bodyChecked: true) }
    }

    /// Enqueues `event` on a SQLite connection the producer opened itself, inside whatever
    /// transaction is open on it, so an app that already uses GRDB or another SQLite wrapper
    /// keeps one transaction for its rows and its events:
    ///
    /// ```swift
    /// try dbQueue.write { db in                      // GRDB
    ///     try db.execute(sql: "UPDATE visits SET status = 'ended' WHERE id = 28540")
    ///     try store.enqueue(event, on: db.sqliteConnection!)
    /// }
    /// ```
    ///
    /// The connection must be to this store's database file (opening the store applied the
    /// migrations). Outside a transaction the enqueue runs in one of its own. A thrown
    /// `DispatcherError` means nothing was written; the producer's transaction goes on.
    @discardableResult
    public func enqueue(_ event: NewEvent, on connection: OpaquePointer) throws -> EnqueueResult {
        guard let sqlite = provider as? SQLiteConnectionProvider else {
            throw DispatcherError.invalidConfiguration(path: "", message: "enqueue(_:on:) takes a SQLite connection, and this store is on PostgreSQL")
        }
        let db = Database(borrowing: connection)
        guard Self.sameFile(db.path, sqlite.location) else {
            throw DispatcherError.invalidConfiguration(
                path: "", message: "the connection is to '\(db.path)', not to this store's database '\(sqlite.location)'")
        }
        return try OutboxQueries.enqueue(event, in: db, options: options)
    }

    private static func sameFile(_ a: String, _ b: String) -> Bool {
        func resolved(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path }
        return !a.isEmpty && resolved(a) == resolved(b)
    }

    /// Makes the SQL contract enforce this store's `maxPayloadBytes` (a process that syncs
    /// the config calls it, so SQL producers get the configured limit).
    package func recordLimits() throws {
        try withConnection { db in try db.execute(OutboxQueries.recordMaxPayload, [options.maxPayloadBytes]) }
    }

    package func enqueueTestEvent(endpoint: Endpoint, type: String, body: [UInt8], owner: String, leaseSeconds: Double) throws -> ClaimedDelivery {
        try withConnection { db in
            try OperationsQueries.enqueueTestEvent(endpoint: endpoint, type: type, body: body, owner: owner, leaseSeconds: leaseSeconds, in: db)
        }
    }

    package func externalChangeToken() throws -> Int64 {
        try provider.externalChangeToken()
    }

    package func checkHealth() throws {
        try provider.checkHealth()
    }

    /// The newest migration applied, and the newest this build knows (`dispatcher doctor`).
    package func schemaVersion() throws -> (applied: Int, latest: Int) {
        try withConnection { db in
            let applied = try db.query("SELECT max(version) FROM schema_migrations") { $0.int(0) }.first ?? 0
            let known = db.dialect == .postgres ? EmbeddedMigrations.postgres : EmbeddedMigrations.sqlite
            return (applied, known.map(\.version).max() ?? 0)
        }
    }
}
