import DispatcherModel
import DispatcherStore
import DispatcherWorker
import Foundation

/// The config file (`config.example.json`): where the store is, how the worker pool runs,
/// and every tenant's endpoints. Keys are snake_case in JSON; unknown keys are errors.
public struct DispatcherConfiguration: Sendable {
    /// The SQLite file (relative paths are resolved against the config file's folder), or a
    /// `postgres://` URL.
    public var database: String
    /// Concurrent HTTP requests (the transfer loop's slots); the config key is `workers`.
    public var concurrentRequests: Int
    public var pollIntervalMilliseconds: Int
    public var leaseSeconds: Double
    public var maxPayloadBytes: Int
    public var responseBodyCapBytes: Int
    /// `response_header_cap_count` and `response_header_cap_bytes`.
    public var responseHeaderCap = ResponseHeaderCap()
    public var urlPolicy: URLPolicy
    public var destinationPolicy: DestinationPolicy
    public var tenants: [Tenant]
    public var endpoints: [Endpoint]
    /// How often `serve` logs the stats summary line; 0 turns it off.
    public var statsIntervalSeconds: Double = 60
    /// When set, `serve` prunes finished deliveries older than this many days, hourly.
    public var retentionDays: Double?
    /// When set, `serve` also hosts the dashboard; `dispatcher dashboard` reads its listen
    /// address and token from here.
    public var dashboard: DashboardSettings?
    /// When set, `serve` also hosts the HTTP ingest API; `dispatcher api` reads it too.
    public var api: APISettings?
    /// When set, `serve` exposes Prometheus metrics at `/metrics` on its own listener.
    public var metrics: MetricsSettings?
    /// When set, the dashboard also serves tenants through signed links (`portal-link`).
    public var portal: PortalSettings?
    /// The egress proxy of every endpoint that names none (`http://host:port` or `env:NAME`).
    public var proxy: String?
    /// How `serve` writes its log: text, or one JSON object a line.
    public var logFormat: DispatcherLogger.Format = .text
    /// The tenant whose endpoints get the dispatcher's operational events (`operations.tenant`).
    public var operationsTenant: String?
    /// PostgreSQL: the worker's commits wait for the server's disk (`StoreOptions`); key
    /// `synchronous_delivery_commits`, off by default.
    public var synchronousDeliveryCommits = false

    public init(database: String, concurrentRequests: Int = 8, pollIntervalMilliseconds: Int = 100, leaseSeconds: Double = 60,
                maxPayloadBytes: Int = 256 * 1024, responseBodyCapBytes: Int = 64 * 1024,
                urlPolicy: URLPolicy = URLPolicy(), destinationPolicy: DestinationPolicy = DestinationPolicy(),
                tenants: [Tenant] = [], endpoints: [Endpoint] = []) {
        self.database = database
        self.concurrentRequests = concurrentRequests
        self.pollIntervalMilliseconds = pollIntervalMilliseconds
        self.leaseSeconds = leaseSeconds
        self.maxPayloadBytes = maxPayloadBytes
        self.responseBodyCapBytes = responseBodyCapBytes
        self.urlPolicy = urlPolicy
        self.destinationPolicy = destinationPolicy
        self.tenants = tenants
        self.endpoints = endpoints
    }

