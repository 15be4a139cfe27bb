import Foundation

/// How deliveries to an endpoint are signed, so its receiver can tell them from forgeries.
/// Every scheme also sends `webhook-id` and `webhook-timestamp`.
public enum SignatureScheme: Sendable, Equatable {
    /// Standard Webhooks `v1` (the default): `webhook-signature: v1,<base64 HMAC-SHA256 of
    /// "id.timestamp.body">` with `whsec_` secrets, one signature per secret while rotating.
    case standardWebhooks
    /// Standard Webhooks `v1a`: the same signed content with ed25519 and `whsk_` secret keys;
    /// the receiver verifies with the `whpk_` public key (`dispatcher endpoints public-key ID`),
    /// so it holds nothing that could sign.
    case standardWebhooksEd25519
    /// `<header>: <prefix><hex HMAC-SHA256 of the body>`, the style many receivers verify
    /// already (GitHub's `X-Hub-Signature-256: sha256=...`), keyed with the secret's text.
    case hmacSHA256Hex(header: String, prefix: String)

    /// GitHub's header and prefix, the defaults of `hmac_sha256_hex`.
    package static let hubHeader = "X-Hub-Signature-256"
    package static let hubPrefix = "sha256="

    /// The config's name: `v1`, `v1a` or `hmac_sha256_hex`.
    public var name: String {
        switch self {
        case .standardWebhooks: return "v1"
        case .standardWebhooksEd25519: return "v1a"
        case .hmacSHA256Hex: return "hmac_sha256_hex"
        }
    }

    /// Secrets at once: two while rotating, except for the hex scheme, whose one header holds
    /// one signature (rotate by switching the secret at the receiver and here together).
    package var maxSecrets: Int { if case .hmacSHA256Hex = self { return 1 } else { return 2 } }

    /// Why `secret` (already resolved from `env:`) cannot sign under this scheme, or nil.
    package func problem(withSecret secret: String) -> String? {
        switch self {
        case .standardWebhooks:
            return SigningSecret.problem(with: secret)
        case .standardWebhooksEd25519:
            return SigningSecret.ed25519Seed(of: secret) == nil
                ? "must be whsk_ followed by the base64 of a 32-byte ed25519 private key (dispatcher endpoints new-secret --scheme v1a)"
                : nil
        case .hmacSHA256Hex:
            if secret.utf8.count < 16 { return "must be at least 16 characters" }
            if secret.utf8.contains(where: HeaderRules.isControl) { return "may not contain control characters" }
            return nil
        }
    }
}
