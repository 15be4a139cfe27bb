import Foundation

/// One header line, in the order it was sent or received. Names keep the sender's case.
public struct HeaderField: Sendable, Equatable, Codable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// Header names compare without regard to ASCII case (RFC 9110), byte by byte: over the
    /// strings' own UTF-8 storage when both have it (a server looks up several headers a
    /// request, and iterating two `UTF8View`s in step cost more than the comparison).
    public func hasName(_ other: String) -> Bool {
        guard name.utf8.count == other.utf8.count else { return false }
        let compared = name.utf8.withContiguousStorageIfAvailable { mine in
            other.utf8.withContiguousStorageIfAvailable { theirs in
                zip(mine, theirs).allSatisfy(Self.sameIgnoringASCIICase)
            }
        }
        return (compared ?? nil) ?? zip(name.utf8, other.utf8).allSatisfy(Self.sameIgnoringASCIICase)
    }

    /// Two bytes of a name, equal or the same ASCII letter in either case.
    package static func sameIgnoringASCIICase(_ a: UInt8, _ b: UInt8) -> Bool {
        a == b || (a | 0x20 == b | 0x20 && (a | 0x20) >= 0x61 && (a | 0x20) <= 0x7A)
    }
}

/// Why an attempt produced no acceptable response. A struct with static members rather than
/// an enum, so adding a kind never breaks a caller's `switch`.
public struct AttemptErrorKind: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The connect or total timeout ran out.
    public static let timeout = AttemptErrorKind(rawValue: "timeout")
    /// The TCP connection was refused or could not be made.
    public static let connect = AttemptErrorKind(rawValue: "connect")
    /// The host name did not resolve.
    public static let dns = AttemptErrorKind(rawValue: "dns")
    /// TLS handshake or certificate failure.
    public static let tls = AttemptErrorKind(rawValue: "tls")
    /// A response arrived, but the success rule rejected it (status or content type).
    public static let http = AttemptErrorKind(rawValue: "http")
    /// The connection broke while sending or receiving (reset, closed without a response).
    public static let network = AttemptErrorKind(rawValue: "network")
    /// The peer did not speak valid HTTP.
    public static let `protocol` = AttemptErrorKind(rawValue: "protocol")
    /// Refused before connecting by the destination policy (scheme or address).
    public static let blocked = AttemptErrorKind(rawValue: "blocked")
    /// No credentials to send: the OAuth token endpoint failed, or a secret is missing.
    public static let auth = AttemptErrorKind(rawValue: "auth")
    /// Anything libcurl reports that has no kind above.
    public static let other = AttemptErrorKind(rawValue: "other")

    public var description: String { rawValue }
}

/// What became of a delivery after an attempt.
public enum AttemptVerdict: Sendable, Equatable {
    case succeeded
    case retryScheduled(at: Date)
    case failed

    package var storedName: String {
        switch self {
        case .succeeded: return "succeeded"
        case .retryScheduled: return "retry"
        case .failed: return "failed"
        }
    }
}

/// One HTTP try of a delivery, recorded whole: the audit log's row.
public struct Attempt: Sendable, Equatable {
    public var number: Int
    public var startedAt: Date
    public var durationMicroseconds: Int64
    public var url: String
    /// As sent, with credentials replaced by `***`.
    public var requestHeaders: [HeaderField]
    public var responseStatus: Int?
    public var responseHeaders: [HeaderField]?
    /// Up to the response-body cap; `responseTruncated` says whether more was sent.
    public var responseBody: [UInt8]?
    public var responseTruncated: Bool
    public var errorKind: AttemptErrorKind?
    public var errorMessage: String?
    public var verdict: AttemptVerdict

    public init(number: Int, startedAt: Date, durationMicroseconds: Int64, url: String, requestHeaders: [HeaderField],
                responseStatus: Int?, responseHeaders: [HeaderField]?, responseBody: [UInt8]?, responseTruncated: Bool,
                errorKind: AttemptErrorKind?, errorMessage: String?, verdict: AttemptVerdict) {
        self.number = number
        self.startedAt = startedAt
        self.durationMicroseconds = durationMicroseconds
        self.url = url
        self.requestHeaders = requestHeaders
        self.responseStatus = responseStatus
        self.responseHeaders = responseHeaders
        self.responseBody = responseBody
        self.responseTruncated = responseTruncated
        self.errorKind = errorKind
        self.errorMessage = errorMessage
        self.verdict = verdict
    }
}
