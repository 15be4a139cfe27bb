import Foundation

/// Reads one JSON object key by key, so every error names its key path
/// (`tenants[0].endpoints[1].retry.factor`, `data.hmo_id`). The one reader for config files,
/// stored endpoint columns and event bodies; they differ only in what a missing key means:
///
/// - **Settings** (config, endpoint definitions): absent and `null` mean "use the default"
///   (`string`, `number(_:default:in:)`, ...), and keys nobody read are rejected as typos
///   (`rejectUnknownKeys`). Errors are `invalidConfiguration`.
/// - **Documented fields** (the seeds' event bodies): every field is present and `null` only
///   where the receiver allows it (`presentString`, `presentNullableInteger`, ...). Errors are
///   `invalidEvent` for the event's type.
package final class JSONReader {
    /// Whose JSON this is, which decides the errors.
    package enum Subject: Sendable {
        case configuration
        case event(type: String)
    }

    package let subject: Subject
    package let path: String
    /// The object's members, one per key (the last of duplicates), in a list: the objects read
    /// here have a few keys each, which a scan finds sooner than hashing would, and a config of
    /// 10,000 endpoints hashed every key three times (the members, the keys read, the unknown
    /// ones). Large objects (free-form maps, bodies) also get an index by key.
    private let members: [(key: String, value: JSONValue)]
    private let index: [String: Int]?
    /// Which members were read, by position.
    private var read: [Bool]
    /// Every key asked for, present or not: what an unknown key's error lists as allowed.
    private var asked: [String] = []
    private static let indexedFrom = 16

    package init(_ value: JSONValue?, path: String, subject: Subject = .configuration) throws(DispatcherError) {
        self.subject = subject
        self.path = path
        guard case .object(let pairs)? = value else {
            switch subject {
            case .configuration:
                throw .invalidConfiguration(path: path, message: "expected an object, got \(value?.summary ?? "nothing")")
            case .event(let type):
                throw .invalidEvent(type: type, field: path.isEmpty ? "(body)" : path, message: "must be a JSON object")
            }
        }
        // A duplicate key (rare) keeps only its last member, as in a dictionary. A large object
        // finds the last ones through its index, in one pass: a body of many keys (the ingest
        // API's, say) must not cost a scan of the rest for each.
        var members = pairs.map { (key: $0.0, value: $0.1) }
        var index: [String: Int]?
        if members.count >= Self.indexedFrom {
            let last = Dictionary(members.enumerated().map { ($1.key, $0) }, uniquingKeysWith: { _, last in last })
            if last.count < members.count {
                members = members.indices.filter { last[members[$0].key] == $0 }.map { members[$0] }
                index = Dictionary(uniqueKeysWithValues: members.enumerated().map { ($1.key, $0) })
            } else {
                index = last
            }
        } else {
            func isLast(_ i: Int) -> Bool { !members[(i + 1)...].contains { $0.key == members[i].key } }
            if !members.indices.allSatisfy(isLast) { members = members.indices.filter(isLast).map { members[$0] } }
        }
        self.members = members
        self.index = index
        read = Array(repeating: false, count: members.count)
    }

    /// The position of `key`'s member.
    private func position(_ key: String) -> Int? {
        if let index { return index[key] }
        return members.firstIndex { $0.key == key }
    }

    /// `key`'s value, present or null, without marking it read.
    private func member(_ key: String) -> JSONValue? {
        position(key).map { members[$0].value }
    }

    /// A config object as JSONSerialization returned it.
    package convenience init(configuration value: Any, path: String) throws(DispatcherError) {
        try self.init(JSONValue(foundation: value), path: path)
    }

    /// The body of an event enqueued as `type`.
    package convenience init(event type: String, body: [UInt8]) throws(DispatcherError) {
        try self.init(JSONValue(parsing: body), path: "", subject: .event(type: type))
    }

    package func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    package func fail(_ key: String, _ message: String) -> DispatcherError {
        switch subject {
        case .configuration: return .invalidConfiguration(path: keyPath(key), message: message)
        case .event(let type): return .invalidEvent(type: type, field: keyPath(key), message: message)
        }
    }

    /// Present and not null.
    package func has(_ key: String) -> Bool {
        guard let value = member(key) else { return false }
        return value != .null
    }

    /// Present, null or not.
    package func contains(_ key: String) -> Bool { position(key) != nil }

    /// The value, marked as read; nil when absent or null.
    private func value(_ key: String) -> JSONValue? {
        asked.append(key)
        guard let position = position(key) else { return nil }
        read[position] = true
        let value = members[position].value
        return value == .null ? nil : value
    }

    // MARK: - Settings: absent or null means the default

    package func string(_ key: String) throws(DispatcherError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let string) = value else { throw fail(key, "expected a string, got \(value.summary)") }
        return string
    }

    package func requiredString(_ key: String) throws(DispatcherError) -> String {
        guard let string = try string(key) else { throw fail(key, "is required") }
        guard !string.isEmpty else { throw fail(key, "must not be empty") }
        return string
    }

    package func number(_ key: String) throws(DispatcherError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let number = value.doubleValue, number.isFinite else { throw fail(key, "expected a number, got \(value.summary)") }
        return number
    }

    package func number(_ key: String, default defaultValue: Double, in range: ClosedRange<Double>) throws(DispatcherError) -> Double {
        let number = try number(key) ?? defaultValue
        guard range.contains(number) else {
            throw fail(key, "must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound)), got \(Self.format(number))")
        }
        return number
    }

    package func integer(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(DispatcherError) -> Int {
        guard let number = try number(key) else { return defaultValue }
        guard number == number.rounded(), let integer = Int(exactly: number) else {
            throw fail(key, "expected a whole number, got \(Self.format(number))")
        }
        guard range.contains(integer) else {
            throw fail(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(integer)")
        }
        return integer
    }

    package func bool(_ key: String, default defaultValue: Bool) throws(DispatcherError) -> Bool {
        guard let value = value(key) else { return defaultValue }
        guard case .bool(let bool) = value else { throw fail(key, "expected true or false, got \(value.summary)") }
        return bool
    }

    package func array(_ key: String) throws(DispatcherError) -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard case .array(let array) = value else { throw fail(key, "expected an array, got \(value.summary)") }
        return array
    }

    package func stringArray(_ key: String) throws(DispatcherError) -> [String]? {
        guard let array = try array(key) else { return nil }
        return try array.enumerated().map { index, element throws(DispatcherError) in
            guard case .string(let string) = element else {
                throw DispatcherError.invalidConfiguration(path: "\(keyPath(key))[\(index)]", message: "expected a string, got \(element.summary)")
            }
            return string
        }
    }

    package func object(_ key: String) throws(DispatcherError) -> JSONReader? {
        guard let value = value(key) else { return nil }
        return try JSONReader(value, path: keyPath(key), subject: subject)
    }

    /// The object's entries as strings, for free-form maps such as `headers`.
    package func stringMap() throws(DispatcherError) -> [String: String] {
        var map: [String: String] = [:]
        for (position, (key, value)) in members.enumerated() {
            asked.append(key)
            read[position] = true
            guard case .string(let string) = value else { throw fail(key, "expected a string, got \(value.summary)") }
            map[key] = string
        }
        return map
    }

    /// Rejects any key that was not read: a typo must not silently fall back to a default.
    package func rejectUnknownKeys() throws(DispatcherError) {
        guard read.contains(false) else { return }
        let unknown = members.indices.filter { !read[$0] }.map { members[$0].key }.sorted()
        let allowed = Set(asked).sorted().joined(separator: ", ")
        throw fail(unknown[0], "unknown key (allowed here: \(allowed))")
    }

    // MARK: - Documented fields: present, null only where allowed

    package func presentValue(_ key: String) throws(DispatcherError) -> JSONValue {
        guard let value = member(key) else { throw fail(key, "is required (write null explicitly where null is allowed)") }
        return value
    }

    package func presentString(_ key: String) throws(DispatcherError) -> String {
        guard case .string(let string) = try presentValue(key) else { throw fail(key, "must be a string") }
        return string
    }

    package func presentNullableString(_ key: String) throws(DispatcherError) -> String? {
        switch try presentValue(key) {
        case .null: return nil
        case .string(let string): return string
        default: throw fail(key, "must be a string or null")
        }
    }

    /// A key that may be absent altogether (never null).
    package func absentOrString(_ key: String) throws(DispatcherError) -> String? {
        guard contains(key) else { return nil }
        return try presentString(key)
    }

    package func presentInteger(_ key: String) throws(DispatcherError) -> Int {
        guard case .integer(let value) = try presentValue(key), let integer = Int(exactly: value) else {
            throw fail(key, "must be a JSON integer")
        }
        return integer
    }

    package func presentNullableInteger(_ key: String) throws(DispatcherError) -> Int? {
        switch try presentValue(key) {
        case .null: return nil
        case .integer(let value) where Int(exactly: value) != nil: return Int(value)
        default: throw fail(key, "must be a JSON integer or null")
        }
    }

    package func presentObject(_ key: String) throws(DispatcherError) -> JSONReader {
        try JSONReader(try presentValue(key), path: keyPath(key), subject: subject)
    }

    /// Rejects keys the documented format does not have.
    package func rejectKeys(otherThan allowed: [String]) throws(DispatcherError) {
        if let extra = members.map(\.key).sorted().first(where: { !allowed.contains($0) }) {
            guard case .event(let type) = subject else { throw fail(extra, "unknown key (allowed here: \(allowed.joined(separator: ", ")))") }
            throw fail(extra, "is not a field of \(type) (fields: \(allowed.joined(separator: ", ")))")
        }
    }

    package static func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }
}
