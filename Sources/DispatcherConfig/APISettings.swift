import DispatcherModel
import Foundation

/// Where the HTTP ingest API listens (config `api`): `{"listen": "127.0.0.1:8090", "max_batch": 1000}`.
public struct APISettings: Sendable, Equatable {
    public static let defaultListen = "127.0.0.1:8090"

    public var host: String
    public var port: Int
    /// Events one `POST /v1/events/batch` may carry.
    public var maxBatch: Int

    public init(host: String = "127.0.0.1", port: Int = 8090, maxBatch: Int = 1_000) {
        self.host = host
        self.port = port
        self.maxBatch = maxBatch
    }

    /// `127.0.0.1:8090` or `[::1]:8090` (port 0: the kernel picks one). Every request needs an
    /// API key, so any address may be given.
    public init(listen: String, maxBatch: Int = 1_000) throws {
        let (host, port) = try ListenAddress.parse(listen, key: "api.listen")
        self.init(host: host, port: port, maxBatch: maxBatch)
    }

    public var listen: String { ListenAddress.text(host: host, port: port) }
}
