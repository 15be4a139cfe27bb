import DispatcherModel
import Foundation

/// A column value or statement binding, the same for SQLite and PostgreSQL: what a producer
/// binds in `OutboxTransaction.execute` and reads back from `rows`.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// A Swift value that binds as a statement parameter on either engine.
public protocol SQLBindable {
    var sqlValue: SQLValue { get }
    /// The column type this Swift type binds as, known even for a nil optional: PostgreSQL
    /// needs a parameter's type when it prepares `? IS NULL OR column = ?`.
    static var sqlKind: SQLValueKind { get }
}

/// What kind of value a binding is, for engines that type parameters up front.
public enum SQLValueKind: Sendable {
    case integer, real, text, blob, unknown
}

extension SQLBindable {
    public static var sqlKind: SQLValueKind { .unknown }
}

extension Int: SQLBindable {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
    public static var sqlKind: SQLValueKind { .integer }
}
extension Int64: SQLBindable {
    public var sqlValue: SQLValue { .integer(self) }
    public static var sqlKind: SQLValueKind { .integer }
}
extension Double: SQLBindable {
    public var sqlValue: SQLValue { .real(self) }
    public static var sqlKind: SQLValueKind { .real }
}
extension String: SQLBindable {
    public var sqlValue: SQLValue { .text(self) }
    public static var sqlKind: SQLValueKind { .text }
}
extension Bool: SQLBindable {
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
    public static var sqlKind: SQLValueKind { .integer }
}
extension Array: SQLBindable where Element == UInt8 {
    public var sqlValue: SQLValue { .blob(self) }
    public static var sqlKind: SQLValueKind { .blob }
}
extension Data: SQLBindable {
    public var sqlValue: SQLValue { .blob([UInt8](self)) }
    public static var sqlKind: SQLValueKind { .blob }
}
extension SQLValue: SQLBindable { public var sqlValue: SQLValue { self } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
    public static var sqlKind: SQLValueKind { Wrapped.sqlKind }
}

extension SQLValue {
    /// The kind of a value in hand, else the kind its Swift type declares.
    static func kind(of binding: SQLBindable) -> SQLValueKind {
        switch binding.sqlValue {
        case .integer: return .integer
        case .real: return .real
        case .text: return .text
        case .blob: return .blob
        case .null: return type(of: binding).sqlKind
        }
    }
}
