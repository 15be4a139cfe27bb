import CPostgres
import DispatcherModel
import Foundation

/// An error reported by PostgreSQL (or libpq), with its SQLSTATE and the SQL that failed.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// The five-character SQLSTATE (`40P01` deadlock, `23505` unique violation), empty when
    /// the error came from libpq itself (a lost connection).
    public let sqlState: String
    public let message: String
    public let sql: String?

    public var description: String {
        var text = "PostgreSQL error\(sqlState.isEmpty ? "" : " \(sqlState)"): \(message)"
        if let sql { text += " (while running: \(sql.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")))" }
        return text
    }

    /// A deadlock or serialization failure: the transaction may simply be run again.
    public var isRetryable: Bool { sqlState == "40P01" || sqlState == "40001" }
}

/// One libpq connection: the only place that talks to PostgreSQL. Statements are prepared once
/// per connection (named `s1`, `s2`, ...) with the placeholders the query files write (`?`,
/// `?N`) turned into PostgreSQL's `$N`; values travel as text, blobs as binary.
///
/// Not thread-safe: `ConnectionPool` hands each connection to one caller at a time.
final class PostgresConnection: SQLConnection {
    var dialect: SQLDialect { .postgres }
    private let handle: OpaquePointer
    private var prepared: [String: String] = [:]
    /// Statements `executeDeferred` and `begin` queued, sent with the next one whose result is read.
    private var deferred: [(sql: String, bindings: [SQLBindable])] = []
    /// `begin` queued a BEGIN not sent yet: the transaction is open as far as callers go.
    private var beginQueued = false
    /// Statements sent and answered, one pipeline counting once; preparing not counted (tests).
    private(set) var roundTrips = 0

