/// Checks that bytes are the JSON a receiver can parse, before they are stored.
///
/// A strict RFC 8259 reader over the bytes: one pass, nothing allocated, no value built.
/// (JSONSerialization built an object graph of every body only to throw it away: a fifth of
/// an enqueue's time.) A differential test holds it to JSONSerialization's verdicts.
package enum JSONValidation {
    /// Deeper nesting is refused: it is never a real webhook body, and parsers recurse on it.
    static let maxDepth = 64

    package static func requireObject(_ bytes: [UInt8]) throws {
        _ = try topLevelMembers(bytes)
    }

    /// Validates `bytes` as `requireObject` does and returns the top-level object's members in
    /// order: each key decoded, each value as its byte range (taken byte for byte, as an NDJSON
    /// line's `data` becomes an event body unchanged).
    static func topLevelMembers(_ bytes: [UInt8]) throws -> [(key: String, value: Range<Int>)] {
        try scan(bytes) { buffer, reader in
            guard let members = reader.topLevelMembers else {
                throw DispatcherError.invalidJSON("the top level must be an object ({...})")
            }
            return members.map { (key: decodeString(buffer, $0.key), value: $0.value) }
        }
    }

    /// Validates `bytes` as a JSON array and returns each element's byte range (a batch of
    /// events, each taken byte for byte).
    package static func topLevelElements(_ bytes: [UInt8]) throws -> [Range<Int>] {
        try scan(bytes) { _, reader in
            guard let elements = reader.topLevelElements else { throw DispatcherError.invalidJSON("the top level must be an array ([...])") }
            return elements
        }
    }

    /// The value of `bytes` (any JSON value, objects keeping their key order), or
    /// `invalidJSON` saying where it does not parse. JSONSerialization built Foundation objects
    /// that were then converted: four fifths of the time a 10,000-endpoint config took to read,
    /// and most of what reading an endpoint's stored columns cost.
    package static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try scan(bytes) { buffer, _ in
            var builder = JSONBuilder(bytes: buffer)
            return builder.value()
        }
    }

    /// Whether every byte is below 0x80, 8 at a time: then the bytes are valid UTF-8 without
    /// `String(validating:)`, which copies them into a new string to say so.
    static func isASCII(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var index = 0
            while index + 8 <= raw.count {
                if raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
                index += 8
            }
            return raw[index...].allSatisfy { $0 < 0x80 }
        }
    }

    /// Scans `bytes` as one JSON document and hands the finished scanner to `result`; errors
    /// are `invalidJSON` with the position.
    private static func scan<T>(_ bytes: [UInt8], _ result: (UnsafeBufferPointer<UInt8>, JSONScanner) throws -> T) throws -> T {
        guard !bytes.isEmpty else { throw DispatcherError.invalidJSON("the body is empty") }
        guard isASCII(bytes) || String(validating: bytes, as: UTF8.self) != nil else {
            throw DispatcherError.invalidJSON("the body is not valid UTF-8")
        }
        return try bytes.withUnsafeBufferPointer { buffer in
            var reader = JSONScanner(bytes: buffer)
            do throws(JSONScanner.Failure) {
                try reader.document()
            } catch {
                switch error {
                case .tooDeep:
                    throw DispatcherError.invalidJSON("nesting is deeper than \(maxDepth) levels")
                case .unexpected(let offset):
                    let found = offset < buffer.count ? "'\(Unicode.Scalar(buffer[offset]).escaped(asASCII: true))'" : "the end"
                    throw DispatcherError.invalidJSON("it does not parse (unexpected \(found) at byte \(offset))")
                case .loneSurrogate(let offset, let unit):
                    throw DispatcherError.invalidJSON(
                        "it does not parse (a lone UTF-16 surrogate \\u\(String(unit, radix: 16, uppercase: true)) at byte \(offset), which no text can hold)")
                case .outOfRange(let offset):
                    throw DispatcherError.invalidJSON("it does not parse (the number at byte \(offset) is beyond a double's range)")
                }
            }
            return try result(buffer, reader)
        }
    }

    /// Where the JSON whitespace (space, tab, line feed, carriage return) from `index` ends:
    /// the scanner's and the builder's one definition of it.
    static func whitespaceEnd(_ bytes: UnsafeBufferPointer<UInt8>, from index: Int) -> Int {
        var index = index
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return index
            }
        }
        return index
    }

    /// The text of the (valid) JSON string at `range`, quotes included, escapes resolved.
    static func decodeString(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        let inner = UnsafeBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)])
        guard inner.contains(UInt8(ascii: "\\")) else { return String(decoding: inner, as: UTF8.self) }
        var output: [UInt8] = []
        output.reserveCapacity(inner.count)
        var index = 0
        func hex(at start: Int) -> UInt32 {
            inner[start..<(start + 4)].reduce(0) { $0 << 4 | UInt32(JSONScanner.hexValue($1) ?? 0) }
        }
        while index < inner.count {
            let byte = inner[index]
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                index += 1
                continue
            }
            let escape = inner[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex(at: index)
                index += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (hex(at: index + 2) - 0xDC00)
                    index += 6
                }
                // (The scanner refused lone surrogates before this runs; U+FFFD if one got here anyway.)
                output.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
            default: output.append(escape) // \" \\ \/
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// Builds the value of a document `JSONScanner` accepted, so it checks nothing again.
private struct JSONBuilder {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    mutating func value() -> JSONValue {
        skipWhitespace()
        switch bytes[index] {
        case UInt8(ascii: "{"):
            var members: [(String, JSONValue)] = []
            index += 1
            while next(closing: UInt8(ascii: "}")) {
                skipWhitespace()
                let key = string()
                skipWhitespace()
                index += 1 // the colon
                members.append((key, value()))
            }
            return .object(members)
        case UInt8(ascii: "["):
            var elements: [JSONValue] = []
            index += 1
            while next(closing: UInt8(ascii: "]")) {
                elements.append(value())
            }
            return .array(elements)
        case UInt8(ascii: "\""):
            return .string(string())
        case UInt8(ascii: "t"):
            index += 4
            return .bool(true)
        case UInt8(ascii: "f"):
            index += 5
            return .bool(false)
        case UInt8(ascii: "n"):
            index += 4
            return .null
        default:
            return number()
        }
    }

