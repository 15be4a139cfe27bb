import Foundation

/// A config value written `env:NAME`: the secret lives in the environment, not in files.
package struct EnvironmentReference: Equatable {
    package let name: String

    package init?(_ value: String) {
        guard value.hasPrefix("env:"), value.count > 4 else { return nil }
        name = String(value.dropFirst(4))
    }

    /// The variable's value now, or nil when it is not set.
    package var value: String? { ProcessInfo.processInfo.environment[name] }
}
