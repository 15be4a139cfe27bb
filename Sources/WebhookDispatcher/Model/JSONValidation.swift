import Foundation

/// Checks that bytes are the JSON a receiver can parse, before they are stored.
enum JSONValidation {
    /// Deeper nesting is refused: it is never a real webhook body, and parsers recurse on it.
    static let maxDepth = 64

    static func requireObject(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { throw DispatcherError.invalidJSON("the body is empty") }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw DispatcherError.invalidJSON("the body is not valid UTF-8")
        }
        guard nestingDepth(bytes) <= maxDepth else {
            throw DispatcherError.invalidJSON("nesting is deeper than \(maxDepth) levels")
        }
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw DispatcherError.invalidJSON("it does not parse (\(describe(error)))")
        }
        guard value is [String: Any] else {
            throw DispatcherError.invalidJSON("the top level must be an object ({...})")
        }
    }

    /// The deepest bracket nesting outside strings; a cheap guard run before the parser.
    static func nestingDepth(_ bytes: [UInt8]) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for byte in bytes {
            if inString {
                if escaped { escaped = false }
                else if byte == UInt8(ascii: "\\") { escaped = true }
                else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1; deepest = max(deepest, depth)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    private static func describe(_ error: Error) -> String {
        let nsError = error as NSError
        return (nsError.userInfo[NSDebugDescriptionErrorKey] as? String) ?? nsError.localizedDescription
    }
}
