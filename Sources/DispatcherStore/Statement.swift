import CSQLite
import DispatcherModel
import Foundation

/// A value SQLite can store: the bindings and column values the store uses.
public enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// Converts Swift values into statement bindings.
public protocol SQLiteBindable {
    var sqliteValue: SQLiteValue { get }
    /// The column type this Swift type binds as, known even for a nil optional: PostgreSQL
    /// needs a parameter's type when it prepares `? IS NULL OR column = ?`.
    static var sqlKind: SQLValueKind { get }
}

/// What kind of value a binding is, for engines that type parameters up front.
public enum SQLValueKind: Sendable {
    case integer, real, text, blob, unknown
}

extension SQLiteBindable {
    public static var sqlKind: SQLValueKind { .unknown }
}

extension Int: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .integer(Int64(self)) }
    public static var sqlKind: SQLValueKind { .integer }
}
extension Int64: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .integer(self) }
    public static var sqlKind: SQLValueKind { .integer }
}
extension Double: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .real(self) }
    public static var sqlKind: SQLValueKind { .real }
}
extension String: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .text(self) }
    public static var sqlKind: SQLValueKind { .text }
}
extension Bool: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .integer(self ? 1 : 0) }
    public static var sqlKind: SQLValueKind { .integer }
}
extension Array: SQLiteBindable where Element == UInt8 {
    public var sqliteValue: SQLiteValue { .blob(self) }
    public static var sqlKind: SQLValueKind { .blob }
}
extension Data: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .blob([UInt8](self)) }
    public static var sqlKind: SQLValueKind { .blob }
}
extension SQLiteValue: SQLiteBindable { public var sqliteValue: SQLiteValue { self } }
extension Optional: SQLiteBindable where Wrapped: SQLiteBindable {
    public var sqliteValue: SQLiteValue { self?.sqliteValue ?? .null }
    public static var sqlKind: SQLValueKind { Wrapped.sqlKind }
}

extension SQLiteValue {
    /// The kind of a value in hand, else the kind its Swift type declares.
    static func kind(of binding: SQLiteBindable) -> SQLValueKind {
        switch binding.sqliteValue {
        case .integer: return .integer
        case .real: return .real
        case .text: return .text
        case .blob: return .blob
        case .null: return type(of: binding).sqlKind
        }
    }
}

/// A prepared statement. Owned by one `Database`, used only while that database's lock is held.
///
/// Statements are cached and reused by their database: `bind`, step through `rows`, and the
/// next use resets them.
public final class Statement: SQLRow {
    let handle: OpaquePointer
    let sql: String
    private unowned let database: Database

    init(database: Database, sql: String, persistent: Bool) throws {
        self.database = database
        self.sql = sql
        var handle: OpaquePointer?
        let flags: UInt32 = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let code = sqlite3_prepare_v3(database.handle, sql, -1, flags, &handle, nil)
        guard code == SQLITE_OK, let handle else {
            sqlite3_finalize(handle)
            throw database.error(code: code, sql: sql)
        }
        self.handle = handle
    }

    deinit { sqlite3_finalize(handle) }

    /// Resets the statement and binds `values` to its parameters in order.
    func bind(_ values: [SQLiteBindable]) throws {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        let expected = Int(sqlite3_bind_parameter_count(handle))
        precondition(values.count == expected, "\(values.count) bindings for \(expected) parameters in: \(sql)")
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value.sqliteValue {
            case .null: code = sqlite3_bind_null(handle, index)
            case .integer(let v): code = sqlite3_bind_int64(handle, index, v)
            case .real(let v): code = sqlite3_bind_double(handle, index, v)
            case .text(let v): code = sqlite3_bind_text(handle, index, v, -1, dispatcher_sqlite_transient())
            case .blob(let v):
                code = v.withUnsafeBytes { bytes in
                    sqlite3_bind_blob64(handle, index, bytes.baseAddress, sqlite3_uint64(bytes.count), dispatcher_sqlite_transient())
                }
            }
            guard code == SQLITE_OK else { throw database.error(code: code, sql: sql) }
        }
    }

    /// Steps once; returns true while a row is available.
    func step() throws -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = database.error(code: code, sql: sql)
            sqlite3_reset(handle)
            throw error
        }
    }

    // Column readers, valid only while the current row is.
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    func string(_ column: Int32) -> String {
        guard let text = sqlite3_column_text(handle, column) else { return "" }
        return String(cString: text)
    }
    func bytes(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let pointer = sqlite3_column_blob(handle, column) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
