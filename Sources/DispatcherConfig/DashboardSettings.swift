import DispatcherModel
import DispatcherStore
import DispatcherWorker
import Foundation

/// Where the dashboard listens and who may use it.
public struct DashboardSettings: Sendable, Equatable {
    public static let defaultListen = "127.0.0.1:8089"

    public var host: String
    public var port: Int
    /// When set, every request must carry it (a bearer header, or the cookie the login form
    /// sets). Required to listen anywhere but loopback. `env:NAME` reads it from the
    /// environment when the dashboard starts, so other commands never need the variable.
    public var token: String?
    /// Names people reach the dashboard by besides its listen address (`dispatcher.example.com`,
    /// behind a proxy): the `Host` a request carries must be one of these or the address itself,
    /// so a web page whose name rebinds to 127.0.0.1 cannot read or act (config `dashboard.hosts`).
    public var hostNames: [String]

    public init(host: String = "127.0.0.1", port: Int = 8089, token: String? = nil, hostNames: [String] = []) {
        self.host = host
        self.port = port
        self.token = token
        self.hostNames = hostNames
    }

    /// `127.0.0.1:8089`, `[::1]:8089` or `0.0.0.0:8089` (port 0: the kernel picks one).
    public init(listen: String, token: String?) throws {
        let (host, port) = try ListenAddress.parse(listen, key: "dashboard.listen")
        self.init(host: host, port: port, token: token)
        try AccessToken.check(token, section: "dashboard", host: host, isLoopback: isLoopback, reason: "see the log")
    }

    /// The token itself, with an `env:NAME` reference read now.
    public func resolvedToken() throws -> String? { try AccessToken.resolve(token, section: "dashboard") }

    /// Letters, digits, '-' and '.', as DNS names are written.
    package static func isHostName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 253 && name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
    }

    public var isLoopback: Bool { IPAddress(host)?.isLoopback ?? false }

    public var listen: String { ListenAddress.text(host: host, port: port) }
}
