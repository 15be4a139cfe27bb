import DispatcherModel
import Foundation

/// The `api_keys` table: credentials of the HTTP ingest API, stored hashed.
enum APIKeyQueries {
    static let insert = """
        INSERT INTO api_keys (id, name, key_hash, tenants, created_at) VALUES (?, ?, ?, ?, ?)
        """
    static let select = "SELECT id, name, key_hash, tenants, created_at, revoked_at FROM api_keys"
    static let selectOne = select + " WHERE id = ?"
    static let selectAll = select + " ORDER BY created_at, id"
    static let revoke = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"

    static func key(id: String, in db: some SQLConnection) throws -> APIKeyRecord? {
        try db.query(selectOne, [id], map: read).first
    }

    static func all(in db: some SQLConnection) throws -> [APIKeyRecord] {
        try db.query(selectAll, map: read)
    }

    static func read(_ row: some SQLRow) throws -> APIKeyRecord {
        APIKeyRecord(id: row.string(0), name: row.string(1), keyHash: row.string(2),
                     tenants: try row.optionalString(3).map { try JSONText.decode($0).strings ?? [] },
                     createdAt: Clock.date(milliseconds: row.int64(4)), revokedAt: row.optionalInt(5).map { Clock.date(milliseconds: Int64($0)) })
    }
}

/// The ingest API's credentials.
package protocol APIKeyRegistry: AnyObject, Sendable {
    func insertAPIKey(_ key: APIKeyRecord) throws
    func apiKey(id: String) throws -> APIKeyRecord?
    func apiKeys() throws -> [APIKeyRecord]
    /// Returns false when there is no such key, or it was revoked already.
    func revokeAPIKey(id: String) throws -> Bool
}

extension OutboxStore: APIKeyRegistry {
    package func insertAPIKey(_ key: APIKeyRecord) throws {
        try withConnection { db in
            try db.execute(APIKeyQueries.insert, [key.id, key.name, key.keyHash, key.tenants.map(JSONText.strings),
                                                  Clock.milliseconds(key.createdAt)])
        }
    }

    package func apiKey(id: String) throws -> APIKeyRecord? {
        try withConnection { db in try APIKeyQueries.key(id: id, in: db) }
    }

    package func apiKeys() throws -> [APIKeyRecord] {
        try withConnection { db in try APIKeyQueries.all(in: db) }
    }

    package func revokeAPIKey(id: String) throws -> Bool {
        try withConnection { db in try db.execute(APIKeyQueries.revoke, [Clock.nowMilliseconds(), id]) } > 0
    }
}
