import DispatcherModel
import Foundation

/// The rule every token-gated listener of the config shares (`dashboard`, `metrics`): a token of
/// at least 16 characters, given as text or `env:NAME`, and required when the listener is
/// reachable from anywhere but loopback.
enum AccessToken {
    static let minimumLength = 16

    /// Checks the config's value when the file is read; an `env:` reference is checked when resolved.
    static func check(_ token: String?, section: String, host: String, isLoopback: Bool, reason: String) throws {
        if let token, EnvironmentReference(token) == nil, token.count < minimumLength {
            throw DispatcherError.invalidConfiguration(path: "\(section).token", message: "must be at least \(minimumLength) characters")
        }
        guard token != nil || isLoopback else {
            throw DispatcherError.invalidConfiguration(
                path: section, message: "listening on \(host) (not loopback) needs \(section).token, so only people holding it \(reason)")
        }
    }

    /// The token itself, with an `env:NAME` reference read now.
    static func resolve(_ token: String?, section: String) throws -> String? {
        guard let token else { return nil }
        guard let reference = EnvironmentReference(token) else { return token }
        guard let value = reference.value, value.count >= minimumLength else {
            throw DispatcherError.invalidConfiguration(
                path: "\(section).token", message: "environment variable \(reference.name) must be set to a token of at least \(minimumLength) characters")
        }
        return value
    }
}
