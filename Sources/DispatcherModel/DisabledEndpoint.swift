import Foundation

/// An endpoint the dispatcher disabled because it kept failing.
public struct DisabledEndpoint: Sendable, Equatable {
    public var endpointID: String
    public var reason: String

    package init(endpointID: String, reason: String) {
        self.endpointID = endpointID
        self.reason = reason
    }
}