    /// Reads and validates a config file.
    public static func load(path: String) throws -> DispatcherConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw DispatcherError.invalidConfiguration(path: "", message: "cannot read \(path): \((error as NSError).localizedDescription)")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(data, baseDirectory: folder)
    }

    /// Validates config JSON; `baseDirectory` anchors a relative `database` path.
    public static func parse(_ data: Data, baseDirectory: String? = nil) throws -> DispatcherConfiguration {
        let json: JSONValue
        do {
            json = try JSONValidation.parse(Array(data))
        } catch DispatcherError.invalidJSON(let detail) {
            throw DispatcherError.invalidConfiguration(path: "", message: "the file is not valid JSON (\(detail))")
        }
        let root = try JSONReader(json, path: "")
        var database = try root.string("database") ?? "dispatcher.sqlite"
        if let baseDirectory, !database.hasPrefix("/"), database != ":memory:", !OutboxStore.isPostgresURL(database) {
            database = URL(fileURLWithPath: baseDirectory).appendingPathComponent(database).standardizedFileURL.path
        }
        // `workers` names the transfer loop's slots, as it named threads before; kept for configs.
        let workers = try root.integer("workers", default: 8, in: 1...20_000)
        let pollInterval = try root.integer("poll_interval_ms", default: 100, in: 1...60_000)
        let leaseSeconds = try root.number("lease_seconds", default: 60, in: 1...86_400)
        let maxPayload = try root.integer("max_payload_bytes", default: 256 * 1024, in: 2...(16 * 1024 * 1024))
        let bodyCap = try root.integer("response_body_cap_bytes", default: 64 * 1024, in: 0...(16 * 1024 * 1024))
        let headerCap = ResponseHeaderCap(
            count: try root.integer("response_header_cap_count", default: ResponseHeaderCap().count, in: 1...10_000),
            bytes: try root.integer("response_header_cap_bytes", default: ResponseHeaderCap().bytes, in: 256...(1024 * 1024)))
        let statsInterval = try root.number("stats_interval_seconds", default: 60, in: 0...86_400)
        let retentionDays = try root.has("retention_days") ? root.number("retention_days", default: 30, in: 0.01...36_500) : nil
        let urlPolicy = URLPolicy(requireHTTPS: try root.bool("require_https", default: true))
        let allowPrivate = try root.bool("allow_private_addresses", default: false)
        let networks = try (root.stringArray("allowed_networks") ?? []).enumerated().map { index, text in
            guard let network = IPNetwork(text) else {
                throw DispatcherError.invalidConfiguration(path: "allowed_networks[\(index)]", message: "'\(text)' is not a CIDR block such as 127.0.0.0/8 or ::1/128")
            }
            return network
        }

        let logFormatName = try root.string("log_format") ?? DispatcherLogger.Format.text.rawValue
        guard let logFormat = DispatcherLogger.Format(rawValue: logFormatName) else {
            throw DispatcherError.invalidConfiguration(path: "log_format", message: "'\(logFormatName)' is not text or json")
        }
        let proxy = try root.string("proxy")
        let synchronousDeliveryCommits = try root.bool("synchronous_delivery_commits", default: false)
        if let proxy, let problem = ProxyAddress.problem(with: proxy, allowNone: false) {
            throw DispatcherError.invalidConfiguration(path: "proxy", message: problem)
        }

        var tenants: [Tenant] = []
        var endpoints: [Endpoint] = []
        // Duplicate checks by set: a config of 10,000 endpoints is a customer base, not a typo.
        var tenantIDs: Set<String> = []
        var endpointIDs: Set<String> = []
        for (tenantIndex, tenantJSON) in (try root.array("tenants") ?? []).enumerated() {
            let tenantReader = try JSONReader(tenantJSON, path: "tenants[\(tenantIndex)]")
            let id = try tenantReader.requiredString("id")
            guard EventType.isValid(id) else { throw tenantReader.fail("id", "'\(id)' must be 1-200 letters, digits, '.', '_' or '-'") }
            guard tenantIDs.insert(id).inserted else { throw tenantReader.fail("id", "tenant '\(id)' is defined twice") }
            let name = try tenantReader.string("name") ?? id
            for (endpointIndex, endpointJSON) in (try tenantReader.array("endpoints") ?? []).enumerated() {
                let reader = try JSONReader(endpointJSON, path: "\(tenantReader.keyPath("endpoints"))[\(endpointIndex)]")
                let endpoint = try Endpoint.decode(reader, tenantID: id, urlPolicy: urlPolicy)
                guard endpointIDs.insert(endpoint.id).inserted else {
                    throw reader.fail("id", "endpoint '\(endpoint.id)' is defined twice; endpoint ids are unique across tenants")
                }
                guard endpoint.timeoutSeconds < leaseSeconds else {
                    throw reader.fail("timeout_seconds", "must be shorter than lease_seconds (\(JSONReader.format(leaseSeconds))), or a slow attempt's delivery could be retaken while it is still in flight")
                }
                endpoints.append(endpoint)
            }
            try tenantReader.rejectUnknownKeys()
            tenants.append(Tenant(id: id, name: name))
        }
        var dashboard: DashboardSettings?
        if let reader = try root.object("dashboard") {
            let listen = try reader.string("listen") ?? DashboardSettings.defaultListen
            let token = try reader.string("token")
            let hostNames = try hostNamesOf(reader, section: "dashboard")
            try reader.rejectUnknownKeys()
            dashboard = try DashboardSettings(listen: listen, token: token)
            dashboard?.hostNames = hostNames
        }
        var api: APISettings?
        if let reader = try root.object("api") {
            let listen = try reader.string("listen") ?? APISettings.defaultListen
            let maxBatch = try reader.integer("max_batch", default: 1_000, in: 1...100_000)
            try reader.rejectUnknownKeys()
            api = try APISettings(listen: listen, maxBatch: maxBatch)
        }
        var metrics: MetricsSettings?
        if let reader = try root.object("metrics") {
            let listen = try reader.string("listen") ?? MetricsSettings.defaultListen
            let token = try reader.string("token")
            let hostNames = try hostNamesOf(reader, section: "metrics")
            var settings = try MetricsSettings(listen: listen, token: token)
            settings.hostNames = hostNames
            settings.maxEndpointLabels = try reader.integer("max_endpoint_labels", default: 100, in: 0...10_000)
            settings.maxTenantLabels = try reader.integer("max_tenant_labels", default: 100, in: 0...10_000)
            try reader.rejectUnknownKeys()
            metrics = settings
        }
        let portal = try root.object("portal").map(PortalSettings.decode)
        var operationsTenant: String?
        if let reader = try root.object("operations") {
            let tenant = try reader.requiredString("tenant")
            guard tenantIDs.contains(tenant) else {
                throw reader.fail("tenant", "'\(tenant)' is not one of the config's tenants")
            }
            try reader.rejectUnknownKeys()
            operationsTenant = tenant
        }
        try root.rejectUnknownKeys()

        var configuration = DispatcherConfiguration(
            database: database, concurrentRequests: workers, pollIntervalMilliseconds: pollInterval, leaseSeconds: leaseSeconds,
            maxPayloadBytes: maxPayload, responseBodyCapBytes: bodyCap, urlPolicy: urlPolicy,
            destinationPolicy: DestinationPolicy(allowPrivateAddresses: allowPrivate, allowedNetworks: networks),
            tenants: tenants, endpoints: endpoints)
        configuration.responseHeaderCap = headerCap
        configuration.statsIntervalSeconds = statsInterval
        configuration.retentionDays = retentionDays
        configuration.dashboard = dashboard
        configuration.api = api
        configuration.metrics = metrics
        configuration.portal = portal
        configuration.proxy = proxy
        configuration.logFormat = logFormat
        configuration.operationsTenant = operationsTenant
        configuration.synchronousDeliveryCommits = synchronousDeliveryCommits
        return configuration
    }

    /// A listener's `hosts`: the names people or Prometheus reach it by (lowercased), each a DNS name.
    private static func hostNamesOf(_ reader: JSONReader, section: String) throws -> [String] {
        let names = try reader.stringArray("hosts") ?? []
        for (index, name) in names.enumerated() where !DashboardSettings.isHostName(name) {
            throw DispatcherError.invalidConfiguration(path: "\(section).hosts[\(index)]",
                                                       message: "'\(name)' is not a host name such as dispatcher.example.com")
        }
        return names.map { $0.lowercased() }
    }

    /// Every `env:NAME` value the endpoints name (headers, signing secrets, OAuth client
    /// secrets, TLS certificates and keys, proxies): which endpoint, which key, which variable.
    public func environmentReferences() -> [(endpointID: String, key: String, variable: String)] {
        endpoints.flatMap { endpoint -> [(endpointID: String, key: String, variable: String)] in
            var references = endpoint.headers.sorted(by: { $0.key < $1.key }).map { ("headers.\($0.key)", $0.value) }
            references += endpoint.signingSecrets.map { ("signing.secret", $0) }
            if case .oauth2ClientCredentials(let credentials) = endpoint.auth {
                references.append(("auth.client_secret", credentials.clientSecret))
            }
            references += [("tls.client_cert", endpoint.tls?.clientCertificate), ("tls.client_key", endpoint.tls?.clientKey),
                           ("proxy", endpoint.proxy ?? proxy)].compactMap { key, value in value.map { (key, $0) } }
            return references.compactMap { key, value in EnvironmentReference(value).map { (endpoint.id, key, $0.name) } }
        }
    }

    /// Fails when an `env:NAME` value names a variable this process does not have: run by
    /// `serve`, so reading the log never needs the secrets.
    public func checkEnvironment() throws {
        for reference in environmentReferences() where ProcessInfo.processInfo.environment[reference.variable] == nil {
            throw DispatcherError.invalidConfiguration(
                path: "endpoint \(reference.endpointID) \(reference.key)", message: "environment variable \(reference.variable) is not set")
        }
    }

    public var storeOptions: StoreOptions {
        StoreOptions(maxPayloadBytes: maxPayloadBytes, operationsTenant: operationsTenant, synchronousDeliveryCommits: synchronousDeliveryCommits)
    }

    public func serviceConfiguration(logger: DispatcherLogger) -> DeliveryServiceConfiguration {
        var configuration = DeliveryServiceConfiguration(
            concurrentRequests: concurrentRequests, pollInterval: Double(pollIntervalMilliseconds) / 1000, leaseSeconds: leaseSeconds,
            responseBodyCap: responseBodyCapBytes, destinationPolicy: destinationPolicy, urlPolicy: urlPolicy, logger: logger)
        configuration.responseHeaderCap = responseHeaderCap
        configuration.proxy = proxy
        if let metrics { configuration.maxEndpointLabels = metrics.maxEndpointLabels }
        return configuration
    }
}
