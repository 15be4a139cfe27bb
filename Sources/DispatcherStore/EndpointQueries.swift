import DispatcherModel
import Foundation

/// Tenants and endpoints: the only place their rows are written and read.
enum EndpointQueries {
    static let upsertTenant = """
        INSERT INTO tenants (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at
         WHERE tenants.name IS DISTINCT FROM excluded.name
        """

    static let selectTenants = "SELECT id, name FROM tenants ORDER BY id"

    static let endpointTenant = "SELECT tenant_id FROM endpoints WHERE id = ?"

    /// Bumps `revision` only when something changed, so workers' caches stay warm. An endpoint
    /// the dispatcher disabled itself (`disabled_reason`) stays disabled until `enable`.
    static let upsertEndpoint = """
        INSERT INTO endpoints (id, tenant_id, url, event_filters, headers, timeout_ms, connect_timeout_ms,
                               max_concurrency, retry, success_rule, enabled, secret_headers, auth, signing, ordered,
                               circuit_failure_threshold, circuit_cooldown_ms, disable_after_ms, tls, proxy, http2,
                               rate_limit_per_second, body_format, revision, created_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, 1, ?12, ?12)
        ON CONFLICT (id) DO UPDATE SET
            url = excluded.url, event_filters = excluded.event_filters, headers = excluded.headers,
            secret_headers = excluded.secret_headers, timeout_ms = excluded.timeout_ms,
            connect_timeout_ms = excluded.connect_timeout_ms, max_concurrency = excluded.max_concurrency,
            retry = excluded.retry, success_rule = excluded.success_rule,
            enabled = CASE WHEN endpoints.disabled_reason IS NULL THEN excluded.enabled ELSE endpoints.enabled END,
            auth = excluded.auth, signing = excluded.signing, ordered = excluded.ordered,
            circuit_failure_threshold = excluded.circuit_failure_threshold,
            circuit_cooldown_ms = excluded.circuit_cooldown_ms, disable_after_ms = excluded.disable_after_ms,
            tls = excluded.tls, proxy = excluded.proxy, http2 = excluded.http2,
            rate_limit_per_second = excluded.rate_limit_per_second, body_format = excluded.body_format,
            removed_at = NULL, revision = endpoints.revision + 1, updated_at = excluded.updated_at
         WHERE endpoints.removed_at IS NOT NULL OR (endpoints.url, endpoints.event_filters, endpoints.headers, endpoints.timeout_ms,
                endpoints.connect_timeout_ms, endpoints.max_concurrency, endpoints.retry, endpoints.success_rule,
                endpoints.secret_headers, endpoints.auth, endpoints.signing, endpoints.ordered,
                endpoints.circuit_failure_threshold, endpoints.circuit_cooldown_ms, endpoints.disable_after_ms,
                endpoints.tls, endpoints.proxy, endpoints.http2, endpoints.rate_limit_per_second, endpoints.body_format)
            IS DISTINCT FROM (excluded.url, excluded.event_filters, excluded.headers, excluded.timeout_ms,
                    excluded.connect_timeout_ms, excluded.max_concurrency, excluded.retry, excluded.success_rule,
                    excluded.secret_headers, excluded.auth, excluded.signing, excluded.ordered,
                    excluded.circuit_failure_threshold, excluded.circuit_cooldown_ms, excluded.disable_after_ms,
                    excluded.tls, excluded.proxy, excluded.http2, excluded.rate_limit_per_second, excluded.body_format)
            OR (endpoints.disabled_reason IS NULL AND endpoints.enabled IS DISTINCT FROM excluded.enabled)
        """

    static let endpointColumns = """
        id, tenant_id, url, event_filters, headers, timeout_ms, connect_timeout_ms, max_concurrency, retry,
        success_rule, enabled, secret_headers, auth, signing, ordered, circuit_failure_threshold,
        circuit_cooldown_ms, disable_after_ms, tls, proxy, http2, rate_limit_per_second, body_format
        """

    static let selectEndpoint = "SELECT \(endpointColumns) FROM endpoints WHERE id = ? AND removed_at IS NULL"

