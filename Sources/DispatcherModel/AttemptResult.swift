import Foundation

/// A finished attempt, ready to be written to the audit log and the delivery row.
package struct AttemptResult: Sendable, Equatable {
    package var deliveryID: Int64
    package var endpointID: String
    package var leaseOwner: String
    package var attempt: Attempt
    /// True for an attempt followed at once by another under the same claim (a 401 answered
    /// with a fresh token): the delivery stays leased.
    package var keepsLease: Bool = false
    /// The headers as the audit log stores them, encoded by the worker that made the attempt
    /// (`encodeHeadersForRecording`): every result passes through the one store loop, which
    /// then only binds them. Nil: encoded when recorded.
    package var storedHeaders: StoredHeaders?

    /// Encodes the headers for the audit log now, on the calling thread.
    package mutating func encodeHeadersForRecording() {
        storedHeaders = StoredHeaders(attempt)
    }

    package init(deliveryID: Int64, endpointID: String, leaseOwner: String, attempt: Attempt, keepsLease: Bool = false, storedHeaders: StoredHeaders? = nil) {
        self.deliveryID = deliveryID
        self.endpointID = endpointID
        self.leaseOwner = leaseOwner
        self.attempt = attempt
        self.keepsLease = keepsLease
        self.storedHeaders = storedHeaders
    }
}

/// An attempt's request and response headers in the audit log's form, `[["name","value"],...]`.
package struct StoredHeaders: Sendable, Equatable {
    package var request: String
    package var response: String?

    package init(_ attempt: Attempt) {
        request = JSONText.encodeHeaders(attempt.requestHeaders)
        response = attempt.responseHeaders.map(JSONText.encodeHeaders)
    }
}
