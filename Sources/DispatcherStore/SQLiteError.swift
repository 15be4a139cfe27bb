import CSQLite
import DispatcherModel
import Foundation

/// An error reported by SQLite, keeping its result code, its message and the SQL that failed.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The extended SQLite result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT_UNIQUE`, ...).
    public let code: Int32
    public let message: String
    public let sql: String?

    public var description: String {
        var text = "SQLite error \(code): \(message)"
        if let sql { text += " (while running: \(sql.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")))" }
        return text
    }

    /// The primary result code, without the extended bits.
    public var primaryCode: Int32 { code & 0xFF }

    public var isConstraintViolation: Bool { primaryCode == SQLITE_CONSTRAINT }

    /// An error retrying will not mend: the file is corrupt, is not a database, cannot be
    /// written, or was deleted or replaced under this process.
    public var cannotHeal: Bool {
        [SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_READONLY].contains(primaryCode)
    }

    /// Another connection holds a lock this one needs (SQLITE_BUSY, SQLITE_LOCKED).
    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }
}