    static let selectEndpointsWithHealth = """
        SELECT \(endpointColumns), consecutive_failures, failing_since, circuit_open_until, disabled_reason
          FROM endpoints WHERE removed_at IS NULL ORDER BY tenant_id, id
        """

    /// Enabling also forgets the failure run, so the endpoint starts with a closed circuit.
    static let setEnabled = """
        UPDATE endpoints
           SET enabled = ?2, disabled_reason = ?3, consecutive_failures = CASE WHEN ?2 = 1 THEN 0 ELSE consecutive_failures END,
               failing_since = CASE WHEN ?2 = 1 THEN NULL ELSE failing_since END,
               circuit_open_until = CASE WHEN ?2 = 1 THEN NULL ELSE circuit_open_until END,
               revision = revision + 1, updated_at = ?4
         WHERE id = ?1 AND removed_at IS NULL
        """

    /// Removal keeps the row (past deliveries refer to it) and cancels what was still to come.
    static let removeEndpoint = """
        UPDATE endpoints SET removed_at = ?2, enabled = 0, revision = revision + 1, updated_at = ?2
         WHERE id = ?1 AND removed_at IS NULL
        """

    static let selectRevision = "SELECT revision FROM endpoints WHERE id = ?"

    static let disabledState = "SELECT tenant_id, disabled_reason FROM endpoints WHERE id = ?1 AND removed_at IS NULL"

    static func upsert(tenants: [Tenant], endpoints: [Endpoint], in db: some SQLConnection) throws {
        try db.inTransaction {
            let now = Clock.nowMilliseconds()
            for tenant in tenants {
                try db.execute(upsertTenant, [tenant.id, tenant.name, now])
            }
            for endpoint in endpoints {
                try endpoint.checkRequestSafety()
                if let owner = try db.query(endpointTenant, [endpoint.id], map: { $0.string(0) }).first, owner != endpoint.tenantID {
                    throw DispatcherError.invalidConfiguration(
                        path: "endpoint \(endpoint.id)",
                        message: "already belongs to tenant '\(owner)'; endpoint ids are unique across tenants")
                }
                let values: [any SQLBindable] = [
                    endpoint.id, endpoint.tenantID, endpoint.url,
                    try JSONText.encode(endpoint.eventFilters), try JSONText.encode(endpoint.headers),
                    Int64((endpoint.timeoutSeconds * 1000).rounded()), Int64((endpoint.connectTimeoutSeconds * 1000).rounded()),
                    endpoint.maxConcurrency, try JSONText.encode(endpoint.retry.jsonObject),
                    endpoint.success.rawValue, endpoint.enabled, now, try JSONText.encode(endpoint.secretHeaders),
                    try endpoint.auth.map { try JSONText.encode($0.jsonObject) },
                    try signingColumn(endpoint), endpoint.ordered,
                    endpoint.circuit.failureThreshold, Int64((endpoint.circuit.cooldownSeconds * 1000).rounded()),
                    Int64((endpoint.circuit.disableAfterSeconds * 1000).rounded()),
                    try endpoint.tls.map { try JSONText.encode($0.configObject) }, endpoint.proxy, endpoint.http2,
                    endpoint.rateLimitPerSecond, endpoint.bodyFormat == .event ? nil : endpoint.bodyFormat.rawValue,
                ]
                try db.execute(upsertEndpoint, values)
            }
        }
    }

    static func endpoint(id: String, in db: some SQLConnection) throws -> Endpoint? {
        try db.query(selectEndpoint, [id], map: readEndpoint).first
    }

    static func endpointsWithHealth(in db: some SQLConnection) throws -> [EndpointStatus] {
        try db.query(selectEndpointsWithHealth) { row in
            EndpointStatus(
                endpoint: try readEndpoint(row), consecutiveFailures: row.int(23),
                failingSince: row.isNull(24) ? nil : Clock.date(milliseconds: row.int64(24)),
                circuitOpenUntil: row.isNull(25) ? nil : Clock.date(milliseconds: row.int64(25)),
                disabledReason: row.optionalString(26))
        }
    }

