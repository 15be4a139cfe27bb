import DispatcherConfig
import DispatcherModel
import Foundation

/// Which `Host` (and, on changes, `Origin`) the dashboard answers: its listen address, the
/// loopback names when it listens on loopback, and the names the config gives. A web page
/// whose DNS name rebinds to 127.0.0.1 sends its own name as `Host`, so it is refused (421)
/// before any page, token or action is reached; a cross-site form or fetch is refused (403).
struct HostPolicy: Sendable {
    private let names: Set<String>
    /// Listening on every address (0.0.0.0, ::): any IP literal is this host. A rebinding
    /// attack needs a name, and names must be listed.
    private let acceptsAnyIPLiteral: Bool

    init(settings: DashboardSettings) {
        self.init(listenHost: settings.host, isLoopback: settings.isLoopback, hostNames: settings.hostNames)
    }

    init(listenHost: String, isLoopback: Bool, hostNames: [String]) {
        var names = Set(hostNames.map { $0.lowercased() })
        names.insert(Self.bracketed(listenHost.lowercased()))
        if isLoopback { names.formUnion(["localhost", "127.0.0.1", "[::1]"]) }
        self.names = names
        acceptsAnyIPLiteral = IPAddress(listenHost).map { $0.bytes.allSatisfy { $0 == 0 } } ?? false
    }

    /// Whether a request's `Host` header names this dashboard (its port is not judged: the
    /// connection already reached this port).
    func allows(host header: String?) -> Bool {
        guard let header, let name = Self.name(ofHost: header) else { return false }
        if names.contains(name) { return true }
        return acceptsAnyIPLiteral && IPAddress(String(name.trimmingCharacters(in: CharacterSet(charactersIn: "[]")))) != nil
    }

    /// Whether an `Origin` (`http://127.0.0.1:8089`) is this dashboard; `null` and other
    /// schemes are not.
    func allows(origin: String) -> Bool {
        guard let components = URLComponents(string: origin), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host else { return false }
        return allows(host: Self.bracketed(host) + (components.port.map { ":\($0)" } ?? ""))
    }

    /// `Example.com:8089` → `example.com`; `[::1]:8089` → `[::1]`; nil for anything malformed.
    static func name(ofHost header: String) -> String? {
        let value = header.trimmingCharacters(in: .whitespaces).lowercased()
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else { return nil }
            let rest = value[value.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && Int(rest.dropFirst()) != nil) else { return nil }
            return String(value[...close])
        }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard let first = parts.first, !first.isEmpty, parts.count <= 2 else { return nil }
        if parts.count == 2 && Int(parts[1]) == nil { return nil }
        return String(first)
    }

    private static func bracketed(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }
}
