import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// Delivery ids (numbers) and event ids (UUIDs) given on the command line.
struct DeliveryReferences {
    var deliveryIDs: [Int64] = []
    var eventIDs: [String] = []

    init(_ arguments: [String]) throws {
        guard !arguments.isEmpty else { throw UsageError("give at least one delivery id or event id") }
        for argument in arguments {
            if let id = Int64(argument), id > 0 {
                deliveryIDs.append(id)
            } else if UUID(uuidString: argument) != nil {
                eventIDs.append(argument.lowercased())
            } else {
                throw UsageError("'\(argument)' is neither a delivery id (a number) nor an event id (a UUID)")
            }
        }
    }
}

/// What `redeliver` and `cancel` share: delivery or event ids, `--json` and the store. They
/// differ only in the store call and the words of the report.
struct DeliveryIDsInvocation {
    static let options = [OptionSpec(name: "json", value: nil, help: "Print the count as a JSON object.")] + StoreSelection.options

    let references: DeliveryReferences
    let json: Bool
    let selection: StoreSelection

    init(_ arguments: ParsedArguments) throws {
        references = try DeliveryReferences(arguments.positionals)
        json = arguments.flag("json")
        selection = try StoreSelection(arguments)
    }

    /// Prints `{"key": count}` or "<verb> N deliveries"; none at all is a runtime failure.
    func report(_ count: Int, key: String, verb: String, whenNone: String) throws {
        Console.out(json ? JSONRepresentation.line([key: count]) + "\n" : "\(verb) \(count) deliveries\n")
        if count == 0 { throw DispatcherError.notFound(whenNone) }
    }
}

/// `dispatcher redeliver ID...`: a new run of attempts for finished deliveries.
struct RedeliverCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "redeliver",
        abstract: "Re-queue deliveries (by delivery id, or all of an event's) for a new run of attempts.",
        positionals: "ID...",
        options: DeliveryIDsInvocation.options,
        discussion: """
            The delivery keeps its id, its event id (webhook-id) and its attempt history; its retry
            policy starts over. Deliveries in flight are left alone.
            """)

    let invocation: DeliveryIDsInvocation

    init(_ arguments: ParsedArguments) throws { invocation = try DeliveryIDsInvocation(arguments) }

    func run() throws {
        let ids = invocation.references
        let count = try invocation.selection.openStore().redeliver(deliveryIDs: ids.deliveryIDs, eventIDs: ids.eventIDs)
        try invocation.report(count, key: "requeued", verb: "re-queued", whenNone: "no finished or pending delivery matches")
    }
}

/// `dispatcher cancel ID...`: pending deliveries become cancelled.
struct CancelCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "cancel",
        abstract: "Cancel pending deliveries (by delivery id, or all of an event's).",
        positionals: "ID...",
        options: DeliveryIDsInvocation.options,
        discussion: "Only pending deliveries are cancelled; the log records who cancelled them and when.")

    let invocation: DeliveryIDsInvocation

    init(_ arguments: ParsedArguments) throws { invocation = try DeliveryIDsInvocation(arguments) }

    func run() throws {
        let ids = invocation.references
        let count = try invocation.selection.openStore().cancel(deliveryIDs: ids.deliveryIDs, eventIDs: ids.eventIDs)
        try invocation.report(count, key: "cancelled", verb: "cancelled", whenNone: "no pending delivery matches")
    }
}

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
            Console.out(JSONRepresentation.line(["requeued": count, "dry_run": dryRun]) + "\n")
        } else {
            Console.out(dryRun ? "would re-queue \(count) \(filter.status.rawValue) deliveries\n" : "re-queued \(count) \(filter.status.rawValue) deliveries\n")
        }
    }
}

/// `dispatcher prune --older-than 30d`: retention by hand.
struct PruneCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "prune",
        abstract: "Delete finished deliveries, their attempts and orphaned events older than an age.",
        options: [
            OptionSpec(name: "older-than", value: "AGE", help: "Required: 30d, 12h, ... (finished and last updated before then)."),
            OptionSpec(name: "dry-run", value: nil, help: "Count, delete nothing."),
            OptionSpec(name: "json", value: nil, help: "Print the counts as JSON."),
        ] + StoreSelection.options,
        discussion: "Pending and delivering deliveries are never deleted. retention_days in the config prunes during serve.")

    let cutoff: Date
    let dryRun: Bool
    let json: Bool
    let selection: StoreSelection

    init(_ arguments: ParsedArguments) throws {
        guard let age = arguments.value("older-than") else { throw UsageError("--older-than is required (e.g. 30d)") }
        guard let unit = age.last, "smhdw".contains(unit) else { throw UsageError("--older-than must be an age like 30d or 12h, got '\(age)'") }
        cutoff = try TimeText.parseSince(age)
        dryRun = arguments.flag("dry-run")
        json = arguments.flag("json")
        selection = try StoreSelection(arguments)
    }

    func run() throws {
        let result = try selection.openStore().prune(olderThan: cutoff, dryRun: dryRun)
        if json {
            Console.out(JSONRepresentation.line(["deliveries": result.deliveries, "attempts": result.attempts,
                                                 "events": result.events, "dry_run": dryRun]) + "\n")
        } else {
            Console.out("\(dryRun ? "would delete" : "deleted") \(result.deliveries) deliveries, \(result.attempts) attempts, \(result.events) events\n")
        }
    }
}

/// `dispatcher stats`: what the queue and the receivers are doing.
struct StatsCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "stats",
        abstract: "Counts by status, per tenant and endpoint; oldest pending; attempts, success rate and latency over the last hour.",
        options: [OptionSpec(name: "json", value: nil, help: "One JSON object.")] + StoreSelection.options)

    let json: Bool
    let selection: StoreSelection

    init(_ arguments: ParsedArguments) throws {
        json = arguments.flag("json")
        selection = try StoreSelection(arguments)
    }

    func run() throws {
        let stats = try selection.openStore().stats(windowSeconds: 3_600)
        if json {
            Console.out(JSONRepresentation.line(JSONRepresentation.stats(stats)) + "\n")
            return
        }
        var text = stats.summaryLine + "\n\n"
        var table = Table(["TENANT / ENDPOINT"] + DeliveryStatus.allCases.map { $0.rawValue.uppercased() })
        for (name, counts) in stats.byTenant.sorted(by: { $0.key < $1.key }) {
            table.add([name] + DeliveryStatus.allCases.map { String(counts[$0.rawValue] ?? 0) })
            for endpoint in stats.endpoints where endpoint.endpoint.tenantID == name {
                let counts = stats.byEndpoint[endpoint.endpoint.id] ?? [:]
                table.add(["  " + endpoint.endpoint.id] + DeliveryStatus.allCases.map { String(counts[$0.rawValue] ?? 0) })
            }
        }
        text += table.render()
        Console.out(text)
    }
}
