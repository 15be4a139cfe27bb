import DispatcherDelivery
import DispatcherModel
import Foundation

/// The tenant portal (config `portal`): the key links and sessions are signed with, the address
/// tenants open links at, and how long a session lasts.
public struct PortalSettings: Sendable, Equatable {
    /// At least 32 characters, or `env:NAME`. Changing it revokes every link and session.
    public var key: String
    /// Where tenants reach the dashboard (`https://webhooks.example.com`); links start with it.
    /// Without it `portal-link` uses the dashboard's listen address. An `https` base marks
    /// the session cookie `Secure`.
    public var baseURL: String?
    /// How long a session opened from a link lasts.
    public var sessionSeconds: Double

    public init(key: String, baseURL: String? = nil, sessionSeconds: Double = 8 * 3_600) {
        self.key = key
        self.baseURL = baseURL
        self.sessionSeconds = sessionSeconds
    }

    /// The key, with an `env:NAME` reference read now.
    public func resolvedKey() throws -> PortalKey {
        guard let reference = EnvironmentReference(key) else { return try PortalKey(secret: key) }
        guard let value = reference.value, value.utf8.count >= PortalKey.minimumLength else {
            throw DispatcherError.invalidConfiguration(
                path: "portal.key", message: "environment variable \(reference.name) must be set to a key of at least \(PortalKey.minimumLength) characters")
        }
        return try PortalKey(secret: value)
    }

    static func decode(_ reader: JSONReader) throws -> PortalSettings {
        let key = try reader.requiredString("key")
        if EnvironmentReference(key) == nil, key.utf8.count < PortalKey.minimumLength {
            throw reader.fail("key", "must be at least \(PortalKey.minimumLength) characters (e.g. openssl rand -hex 32), or env:NAME")
        }
        let baseURL = try reader.string("base_url")
        if let baseURL {
            guard let url = URL(string: baseURL), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil,
                  url.query == nil, !baseURL.contains("#") else {
                throw reader.fail("base_url", "'\(baseURL)' is not an http(s) URL such as https://webhooks.example.com")
            }
        }
        let hours = try reader.number("session_hours", default: 8, in: 0.05...720)
        try reader.rejectUnknownKeys()
        return PortalSettings(key: key, baseURL: baseURL, sessionSeconds: hours * 3_600)
    }
}
