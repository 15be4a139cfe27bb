import DispatcherModel
import Foundation

/// The `tenant_tokens` table: what tenants' own systems read their events with, stored hashed.
enum TenantTokenQueries {
    static let insert = "INSERT INTO tenant_tokens (id, tenant_id, name, token_hash, created_at) VALUES (?, ?, ?, ?, ?)"
    static let select = "SELECT id, tenant_id, name, token_hash, created_at, last_used_at, revoked_at FROM tenant_tokens"
    static let selectOne = select + " WHERE id = ?"
    static let selectOfTenant = select + " WHERE tenant_id = ? ORDER BY created_at, id"
    /// Scoped by tenant, so one tenant's session cannot revoke another's token by its id.
    static let revoke = "UPDATE tenant_tokens SET revoked_at = ? WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL"
    /// At most once a minute per token, so a polling receiver does not write on every read.
    static let touch = "UPDATE tenant_tokens SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1 - 60000)"

    static func token(id: String, in db: some SQLConnection) throws -> TenantTokenRecord? {
        try db.query(selectOne, [id], map: read).first
    }

    static func tokens(tenantID: String, in db: some SQLConnection) throws -> [TenantTokenRecord] {
        try db.query(selectOfTenant, [tenantID], map: read)
    }

    static func read(_ row: some SQLRow) throws -> TenantTokenRecord {
        TenantTokenRecord(id: row.string(0), tenantID: row.string(1), name: row.string(2), tokenHash: row.string(3),
                          createdAt: Clock.date(milliseconds: row.int64(4)),
                          lastUsedAt: row.isNull(5) ? nil : Clock.date(milliseconds: row.int64(5)),
                          revokedAt: row.isNull(6) ? nil : Clock.date(milliseconds: row.int64(6)))
    }
}

/// Tenant read tokens.
package protocol TenantTokenRegistry: AnyObject, Sendable {
    func insertTenantToken(_ token: TenantTokenRecord) throws
    func tenantToken(id: String) throws -> TenantTokenRecord?
    func tenantTokens(tenantID: String) throws -> [TenantTokenRecord]
    /// False when the tenant has no such unrevoked token.
    func revokeTenantToken(id: String, tenantID: String) throws -> Bool
    func touchTenantToken(id: String, at: Date) throws
}

extension OutboxStore: TenantTokenRegistry {
    package func insertTenantToken(_ token: TenantTokenRecord) throws {
        try withConnection { db in
            try db.execute(TenantTokenQueries.insert, [token.id, token.tenantID, token.name, token.tokenHash, Clock.milliseconds(token.createdAt)])
        }
    }

    package func tenantToken(id: String) throws -> TenantTokenRecord? {
        try withConnection { db in try TenantTokenQueries.token(id: id, in: db) }
    }

    package func tenantTokens(tenantID: String) throws -> [TenantTokenRecord] {
        try withConnection { db in try TenantTokenQueries.tokens(tenantID: tenantID, in: db) }
    }

    package func revokeTenantToken(id: String, tenantID: String) throws -> Bool {
        try withConnection { db in try db.execute(TenantTokenQueries.revoke, [Clock.nowMilliseconds(), id, tenantID]) } > 0
    }

    package func touchTenantToken(id: String, at: Date) throws {
        _ = try withConnection { db in try db.execute(TenantTokenQueries.touch, [Clock.milliseconds(at), id]) }
    }
}
