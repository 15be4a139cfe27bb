import DispatcherModel
import Foundation

/// What a person may give an endpoint through the dashboard, beyond the config's own rules.
package struct EndpointRules: Sendable {
    package var urlPolicy: URLPolicy
    package var destinationPolicy: DestinationPolicy
    /// An endpoint's timeout must stay below it (the config's rule).
    package var leaseSeconds: Double

    package init(urlPolicy: URLPolicy = URLPolicy(), destinationPolicy: DestinationPolicy = DestinationPolicy(), leaseSeconds: Double = 60) {
        self.urlPolicy = urlPolicy
        self.destinationPolicy = destinationPolicy
        self.leaseSeconds = leaseSeconds
    }
}

extension DispatcherConfiguration {
    /// The config's rules for endpoints people enter in the dashboard or the portal.
    package var endpointRules: EndpointRules {
        EndpointRules(urlPolicy: urlPolicy, destinationPolicy: destinationPolicy, leaseSeconds: leaseSeconds)
    }
}
