import Foundation

/// One NDJSON line of `dispatcher enqueue --ndjson`:
/// `{"tenant": "...", "type": "...", "id": "<uuid>"?, "ordering_key": "..."?, "traceparent": "..."?,
/// "tracestate": "..."?, "data": {...}}`.
package enum NDJSONEvent {
    /// The members a line may have.
    private enum Key: Int, CaseIterable {
        case tenant, type, id, orderingKey, traceparent, tracestate, data

        init?(name: String) {
            switch name {
            case "tenant": self = .tenant
            case "type": self = .type
            case "id": self = .id
            case "ordering_key": self = .orderingKey
            case "traceparent": self = .traceparent
            case "tracestate": self = .tracestate
            case "data": self = .data
            default: return nil
            }
        }
    }
    private static let keyCount = Key.allCases.count

    /// Parses a line; the event body is the line's `data` value, byte for byte. The line is read
    /// once, by the byte-level validator; a later member of the same name wins, as in most
    /// parsers.
    package static func parse(_ line: [UInt8]) throws -> NewEvent {
        let members: [(key: String, value: Range<Int>)]
        do {
            members = try JSONValidation.topLevelMembers(line)
        } catch DispatcherError.invalidJSON(let reason) {
            throw DispatcherError.invalidJSON("the line is not a JSON object: \(reason)")
        }
        // By the key's place in `Key`: a dictionary cost a hash of every key, twice.
        var values = [Range<Int>?](repeating: nil, count: keyCount)
        for member in members {
            guard let key = Key(name: member.key) else {
                throw DispatcherError.invalidJSON("unknown key '\(member.key)' (expected tenant, type, id, ordering_key, traceparent, tracestate, data)")
            }
            values[key.rawValue] = member.value
        }
        func range(_ key: Key) -> Range<Int>? { values[key.rawValue] }
        /// A member's text (a string's decoded, anything else's as written); nil when absent or null.
        func member(_ key: Key) -> (text: String, isString: Bool)? {
            guard let range = range(key) else { return nil }
            guard line[range.lowerBound] == UInt8(ascii: "\"") else {
                let raw = String(decoding: line[range], as: UTF8.self)
                return raw == "null" ? nil : (raw, false)
            }
            return (line.withUnsafeBufferPointer { JSONValidation.decodeString($0, range) }, true)
        }
        guard let tenant = member(.tenant), tenant.isString else { throw DispatcherError.invalidJSON("\"tenant\" (a string) is required") }
        guard let type = member(.type), type.isString else { throw DispatcherError.invalidJSON("\"type\" (a string) is required") }
        var id: UUID?
        if let given = member(.id) {
            guard given.isString, let uuid = UUID(uuidString: given.text) else { throw DispatcherError.invalidEventID(given.text) }
            id = uuid
        }
        var orderingKey: String?
        if let given = member(.orderingKey) {
            guard given.isString else { throw DispatcherError.invalidJSON("\"ordering_key\" must be a string") }
            orderingKey = given.text
        }
        var traceContext: TraceContext?
        if let traceparent = member(.traceparent) {
            guard traceparent.isString else { throw DispatcherError.invalidJSON("\"traceparent\" must be a string") }
            let tracestate = member(.tracestate)
            if let tracestate, !tracestate.isString { throw DispatcherError.invalidJSON("\"tracestate\" must be a string") }
            traceContext = try TraceContext(traceparent: traceparent.text, tracestate: tracestate?.text)
        } else if member(.tracestate) != nil {
            throw DispatcherError.invalidJSON("\"tracestate\" goes with \"traceparent\"")
        }
        guard let data = range(.data), line[data.lowerBound] == UInt8(ascii: "{") else {
            throw DispatcherError.invalidJSON("\"data\" (a JSON object) is required")
        }
        return NewEvent(tenantID: tenant.text, type: type.text, body: Array(line[data]), id: id, orderingKey: orderingKey,
                        traceContext: traceContext)
    }
}
