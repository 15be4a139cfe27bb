import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

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
