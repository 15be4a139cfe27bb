import Foundation

/// What a request header may hold, for every path that sets one (config, CLI, dashboard forms,
/// library `Endpoint`, and the request itself): a CR or LF in a value would end the header and
/// start another (or the body), getting round the reserved names and the audit log's redaction.
package enum HeaderRules {
    /// Header names the dispatcher sets itself; an endpoint may not override them.
    package static let reservedNames: Set<String> = [
        "content-length", "host", "transfer-encoding", "connection", "expect",
        "webhook-id", "webhook-timestamp", "webhook-signature", "traceparent", "tracestate",
    ]

    /// Why `name` cannot be a header name, or nil: RFC 9110 token characters only.
    package static func problem(withName name: String) -> String? {
        guard isValidName(name) else { return "is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)" }
        return nil
    }

    /// Whether `name: value` may go on the wire as it is: neither `problem(withName:)` nor
    /// `problem(withValue:)` has anything to say. The last check of every header of every
    /// request, so it scans the bytes in place, names against a table.
    package static func isSendable(name: String, value: String) -> Bool {
        isValidName(name) && firstControl(in: value) == nil
    }

    private static func isValidName(_ name: String) -> Bool {
        var name = name
        return tokenBytes.withUnsafeBufferPointer { isToken in
            name.withUTF8 { bytes in
                guard !bytes.isEmpty else { return false }
                for byte in bytes where !isToken[Int(byte)] { return false }
                return true
            }
        }
    }

    /// `isTokenByte` for every byte value.
    private static let tokenBytes: [Bool] = (0..<256).map { isTokenByte(UInt8($0)) }

    /// Why `value` cannot be a header value, or nil: no control characters but tab (CR, LF and
    /// NUL above all). Judged on bytes: Swift reads "\r\n" as one Character, not as a CR.
    package static func problem(withValue value: String) -> String? {
        guard let byte = firstControl(in: value) else { return nil }
        let name = byte == 0x0D ? "a carriage return" : byte == 0x0A ? "a line break" : byte == 0 ? "a NUL" : String(format: "the control character 0x%02X", byte)
        return "header values may not contain \(name)"
    }

    /// The first control character of `value` (`isControl`), scanned in place: one scan for
    /// `problem(withValue:)` and `isSendable`.
    private static func firstControl(in value: String) -> UInt8? {
        var value = value
        return value.withUTF8 { bytes in
            for byte in bytes where isControl(byte) { return byte }
            return nil
        }
    }

    /// Why an endpoint may not configure the header `name: value`, or nil: a bad name, a name
    /// the dispatcher sets itself, or a bad value. One rule for the config decoder and for
    /// endpoints stored by other means.
    package static func problem(withConfigured name: String, value: String) -> String? {
        if let problem = problem(withName: name) { return problem }
        if reservedNames.contains(name.lowercased()) { return "is set by the dispatcher and cannot be configured" }
        return problem(withValue: value)
    }

    /// True for C0 controls other than tab, and DEL.
    package static func isControl(_ byte: UInt8) -> Bool { (byte < 0x20 && byte != 0x09) || byte == 0x7F }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
