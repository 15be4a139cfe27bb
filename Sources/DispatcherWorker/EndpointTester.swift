import DispatcherDelivery
import DispatcherModel
import DispatcherStore
import Foundation

/// Sends a ping to one endpoint now, through the same request path as any delivery (headers,
/// token, signature, destination guard), and records it in the audit log like any attempt:
/// the seeds' "debugging webhook call".
///
/// The ping is an event of type `dispatcher.ping` whose body is
/// `{"type":"dispatcher.ping","endpoint_id":"<id>","sent_at":"<ISO-8601>"}`. It is not retried.
package struct EndpointTester {
    let store: any DeliveryQueue & EndpointDirectory & DeliveryLog
    let configuration: DeliveryServiceConfiguration

    package init(store: any DeliveryQueue & EndpointDirectory & DeliveryLog, configuration: DeliveryServiceConfiguration) {
        self.store = store
        self.configuration = configuration
    }

    /// Sends the ping and returns the recorded record (one delivery, one attempt or two after a 401).
    package func ping(endpointID: String) throws -> EventRecord {
        let body = JSONValue.object([
            ("type", .string(EventType.ping)), ("endpoint_id", .string(endpointID)), ("sent_at", .string(Clock.iso8601(Date()))),
        ]).serialized
        return try send(endpointID: endpointID, type: EventType.ping, body: body)
    }

    /// Sends an event of `type` with `body` (a documented example, say) the same way: once, now,
    /// whatever the endpoint's filter, recorded like any attempt.
    package func send(endpointID: String, type: String, body: [UInt8]) throws -> EventRecord {
        guard let endpoint = try store.endpoint(id: endpointID) else { throw DispatcherError.notFound("endpoint '\(endpointID)'") }
        let owner = "ping:\(getpid()):\(UUID().uuidString.prefix(8).lowercased())"
        let claimed = try store.enqueueTestEvent(endpoint: endpoint, type: type, body: body, owner: owner, leaseSeconds: configuration.leaseSeconds)
        let runner = AttemptRunner(client: try HTTPClient(configuration: configuration.clientConfiguration), leaseOwner: owner, tokens: TokenCache())
        var results = runner.attempts(claimed, endpoint: endpoint)
        if case .retryScheduled = results[results.count - 1].attempt.verdict {
            results[results.count - 1].attempt.verdict = .failed
        }
        try store.record(results)
        guard let record = try store.eventRecord(eventID: claimed.eventID) else { throw DispatcherError.notFound("ping event") }
        return record
    }
}
