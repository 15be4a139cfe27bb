import Foundation

/// Rules for event type names and the patterns endpoints filter them with.
public enum EventType {
    /// The type of the event `dispatcher endpoints test` sends: not retried, and never held
    /// back by an ordered endpoint's key.
    public static let ping = "dispatcher.ping"

    /// Letters, digits and `.`, `_`, `-`, up to 200 characters: `checkin.outcome`,
    /// `verification.frontIdCardResult.created`.
    public static func isValid(_ type: String) -> Bool {
        !type.isEmpty && type.utf8.count <= 200 && type.utf8.allSatisfy { isNameByte($0) }
    }

    /// A type name in which `*` may stand for any run of characters.
    public static func isValidPattern(_ pattern: String) -> Bool {
        !pattern.isEmpty && pattern.utf8.count <= 200 && pattern.utf8.allSatisfy { isNameByte($0) || $0 == UInt8(ascii: "*") }
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// SQLite GLOB semantics restricted to `*` (the only wildcard a valid pattern has).
    static func glob(_ pattern: String, matches text: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return pattern == text }
        guard text.hasPrefix(parts[0]) else { return false }
        var rest = text.dropFirst(parts[0].count)
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        let last = parts[parts.count - 1]
        return rest.count >= last.count && rest.hasSuffix(last)
    }
}