    /// Steps over a comma or the container's close; false once it is closed.
    private mutating func next(closing close: UInt8) -> Bool {
        skipWhitespace()
        switch bytes[index] {
        case close:
            index += 1
            return false
        case UInt8(ascii: ","):
            index += 1
            return true
        default:
            return true // the first member or element
        }
    }

    private mutating func string() -> String {
        let start = index
        index += 1
        while bytes[index] != UInt8(ascii: "\"") {
            index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
        }
        index += 1
        return JSONValidation.decodeString(bytes, start..<index)
    }

    /// An integer when it is written as one and fits 64 bits, as JSONSerialization read it;
    /// otherwise a double.
    private mutating func number() -> JSONValue {
        let start = index
        var integral = true
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"): index += 1
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): integral = false; index += 1
            default:
                return Self.number(UnsafeBufferPointer(rebasing: bytes[start..<index]), integral: integral)
            }
        }
        return Self.number(UnsafeBufferPointer(rebasing: bytes[start..<index]), integral: integral)
    }

    private static func number(_ text: UnsafeBufferPointer<UInt8>, integral: Bool) -> JSONValue {
        let string = String(decoding: text, as: UTF8.self)
        if integral, let integer = Int64(string) { return .integer(integer) }
        return .number(Double(string) ?? 0)
    }

    private mutating func skipWhitespace() { index = JSONValidation.whitespaceEnd(bytes, from: index) }
}

/// The grammar of RFC 8259, read byte by byte. Also refuses what parsers commonly refuse
/// although the grammar allows it: an unpaired UTF-16 surrogate escape (`"\ud800"`).
struct JSONScanner {
    enum Failure: Error {
        case unexpected(at: Int)
        case outOfRange(at: Int)
        /// A `\uD800`-`\uDFFF` escape without its other half, at the escape's backslash.
        case loneSurrogate(at: Int, unit: UInt32)
        case tooDeep
    }

    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var depth = 0
    /// The top-level object's members (key range with quotes, value range), once read; nil
    /// when the top level is not an object.
    var topLevelMembers: [(key: Range<Int>, value: Range<Int>)]?
    /// The top-level array's elements (each value's range), once read; nil when the top level
    /// is not an array.
    var topLevelElements: [Range<Int>]?

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// One value, with nothing but whitespace around it.
    mutating func document() throws(Failure) {
        skipWhitespace()
        if peek == UInt8(ascii: "{") { topLevelMembers = [] }
        if peek == UInt8(ascii: "[") { topLevelElements = [] }
        try value()
        skipWhitespace()
        guard index == bytes.count else { throw .unexpected(at: index) }
    }

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() { index = JSONValidation.whitespaceEnd(bytes, from: index) }

    private mutating func value() throws(Failure) {
        switch peek {
        case UInt8(ascii: "{"): try container(ofMembers: true)
        case UInt8(ascii: "["): try container(ofMembers: false)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try number()
        }
    }