    init(url: String) throws {
        guard let handle = PQconnectdb(url) else { throw PostgresError(sqlState: "", message: "out of memory", sql: nil) }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(handle)
            throw PostgresError(sqlState: "", message: "cannot connect to \(PostgresConnection.redacted(url)): \(message)", sql: nil)
        }
        self.handle = handle
        // Notices (e.g. "relation already exists, skipping") are not errors; keep them off stderr.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        // No JIT: every statement here is short and finds its rows by an index, but the planner
        // prices some by the table's statistics (a claim's probe, once they count 200,000 pending
        // rows) past `jit_above_cost`, and compiling one took ~10 ms, a hundred times its run.
        try execute("SET client_min_messages = warning; SET jit = off")
    }

    deinit { PQfinish(handle) }

    /// A connection URL fit for logs: the password replaced by `***`.
    /// libpq also reads a password from the query (`?password=`), so that one goes too.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(an unparsable PostgreSQL URL)" }
        if components.password != nil { components.percentEncodedPassword = "***" }
        if let items = components.queryItems, items.contains(where: { $0.name == "password" }) {
            components.queryItems = items.map { $0.name == "password" ? URLQueryItem(name: "password", value: "***") : $0 }
        }
        return components.string ?? "(an unparsable PostgreSQL URL)"
    }

    // MARK: - SQLConnection

    func execute(_ sql: String) throws {
        try sendDeferred()
        roundTrips += 1
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, sql: sql)
    }

    @discardableResult
    func execute(_ sql: String, _ bindings: [SQLBindable]) throws -> Int {
        let result = try run(sql, bindings)
        defer { PQclear(result) }
        return Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    func forEachRow(_ sql: String, _ bindings: [SQLBindable], _ body: (PostgresRow) throws -> Void) throws {
        let result = try run(sql, bindings)
        defer { PQclear(result) }
        var row = PostgresRow(result: result, index: 0)
        for index in 0..<PQntuples(result) {
            row.index = index
            try body(row)
        }
    }

    func executeDeferred(_ sql: String, _ bindings: [SQLBindable]) throws {
        // Outside a transaction nothing would send it: it runs now.
        guard isInTransaction else { return PQclear(try run(sql, bindings)) }
        deferred.append((sql, bindings))
    }

    var isInTransaction: Bool { beginQueued || PQtransactionStatus(handle) != PQTRANS_IDLE }

    func begin() throws {
        deferred.append(("BEGIN", []))
        beginQueued = true
    }

    func commit() throws { PQclear(try run("COMMIT", [])) }

    func rollback() {
        _ = takeDeferred()
        if PQtransactionStatus(handle) != PQTRANS_IDLE { try? execute("ROLLBACK") }
    }

    func rows(_ sql: String, _ bindings: [SQLBindable]) throws -> [[SQLValue]] {
        let result = try run(sql, bindings)
        defer { PQclear(result) }
        let columns = PQnfields(result)
        return (0..<PQntuples(result)).map { index in
            let row = PostgresRow(result: result, index: index)
            return (0..<columns).map { column -> SQLValue in
                if row.isNull(column) { return .null }
                switch PQftype(result, column) {
                case 16, 20, 21, 23: return .integer(row.int64(column))  // bool, int8, int2, int4
                case 700, 701, 1700: return .real(row.double(column))   // float4, float8, numeric
                case 17: return .blob(row.bytes(column))                 // bytea
                default: return .text(row.string(column))
                }
            }
        }
    }

    // MARK: - Notifications

    /// Reads what arrived on the socket without blocking; returns how many notifications came.
    func drainNotifications() throws -> Int {
        guard PQconsumeInput(handle) == 1 else {
            throw PostgresError(sqlState: "", message: String(cString: PQerrorMessage(handle)), sql: nil)
        }
        var count = 0
        while let notification = PQnotifies(handle) {
            PQfreemem(notification)
            count += 1
        }
        return count
    }

    // MARK: - Statements

    /// Runs a statement (with the deferred ones before it, if any) and returns its result,
    /// which the caller clears.
    private func run(_ sql: String, _ bindings: [SQLBindable]) throws -> OpaquePointer? {
        if !deferred.isEmpty { return try pipeline(takeDeferred() + [(sql, bindings)]) }
        let name = try statementName(sql, bindings)
        roundTrips += 1
        let result = Self.withParameters(bindings) { count, values, lengths, formats in
            PQexecPrepared(handle, name, count, values, lengths, formats, 0)
        }
        do {
            try check(result, sql: sql)
        } catch {
            PQclear(result)
            throw error
        }
        return result
    }

    /// Sends what was deferred, alone: before a statement that does not go through `run`.
    private func sendDeferred() throws {
        guard !deferred.isEmpty else { return }
        PQclear(try pipeline(takeDeferred()))
    }

    /// Empties the queue (a BEGIN in it included) and returns what it held.
    private func takeDeferred() -> [(sql: String, bindings: [SQLBindable])] {
        defer {
            deferred = []
            beginQueued = false
        }
        return deferred
    }

    /// Sends `statements` in one round trip (libpq's pipeline mode) and returns the last one's
    /// result, which the caller clears. The server runs them in order; after an error it skips
    /// the rest (and the transaction is failed), and that first error is thrown.
    private func pipeline(_ statements: [(sql: String, bindings: [SQLBindable])]) throws -> OpaquePointer? {
        // Preparing is a round trip of its own, once per statement text and connection.
        let names = try statements.map { try statementName($0.sql, $0.bindings) }
        guard PQenterPipelineMode(handle) == 1 else { throw connectionError(sql: statements[0].sql) }
        roundTrips += 1
        var firstError: Error?
        var sent = 0
        for (statement, name) in zip(statements, names) {
            let queued = Self.withParameters(statement.bindings) { count, values, lengths, formats in
                PQsendQueryPrepared(handle, name, count, values, lengths, formats, 0) == 1
            }
            guard queued else {
                firstError = connectionError(sql: statement.sql)
                break
            }
            sent += 1
        }
        if PQpipelineSync(handle) != 1, firstError == nil { firstError = connectionError(sql: statements[0].sql) }
        var last: OpaquePointer?
        // Each statement's result, then a null; a statement skipped after an error has one of
        // status PIPELINE_ABORTED.
        for index in 0..<sent {
            while let result = PQgetResult(handle) {
                if firstError == nil {
                    do { try check(result, sql: statements[index].sql) } catch { firstError = error }
                }
                if index == statements.count - 1 && firstError == nil && last == nil { last = result } else { PQclear(result) }
            }
        }
        // Then the sync's (a lost connection gives a null instead).
        while let result = PQgetResult(handle) {
            let status = PQresultStatus(result)
            PQclear(result)
            if status == PGRES_PIPELINE_SYNC { break }
        }
        if PQexitPipelineMode(handle) != 1, firstError == nil { firstError = connectionError(sql: statements[0].sql) }
        if let firstError {
            PQclear(last)
            throw firstError
        }
        return last
    }

    private func connectionError(sql: String) -> PostgresError {
        PostgresError(sqlState: "", message: String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines), sql: sql)
    }

    /// `bindings` as libpq's parameter arrays, valid inside `body`: every value in one buffer
    /// (text NUL-terminated, blobs as raw bytes), pointed into.
    private static func withParameters<T>(_ bindings: [SQLBindable],
                                          _ body: (Int32, [UnsafePointer<CChar>?], [Int32], [Int32]) -> T) -> T {
        var buffer: [UInt8] = []
        var offsets: [Int?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        func appendText(_ text: String) {
            offsets.append(buffer.count); lengths.append(0); formats.append(0)
            buffer.append(contentsOf: text.utf8)
            buffer.append(0)
        }
        for binding in bindings {
            switch binding.sqlValue {
            case .null: offsets.append(nil); lengths.append(0); formats.append(0)
            case .integer(let number): appendText(String(number))
            case .real(let number): appendText("\(number)")
            case .text(let text): appendText(text)
            // Binary format would send no pointer for no bytes, which libpq reads as NULL.
            case .blob(let bytes) where bytes.isEmpty: appendText("\\x")
            case .blob(let bytes):
                offsets.append(buffer.count); lengths.append(Int32(bytes.count)); formats.append(1)
                buffer.append(contentsOf: bytes)
            }
        }
        return buffer.withUnsafeBytes { storage in
            let base = storage.baseAddress?.assumingMemoryBound(to: CChar.self)
            let pointers = offsets.map { offset -> UnsafePointer<CChar>? in
                guard let offset, let base else { return nil }
                return UnsafePointer(base + offset)
            }
            return body(Int32(bindings.count), pointers, lengths, formats)
        }
    }

    /// The prepared statement for `sql`, prepared on first use with parameter types taken from
    /// the first call's bindings (a nil optional still has its Swift type's kind).
    private func statementName(_ sql: String, _ bindings: [SQLBindable]) throws -> String {
        if let name = prepared[sql] { return name }
        let name = "s\(prepared.count + 1)"
        let types: [Oid] = bindings.map { binding in
            switch SQLValue.kind(of: binding) {
            case .unknown: return 0     // left to PostgreSQL's inference
            case .integer: return 20    // int8
            case .real: return 701      // float8
            case .text: return 25       // text
            case .blob: return 17       // bytea
            }
        }
        let translated = Self.numberedParameters(sql)
        let result = PQprepare(handle, name, translated, Int32(types.count), types)
        defer { PQclear(result) }
        try check(result, sql: translated)
        prepared[sql] = name
        return name
    }

    private func check(_ result: OpaquePointer?, sql: String) throws {
        let status = PQresultStatus(result)
        guard status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK else { return }
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
        let message = (PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
                       ?? String(cString: PQerrorMessage(handle))).trimmingCharacters(in: .whitespacesAndNewlines)
        throw PostgresError(sqlState: state, message: message, sql: sql)
    }

    /// `?` and `?N` outside quotes become `$N` (a bare `?` takes the next number). SQL that
    /// already numbers its parameters natively (`$1`) is left as written, so a producer's
    /// PostgreSQL keeps its `?` operators (`jsonb ? 'key'`).
    static func numberedParameters(_ sql: String) -> String {
        if usesNativeParameters(sql) { return sql }
        var output = ""
        output.reserveCapacity(sql.utf8.count + 16)
        var next = 1
        var quote: Character?
        var characters = sql.makeIterator()
        var pending: Character? = nil
        while let character = pending ?? characters.next() {
            pending = nil
            if let open = quote {
                output.append(character)
                if character == open { quote = nil }
                continue
            }
            if character == "'" || character == "\"" {
                quote = character
                output.append(character)
                continue
            }
            guard character == "?" else { output.append(character); continue }
            var digits = ""
            while let following = characters.next() {
                if following.isASCII && following.isNumber { digits.append(following) } else { pending = following; break }
            }
            if digits.isEmpty {
                output += "$\(next)"
                next += 1
            } else {
                output += "$" + digits
            }
        }
        return output
    }
}