    static func setEnabled(id: String, enabled: Bool, reason: String?, in db: some SQLConnection) throws {
        guard try db.execute(setEnabled, [id, enabled, reason, Clock.nowMilliseconds()]) == 1 else {
            throw DispatcherError.notFound("endpoint '\(id)'")
        }
    }

    /// Returns how many pending deliveries were cancelled.
    static func remove(id: String, in db: some SQLConnection) throws -> Int {
        try db.inTransaction {
            let now = Clock.nowMilliseconds()
            guard try db.execute(removeEndpoint, [id, now]) == 1 else { throw DispatcherError.notFound("endpoint '\(id)'") }
            return try db.execute(OperationsQueries.cancelPendingOfEndpoint, ["cancelled: endpoint \(id) was removed", now, id])
        }
    }

    /// Reads the `endpointColumns` of a row.
    static func readEndpoint(_ row: some SQLRow) throws -> Endpoint {
        let id = row.string(0)
        let retryReader = try JSONReader(configuration: try JSONText.decode(row.string(8)), path: "endpoints[\(id)].retry")
        let auth = try row.optionalString(12).map { text in
            try EndpointAuth.decode(try JSONReader(configuration: try JSONText.decode(text), path: "endpoints[\(id)].auth"),
                                    urlPolicy: URLPolicy(requireHTTPS: false))
        }
        let signing = try readSigning(row.optionalString(13), endpointID: id)
        return Endpoint(
            id: id, tenantID: row.string(1), url: row.string(2),
            eventFilters: try JSONText.decode(row.string(3)) as? [String] ?? [],
            headers: try JSONText.decode(row.string(4)) as? [String: String] ?? [:],
            secretHeaders: try JSONText.decode(row.string(11)) as? [String] ?? [],
            timeoutSeconds: Double(row.int64(5)) / 1000, connectTimeoutSeconds: Double(row.int64(6)) / 1000,
            maxConcurrency: row.int(7), retry: try RetryPolicy.decode(retryReader),
            success: SuccessRule(rawValue: row.string(9)) ?? .any2xx, enabled: row.int(10) != 0,
            auth: auth, signingSecrets: signing.secrets, signatureScheme: signing.scheme,
            tls: try row.optionalString(18).map { text in
                try EndpointTLS.decode(JSONReader(configuration: try JSONText.decode(text), path: "endpoints[\(id)].tls"), checkFiles: false)
            },
            proxy: row.optionalString(19), http2: row.int(20) != 0,
            rateLimitPerSecond: row.isNull(21) ? nil : row.double(21),
            bodyFormat: row.optionalString(22).flatMap(BodyFormat.init(rawValue:)) ?? .event,
            ordered: row.int(14) != 0,
            circuit: CircuitPolicy(failureThreshold: row.int(15), cooldownSeconds: Double(row.int64(16)) / 1000,
                                   disableAfterSeconds: Double(row.int64(17)) / 1000))
    }

    /// The `signing` column: the secrets as a JSON array for Standard Webhooks `v1` (as before
    /// other schemes existed), the config's `signing` object for the others.
    static func signingColumn(_ endpoint: Endpoint) throws -> String? {
        guard !endpoint.signingSecrets.isEmpty else { return nil }
        if endpoint.signatureScheme == .standardWebhooks { return try JSONText.encode(endpoint.signingSecrets) }
        return try JSONText.encode(endpoint.signatureScheme.configObject(secrets: endpoint.signingSecrets))
    }

    static func readSigning(_ text: String?, endpointID: String) throws -> (scheme: SignatureScheme, secrets: [String]) {
        guard let text else { return (.standardWebhooks, []) }
        let value = try JSONText.decode(text)
        if let secrets = value as? [String] { return (.standardWebhooks, secrets) }
        return try SignatureScheme.decode(JSONReader(configuration: value, path: "endpoints[\(endpointID)].signing"))
    }

    static func revision(id: String, in db: some SQLConnection) throws -> Int? {
        try db.query(selectRevision, [id]) { $0.int(0) }.first
    }
}
