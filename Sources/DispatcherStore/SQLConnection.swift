import DispatcherModel
import Foundation

/// Which SQL a connection speaks, for the few statements the two stores write differently
/// (JSON table functions, time formatting). Everything else is one text for both; PostgreSQL
/// connections translate `?` / `?N` parameters to `$N` when they prepare.
enum SQLDialect: Sendable {
    case sqlite
    case postgres
}

/// A statement whose text differs by engine, built once for each at start-up rather than on
/// every call: callers write `DeliveryQueries.lease[db.dialect]`.
struct DialectSQL: Sendable {
    private let sqlite: String
    private let postgres: String

    init(_ text: (SQLDialect) -> String) {
        sqlite = text(.sqlite)
        postgres = text(.postgres)
    }

    subscript(dialect: SQLDialect) -> String { dialect == .sqlite ? sqlite : postgres }
}

/// A result row, read by column index. Its metatype is sendable: the row readers are generic
/// functions passed as closures, which capture it.
protocol SQLRow: SendableMetatype {
    func isNull(_ column: Int32) -> Bool
    func int64(_ column: Int32) -> Int64
    func double(_ column: Int32) -> Double
    func string(_ column: Int32) -> String
    func bytes(_ column: Int32) -> [UInt8]
}

extension SQLRow {
    func int(_ column: Int32) -> Int { Int(int64(column)) }
    func optionalInt(_ column: Int32) -> Int? { isNull(column) ? nil : int(column) }
    func optionalString(_ column: Int32) -> String? { isNull(column) ? nil : string(column) }
    func optionalBytes(_ column: Int32) -> [UInt8]? { isNull(column) ? nil : bytes(column) }
}

/// One database connection, SQLite (`Database`) or PostgreSQL (`PostgresConnection`): what
/// the query files (`OutboxQueries`, `DeliveryQueries`, ...) run on, so both stores share
/// them. Not thread-safe; each store hands a connection to one caller at a time.
protocol SQLConnection: AnyObject {
    associatedtype Row: SQLRow

    var dialect: SQLDialect { get }

    /// Runs statements that take no parameters (migrations, savepoints).
    func execute(_ sql: String) throws

    /// Runs one statement; returns the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ bindings: [SQLBindable]) throws -> Int

    /// Runs a query and hands each row to `body` without collecting them.
    func forEachRow(_ sql: String, _ bindings: [SQLBindable], _ body: (Row) throws -> Void) throws

    /// Runs a statement whose outcome nothing reads before the transaction ends (a write whose
    /// count is not used). PostgreSQL sends it with the next statement that returns something
    /// (libpq's pipeline mode): a store loop's cycle made about sixteen round trips, most of them
    /// such writes. Its error is then thrown by that statement (or the commit), naming its SQL;
    /// the transaction fails either way. SQLite, with no round trips, runs it at once.
    func executeDeferred(_ sql: String, _ bindings: [SQLBindable]) throws

    /// Whether a transaction is open on this connection (its own, or a producer's).
    var isInTransaction: Bool { get }

    /// Opens a write transaction (on PostgreSQL, sent with the transaction's first statement).
    func begin() throws

    /// Commits, after running what was deferred.
    func commit() throws

    /// Rolls back; deferred statements not yet sent are dropped.
    func rollback()

    /// Each row as column values, for producers' own tables.
    func rows(_ sql: String, _ bindings: [SQLBindable]) throws -> [[SQLValue]]
}

extension SQLConnection {
    /// Runs `body` in a write transaction, or inside the one already open; throwing rolls back.
    func inTransaction<T>(_ body: () throws -> T) throws -> T {
        if isInTransaction { return try body() }
        try begin()
        do {
            let result = try body()
            try commit()
            return result
        } catch {
            rollback()
            throw error
        }
    }

    /// Runs a query and maps each row; the row is valid only inside `map`.
    func query<T>(_ sql: String, _ bindings: [SQLBindable], map: (Row) throws -> T) throws -> [T] {
        var rows: [T] = []
        try forEachRow(sql, bindings) { rows.append(try map($0)) }
        return rows
    }

    func query<T>(_ sql: String, map: (Row) throws -> T) throws -> [T] { try query(sql, [], map: map) }
    func rows(_ sql: String) throws -> [[SQLValue]] { try rows(sql, []) }
}
