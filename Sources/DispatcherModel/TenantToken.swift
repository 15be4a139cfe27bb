import Foundation

/// A tenant read token as the store keeps it: the token itself is shown once, only its
/// SHA-256 is kept. The tenant's own system fetches the events it was sent with it.
package struct TenantTokenRecord: Sendable, Equatable {
    /// The token's public part (`dtt_<id>_…`): listed, and how it is found.
    package var id: String
    package var tenantID: String
    package var name: String
    package var tokenHash: String
    package var createdAt: Date
    package var lastUsedAt: Date?
    package var revokedAt: Date?

    package init(id: String, tenantID: String, name: String, tokenHash: String, createdAt: Date, lastUsedAt: Date? = nil, revokedAt: Date? = nil) {
        self.id = id
        self.tenantID = tenantID
        self.name = name
        self.tokenHash = tokenHash
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}
