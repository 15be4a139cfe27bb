import Foundation

/// One NDJSON line of `dispatcher enqueue --ndjson`:
/// `{"tenant": "...", "type": "...", "id": "<uuid>"?, "ordering_key": "..."?, "traceparent": "..."?,
/// "tracestate": "..."?, "data": {...}}`.
package enum NDJSONEvent {
    static let keys: Set<String> = ["tenant", "type", "id", "ordering_key", "traceparent", "tracestate", "data"]

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
        var values: [String: Range<Int>] = [:]
        for member in members {
            guard keys.contains(member.key) else {
                throw DispatcherError.invalidJSON("unknown key '\(member.key)' (expected tenant, type, id, ordering_key, traceparent, tracestate, data)")
            }
            values[member.key] = member.value
        }
        /// A member's text (a string's decoded, anything else's as written); nil when absent or null.
        func member(_ key: String) -> (text: String, isString: Bool)? {
            guard let range = values[key] else { return nil }
            guard line[range.lowerBound] == UInt8(ascii: "\"") else {
                let raw = String(decoding: line[range], as: UTF8.self)
                return raw == "null" ? nil : (raw, false)
            }
            return (line.withUnsafeBufferPointer { JSONValidation.decodeString($0, range) }, true)
        }
        guard let tenant = member("tenant"), tenant.isString else { throw DispatcherError.invalidJSON("\"tenant\" (a string) is required") }
        guard let type = member("type"), type.isString else { throw DispatcherError.invalidJSON("\"type\" (a string) is required") }
        var id: UUID?
        if let given = member("id") {
            guard given.isString, let uuid = UUID(uuidString: given.text) else { throw DispatcherError.invalidEventID(given.text) }
            id = uuid
        }
        var orderingKey: String?
        if let given = member("ordering_key") {
            guard given.isString else { throw DispatcherError.invalidJSON("\"ordering_key\" must be a string") }
            orderingKey = given.text
        }
        var traceContext: TraceContext?
        if let traceparent = member("traceparent") {
            guard traceparent.isString else { throw DispatcherError.invalidJSON("\"traceparent\" must be a string") }
            let tracestate = member("tracestate")
            if let tracestate, !tracestate.isString { throw DispatcherError.invalidJSON("\"tracestate\" must be a string") }
            traceContext = try TraceContext(traceparent: traceparent.text, tracestate: tracestate?.text)
        } else if member("tracestate") != nil {
            throw DispatcherError.invalidJSON("\"tracestate\" goes with \"traceparent\"")
        }
        guard let data = values["data"], line[data.lowerBound] == UInt8(ascii: "{") else {
            throw DispatcherError.invalidJSON("\"data\" (a JSON object) is required")
        }
        return NewEvent(tenantID: tenant.text, type: type.text, body: Array(line[data]), id: id, orderingKey: orderingKey,
                        traceContext: traceContext)
    }
}
