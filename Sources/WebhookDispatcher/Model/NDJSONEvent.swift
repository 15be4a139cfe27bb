import Foundation

/// One NDJSON line of `dispatcher enqueue --ndjson`:
/// `{"tenant": "...", "type": "...", "id": "<uuid>"?, "ordering_key": "..."?, "data": {...}}`.
public enum NDJSONEvent {
    /// Parses a line; the event body is the line's `data` value, byte for byte.
    public static func parse(_ line: [UInt8]) throws -> NewEvent {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
            throw DispatcherError.invalidJSON("the line is not a JSON object")
        }
        let known: Set<String> = ["tenant", "type", "id", "ordering_key", "data"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw DispatcherError.invalidJSON("unknown key '\(unknown)' (expected tenant, type, id, ordering_key, data)")
        }
        guard let tenant = object["tenant"] as? String else { throw DispatcherError.invalidJSON("\"tenant\" (a string) is required") }
        guard let type = object["type"] as? String else { throw DispatcherError.invalidJSON("\"type\" (a string) is required") }
        var id: UUID?
        if let text = object["id"] {
            guard let string = text as? String, let uuid = UUID(uuidString: string) else { throw DispatcherError.invalidEventID("\(text)") }
            id = uuid
        }
        guard object["data"] is [String: Any], let range = JSONSpan.valueRange(of: "data", in: line) else {
            throw DispatcherError.invalidJSON("\"data\" (a JSON object) is required")
        }
        return NewEvent(tenantID: tenant, type: type, body: Array(line[range]), id: id, orderingKey: object["ordering_key"] as? String)
    }
}
