import Foundation
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

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
