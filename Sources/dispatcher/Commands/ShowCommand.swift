import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// `dispatcher show ID`: an event with every delivery and every attempt, as recorded.
struct ShowCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "show",
        abstract: "Show an event's body and every delivery attempt, request and response.",
        positionals: "ID",
        options: [OptionSpec(name: "json", value: nil, help: "Print the whole record as one JSON object.")] + StoreSelection.options,
        discussion: "ID is a delivery id (a number, as `log` prints it), an event id, or enough of its start (8+ characters) to name one event; ids made close together share their first characters, the time.")

    let selection: StoreSelection
    let id: String
    let json: Bool

    init(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.count == 1 else { throw UsageError("give exactly one delivery or event id") }
        id = arguments.positionals[0]
        guard Int64(id) != nil || Self.isEventIDPrefix(id) else {
            throw UsageError("'\(id)' is neither a delivery id (a number) nor an event id (a UUID or its first 8+ characters)")
        }
        json = arguments.flag("json")
        selection = try StoreSelection(arguments)
    }

    /// An event id or its first eight or more characters (hex digits and dashes).
    static func isEventIDPrefix(_ id: String) -> Bool {
        id.count >= 8 && id.allSatisfy { $0.isHexDigit || $0 == "-" }
    }

    func run() throws {
        let store = try selection.openStore()
        // Eight or more digits may be either: a delivery id, else the start of an event id.
        var record = try Int64(id).flatMap { try store.eventRecord(deliveryID: $0) }
        if record == nil && Self.isEventIDPrefix(id) {
            let matches = try store.eventIDs(withPrefix: id, limit: 2)
            guard matches.count < 2 else { throw UsageError("'\(id)' matches more than one event; give more characters") }
            record = try matches.first.flatMap { try store.eventRecord(eventID: $0) }
        }
        guard let record else { throw DispatcherError.notFound("no delivery or event '\(id)'") }
        if json { Console.out(json: JSONRepresentation.line(JSONRepresentation.eventRecord(record)) + "\n") } else { Console.out(Self.render(record)) }
    }

    static func render(_ record: EventRecord) -> TerminalText {
        let event = record.event
        var text: TerminalText = "Event \(event.id)\n"
        text += "  type      \(event.type)\n  tenant    \(event.tenantID)\n  created   \(TimeText.iso8601(event.createdAt))\n"
        if let trace = event.traceContext {
            text += "  trace     \(trace.traceID) (traceparent \(trace.traceparent)\(trace.tracestate.map { ", tracestate \($0)" } ?? ""))\n"
        }
        text += "  body      \(event.body.count) bytes\n"
        text += "\(indent(prettyJSON(event.body), by: 4))\n"
        if record.deliveries.isEmpty { text += "\nNo deliveries: no endpoint of the tenant accepted this type.\n" }
        for entry in record.deliveries {
            let delivery = entry.delivery
            text += "\nDelivery \(delivery.id) to \(delivery.endpointID): \(delivery.status.rawValue), \(delivery.attemptCount) attempt(s)"
            if let next = delivery.nextAttemptAt, delivery.status == .pending { text += ", next \(TimeText.iso8601(next))" }
            text += "\n"
            for attempt in entry.attempts {
                text += "\n  Attempt \(attempt.number)  \(TimeText.iso8601(attempt.startedAt))  \(TimeText.milliseconds(microseconds: attempt.durationMicroseconds))  POST \(attempt.url)\n"
                switch attempt.verdict {
                case .succeeded: text += "    verdict   succeeded\n"
                case .failed: text += "    verdict   failed (no more retries)\n"
                case .retryScheduled(let at): text += "    verdict   retry scheduled at \(TimeText.iso8601(at))\n"
                }
                if let kind = attempt.errorKind { text += "    error     \(kind): \(attempt.errorMessage ?? "")\n" }
                text += "    request headers\n"
                for header in attempt.requestHeaders { text += "      \(header.name): \(header.value)\n" }
                if let status = attempt.responseStatus {
                    text += "    response  HTTP \(status)\n"
                    for header in attempt.responseHeaders ?? [] { text += "      \(header.name): \(header.value)\n" }
                    let body = attempt.responseBody ?? []
                    text += "    response body (\(body.count) bytes\(attempt.responseTruncated ? ", truncated" : ""))\n"
                    if !body.isEmpty {
                        let shown = String(validating: body, as: UTF8.self) ?? "<\(body.count) bytes of binary data>"
                        text += "\(indent(shown, by: 6))\n"
                    }
                } else {
                    text += "    response  none\n"
                }
            }
        }
        return text
    }

    static func prettyJSON(_ bytes: [UInt8]) -> String {
        guard let value = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) else {
            return String(decoding: bytes, as: UTF8.self)
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func indent(_ text: String, by spaces: Int) -> String {
        let pad = String(repeating: " ", count: spaces)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { pad + $0 }.joined(separator: "\n")
    }
}
