import DispatcherModel
import Foundation

/// Where `serve` exposes `/metrics` for Prometheus (config `metrics`):
/// `{"listen": "127.0.0.1:9464", "token": "env:METRICS_TOKEN", "max_endpoint_labels": 100}`.
public struct MetricsSettings: Sendable, Equatable {
    public static let defaultListen = "127.0.0.1:9464"

    public var host: String
    public var port: Int
    /// When set, a scrape must send `Authorization: Bearer <token>` (Prometheus's
    /// `authorization` setting). Required to listen anywhere but loopback.
    public var token: String?
    /// Names Prometheus reaches this listener by besides its address (the `Host` it sends).
    public var hostNames: [String] = []
    /// Endpoints with their own `endpoint` label; the rest are summed into `endpoint="(other)"`.
    public var maxEndpointLabels = 100
    /// Tenants with their own `tenant` label on `dispatcher_events_enqueued_total`.
    public var maxTenantLabels = 100

    public init(host: String = "127.0.0.1", port: Int = 9464, token: String? = nil) {
        self.host = host
        self.port = port
        self.token = token
    }

    public init(listen: String, token: String?) throws {
        let (host, port) = try ListenAddress.parse(listen, key: "metrics.listen")
        self.init(host: host, port: port, token: token)
        try AccessToken.check(token, section: "metrics", host: host, isLoopback: isLoopback, reason: "read the queue's figures")
    }

    public func resolvedToken() throws -> String? { try AccessToken.resolve(token, section: "metrics") }

    public var isLoopback: Bool { IPAddress(host)?.isLoopback ?? false }

    public var listen: String { ListenAddress.text(host: host, port: port) }
}
