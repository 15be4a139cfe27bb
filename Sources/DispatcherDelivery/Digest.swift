import CCrypto
import DispatcherModel
import Foundation

/// SHA-256, random bytes and constant-time comparison: the pieces of the credentials the
/// dispatcher issues and checks (API keys, the dashboard's session and CSRF token).
package enum Digest {
    package static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &length, EVP_sha256(), nil) }
        // EVP_Digest fails only without memory; an empty hash then matches nothing.
        guard ok == 1 else { return "" }
        return Hex.lowercase(digest.prefix(Int(length)))
    }

    /// Whether `a` and `b` are equal, in time that does not depend on where they differ.
    package static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8), right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    /// `count` bytes from the system's generator.
    package static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}

/// A credential shown once and kept only as its SHA-256: `<prefix><id>_<secret>`, where the
/// id (12 hex digits) finds the stored record and the whole token's hash must match it. The
/// ingest API's keys (`dk_`) and tenants' read tokens (`dtt_`) are made and read this way.
package struct HashedToken: Sendable {
    package let id: String
    package let token: String
    package let hash: String

    /// A new token: 6 random bytes of id and 24 of secret, in hex.
    package init(prefix: String) {
        id = Hex.lowercase(Digest.randomBytes(6))
        token = prefix + id + "_" + Hex.lowercase(Digest.randomBytes(24))
        hash = Digest.sha256Hex(Array(token.utf8))
    }

    private init(id: String, token: String) {
        self.id = id
        self.token = token
        hash = Digest.sha256Hex(Array(token.utf8))
    }

    /// A presented token of this form (its id, and the hash to compare in constant time), or nil.
    package init?(presented: String, prefix: String) {
        let parts = presented.split(separator: "_", omittingEmptySubsequences: false)
        guard presented.hasPrefix(prefix), parts.count == 3 else { return nil }
        self.init(id: String(parts[1]), token: presented)
    }

    /// Whether this presented token is the one `storedHash` was made from.
    package func matches(_ storedHash: String) -> Bool { !hash.isEmpty && Digest.constantTimeEquals(storedHash, hash) }
}
