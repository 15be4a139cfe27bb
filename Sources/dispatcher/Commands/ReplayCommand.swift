import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// `dispatcher replay --status failed ...`: re-queue every matching delivery in one statement.
struct ReplayCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "replay",
        abstract: "Re-queue every delivery matching a filter (e.g. all failed ones after an outage).",
        options: [
            OptionSpec(name: "status", value: "STATUS", help: "failed (default), cancelled or succeeded."),
            OptionSpec(name: "tenant", value: "ID", help: "Only this tenant's deliveries."),
            OptionSpec(name: "endpoint", value: "ID", help: "Only deliveries to this endpoint."),
            OptionSpec(name: "type", value: "PATTERN", help: "Only event types matching this glob."),
            OptionSpec(name: "since", value: "WHEN", help: "Only deliveries created since: 15m, 2h, 7d, or ISO-8601."),
            OptionSpec(name: "dry-run", value: nil, help: "Count, change nothing."),
            OptionSpec(name: "json", value: nil, help: "Print {\"requeued\": N, \"dry_run\": B}."),
        ] + StoreSelection.options,
        discussion: "One UPDATE statement re-queues them all, however many; serve's progress line shows them drain.")

    let filter: ReplayFilter
    let dryRun: Bool
    let json: Bool
    let selection: StoreSelection

    init(_ arguments: ParsedArguments) throws {
        var filter = ReplayFilter()
        if let status = arguments.value("status") {
            guard let parsed = DeliveryStatus(rawValue: status), parsed.isFinal else {
                throw UsageError("--status must be failed, cancelled or succeeded, got '\(status)'")
            }
            filter.status = parsed
        }
        filter.tenantID = arguments.value("tenant")
        filter.endpointID = arguments.value("endpoint")
        if let pattern = arguments.value("type") {
            guard EventType.isValidPattern(pattern) else { throw UsageError("--type '\(pattern)' is not an event type or pattern") }
            filter.typePattern = pattern
        }
        filter.since = try arguments.value("since").map { try TimeText.parseSince($0) }
        guard arguments.positionals.isEmpty else { throw UsageError("unexpected argument '\(arguments.positionals[0])'") }
        self.filter = filter
        dryRun = arguments.flag("dry-run")
        json = arguments.flag("json")
        selection = try StoreSelection(arguments)
    }

    func run() throws {
        let count = try selection.openStore().replay(filter, dryRun: dryRun)
        if json {
            Console.out(json: JSONRepresentation.line(["requeued": count, "dry_run": dryRun]) + "\n")
        } else {
            Console.out("\(dryRun ? "would re-queue" : "re-queued") \(count) \(filter.status.rawValue) deliveries\n")
        }
    }
}
