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
        // One allocation for the small documents that are most of them (an API answer, a row
        // of `log --json`), instead of the four of growing from empty.
        output.reserveCapacity(128)
        write(to: &output)
        return output
    }

    public var text: String { String(decoding: serialized, as: UTF8.self) }

    private func write(to output: inout [UInt8]) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer(let value): Self.writeInteger(value, to: &output)
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

    /// Writes `value`'s decimal digits straight into `output`, without a `String` between.
    package static func writeInteger(_ value: Int64, to output: inout [UInt8]) {
        if value < 0 { output.append(UInt8(ascii: "-")) }
        var rest = value.magnitude  // unsigned, so Int64.min has one too
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes for at most 20 digits, filled from the end
        withUnsafeMutableBytes(of: &digits) { buffer in
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[start...]))
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

extension JSONValue {
    /// Parses JSON text (a fragment such as `"x"` included), or nil when it is not JSON.
    package init?(parsing bytes: [UInt8]) {
        guard let value = try? JSONValidation.parse(bytes) else { return nil }
        self = value
    }

    /// The elements when this is an array of strings only.
    package var strings: [String]? {
        guard case .array(let elements) = self else { return nil }
        var strings: [String] = []
        strings.reserveCapacity(elements.count)
        for element in elements {
            guard case .string(let string) = element else { return nil }
            strings.append(string)
        }
        return strings
    }

    /// The members when this is an object of strings only (a repeated key: the last).
    package var stringMembers: [String: String]? {
        guard case .object(let members) = self else { return nil }
        var strings: [String: String] = [:]
        for (key, value) in members {
            guard case .string(let string) = value else { return nil }
            strings[key] = string
        }
        return strings
    }

    /// The member `key` of an object (a repeated key: the last), or nil.
    package subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    /// An integer, or a double with no fraction that fits.
    package var int64Value: Int64? {
        switch self {
        case .integer(let value): return value
        case .number(let value): return Int64(exactly: value)
        default: return nil
        }
    }

    /// Converts what JSONSerialization returns; object keys come out sorted. The one place a
    /// JSON `true` is told from the number 1 and `1.0` from `1`: Foundation hands all of them
    /// back as `NSNumber`, and only its ObjC type says which ("c" a boolean, "f"/"d" a double).
    package init(foundation value: Any) {
        // Containers and strings first: asking whether a Swift dictionary or array is an
        // `NSNumber` bridges it to Foundation, and did so for every object of a config (a
        // 10,000-endpoint config took 1.2 s to read).
        switch value {
        case let object as [String: Any]:
            self = .object(object.sorted { $0.key < $1.key }.map { ($0.key, JSONValue(foundation: $0.value)) })
        case let array as [Any]:
            self = .array(array.map(JSONValue.init(foundation:)))
        case let string as String:
            self = .string(string)
        case is NSNull:
            self = .null
        case let number as NSNumber:
            switch String(cString: number.objCType) {
            case "c": self = .bool(number.boolValue)
            case "f", "d": self = .number(number.doubleValue)
            case "Q" where number.uint64Value > UInt64(Int64.max): self = .number(number.doubleValue)
            default: self = .integer(number.int64Value)
            }
        default:
            self = .null
        }
    }

    /// The value as JSONSerialization takes it (`JSONText` encodes config columns through it).
    package var foundationObject: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let value): return value
        case .integer(let value): return value
        case .number(let value): return value
        case .string(let value): return value
        case .array(let values): return values.map(\.foundationObject)
        case .object(let members):
            return Dictionary(members.map { ($0.0, $0.1.foundationObject) }, uniquingKeysWith: { _, last in last })
        }
    }

    /// Integers and other numbers alike, as a double; nil for anything else (a boolean included).
    package var doubleValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }

    /// What the value is, for error messages: `the string "x"`, `the number 3`, `an array`.
    package var summary: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return "the number \(value)"
        case .number(let value): return "the number \(JSONReader.format(value))"
        case .string(let value): return "the string \"\(value)\""
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
