import Foundation

/// Which destination URLs an endpoint may have. The connect-time address check lives in
/// `DestinationPolicy` (applied by `HTTPClient` to the address it connects to); this is the
/// part that can be judged from the URL alone.
public struct URLPolicy: Sendable, Equatable {
    /// Only `https` URLs (the default; the verification seed requires it).
    public var requireHTTPS: Bool

    public init(requireHTTPS: Bool = true) {
        self.requireHTTPS = requireHTTPS
    }

    /// Returns a message saying what is wrong with `url`, or nil when it is acceptable.
    public func problem(with url: String) -> String? {
        // Before parsing: a CR, LF or space would reach the request line or a log line as is.
        if url.contains("://"), url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
            return "'\(url.debugDescription.dropFirst().dropLast())' contains a space or control character; percent-encode it (%20)"
        }
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty else {
            return "'\(url)' is not an absolute URL (expected https://host/path)"
        }
        guard scheme == "https" || scheme == "http" else { return "scheme '\(scheme)' is not http or https" }
        if requireHTTPS && scheme != "https" {
            return "'\(url)' is not https; set require_https to false to allow plain http (tests and local development only)"
        }
        if components.user != nil || components.password != nil {
            return "credentials in the URL would be logged; put them in headers instead"
        }
        if components.fragment != nil { return "a URL fragment (#...) is never sent; remove it" }
        return nil
    }
}
