import DispatcherModel
import Foundation

/// A `HOST:PORT` a server listens on: `127.0.0.1:8089`, `[::1]:8089`, `0.0.0.0:0` (port 0: the
/// kernel picks one). The one parser for `dashboard.listen`, `api.listen` and `--listen`.
enum ListenAddress {
    /// `key` names the setting in error messages (`dashboard.listen`).
    static func parse(_ listen: String, key: String) throws -> (host: String, port: Int) {
        let host: Substring, portText: Substring
        if listen.hasPrefix("["), let close = listen.firstIndex(of: "]") {
            host = listen[listen.index(after: listen.startIndex)..<close]
            portText = listen[close...].dropFirst().drop { $0 == ":" }
        } else if let colon = listen.lastIndex(of: ":") {
            host = listen[..<colon]
            portText = listen[listen.index(after: colon)...]
        } else {
            throw DispatcherError.invalidConfiguration(path: key, message: "'\(listen)' is not HOST:PORT, such as 127.0.0.1:8089")
        }
        guard IPAddress(String(host)) != nil else {
            throw DispatcherError.invalidConfiguration(path: key, message: "'\(host)' is not an IP address (such as 127.0.0.1 or [::1])")
        }
        guard let port = Int(portText), (0...65_535).contains(port) else {
            throw DispatcherError.invalidConfiguration(path: key, message: "'\(portText)' is not a port number")
        }
        return (String(host), port)
    }

    /// The address written back: `127.0.0.1:8089`, `[::1]:8089`.
    static func text(host: String, port: Int) -> String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
