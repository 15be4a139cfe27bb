import Foundation

/// A Standard Webhooks signing secret, `whsec_<base64 key>`, or an ed25519 key pair,
/// `whsk_<base64 32-byte private key>` and `whpk_<base64 32-byte public key>`: the forms the
/// config, the CLI and the signer agree on.
package enum SigningSecret {
    package static let prefix = "whsec_"
    package static let ed25519Prefix = "whsk_"
    package static let publicKeyPrefix = "whpk_"

    /// Why `secret` is not a usable `whsec_<base64>` secret, or nil when it is.
    package static func problem(with secret: String) -> String? {
        guard secret.hasPrefix(prefix) else { return "must start with whsec_ (or be env:NAME)" }
        guard let key = key(of: secret), !key.isEmpty else { return "the part after whsec_ must be base64" }
        return key.count < 16 ? "the key must be at least 16 bytes (24 to 64 is usual)" : nil
    }

    /// The key bytes of a `whsec_<base64>` secret, or nil when the part after the prefix is not base64.
    package static func key(of secret: String) -> [UInt8]? {
        Data(base64Encoded: String(secret.dropFirst(prefix.count))).map { [UInt8]($0) }
    }

    /// The 32-byte ed25519 private key of a `whsk_<base64>` secret, or nil.
    package static func ed25519Seed(of secret: String) -> [UInt8]? {
        guard secret.hasPrefix(ed25519Prefix), let data = Data(base64Encoded: String(secret.dropFirst(ed25519Prefix.count))),
              data.count == 32 else { return nil }
        return [UInt8](data)
    }

    /// The 32-byte ed25519 public key of a `whpk_<base64>` key, or nil.
    package static func ed25519PublicKey(of key: String) -> [UInt8]? {
        guard key.hasPrefix(publicKeyPrefix), let data = Data(base64Encoded: String(key.dropFirst(publicKeyPrefix.count))),
              data.count == 32 else { return nil }
        return [UInt8](data)
    }
}