    private mutating func expect(_ byte: UInt8) throws(Failure) {
        guard peek == byte else { throw .unexpected(at: index) }
        index += 1
    }

    /// `{…}` or `[…]`: members (`"key": value`) or values, separated by commas.
    private mutating func container(ofMembers: Bool) throws(Failure) {
        depth += 1
        guard depth <= JSONValidation.maxDepth else { throw .tooDeep }
        let close = ofMembers ? UInt8(ascii: "}") : UInt8(ascii: "]")
        index += 1
        skipWhitespace()
        if peek == close {
            index += 1
            depth -= 1
            return
        }
        while true {
            skipWhitespace()
            if ofMembers {
                try member()
            } else {
                let start = index
                try value()
                if depth == 1 { topLevelElements?.append(start..<index) }
            }
            skipWhitespace()
            if peek == UInt8(ascii: ",") {
                index += 1
                continue
            }
            try expect(close)
            depth -= 1
            return
        }
    }

    /// `"key": value`; the top-level object's are kept.
    private mutating func member() throws(Failure) {
        guard peek == UInt8(ascii: "\"") else { throw .unexpected(at: index) }
        let keyStart = index
        try string()
        let key = keyStart..<index
        skipWhitespace()
        try expect(UInt8(ascii: ":"))
        skipWhitespace()
        let valueStart = index
        try value()
        if depth == 1 { topLevelMembers?.append((key, valueStart..<index)) }
    }

    private mutating func string() throws(Failure) {
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return
            case 0x00..<0x20:
                throw .unexpected(at: index)
            case UInt8(ascii: "\\"):
                index += 1
                switch peek {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    let escape = index - 1
                    let unit = try hexEscape()
                    if (0xDC00...0xDFFF).contains(unit) { throw .loneSurrogate(at: escape, unit: unit) }
                    if (0xD800...0xDBFF).contains(unit) {
                        // A high surrogate must be followed at once by a low one.
                        guard peek == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                            throw .loneSurrogate(at: escape, unit: unit)
                        }
                        index += 1
                        guard (0xDC00...0xDFFF).contains(try hexEscape()) else { throw .loneSurrogate(at: escape, unit: unit) }
                    }
                default:
                    throw .unexpected(at: index)
                }
            default:
                index += 1
                skipPlainBytes()
            }
        }
        throw .unexpected(at: index)
    }

    /// Skips 8 bytes at a time while none of them is a quote, a backslash or a control
    /// character: event bodies are mostly long plain strings, and a byte at a time was most
    /// of what validating one cost.
    private mutating func skipPlainBytes() {
        guard let base = bytes.baseAddress else { return }
        let ones: UInt64 = 0x0101_0101_0101_0101, highBits: UInt64 = 0x8080_8080_8080_8080
        /// Whether any byte of `word` is zero (exact, as a whole; bit tricks from "Bit Twiddling Hacks").
        func hasZeroByte(_ word: UInt64) -> Bool { (word &- ones) & ~word & highBits != 0 }
        while index + 8 <= bytes.count {
            let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            // Below 0x20: the byte's high three bits are all clear.
            if hasZeroByte(word ^ (ones &* 0x22)) || hasZeroByte(word ^ (ones &* 0x5C)) || hasZeroByte(word & (ones &* 0xE0)) { return }
            index += 8
        }
    }

    /// Reads `uXXXX` (at `u`) and returns the code unit.
    private mutating func hexEscape() throws(Failure) -> UInt32 {
        index += 1
        var unit: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = peek, let digit = Self.hexValue(byte) else { throw .unexpected(at: index) }
            unit = unit << 4 | UInt32(digit)
            index += 1
        }
        return unit
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let text = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for expected in text {
            guard peek == expected else { throw .unexpected(at: index) }
            index += 1
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, within a double's range:
    /// `1e999` is refused, as most parsers refuse it (digits beyond a double's precision are not).
    private mutating func number() throws(Failure) {
        let start = index
        if peek == UInt8(ascii: "-") { index += 1 }
        if peek == UInt8(ascii: "0") {
            index += 1
        } else {
            try digits()
        }
        if peek == UInt8(ascii: ".") {
            index += 1
            try digits()
        }
        var exponent = false
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            exponent = true
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            try digits()
        }
        // Only an exponent or more digits than a double's 15 can leave its range: rare enough to parse.
        if exponent || index - start > 15 {
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard Double(text)?.isFinite == true else { throw .outOfRange(at: start) }
        }
    }

    /// One or more decimal digits.
    private mutating func digits() throws(Failure) {
        guard let first = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { throw .unexpected(at: index) }
        while let byte = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { index += 1 }
    }
}
