import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

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
            Console.out(json: JSONRepresentation.line(["deliveries": result.deliveries, "attempts": result.attempts,
                                                 "events": result.events, "dry_run": dryRun]) + "\n")
        } else {
            Console.out("\(dryRun ? "would delete" : "deleted") \(result.deliveries) deliveries, \(result.attempts) attempts, \(result.events) events\n")
        }
    }
}
