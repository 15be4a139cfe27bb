import Foundation

/// A Standard Webhooks signing secret, `whsec_<base64 key>`: the form the config, the CLI and
/// the signer agree on.
package enum SigningSecret {
    package static let prefix = "whsec_"

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
}