extension PostgresConnection {
    /// Whether `sql` has a `$N` parameter outside quotes.
    static func usesNativeParameters(_ sql: String) -> Bool {
        var quote: UInt8?
        var previous: UInt8 = 0
        for byte in sql.utf8 {
            if let open = quote {
                if byte == open { quote = nil }
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                quote = byte
            } else if previous == UInt8(ascii: "$") && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                return true
            }
            previous = quote == nil ? byte : 0
        }
        return false
    }
}

/// One row of a PostgreSQL result in text format.
struct PostgresRow: SQLRow {
    let result: OpaquePointer?
    var index: Int32

    func isNull(_ column: Int32) -> Bool { PQgetisnull(result, index, column) == 1 }

    private func text(_ column: Int32) -> UnsafeMutablePointer<CChar>? { PQgetvalue(result, index, column) }

    /// Booleans arrive as `t`/`f` and count as 1/0, as SQLite's do.
    func int64(_ column: Int32) -> Int64 {
        guard let value = text(column) else { return 0 }
        switch value.pointee {
        case CChar(UInt8(ascii: "t")): return 1
        case CChar(UInt8(ascii: "f")): return 0
        default: return strtoll(value, nil, 10)
        }
    }

    func double(_ column: Int32) -> Double { text(column).map { strtod($0, nil) } ?? 0 }

    func string(_ column: Int32) -> String { text(column).map { String(cString: $0) } ?? "" }

    /// `bytea` in text format is `\x` followed by hex digits.
    func bytes(_ column: Int32) -> [UInt8] {
        guard let value = text(column) else { return [] }
        let length = Int(PQgetlength(result, index, column))
        let raw = UnsafeRawBufferPointer(start: value, count: length)
        guard length >= 2, raw[0] == UInt8(ascii: "\\"), raw[1] == UInt8(ascii: "x") else { return Array(raw) }
        var bytes = [UInt8]()
        bytes.reserveCapacity((length - 2) / 2)
        var position = 2
        func nibble(_ byte: UInt8) -> UInt8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            default: return byte - UInt8(ascii: "A") + 10
            }
        }
        while position + 1 < length {
            bytes.append(nibble(raw[position]) << 4 | nibble(raw[position + 1]))
            position += 2
        }
        return bytes
    }
}
