import Foundation

/// An egress proxy, `http://[user:password@]host:port` (or `https://`), or `env:NAME` holding
/// one: every request to an endpoint goes through it, so receivers can allowlist one address.
/// `"none"` on an endpoint turns the config's proxy off for it.
package enum ProxyAddress {
    package static let none = "none"

    /// Why `value` is not a proxy address, or nil.
    package static func problem(with value: String, allowNone: Bool) -> String? {
        if allowNone && value == none { return nil }
        if EnvironmentReference(value) != nil { return nil }
        if value.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) { return "may not contain spaces or control characters" }
        guard let components = URLComponents(string: value), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty, components.port != nil else {
            return "must be http://host:port (user:password@ allowed), https://host:port, or env:NAME\(allowNone ? ", or \"none\"" : "")"
        }
        guard components.path.isEmpty || components.path == "/", components.query == nil, components.fragment == nil else {
            return "names a proxy: scheme, host and port only"
        }
        return nil
    }

    /// The host and port of a proxy address (credentials left out), or nil.
    package static func hostAndPort(of value: String) -> (host: String, port: Int)? {
        guard let components = URLComponents(string: value), let host = components.host, let port = components.port else { return nil }
        return (host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port)
    }

    /// The address with its password shown as `***`, for lists and logs.
    package static func redacted(_ value: String) -> String {
        guard var components = URLComponents(string: value), components.password != nil else { return value }
        components.password = HeaderRedaction.placeholder
        return components.string ?? HeaderRedaction.placeholder
    }

    /// A proxy variable that is not set to a proxy address.
    package struct UnsetVariable: Error, CustomStringConvertible {
        package let name: String
        package var description: String { "proxy environment variable \(name) is not set to http://host:port" }
    }

    /// The proxy a request goes through, from what is configured for it (the endpoint's, else
    /// the config's): nil for none or `"none"`, an `env:NAME` read now.
    package static func resolve(_ configured: String?) throws(UnsetVariable) -> String? {
        guard let configured, configured != none else { return nil }
        guard let reference = EnvironmentReference(configured) else { return configured }
        guard let value = reference.value, problem(with: value, allowNone: false) == nil else { throw UnsetVariable(name: reference.name) }
        return value
    }
}
