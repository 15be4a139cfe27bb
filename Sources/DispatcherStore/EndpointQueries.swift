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
                               rate_limit_per_second, body_format, signing_meta, signing_expires_at, managed_by,
                               revision, created_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24,
                ?25, ?26, ?27, 1, ?12, ?12)
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
            signing_meta = excluded.signing_meta, signing_expires_at = excluded.signing_expires_at,
            managed_by = excluded.managed_by, removed_at = NULL, revision = endpoints.revision + 1, updated_at = excluded.updated_at
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
            OR endpoints.managed_by IS DISTINCT FROM excluded.managed_by
        """

    static let endpointColumns = """
        id, tenant_id, url, event_filters, headers, timeout_ms, connect_timeout_ms, max_concurrency, retry,
        success_rule, enabled, secret_headers, auth, signing, ordered, circuit_failure_threshold,
        circuit_cooldown_ms, disable_after_ms, tls, proxy, http2, rate_limit_per_second, body_format
        """

    static let selectEndpoint = "SELECT \(endpointColumns) FROM endpoints WHERE id = ? AND removed_at IS NULL"
    /// The endpoints (not removed) whose ids are in the JSON array ?1.
    static let selectEndpoints = DialectSQL { dialect in
        "SELECT \(endpointColumns) FROM endpoints WHERE \(DeliveryQueries.isMember("id", of: "?1", dialect)) AND removed_at IS NULL"
    }

    /// Endpoints (not removed) with their health, those `condition` (on ?1) lets through.
    private static func selectWithHealth(_ condition: String) -> String {
        """
        SELECT \(endpointColumns), consecutive_failures, failing_since, circuit_open_until, disabled_reason,
               managed_by, signing_meta
          FROM endpoints WHERE removed_at IS NULL AND \(condition) ORDER BY tenant_id, id
        """
    }

    static let selectEndpointsWithHealth = selectWithHealth("true")
    static let selectTenantEndpointsWithHealth = selectWithHealth("tenant_id = ?1")
    static let selectEndpointWithHealth = selectWithHealth("id = ?1")
    /// Disabled, or with a circuit open at ?1.
    static let selectEndpointsNeedingAttention = selectWithHealth("(enabled = 0 OR circuit_open_until > ?1)")

    /// An endpoint row as a change is weighed against it: removed ones too (an id stays its tenant's).
    static let selectStored = "SELECT \(endpointColumns), managed_by, signing_meta, removed_at FROM endpoints WHERE id = ?"

    static let configManaged = "SELECT id FROM endpoints WHERE managed_by = 'config'"
    static let releaseFromConfig = "UPDATE endpoints SET managed_by = NULL, revision = revision + 1, updated_at = ?2 WHERE id = ?1"

    static let updateSigning = """
        UPDATE endpoints SET signing = ?2, signing_meta = ?3, signing_expires_at = ?4, revision = revision + 1, updated_at = ?5
         WHERE id = ?1 AND removed_at IS NULL
        """

    static let expiredSigning = """
        SELECT id FROM endpoints WHERE signing_expires_at <= ? AND removed_at IS NULL ORDER BY id LIMIT 1000
        """

    static let insertChange = """
        INSERT INTO endpoint_changes (endpoint_id, tenant_id, actor, changed_at, changes) VALUES (?, ?, ?, ?, ?)
        """

    static let selectChanges = """
        SELECT id, endpoint_id, tenant_id, actor, changed_at, changes FROM endpoint_changes
         WHERE endpoint_id = ? ORDER BY id DESC LIMIT ?
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

    /// What a hand toggle weighs: the tenant, why the dispatcher disabled it (if it did), enabled.
    static let enabledState = "SELECT tenant_id, disabled_reason, enabled FROM endpoints WHERE id = ?1 AND removed_at IS NULL"

    /// An endpoint as stored, with what the control panel keeps beside it.
    struct Stored {
        var endpoint: Endpoint
        var managedBy: String?
        var secretMeta: [SecretMeta]
        var removed: Bool
    }

    /// One signing secret's [created_at, expires_at] in milliseconds.
    struct SecretMeta: Equatable {
        var createdAt: Int64?
        var expiresAt: Int64?
    }

    static func stored(id: String, in db: some SQLConnection) throws -> Stored? {
        try db.query(selectStored, [id]) { row in
            let endpoint = try readEndpoint(row)
            return Stored(endpoint: endpoint, managedBy: row.optionalString(23),
                          secretMeta: try readSecretMeta(row.optionalString(24), count: endpoint.signingSecrets.count),
                          removed: !row.isNull(25))
        }.first
    }

    static func readSecretMeta(_ text: String?, count: Int) throws -> [SecretMeta] {
        guard let text, case .array(let pairs) = try JSONText.decode(text) else { return Array(repeating: SecretMeta(), count: count) }
        return (0..<count).map { index in
            guard index < pairs.count, case .array(let dates) = pairs[index], dates.count == 2 else { return SecretMeta() }
            return SecretMeta(createdAt: dates[0].int64Value, expiresAt: dates[1].int64Value)
        }
    }

    static func secretMetaColumns(_ meta: [SecretMeta]) throws -> (text: String?, earliestExpiry: Int64?) {
        guard !meta.isEmpty else { return (nil, nil) }
        let text = JSONValue.array(meta.map { .array([$0.createdAt.map(JSONValue.integer) ?? .null, $0.expiresAt.map(JSONValue.integer) ?? .null]) }).text
        return (text, meta.compactMap(\.expiresAt).min())
    }

    /// Keeps each secret's age across an update: a secret it had keeps its dates, a new one is made now.
    static func carriedSecretMeta(_ secrets: [String], old: Stored?, now: Int64) -> [SecretMeta] {
        secrets.map { secret in
            if let old, !old.removed, let index = old.endpoint.signingSecrets.firstIndex(of: secret), index < old.secretMeta.count {
                return old.secretMeta[index]
            }
            return SecretMeta(createdAt: now, expiresAt: nil)
        }
    }

    static func recordChange(endpointID: String, tenantID: String, actor: ChangeActor, changes: [FieldChange], now: Int64,
                             in db: some SQLConnection) throws {
        guard !changes.isEmpty else { return }
        // JSONValue's writer: JSONSerialization would cost a config of 10,000 endpoints seconds at its first start.
        let text = JSONValue.array(changes.map { change in
            .object([("field", .string(change.field)), ("from", change.from.map(JSONValue.string) ?? .null), ("to", change.to.map(JSONValue.string) ?? .null)])
        }).text
        try db.execute(insertChange, [endpointID, tenantID, actor.description, now, text])
    }

    static func history(id: String, limit: Int, in db: some SQLConnection) throws -> [EndpointChange] {
        try db.query(selectChanges, [id, limit]) { row in
            guard case .array(let entries) = try JSONText.decode(row.string(5)) else { throw DispatcherError.invalidJSON("endpoint change \(row.int64(0))") }
            func text(_ entry: JSONValue, _ key: String) -> String? {
                guard case .string(let text)? = entry[key] else { return nil }
                return text
            }
            return EndpointChange(id: row.int64(0), endpointID: row.string(1), tenantID: row.string(2), actor: row.string(3),
                                  at: Clock.date(milliseconds: row.int64(4)),
                                  changes: entries.map { FieldChange(field: text($0, "field") ?? "", from: text($0, "from"), to: text($0, "to")) })
        }
    }

    static func upsert(tenants: [Tenant], endpoints: [Endpoint], actor: ChangeActor, in db: some SQLConnection) throws {
        try db.inTransaction {
            let now = Clock.nowMilliseconds()
            for tenant in tenants {
                try db.execute(upsertTenant, [tenant.id, tenant.name, now])
            }
            if actor == .config {
                // The config is the whole list of what it manages: one it no longer names lives in the store now.
                let named = Set(endpoints.map(\.id))
                for id in try db.query(configManaged, map: { $0.string(0) }) where !named.contains(id) {
                    try db.execute(releaseFromConfig, [id, now])
                }
            }
            for endpoint in endpoints {
                try endpoint.checkRequestSafety()
                let old = try stored(id: endpoint.id, in: db)
                if let owner = old?.endpoint.tenantID, owner != endpoint.tenantID {
                    throw DispatcherError.invalidConfiguration(
                        path: "endpoint \(endpoint.id)",
                        message: "already belongs to tenant '\(owner)'; endpoint ids are unique across tenants")
                }
                let managedBy = actor == .config ? "config" : old?.managedBy
                // Unchanged (what every start of a config of 10,000 endpoints mostly finds): the
                // upsert's own check would find so too, after encoding every column.
                if let old, !old.removed, old.managedBy == managedBy, old.endpoint == endpoint { continue }
                let meta = try secretMetaColumns(carriedSecretMeta(endpoint.signingSecrets, old: old, now: now))
                let values: [any SQLBindable] = [
                    endpoint.id, endpoint.tenantID, endpoint.url,
                    JSONText.encode(endpoint.eventFilters), JSONText.encode(endpoint.headers),
                    Int64((endpoint.timeoutSeconds * 1000).rounded()), Int64((endpoint.connectTimeoutSeconds * 1000).rounded()),
                    endpoint.maxConcurrency, JSONText.encode(endpoint.retry.jsonObject),
                    endpoint.success.rawValue, endpoint.enabled, now, JSONText.encode(endpoint.secretHeaders),
                    endpoint.auth.map { JSONText.encode($0.jsonObject) },
                    try signingColumn(endpoint), endpoint.ordered,
                    endpoint.circuit.failureThreshold, Int64((endpoint.circuit.cooldownSeconds * 1000).rounded()),
                    Int64((endpoint.circuit.disableAfterSeconds * 1000).rounded()),
                    endpoint.tls.map { JSONText.encode($0.configObject) }, endpoint.proxy, endpoint.http2,
                    endpoint.rateLimitPerSecond, endpoint.bodyFormat == .event ? nil : endpoint.bodyFormat.rawValue,
                    meta.text, meta.earliestExpiry, managedBy,
                ]
                if try db.execute(upsertEndpoint, values) > 0 {
                    let previous = old.flatMap { $0.removed ? nil : $0.endpoint }
                    try recordChange(endpointID: endpoint.id, tenantID: endpoint.tenantID, actor: actor,
                                     changes: endpoint.changes(from: previous), now: now, in: db)
                }
            }
        }
    }

    /// Standard Webhooks secrets only: the other schemes sign with one secret or a key pair.
    static func rotateSigningSecret(endpointID: String, secret: String, graceSeconds: Double, actor: ChangeActor,
                                    in db: some SQLConnection) throws {
        try db.inTransaction {
            guard let old = try stored(id: endpointID, in: db), !old.removed else { throw DispatcherError.notFound("endpoint '\(endpointID)'") }
            if old.managedBy == "config" {
                throw DispatcherError.conflict("endpoint '\(endpointID)' is managed by the config file: change its signing secrets there")
            }
            guard old.endpoint.signatureScheme == .standardWebhooks else {
                throw DispatcherError.conflict("endpoint '\(endpointID)' signs with \(old.endpoint.signatureScheme.name); rotation is for Standard Webhooks (v1) secrets")
            }
            if let problem = SignatureScheme.standardWebhooks.problem(withSecret: secret) {
                throw DispatcherError.invalidConfiguration(path: "signing.secret", message: problem)
            }
            let now = Clock.nowMilliseconds()
            let graceEnd = now + Int64((max(0, graceSeconds) * 1000).rounded())
            // The newest old secret keeps signing through the grace period; any older one (a
            // rotation already under way) goes now, as v1 signs with two at most.
            var secrets = [secret], meta = [SecretMeta(createdAt: now, expiresAt: nil)]
            if graceSeconds > 0, let kept = old.endpoint.signingSecrets.first, kept != secret {
                let keptMeta = old.secretMeta.first ?? SecretMeta()
                secrets.append(kept)
                meta.append(SecretMeta(createdAt: keptMeta.createdAt, expiresAt: min(keptMeta.expiresAt ?? graceEnd, graceEnd)))
            }
            var updated = old.endpoint
            updated.signingSecrets = secrets
            let columns = try secretMetaColumns(meta)
            try db.execute(updateSigning, [endpointID, try signingColumn(updated), columns.text, columns.earliestExpiry, now])
            try recordChange(endpointID: endpointID, tenantID: old.endpoint.tenantID, actor: actor,
                             changes: updated.changes(from: old.endpoint), now: now, in: db)
        }
    }

    /// Each endpoint whose grace period ended signs with its remaining secrets (or none).
    static func dropExpiredSigningSecrets(now: Date, in db: some SQLConnection) throws -> Int {
        let nowMilliseconds = Clock.milliseconds(now)
        var changed = 0
        for id in try db.query(expiredSigning, [nowMilliseconds], map: { $0.string(0) }) {
            try db.inTransaction {
                guard let old = try stored(id: id, in: db), !old.removed else { return }
                var updated = old.endpoint
                var meta: [SecretMeta] = []
                updated.signingSecrets = []
                for (secret, secretMeta) in zip(old.endpoint.signingSecrets, old.secretMeta)
                where secretMeta.expiresAt.map({ $0 > nowMilliseconds }) ?? true {
                    updated.signingSecrets.append(secret)
                    meta.append(secretMeta)
                }
                let columns = try secretMetaColumns(meta)
                try db.execute(updateSigning, [id, try signingColumn(updated), columns.text, columns.earliestExpiry, nowMilliseconds])
                try recordChange(endpointID: id, tenantID: old.endpoint.tenantID, actor: .dispatcher,
                                 changes: updated.changes(from: old.endpoint), now: nowMilliseconds, in: db)
                changed += 1
            }
        }
        return changed
    }

    static func endpoint(id: String, in db: some SQLConnection) throws -> Endpoint? {
        try db.query(selectEndpoint, [id], map: readEndpoint).first
    }

    static func endpoints(ids: [String], in db: some SQLConnection) throws -> [Endpoint] {
        guard !ids.isEmpty else { return [] }
        return try db.query(selectEndpoints[db.dialect], [JSONText.strings(ids)], map: readEndpoint)
    }

    /// Every endpoint with its health; `tenantID`'s only, or the one `id`, when given.
    static func endpointsWithHealth(tenantID: String? = nil, id: String? = nil, in db: some SQLConnection) throws -> [EndpointStatus] {
        let (sql, bindings): (String, [SQLBindable]) = id.map { (selectEndpointWithHealth, [$0]) }
            ?? tenantID.map { (selectTenantEndpointsWithHealth, [$0]) } ?? (selectEndpointsWithHealth, [])
        return try endpointStatuses(sql, bindings, in: db)
    }

    /// The endpoints that are disabled or whose circuit is open at `now` (milliseconds), with their health.
    static func endpointsNeedingAttention(at now: Int64, in db: some SQLConnection) throws -> [EndpointStatus] {
        try endpointStatuses(selectEndpointsNeedingAttention, [now], in: db)
    }

    private static func endpointStatuses(_ sql: String, _ bindings: [SQLBindable], in db: some SQLConnection) throws -> [EndpointStatus] {
        try db.query(sql, bindings) { row in
            let endpoint = try readEndpoint(row)
            var status = EndpointStatus(
                endpoint: endpoint, consecutiveFailures: row.int(23),
                failingSince: row.isNull(24) ? nil : Clock.date(milliseconds: row.int64(24)),
                circuitOpenUntil: row.isNull(25) ? nil : Clock.date(milliseconds: row.int64(25)),
                disabledReason: row.optionalString(26))
            status.managedBy = row.optionalString(27)
            status.secrets = try readSecretMeta(row.optionalString(28), count: endpoint.signingSecrets.count).map {
                SigningSecretInfo(createdAt: $0.createdAt.map(Clock.date(milliseconds:)), expiresAt: $0.expiresAt.map(Clock.date(milliseconds:)))
            }
            return status
        }
    }

    /// Returns the endpoint's tenant and why the dispatcher had disabled it, if it had.
    @discardableResult
    static func setEnabled(id: String, enabled: Bool, reason: String?, actor: ChangeActor,
                           in db: some SQLConnection) throws -> (tenantID: String, disabledReason: String?) {
        let before = try db.query(enabledState, [id]) { (tenantID: $0.string(0), disabledReason: $0.optionalString(1), enabled: $0.int(2) != 0) }.first
        let now = Clock.nowMilliseconds()
        guard let before, try db.execute(setEnabled, [id, enabled, reason, now]) == 1 else {
            throw DispatcherError.notFound("endpoint '\(id)'")
        }
        if before.enabled != enabled {
            try recordChange(endpointID: id, tenantID: before.tenantID, actor: actor,
                             changes: [FieldChange(field: "enabled", from: String(before.enabled), to: String(enabled))], now: now, in: db)
        }
        return (before.tenantID, before.disabledReason)
    }

    /// Returns how many pending deliveries were cancelled.
    static func remove(id: String, actor: ChangeActor, in db: some SQLConnection) throws -> Int {
        try db.inTransaction {
            let now = Clock.nowMilliseconds()
            guard let tenant = try db.query(endpointTenant, [id], map: { $0.string(0) }).first,
                  try db.execute(removeEndpoint, [id, now]) == 1 else { throw DispatcherError.notFound("endpoint '\(id)'") }
            try recordChange(endpointID: id, tenantID: tenant, actor: actor,
                             changes: [FieldChange(field: "removed", from: nil, to: "true")], now: now, in: db)
            return try db.execute(OperationsQueries.cancelPendingOfEndpoint, ["cancelled: endpoint \(id) was removed", now, id])
        }
    }

    /// Reads the `endpointColumns` of a row.
    static func readEndpoint(_ row: some SQLRow) throws -> Endpoint {
        let id = row.string(0)
        let retryReader = try JSONReader(try JSONText.decode(row.string(8)), path: "endpoints[\(id)].retry")
        let auth = try row.optionalString(12).map { text in
            try EndpointAuth.decode(try JSONReader(try JSONText.decode(text), path: "endpoints[\(id)].auth"),
                                    urlPolicy: URLPolicy(requireHTTPS: false))
        }
        let signing = try readSigning(row.optionalString(13), endpointID: id)
        return Endpoint(
            id: id, tenantID: row.string(1), url: row.string(2),
            eventFilters: try JSONText.decode(row.string(3)).strings ?? [],
            headers: try JSONText.decode(row.string(4)).stringMembers ?? [:],
            secretHeaders: try JSONText.decode(row.string(11)).strings ?? [],
            timeoutSeconds: Double(row.int64(5)) / 1000, connectTimeoutSeconds: Double(row.int64(6)) / 1000,
            maxConcurrency: row.int(7), retry: try RetryPolicy.decode(retryReader),
            success: SuccessRule(rawValue: row.string(9)) ?? .any2xx, enabled: row.int(10) != 0,
            auth: auth, signingSecrets: signing.secrets, signatureScheme: signing.scheme,
            tls: try row.optionalString(18).map { text in
                try EndpointTLS.decode(JSONReader(try JSONText.decode(text), path: "endpoints[\(id)].tls"), checkFiles: false)
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
        if endpoint.signatureScheme == .standardWebhooks { return JSONText.encode(endpoint.signingSecrets) }
        return JSONText.encode(endpoint.signatureScheme.configObject(secrets: endpoint.signingSecrets))
    }

    static func readSigning(_ text: String?, endpointID: String) throws -> (scheme: SignatureScheme, secrets: [String]) {
        guard let text else { return (.standardWebhooks, []) }
        let value = try JSONText.decode(text)
        if let secrets = value.strings { return (.standardWebhooks, secrets) }
        return try SignatureScheme.decode(JSONReader(value, path: "endpoints[\(endpointID)].signing"))
    }

    static func revision(id: String, in db: some SQLConnection) throws -> Int? {
        try db.query(selectRevision, [id]) { $0.int(0) }.first
    }
}
