import Foundation

/// An endpoint the dispatcher disabled because it kept failing.
package struct DisabledEndpoint: Sendable, Equatable {
    package var endpointID: String
    package var reason: String

    package init(endpointID: String, reason: String) {
        self.endpointID = endpointID
        self.reason = reason
    }
}
