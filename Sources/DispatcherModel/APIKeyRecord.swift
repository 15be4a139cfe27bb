import Foundation

/// A credential of the HTTP ingest API as the store keeps it: never the key itself, only its
/// SHA-256, so a copy of the database does not hand out keys.
package struct APIKeyRecord: Sendable, Equatable {
    /// The key's public part (`dk_<id>_...`), shown by `api-keys list` and used to find it.
    package var id: String
    package var name: String
    /// Hex SHA-256 of the whole key.
    package var keyHash: String
    /// The tenants the key may enqueue for and read; nil: every tenant.
    package var tenants: [String]?
    package var createdAt: Date
    package var revokedAt: Date?

    package init(id: String, name: String, keyHash: String, tenants: [String]?, createdAt: Date, revokedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.keyHash = keyHash
        self.tenants = tenants
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }

    /// Whether the key may act for `tenant`.
    package func allows(tenant: String) -> Bool { tenants?.contains(tenant) ?? true }
}
