import Foundation

/// Tenants and endpoints: the only place their rows are written and read.
enum EndpointQueries {
    static let upsertTenant = """
        INSERT INTO tenants (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at
         WHERE tenants.name IS NOT excluded.name
        """

    static let endpointTenant = "SELECT tenant_id FROM endpoints WHERE id = ?"

    /// Bumps `revision` only when something changed, so workers' caches stay warm.
    static let upsertEndpoint = """
        INSERT INTO endpoints (id, tenant_id, url, event_filters, headers, timeout_ms, connect_timeout_ms,
                               max_concurrency, retry, success_rule, enabled, secret_headers, revision, created_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13, 1, ?12, ?12)
        ON CONFLICT (id) DO UPDATE SET
            url = excluded.url, event_filters = excluded.event_filters, headers = excluded.headers,
            secret_headers = excluded.secret_headers,
            timeout_ms = excluded.timeout_ms, connect_timeout_ms = excluded.connect_timeout_ms,
            max_concurrency = excluded.max_concurrency, retry = excluded.retry,
            success_rule = excluded.success_rule, enabled = excluded.enabled,
            revision = endpoints.revision + 1, updated_at = excluded.updated_at
         WHERE (endpoints.url, endpoints.event_filters, endpoints.headers, endpoints.timeout_ms,
                endpoints.connect_timeout_ms, endpoints.max_concurrency, endpoints.retry,
                endpoints.success_rule, endpoints.enabled, endpoints.secret_headers)
            IS NOT (excluded.url, excluded.event_filters, excluded.headers, excluded.timeout_ms,
                    excluded.connect_timeout_ms, excluded.max_concurrency, excluded.retry,
                    excluded.success_rule, excluded.enabled, excluded.secret_headers)
        """

    static let selectEndpoint = """
        SELECT id, tenant_id, url, event_filters, headers, timeout_ms, connect_timeout_ms,
               max_concurrency, retry, success_rule, enabled, secret_headers
          FROM endpoints WHERE id = ?
        """

    static let selectRevision = "SELECT revision FROM endpoints WHERE id = ?"

    static func upsert(tenants: [Tenant], endpoints: [Endpoint], in db: Database) throws {
        try db.inTransaction {
            let now = Clock.nowMilliseconds()
            for tenant in tenants {
                try db.execute(upsertTenant, [tenant.id, tenant.name, now])
            }
            for endpoint in endpoints {
                if let owner = try db.query(endpointTenant, [endpoint.id], map: { $0.string(0) }).first, owner != endpoint.tenantID {
                    throw DispatcherError.invalidConfiguration(
                        path: "endpoint \(endpoint.id)",
                        message: "already belongs to tenant '\(owner)'; endpoint ids are unique across tenants")
                }
                try db.execute(upsertEndpoint, [
                    endpoint.id, endpoint.tenantID, endpoint.url,
                    try JSONText.encode(endpoint.eventFilters), try JSONText.encode(endpoint.headers),
                    Int64((endpoint.timeoutSeconds * 1000).rounded()), Int64((endpoint.connectTimeoutSeconds * 1000).rounded()),
                    endpoint.maxConcurrency, try JSONText.encode(endpoint.retry.jsonObject),
                    endpoint.success.rawValue, endpoint.enabled, now, try JSONText.encode(endpoint.secretHeaders),
                ])
            }
        }
    }

    static func endpoint(id: String, in db: Database) throws -> Endpoint? {
        try db.query(selectEndpoint, [id]) { row in
            let retryReader = try JSONObjectReader(try JSONText.decode(row.string(8)), path: "endpoints[\(id)].retry")
            return Endpoint(
                id: row.string(0), tenantID: row.string(1), url: row.string(2),
                eventFilters: try JSONText.decode(row.string(3)) as? [String] ?? [],
                headers: try JSONText.decode(row.string(4)) as? [String: String] ?? [:],
                secretHeaders: try JSONText.decode(row.string(11)) as? [String] ?? [],
                timeoutSeconds: Double(row.int64(5)) / 1000, connectTimeoutSeconds: Double(row.int64(6)) / 1000,
                maxConcurrency: row.int(7), retry: try RetryPolicy.decode(retryReader),
                success: SuccessRule(rawValue: row.string(9)) ?? .any2xx, enabled: row.int(10) != 0)
        }.first
    }

    static func revision(id: String, in db: Database) throws -> Int? {
        try db.query(selectRevision, [id]) { $0.int(0) }.first
    }
}

/// JSON text columns: compact, with sorted keys so equal values store equal text.
enum JSONText {
    static func encode(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    static func encodeHeaders(_ headers: [HeaderField]) throws -> String {
        try encode(headers.map { [$0.name, $0.value] })
    }

    static func decodeHeaders(_ text: String) -> [HeaderField] {
        guard let pairs = try? decode(text) as? [[String]] else { return [] }
        return pairs.compactMap { $0.count == 2 ? HeaderField($0[0], $0[1]) : nil }
    }
}
