import Foundation

/// Reads one JSON object of a config file, key by key, so that every error names its key path
/// (`tenants[0].endpoints[1].retry.factor`) and keys nobody read are rejected as unknown.
package final class JSONObjectReader {
    let path: String
    private let object: [String: Any]
    private var readKeys: Set<String> = []

    package init(_ value: Any, path: String) throws {
        guard let object = value as? [String: Any] else {
            throw DispatcherError.invalidConfiguration(path: path, message: "expected an object, got \(JSONObjectReader.describe(value))")
        }
        self.object = object
        self.path = path
    }

    package func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func value(_ key: String) -> Any? {
        readKeys.insert(key)
        guard let value = object[key], !(value is NSNull) else { return nil }
        return value
    }

    package func fail(_ key: String, _ message: String) -> DispatcherError {
        .invalidConfiguration(path: keyPath(key), message: message)
    }

    package func has(_ key: String) -> Bool { object[key] != nil && !(object[key] is NSNull) }

    package func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value as? String else { throw fail(key, "expected a string, got \(Self.describe(value))") }
        return string
    }

    package func requiredString(_ key: String) throws -> String {
        guard let string = try string(key) else { throw fail(key, "is required") }
        guard !string.isEmpty else { throw fail(key, "must not be empty") }
        return string
    }

    func number(_ key: String) throws -> Double? {
        guard let value = value(key) else { return nil }
        guard let number = value as? NSNumber, !Self.isBoolean(number), number.doubleValue.isFinite else {
            throw fail(key, "expected a number, got \(Self.describe(value))")
        }
        return number.doubleValue
    }

    package func number(_ key: String, default defaultValue: Double, in range: ClosedRange<Double>) throws -> Double {
        let number = try number(key) ?? defaultValue
        guard range.contains(number) else {
            throw fail(key, "must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound)), got \(Self.format(number))")
        }
        return number
    }

    package func integer(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let number = try number(key) else { return defaultValue }
        guard number == number.rounded(), let integer = Int(exactly: number) else {
            throw fail(key, "expected a whole number, got \(Self.format(number))")
        }
        guard range.contains(integer) else {
            throw fail(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(integer)")
        }
        return integer
    }

    package func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        guard let value = value(key) else { return defaultValue }
        guard let number = value as? NSNumber, Self.isBoolean(number) else {
            throw fail(key, "expected true or false, got \(Self.describe(value))")
        }
        return number.boolValue
    }

    package func array(_ key: String) throws -> [Any]? {
        guard let value = value(key) else { return nil }
        guard let array = value as? [Any] else { throw fail(key, "expected an array, got \(Self.describe(value))") }
        return array
    }

    package func stringArray(_ key: String) throws -> [String]? {
        guard let array = try array(key) else { return nil }
        return try array.enumerated().map { index, element in
            guard let string = element as? String else {
                throw DispatcherError.invalidConfiguration(path: "\(keyPath(key))[\(index)]", message: "expected a string, got \(Self.describe(element))")
            }
            return string
        }
    }

    package func object(_ key: String) throws -> JSONObjectReader? {
        guard let value = value(key) else { return nil }
        return try JSONObjectReader(value, path: keyPath(key))
    }

    /// The object's entries as strings, for free-form maps such as `headers`.
    func stringMap() throws -> [String: String] {
        var map: [String: String] = [:]
        for (key, value) in object {
            readKeys.insert(key)
            guard let string = value as? String else { throw fail(key, "expected a string, got \(Self.describe(value))") }
            map[key] = string
        }
        return map
    }

    /// Rejects any key that was not read: a typo must not silently fall back to a default.
    package func rejectUnknownKeys() throws {
        let unknown = Set(object.keys).subtracting(readKeys).sorted()
        guard let first = unknown.first else { return }
        let allowed = readKeys.sorted().joined(separator: ", ")
        throw fail(first, "unknown key (allowed here: \(allowed))")
    }

    static func isBoolean(_ number: NSNumber) -> Bool {
        // JSONSerialization hands back true/false as NSNumbers of ObjC type "c" (char);
        // numbers in JSON never come back as that type.
        String(cString: number.objCType) == "c"
    }

    static func describe(_ value: Any) -> String {
        switch value {
        case is NSNull: return "null"
        case let number as NSNumber: return isBoolean(number) ? (number.boolValue ? "true" : "false") : "the number \(number)"
        case let string as String: return "the string \"\(string)\""
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        default: return "\(type(of: value))"
        }
    }

    package static func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }
}
