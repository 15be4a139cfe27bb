import Foundation

/// The body a Slack-compatible incoming webhook takes, `{"text": "..."}`, for an endpoint with
/// `body_format: slack`: operational events as one sentence each, any other event as its type,
/// id and (shortened) body.
package enum SlackMessage {
    package static func body(eventType: String, eventID: String, body: [UInt8]) -> [UInt8] {
        Array(JSONValue.object([("text", .string(text(eventType: eventType, eventID: eventID, body: body)))]).text.utf8)
    }

    static func text(eventType: String, eventID: String, body: [UInt8]) -> String {
        var fields: [String: JSONValue] = [:]
        if case .object(let members)? = JSONValue(parsing: body) { fields = Dictionary(members, uniquingKeysWith: { _, last in last }) }
        func field(_ key: String) -> String {
            switch fields[key] {
            case .string(let text)?: return text
            case .integer(let number)?: return String(number)
            case .number(let number)?: return String(number)
            default: return "?"
            }
        }
        let endpoint = "endpoint `\(field("endpoint_id"))` (tenant `\(field("tenant_id"))`)"
        switch eventType {
        case "operations.endpoint.circuit_opened":
            return ":warning: The circuit of \(endpoint) opened after \(field("consecutive_failures")) failures in a row; its deliveries wait until \(field("circuit_open_until")). Last error: \(field("last_error"))"
        case "operations.endpoint.circuit_closed":
            return ":white_check_mark: The circuit of \(endpoint) closed: a delivery succeeded and the others resume."
        case "operations.endpoint.disabled":
            return ":no_entry: The dispatcher disabled \(endpoint): \(field("reason"))"
        case "operations.endpoint.recovered":
            return ":white_check_mark: \(endpoint.prefix(1).uppercased() + endpoint.dropFirst()) is enabled again."
        case "operations.delivery.exhausted":
            return ":x: Delivery \(field("delivery_id")) of \(field("event_type")) event \(field("event_id")) to \(endpoint) failed for good after \(field("attempts")) attempts (last status \(field("last_status")); \(field("last_error")))."
        default:
            let text = String(decoding: body, as: UTF8.self)
            return "\(eventType) event \(eventID): " + (text.count > 1_500 ? String(text.prefix(1_500)) + "…" : text)
        }
    }
}
