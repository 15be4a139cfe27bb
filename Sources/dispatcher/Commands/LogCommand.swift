import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// `dispatcher log`: the delivery log, newest first.
struct LogCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "log",
        abstract: "List deliveries, newest first.",
        options: [
            OptionSpec(name: "tenant", value: "ID", help: "Only this tenant's deliveries."),
            OptionSpec(name: "endpoint", value: "ID", help: "Only deliveries to this endpoint."),
            OptionSpec(name: "type", value: "PATTERN", help: "Only event types matching this glob (visit.*)."),
            OptionSpec(name: "status", value: "STATUS", help: "pending, delivering, succeeded, failed or cancelled."),
            OptionSpec(name: "since", value: "WHEN", help: "Created since: 15m, 2h, 7d, or an ISO-8601 time."),
            OptionSpec(name: "until", value: "WHEN", help: "Created before: 15m (ago), 2h, 7d, or an ISO-8601 time."),
            OptionSpec(name: "before", value: "ID", help: "Only deliveries older than this id: the next page after a page's last row."),
            OptionSpec(name: "limit", value: "N", help: "At most N rows (default 50)."),
            OptionSpec(name: "json", value: nil, help: "One JSON object per line, snake_case keys."),
        ] + StoreSelection.options)

    let selection: StoreSelection
    let filter: DeliveryFilter
    let json: Bool

    init(_ arguments: ParsedArguments) throws {
        var filter = DeliveryFilter()
        filter.tenantID = arguments.value("tenant")
        filter.endpointID = arguments.value("endpoint")
        if let pattern = arguments.value("type") {
            guard EventType.isValidPattern(pattern) else { throw UsageError("--type '\(pattern)' is not an event type or pattern") }
            filter.typePattern = pattern
        }
        if let status = arguments.value("status") {
            guard let parsed = DeliveryStatus(rawValue: status) else {
                throw UsageError("--status must be one of \(DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", ")), got '\(status)'")
            }
            filter.status = parsed
        }
        filter.since = try arguments.value("since").map { try TimeText.parseSince($0) }
        filter.until = try arguments.value("until").map { try TimeText.parseSince($0) }
        filter.beforeID = try arguments.integer("before", in: 1...Int.max).map(Int64.init)
        filter.limit = try arguments.integer("limit", in: 1...100_000) ?? 50
        guard arguments.positionals.isEmpty else { throw UsageError("unexpected argument '\(arguments.positionals[0])'") }
        self.filter = filter
        json = arguments.flag("json")
        selection = try StoreSelection(arguments)
    }

    func run() throws {
        let deliveries = try selection.openStore().deliveries(matching: filter)
        if json {
            Console.out(json: deliveries.map { JSONRepresentation.line(JSONRepresentation.delivery($0)) + "\n" }.joined())
            return
        }
        guard !deliveries.isEmpty else {
            Console.error("no deliveries match\n")
            return
        }
        var table = Table(["ID", "EVENT", "TENANT", "ENDPOINT", "TYPE", "STATUS", "ATTEMPTS", "HTTP", "NEXT", "UPDATED", "LAST ERROR"])
        let now = Date()
        for delivery in deliveries {
            let next = delivery.nextAttemptAt.map { TimeText.relative($0, now: now) } ?? "-"
            let cells: [TerminalText] = [
                "\(delivery.id)", "\(delivery.eventID)", "\(delivery.tenantID)", "\(delivery.endpointID)",
                "\(delivery.eventType)", Console.status(delivery.status), "\(delivery.attemptCount)",
                "\(delivery.lastHTTPStatus.map(String.init) ?? "-")", "\(next)",
                "\(TimeText.relative(delivery.updatedAt, now: now))", "\(delivery.lastError.map { String($0.prefix(60)) } ?? "")",
            ]
            table.add(cells)
        }
        Console.out(table.render())
    }
}
