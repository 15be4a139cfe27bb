import Foundation

/// A JSON value whose objects keep their key order, so a builder emits exactly the field
/// order a receiver's documentation shows. Serialises compactly, as UTF-8.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// A string, or null when nil.
    package static func string(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    package static func integer(_ value: Int?) -> JSONValue { value.map { .integer(Int64($0)) } ?? .null }

    /// Compact UTF-8 JSON: no spaces, `/` unescaped, non-ASCII kept as UTF-8.
    public var serialized: [UInt8] {
        var output: [UInt8] = []
        write(to: &output)
        return output
    }

    public var text: String { String(decoding: serialized, as: UTF8.self) }

    private func write(to output: inout [UInt8]) {
        switch self {
        case .null: output += Array("null".utf8)
        case .bool(let value): output += Array((value ? "true" : "false").utf8)
        case .integer(let value): output += Array(String(value).utf8)
        case .number(let value):
            output += Array((value.isFinite ? (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)") : "null").utf8)
        case .string(let value): Self.writeString(value, to: &output)
        case .array(let values):
            output.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                value.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                Self.writeString(member.0, to: &output)
                output.append(UInt8(ascii: ":"))
                member.1.write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Writes `string` as a JSON string: runs that need no escaping are copied whole (on the
    /// path of every recorded attempt's headers).
    package static func writeString(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            var runStart = 0
            for index in bytes.indices {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                runStart = index + 1
                output.append(UInt8(ascii: "\\"))
                switch byte {
                case 0x0A: output.append(UInt8(ascii: "n"))
                case 0x0D: output.append(UInt8(ascii: "r"))
                case 0x09: output.append(UInt8(ascii: "t"))
                case 0x00..<0x20: output.append(contentsOf: String(format: "u%04x", byte).utf8)
                default: output.append(byte)
                }
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// Reads fields of a JSON object a producer (or `dispatcher enqueue`) supplied for a known event
/// type, with errors that name the field path (`data.hmo_id`).
package struct EventFieldReader {
    package let type: String
    package let path: String
    package let object: [String: Any]

    package init(type: String, path: String = "", _ value: Any?) throws {
        self.type = type
        self.path = path
        guard let object = value as? [String: Any] else {
            throw DispatcherError.invalidEvent(type: type, field: path.isEmpty ? "(body)" : path, message: "must be a JSON object")
        }
        self.object = object
    }

    package init(type: String, body: [UInt8]) throws {
        let value = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
        try self.init(type: type, value)
    }

    package func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    package func fail(_ key: String, _ message: String) -> DispatcherError {
        .invalidEvent(type: type, field: fieldPath(key), message: message)
    }

    package func requirePresent(_ key: String) throws -> Any {
        guard let value = object[key] else { throw fail(key, "is required (write null explicitly where null is allowed)") }
        return value
    }

    package func string(_ key: String) throws -> String {
        guard let value = try requirePresent(key) as? String else { throw fail(key, "must be a string") }
        return value
    }

    package func optionalString(_ key: String) throws -> String? {
        let value = try requirePresent(key)
        if value is NSNull { return nil }
        guard let string = value as? String else { throw fail(key, "must be a string or null") }
        return string
    }

    /// A key that may be absent altogether (never null).
    package func absentOrString(_ key: String) throws -> String? {
        guard object[key] != nil else { return nil }
        return try string(key)
    }

    package func integer(_ key: String) throws -> Int {
        guard let value = Self.integer(try requirePresent(key)) else { throw fail(key, "must be a JSON integer") }
        return value
    }

    package func optionalInteger(_ key: String) throws -> Int? {
        let value = try requirePresent(key)
        if value is NSNull { return nil }
        guard let integer = Self.integer(value) else { throw fail(key, "must be a JSON integer or null") }
        return integer
    }

    package func object(_ key: String) throws -> EventFieldReader {
        try EventFieldReader(type: type, path: fieldPath(key), try requirePresent(key))
    }

    /// Rejects keys the family does not document.
    package func rejectKeys(otherThan allowed: [String]) throws {
        if let extra = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw fail(extra, "is not a field of \(type) (fields: \(allowed.joined(separator: ", ")))")
        }
    }

    package static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c",
              let integer = Int(exactly: number.doubleValue), !"fd".contains(String(cString: number.objCType)) else { return nil }
        return integer
    }
}
