import Foundation

/// A producer's W3C Trace Context (`traceparent`, and `tracestate` when it has one), carried by
/// an event so each attempt continues the producer's trace: the receiver gets the same trace id
/// under a new span id, and its trace links to the producer's.
public struct TraceContext: Sendable, Equatable {
    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase.
    public let traceparent: String
    /// Vendor entries (`congo=t61rcWkgMzE,rojo=00f067aa0ba902b7`), passed on unchanged.
    public let tracestate: String?

    /// Throws when `traceparent` is not a W3C traceparent, or `tracestate` is not a usable one.
    public init(traceparent: String, tracestate: String? = nil) throws(DispatcherError) {
        if let problem = Self.problem(withTraceparent: traceparent) {
            throw .invalidEvent(type: "", field: "traceparent", message: problem)
        }
        if let tracestate, let problem = Self.problem(withTracestate: tracestate) {
            throw .invalidEvent(type: "", field: "tracestate", message: problem)
        }
        self.traceparent = traceparent
        self.tracestate = tracestate?.isEmpty == true ? nil : tracestate
    }

    /// Why `value` is not a traceparent this dispatcher can continue, or nil.
    package static func problem(withTraceparent value: String) -> String? {
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        func isHex(_ part: Substring, _ count: Int) -> Bool {
            part.utf8.count == count && part.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        guard parts.count == 4, isHex(parts[0], 2), isHex(parts[1], 32), isHex(parts[2], 16), isHex(parts[3], 2) else {
            return "must be 00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex> (W3C Trace Context)"
        }
        guard parts[0] == "00" else { return "version \(parts[0]) is not 00" }
        guard parts[1].contains(where: { $0 != "0" }), parts[2].contains(where: { $0 != "0" }) else {
            return "the trace id and parent id may not be all zeros"
        }
        return nil
    }

    /// Why `value` cannot be passed on as a tracestate header, or nil: at most 512 characters of
    /// printable ASCII (W3C's limit), no control characters.
    package static func problem(withTracestate value: String) -> String? {
        guard value.utf8.count <= 512 else { return "is longer than 512 characters" }
        guard value.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else { return "may hold printable ASCII only" }
        return nil
    }

    /// The trace id (32 hex).
    public var traceID: String { String(traceparent.split(separator: "-")[1]) }

    /// The traceparent one attempt sends: the producer's trace id and flags under a new span id,
    /// so each attempt is a span of its own in the producer's trace.
    package func attemptTraceparent(spanID: [UInt8]) -> String {
        let parts = traceparent.split(separator: "-")
        return "00-\(parts[1])-\(Hex.lowercase(spanID))-\(parts[3])"
    }
}
