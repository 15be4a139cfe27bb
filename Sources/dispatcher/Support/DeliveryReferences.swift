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
        if json { Console.out(json: JSONRepresentation.line([key: count]) + "\n") } else { Console.out("\(verb) \(count) deliveries\n") }
        if count == 0 { throw DispatcherError.notFound(whenNone) }
    }
}
