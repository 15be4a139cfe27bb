import DispatcherConfig
import DispatcherModel
import DispatcherServer
import DispatcherStore
import Foundation

/// The ingest API on its own listener, with the committer that groups its writes. Hosted by
/// `serve` (config `api`) or `dispatcher api`.
package final class IngestServer: Sendable {
    private let server: HTTPServer
    private let committer: GroupCommitter
    package var port: Int { server.port }

    package init(store: OutboxStore, settings: APISettings) throws {
        let committer = GroupCommitter(store: store, maxEventsPerCommit: max(1_000, settings.maxBatch))
        let api = IngestAPI(store: store, committer: committer, maxBatch: settings.maxBatch)
        self.committer = committer
        // A batch of max_batch events at max_payload_bytes each, and no more.
        let maxBody = settings.maxBatch * (store.options.maxPayloadBytes + IngestAPI.envelopeAllowance)
        server = try HTTPServer(host: settings.host, port: settings.port, maxBodyBytes: min(maxBody, 256 * 1024 * 1024),
                                maxConnections: 10_000, readTimeout: 30, maxRequestsInProgress: 256,
                                gracePeriod: 5, immediate: { request, responder in api.respondImmediately(to: request, responder: responder) },
                                handler: { request in .respond(api.respond(to: request)) })
    }

    /// Stops listening, answers the requests in progress (up to 5 s), then ends the committer.
    package func stop() {
        server.stop()
        committer.stop()
    }
}
